// The page's one connection and one store. Components read the store's
// refs (store.nodeRef(uid), store.nodesRef, store.commandsRef,
// store.metaRef), which the store triggers once per animation frame.

import { inject, reactive, ref, shallowRef, type InjectionKey } from 'vue'
import { Connection, defaultWsUrl, type ConnStatus } from './connection'
import { Store, type AuthStatus } from './store'

let conn: Connection | null = null

// Grouping and sorting every node costs ~15 ms per 10 000 nodes: the node
// map moves at most every 100 ms, and once a second while a snapshot
// arrives (a 10 000-node snapshot is read, not regrouped, frame after frame).
export const store = new Store({
  send: (f) => conn?.send(f) ?? false,
  structureEveryMs: 100,
  snapshotStructureEveryMs: 1000,
})

/** storeKey lets a test (or a second app) provide its own store. */
export const storeKey: InjectionKey<Store> = Symbol('goaiot store')

/** useStore is the store of the component's app: the provided one, else the page's. */
export function useStore(): Store {
  return inject(storeKey, store)
}

/** Ticks every second: relative times and timeouts follow it. */
export const now = ref(Date.now())

export const status = shallowRef<ConnStatus>({
  state: 'connecting', attempts: 0, retryAt: 0, lastClose: '', url: '',
})

/** A shared event: the map should centre on this node. */
export const mapFocus = reactive<{ uid: string; seq: number }>({ uid: '', seq: 0 })
export function focusOnMap(uid: string): void {
  mapFocus.uid = uid
  mapFocus.seq++
}

export function startLive(): void {
  if (conn) return
  conn = new Connection({
    url: wsUrl(),
    onOpen: () => {
      store.beginResync()
      conn!.send({ type: 'new', data: 'client' })
    },
    onMessage: (text) => {
      try {
        store.applyText(text)
      } catch (e) {
        // One odd message must not stop the ones after it.
        console.error('goaiot: message not applied', e, text.slice(0, 200))
      }
    },
    onClose: () => store.connectionLost(),
    onStatus: (s) => {
      status.value = s
    },
  })
  conn.start()
  setInterval(() => {
    now.value = Date.now()
    store.tick()
  }, 1000)
}

export function retryNow(): void {
  conn?.retryNow()
}

function wsUrl(): string {
  return defaultWsUrl(location)
}

/**
 * authUrl is the login endpoint beside the websocket: /login next to /ws
 * (so ?ws=… during development points both at the same server).
 */
export function authUrl(ws: string, name: 'login' | 'logout'): string {
  const u = new URL(ws.replace(/^ws/i, 'http'))
  u.pathname = u.pathname.replace(/[^/]*$/, name)
  u.search = ''
  return u.toString()
}

/** AuthError is a failed login, with a message for the form. */
export class AuthError extends Error {}

async function post(name: 'login' | 'logout', body: unknown): Promise<AuthStatus> {
  let r: Response
  try {
    r = await fetch(authUrl(wsUrl(), name), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'include',
    })
  } catch {
    throw new AuthError('The server cannot be reached')
  }
  if (r.ok) return (await r.json().catch(() => ({}))) as AuthStatus
  if (r.status === 401) throw new AuthError('Wrong user or password')
  if (r.status === 429) {
    const after = r.headers.get('Retry-After')
    throw new AuthError(`Too many attempts, try again ${after ? `in ${after} s` : 'later'}`)
  }
  if (r.status === 404) throw new AuthError('This dashboard has no users to log in as')
  const e = (await r.json().catch(() => null)) as { error?: string } | null
  throw new AuthError(e?.error ? `Refused: ${e.error}` : `Refused (HTTP ${r.status})`)
}

/**
 * afterAuth shows the new role at once, then reconnects /ws: the server
 * fixes a socket's role at the handshake; the resync rebuilds the state.
 */
function afterAuth(s: Store, st: AuthStatus): void {
  s.setAuth(st)
  conn?.reconnect()
}

/** login logs in with POST /login and reconnects; throws AuthError. */
export async function login(s: Store, user: string, password: string): Promise<void> {
  afterAuth(s, await post('login', { user, password }))
}

/** logout ends the session with POST /logout and reconnects. */
export async function logout(s: Store): Promise<void> {
  afterAuth(s, await post('logout', {}))
}
