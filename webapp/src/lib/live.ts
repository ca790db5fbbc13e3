// The bridge between the plain store and Vue: one connection, one store,
// and a few counters that Vue components depend on. A card depends on its
// node's counter only, so a value change re-renders one card; the list of
// cards depends on the structure counter, which moves only when nodes come,
// go or change state.

import { reactive, ref, shallowRef, type Ref } from 'vue'
import { Connection, defaultWsUrl, type ConnStatus } from './connection'
import { Store } from './store'

let conn: Connection | null = null

export const store = new Store({ send: (f) => conn?.send(f) ?? false })

export const structureVersion = ref(0)
export const commandsVersion = ref(0)
export const metaVersion = ref(0)
/** Ticks every second: relative times and timeouts follow it. */
export const now = ref(Date.now())

const nodeVersions = new Map<string, Ref<number>>()

/** nodeVersion is the counter a node card depends on. */
export function nodeVersion(uid: string): Ref<number> {
  let r = nodeVersions.get(uid)
  if (!r) nodeVersions.set(uid, (r = ref(0)))
  return r
}

store.subscribe((c) => {
  for (const uid of c.nodes) {
    const r = nodeVersions.get(uid)
    if (r) r.value++
    if (!store.nodes.has(uid)) nodeVersions.delete(uid)
  }
  if (c.structure) structureVersion.value++
  if (c.commands) commandsVersion.value++
  if (c.meta) metaVersion.value++
})

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
    url: defaultWsUrl(location),
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
