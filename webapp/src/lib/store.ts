// The message store: the page's whole state, built only from server
// messages. Messages update plain records (the hot path: a fast sensor
// changes many times a second, and deep reactivity on every value would
// cost far more than the page needs). What Vue sees are shallowRefs the
// store triggers once per animation frame, when it reports what changed:
// one ref per node (its card), the node map (lists, counts, filters), the
// command list and the meta state (server, sync, site links). A component
// reads them like any ref; a value change re-renders one card.

import type {
  ClientFrame, HistoryMsg, NewMsg, NodeState, ResultMsg, OutcomeMsg, ServerMsg, UpdateMsg,
} from './protocol'
import { shallowRef, triggerRef, type ShallowRef } from 'vue'
import { decodeFrame } from './protocol'
import { Series } from './series'
import type { Imu, Position } from './values'
import { norm3, parseImu, parseNumeric, parsePosition } from './values'
import type { WidgetKind } from './widgets'
import { widgetFor } from './widgets'

export interface ResourceRec {
  readonly uid: string
  readonly name: string
  readonly kind: WidgetKind
  readonly label: string
  readonly order: number
  /** The value exactly as the node sent it. */
  value: string
  /** When the value was produced (ms since epoch). */
  ts: number
  /** For numeric values: the number and its unit ("21.5°C" → 21.5, "°C"). */
  num: number | null
  unit: string
  position: Position | null
  imu: Imu | null
  /** chart: the values; imu: the acceleration norm. */
  series: Series | null
  /** imu: gyro x, y, z. */
  series2: Series | null
}

export interface NodeRec {
  readonly uid: string
  site: string
  gateway: string
  protocol: string
  address: string
  state: NodeState
  /** Last time anything was heard of the node (ms since epoch). */
  lastSeen: number
  resources: Map<string, ResourceRec>
  /** Bumped whenever anything of the node changed. */
  version: number
}

/** pending: sent, no answer yet; queued: waits for its offline node. */
export type CommandStatus = 'pending' | 'queued' | 'ok' | 'error'

export interface CommandRec {
  readonly id: string
  readonly uid: string
  readonly endpoint: string
  readonly payload: string
  readonly sentAt: number
  status: CommandStatus
  error?: string
  doneAt?: number
  /** Seconds the command may wait for an offline node (0: it may not). */
  readonly queueFor: number
  /** Set once queued: the queue's command id and the deadline (ms). */
  queued?: { command: string; until: number }
}

export interface SiteRec {
  link: 'up' | 'down'
  ts: number
}

export type Role = 'viewer' | 'operator' | ''

export interface ServerInfo {
  server: string
  version: string
  /** What this browser may do; '' when the server did not say (Pyaiot: commands allowed). */
  role: Role
  /** The logged-in user; '' when anonymous. */
  user: string
  /** True when the server has users, i.e. when a login form makes sense. */
  login: boolean
}

/** The hint shown on command controls a viewer may not use. */
export const READ_ONLY_LOGIN = 'read-only: log in as an operator'
/** The hint when the server has no users to log in as. */
export const READ_ONLY = 'read-only: this dashboard accepts no commands from you'

/** AuthStatus is what GET/POST /login and POST /logout answer. */
export interface AuthStatus {
  user?: string
  role?: string
  login?: boolean
}

function asRole(r: unknown): Role {
  return r === 'viewer' || r === 'operator' ? r : ''
}

/** What changed since the last report. */
export interface Changes {
  /** uids of nodes whose card must be drawn again. */
  nodes: Set<string>
  /** Series keys (seriesKey(uid, endpoint)) that got new samples. */
  series: Set<string>
  /** Nodes appeared or went, or something the grouping, filters or counts use changed. */
  structure: boolean
  /** Commands changed state. */
  commands: boolean
  /** Sync state, server info or site links changed. */
  meta: boolean
}

/** Meta is the state the header and banners show, replaced whole on change. */
export interface Meta {
  readonly server: Readonly<ServerInfo>
  /** True once the snapshot of the current connection has arrived. */
  readonly synced: boolean
  readonly sites: ReadonlyMap<string, SiteRec>
  /** Why commands may not be sent ('' when they may): see Store.readOnly. */
  readonly readOnly: string
  /** The "queue if offline" checkbox and how long a command may wait (s). */
  readonly queueIfOffline: boolean
  readonly queueForSeconds: number
}

export interface StoreOptions {
  /** Sends a frame to the server; returns false when not connected. */
  send?: (frame: ClientFrame) => boolean | void
  /** Runs the report; defaults to requestAnimationFrame. */
  schedule?: (cb: () => void) => void
  now?: () => number
  /** Points kept per chart. */
  cap?: number
  /** Points kept per imu chart (imu values come fast). */
  imuCap?: number
  /**
   * History requests: at most this many unanswered at once (the server
   * allows 8 commands and history requests in flight per browser)…
   */
  historyInFlight?: number
  /** …and at most this many per second, in bursts of historyBurst (the
   * server closes a socket that sends more than 20 frames/s). */
  historyRate?: number
  historyBurst?: number
  /** Runs cb after ms; defaults to setTimeout. */
  timer?: (cb: () => void, ms: number) => void
  /** A command with no result after this long is reported as timed out. */
  commandTimeoutMs?: number
  /**
   * The node map (nodesRef: grouping, sorting, counts over every node) is
   * triggered at most this often (ms; 0: every frame)…
   */
  structureEveryMs?: number
  /** …and this often while a snapshot arrives, so that 10 000 nodes are read, not regrouped, each frame. */
  snapshotStructureEveryMs?: number
}

export function seriesKey(uid: string, endpoint: string): string {
  return uid + '\u0000' + endpoint
}

const defaultSchedule = (cb: () => void): void => {
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => cb())
  else setTimeout(cb, 16)
}

export class Store {
  readonly nodes = new Map<string, NodeRec>()
  readonly commands: CommandRec[] = []
  /** The "queue if offline" checkbox: commands may wait for offline nodes. */
  queueIfOffline = false
  /** How long a queued command may wait, in seconds (default 1 h). */
  queueForSeconds = 3600
  readonly sites = new Map<string, SiteRec>()
  server: ServerInfo = { server: '', version: '', role: '', user: '', login: false }
  /** True once the snapshot of the current connection has arrived. */
  synced = false

  readonly cap: number
  readonly imuCap: number
  private readonly sendFrame: (frame: ClientFrame) => boolean | void
  private readonly schedule: (cb: () => void) => void
  private readonly now: () => number
  private readonly historyInFlight: number
  private readonly historyRate: number
  private readonly historyBurst: number
  private readonly timer: (cb: () => void, ms: number) => void
  private readonly commandTimeoutMs: number
  private readonly structureEveryMs: number
  private readonly snapshotStructureEveryMs: number
  private structureAt = -Infinity
  private structureTimer = false

  /** The node map, triggered when nodes come, go or change what lists and filters use. */
  readonly nodesRef: ShallowRef<ReadonlyMap<string, NodeRec>> = shallowRef(this.nodes)
  /** The commands sent from this page (the newest 50), triggered when one changes. */
  readonly commandsRef: ShallowRef<readonly CommandRec[]> = shallowRef(this.commands)
  /** Server info, sync state and site links, replaced when one changes. */
  readonly metaRef: ShallowRef<Meta> = shallowRef(this.meta())
  /** One ref per node that a component asked for (nodeRef); gone with its node. */
  private nodeRefs = new Map<string, ShallowRef<NodeRec | undefined>>()

  private listeners = new Set<(c: Changes) => void>()
  private seriesListeners = new Map<string, Set<() => void>>()
  private pending: Changes = emptyChanges()
  private scheduled = false
  private nextCommand = 1

  private historyAsked = new Set<string>()
  private historyQueue: string[] = []
  /** Unanswered history requests: id → key and when it was sent. */
  private historyPending = new Map<string, { key: string; sentAt: number }>()
  private nextHistory = 1
  private tokens = 0
  private tokensAt = 0
  private timerSet = false

  // During a resync: the nodes and resources the new snapshot has sent.
  private resyncing = false
  private seenNodes = new Set<string>()
  private seenResources = new Set<string>()

  constructor(opts: StoreOptions = {}) {
    this.sendFrame = opts.send ?? (() => false)
    this.schedule = opts.schedule ?? defaultSchedule
    this.now = opts.now ?? Date.now
    this.cap = opts.cap ?? 240
    this.imuCap = opts.imuCap ?? 150
    this.historyInFlight = opts.historyInFlight ?? 4
    this.historyRate = opts.historyRate ?? 8
    this.historyBurst = opts.historyBurst ?? 16
    this.tokens = this.historyBurst
    this.timer = opts.timer ?? ((cb, ms) => void setTimeout(cb, ms))
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 20000
    this.structureEveryMs = opts.structureEveryMs ?? 0
    this.snapshotStructureEveryMs = opts.snapshotStructureEveryMs ?? this.structureEveryMs
  }

  // ---- subscriptions ------------------------------------------------------

  /** subscribe gets a report of what changed, at most once per frame. */
  subscribe(fn: (c: Changes) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** onSeries calls fn after new samples for one chart resource arrived. */
  onSeries(uid: string, endpoint: string, fn: () => void): () => void {
    const key = seriesKey(uid, endpoint)
    let set = this.seriesListeners.get(key)
    if (!set) this.seriesListeners.set(key, (set = new Set()))
    set.add(fn)
    return () => {
      set!.delete(fn)
      if (set!.size === 0) this.seriesListeners.delete(key)
    }
  }

  /**
   * nodeRef is the reactive view of one node, for its card: triggered once
   * per frame when the node changed, undefined once it is gone. Refs exist
   * only for nodes the store holds, so the map stays as bounded as nodes.
   */
  nodeRef(uid: string): ShallowRef<NodeRec | undefined> {
    let r = this.nodeRefs.get(uid)
    if (r) return r
    const n = this.nodes.get(uid)
    r = shallowRef(n)
    if (n) this.nodeRefs.set(uid, r)
    return r
  }

  /** flush reports the pending changes now (tests call it; the page waits for a frame). */
  flush(): void {
    this.scheduled = false
    this.sendHistoryRequests()
    const c = this.pending
    this.pending = emptyChanges()
    if (c.structure && !this.structureDue()) {
      c.structure = false
      this.pending.structure = true
    }
    if (c.nodes.size || c.series.size || c.structure || c.commands || c.meta) {
      this.triggerViews(c)
      for (const fn of this.listeners) fn(c)
      for (const key of c.series) {
        const set = this.seriesListeners.get(key)
        if (set) for (const fn of set) fn()
      }
    }
  }

  // structureDue tells whether the node map may move now; if not, a timer
  // wakes the store when it may.
  private structureDue(): boolean {
    const every = this.resyncing ? this.snapshotStructureEveryMs : this.structureEveryMs
    const wait = this.structureAt + every - this.now()
    if (wait <= 0) {
      this.structureAt = this.now()
      return true
    }
    if (!this.structureTimer) {
      this.structureTimer = true
      this.timer(() => {
        this.structureTimer = false
        this.wake()
      }, wait)
    }
    return false
  }

  // triggerViews moves the refs Vue components read, once per report.
  private triggerViews(c: Changes): void {
    for (const uid of c.nodes) {
      const r = this.nodeRefs.get(uid)
      if (!r) continue
      const n = this.nodes.get(uid)
      if (!n) this.nodeRefs.delete(uid)
      if (r.value === n) triggerRef(r)
      else r.value = n
    }
    if (c.structure) triggerRef(this.nodesRef)
    if (c.commands) triggerRef(this.commandsRef)
    if (c.meta) this.metaRef.value = this.meta()
  }

  private meta(): Meta {
    return {
      server: { ...this.server },
      synced: this.synced,
      sites: new Map(this.sites),
      readOnly: this.readOnly,
      queueIfOffline: this.queueIfOffline,
      queueForSeconds: this.queueForSeconds,
    }
  }

  private wake(): void {
    if (this.scheduled) return
    this.scheduled = true
    this.schedule(() => this.flush())
  }

  private touch(n: NodeRec, structure = false): void {
    n.version++
    this.pending.nodes.add(n.uid)
    if (structure) this.pending.structure = true
    this.wake()
  }

  // ---- connection life ----------------------------------------------------

  /**
   * beginResync is called when a connection opens, just before the page
   * sends {"type":"new","data":"client"}. The snapshot that follows
   * rebuilds the state: on "synced", nodes and values it did not mention
   * are dropped, and chart history is asked again to fill the gap.
   */
  beginResync(): void {
    this.resyncing = true
    this.synced = false
    this.seenNodes.clear()
    this.seenResources.clear()
    this.historyAsked.clear()
    this.historyQueue.length = 0
    this.historyPending.clear()
    this.pending.meta = true
    this.wake()
  }

  /** connectionLost fails the commands still waiting for a result. */
  connectionLost(): void {
    this.synced = false
    this.historyPending.clear()
    for (const c of this.commands) {
      if (c.status === 'pending') this.finish(c, false, 'connection lost')
    }
    this.pending.meta = true
    this.wake()
  }

  // ---- incoming -----------------------------------------------------------

  /**
   * applyText decodes and applies one text frame, which may hold several
   * messages, a line each; false if it held no message.
   */
  applyText(text: string): boolean {
    const ms = decodeFrame(text)
    for (const m of ms) this.apply(m)
    return ms.length > 0
  }

  apply(m: ServerMsg): void {
    switch (m.type) {
      case 'new':
        if (typeof m.uid === 'string' && m.uid) this.onNew(m)
        break
      case 'update':
        if (typeof m.uid === 'string' && m.uid && typeof m.endpoint === 'string') this.onUpdate(m)
        break
      case 'out': {
        const n = this.nodes.get(m.uid)
        if (!n) break
        if (this.resyncing) this.seenNodes.add(n.uid)
        n.state = 'offline'
        n.lastSeen = Math.max(n.lastSeen, m.ts ?? this.now())
        this.touch(n, true)
        break
      }
      case 'reset': {
        const n = this.nodes.get(m.uid)
        if (!n) break
        for (const name of n.resources.keys()) {
          this.historyAsked.delete(seriesKey(n.uid, name))
          this.pending.series.add(seriesKey(n.uid, name))
        }
        n.resources.clear()
        n.state = 'reset'
        n.lastSeen = Math.max(n.lastSeen, m.ts ?? this.now())
        this.touch(n, true)
        break
      }
      case 'synced':
        this.onSynced()
        break
      case 'history':
        this.onHistory(m)
        break
      case 'result':
        this.onResult(m)
        break
      case 'outcome':
        this.onOutcome(m)
        break
      case 'site':
        if (typeof m.site === 'string') {
          this.sites.set(m.site, { link: m.link === 'down' ? 'down' : 'up', ts: m.ts ?? this.now() })
          this.pending.meta = true
          this.pending.structure = true
          this.wake()
        }
        break
      case 'hello':
        this.server = {
          server: m.server ?? '',
          version: m.version ?? '',
          role: asRole(m.role),
          user: typeof m.user === 'string' ? m.user : '',
          login: m.login === true,
        }
        this.pending.meta = true
        this.wake()
        break
      default:
        // Unknown types come from newer servers; they are ignored.
        break
    }
  }

  private onNew(m: NewMsg): void {
    let n = this.nodes.get(m.uid)
    const ts = m.ts ?? this.now()
    if (this.resyncing) this.seenNodes.add(m.uid)
    if (!n) {
      n = {
        uid: m.uid,
        site: m.site ?? '',
        gateway: m.gateway ?? '',
        protocol: m.protocol ?? '',
        address: m.address ?? '',
        state: m.state ?? 'online',
        lastSeen: ts,
        resources: new Map(),
        version: 0,
      }
      this.nodes.set(m.uid, n)
      this.touch(n, true)
      return
    }
    if (m.site !== undefined) n.site = m.site
    if (m.gateway !== undefined) n.gateway = m.gateway
    if (m.protocol !== undefined) n.protocol = m.protocol
    if (m.address !== undefined) n.address = m.address
    n.state = m.state ?? 'online'
    n.lastSeen = Math.max(n.lastSeen, ts)
    this.touch(n, true)
  }

  private onUpdate(m: UpdateMsg): void {
    let n = this.nodes.get(m.uid)
    if (!n) {
      // The protocol sends "new" first; a value for an unknown node still
      // shows up rather than being lost.
      this.onNew({ type: 'new', uid: m.uid, ts: m.ts })
      n = this.nodes.get(m.uid)!
    }
    const name = m.endpoint.replace(/^\/+/, '')
    if (!name) return
    const value = typeof m.data === 'string' ? m.data : JSON.stringify(m.data ?? '')
    const ts = m.ts ?? this.now()
    let structure = false
    if (this.resyncing) {
      this.seenNodes.add(n.uid)
      this.seenResources.add(seriesKey(n.uid, name))
    }
    let r = n.resources.get(name)
    if (!r) {
      const spec = widgetFor(name)
      r = {
        uid: n.uid,
        name,
        kind: spec.kind,
        label: spec.label,
        order: spec.order,
        value,
        ts,
        num: null,
        unit: '',
        position: null,
        imu: null,
        series: spec.kind === 'chart' ? new Series(1, this.cap) : spec.kind === 'imu' ? new Series(1, this.imuCap) : null,
        series2: spec.kind === 'imu' ? new Series(3, this.imuCap) : null,
      }
      n.resources.set(name, r)
      structure = true
    }
    // Names, boards and the like feed search and sorting; positions the map.
    if ((r.kind === 'info' || r.kind === 'position') && r.value !== value) structure = true
    r.value = value
    r.ts = ts
    this.parseInto(r, value, ts)
    if (n.state !== 'online') {
      n.state = 'online'
      structure = true
    }
    n.lastSeen = Math.max(n.lastSeen, ts)
    this.settleCommands(n.uid, name, value)
    if (r.series) {
      this.pending.series.add(seriesKey(n.uid, name))
      this.askHistory(n.uid, name)
    }
    this.touch(n, structure)
  }

  private parseInto(r: ResourceRec, value: string, ts: number): void {
    switch (r.kind) {
      case 'chart': {
        const p = parseNumeric(value)
        r.num = p ? p.num : null
        if (p && p.unit) r.unit = p.unit
        if (p) r.series!.push(ts, [p.num])
        break
      }
      case 'imu': {
        const imu = parseImu(value)
        r.imu = imu
        if (imu?.acc) r.series!.push(ts, [norm3(imu.acc)])
        if (imu?.gyro) r.series2!.push(ts, imu.gyro)
        break
      }
      case 'position':
        r.position = parsePosition(value)
        break
      case 'progress': {
        const p = parseNumeric(value)
        r.num = p ? p.num : null
        r.unit = p?.unit ?? ''
        break
      }
      default:
        break
    }
  }

  private onSynced(): void {
    if (this.resyncing) {
      for (const [uid, n] of this.nodes) {
        if (!this.seenNodes.has(uid)) {
          this.nodes.delete(uid)
          this.pending.nodes.add(uid)
          continue
        }
        let dropped = false
        for (const name of [...n.resources.keys()]) {
          if (!this.seenResources.has(seriesKey(uid, name))) {
            n.resources.delete(name)
            dropped = true
          }
        }
        if (dropped) this.touch(n, true)
      }
      this.resyncing = false
      this.seenNodes.clear()
      this.seenResources.clear()
    }
    this.synced = true
    this.pending.structure = true
    this.pending.meta = true
    this.wake()
  }

  private askHistory(uid: string, name: string): void {
    const key = seriesKey(uid, name)
    if (this.historyAsked.has(key)) return
    this.historyAsked.add(key)
    this.historyQueue.push(key)
    this.wake()
  }

  /** prioritizeHistory moves a chart that came into view to the front of the queue. */
  prioritizeHistory(uid: string, endpoint: string): void {
    const key = seriesKey(uid, endpoint)
    const i = this.historyQueue.indexOf(key)
    if (i > 0) {
      this.historyQueue.splice(i, 1)
      this.historyQueue.unshift(key)
    }
  }

  // Sends queued history requests within the in-flight and rate limits;
  // what is left goes out as answers come back and tokens refill.
  private sendHistoryRequests(): void {
    if (this.historyQueue.length === 0) return
    const now = this.now()
    this.tokens = Math.min(this.historyBurst, this.tokens + ((now - this.tokensAt) / 1000) * this.historyRate)
    this.tokensAt = now
    while (this.historyQueue.length && this.historyPending.size < this.historyInFlight && this.tokens >= 1) {
      const key = this.historyQueue.shift()!
      const [uid, endpoint] = key.split('\u0000')
      const r = this.nodes.get(uid)?.resources.get(endpoint)
      if (!r) continue
      const limit = r.kind === 'imu' ? this.imuCap : this.cap
      const id = `h${this.nextHistory++}`
      if (this.sendFrame({ type: 'history', data: { uid, endpoint, limit }, id }) === false) {
        // Not connected: the next connection's resync asks again.
        this.historyQueue.length = 0
        return
      }
      this.tokens -= 1
      this.historyPending.set(id, { key, sentAt: now })
    }
    if (this.historyQueue.length && this.historyPending.size < this.historyInFlight && !this.timerSet) {
      // Out of tokens: come back when one has refilled.
      this.timerSet = true
      this.timer(() => {
        this.timerSet = false
        this.wake()
      }, Math.ceil(1000 / this.historyRate))
    }
  }

  private onHistory(m: HistoryMsg): void {
    const key = seriesKey(m.uid, typeof m.endpoint === 'string' ? m.endpoint.replace(/^\/+/, '') : '')
    let id = typeof m.id === 'string' && this.historyPending.has(m.id) ? m.id : ''
    if (!id) {
      for (const [k, v] of this.historyPending) if (v.key === key) id = k
    }
    if (id) this.historyPending.delete(id)
    if (this.historyQueue.length) this.wake()
    if (m.error) {
      // "busy": over the server's in-flight limit; ask again later.
      if (/^busy/i.test(m.error) && id && !this.historyQueue.includes(key)) this.historyQueue.push(key)
      return
    }
    const n = this.nodes.get(m.uid)
    const r = n?.resources.get(typeof m.endpoint === 'string' ? m.endpoint.replace(/^\/+/, '') : '')
    if (!n || !r || !r.series || !Array.isArray(m.points)) return
    if (r.kind === 'chart') {
      const samples: Array<{ tsMs: number; values: number[] }> = []
      for (const p of m.points) {
        const v = parseNumeric(p?.data)
        if (v && typeof p.ts === 'number') {
          samples.push({ tsMs: p.ts, values: [v.num] })
          if (!r.unit && v.unit) r.unit = v.unit
        }
      }
      r.series.merge(samples)
    } else if (r.kind === 'imu') {
      const acc: Array<{ tsMs: number; values: number[] }> = []
      const gyro: Array<{ tsMs: number; values: number[] }> = []
      for (const p of m.points) {
        if (typeof p?.ts !== 'number' || typeof p.data !== 'string') continue
        const v = parseImu(p.data)
        if (v?.acc) acc.push({ tsMs: p.ts, values: [norm3(v.acc)] })
        if (v?.gyro) gyro.push({ tsMs: p.ts, values: v.gyro })
      }
      r.series.merge(acc)
      r.series2?.merge(gyro)
    }
    this.pending.series.add(seriesKey(n.uid, r.name))
    this.touch(n)
  }

  // ---- role ---------------------------------------------------------------

  /**
   * readOnly is why this browser may not send commands ('' when it may):
   * the server said it is a viewer. A server that says nothing (Pyaiot)
   * takes commands.
   */
  get readOnly(): string {
    if (this.server.role !== 'viewer') return ''
    return this.server.login ? READ_ONLY_LOGIN : READ_ONLY
  }

  /** canCommand is true when command controls should be offered. */
  get canCommand(): boolean {
    return this.readOnly === ''
  }

  /**
   * setAuth applies the answer of /login or /logout at once, before the
   * page reconnects /ws (whose hello then confirms the role).
   */
  setAuth(a: AuthStatus): void {
    this.server = {
      ...this.server,
      role: asRole(a.role),
      user: typeof a.user === 'string' ? a.user : '',
      login: a.login === true,
    }
    this.pending.meta = true
    this.wake()
  }

  // ---- commands -----------------------------------------------------------

  /**
   * command sends {"type":"update","data":{uid,endpoint,payload},"id"} and
   * tracks its outcome: the "result" message, or else a value update equal
   * to the payload (servers without results), or a timeout.
   */
  command(uid: string, endpoint: string, payload: string): CommandRec {
    const queueFor = this.queueIfOffline ? this.queueForSeconds : 0
    const c: CommandRec = {
      id: `c${this.nextCommand++}`,
      uid,
      endpoint,
      payload,
      sentAt: this.now(),
      status: 'pending',
      queueFor,
    }
    this.commands.push(c)
    if (this.commands.length > 50) this.commands.splice(0, this.commands.length - 50)
    const denied = this.readOnly
    if (denied) {
      // The server would refuse it ("forbidden: …"): do not send it at all.
      this.finish(c, false, `forbidden: ${denied}`)
    } else {
      const data = queueFor > 0 ? { uid, endpoint, payload, queue_for: queueFor } : { uid, endpoint, payload }
      const sent = this.sendFrame({ type: 'update', data, id: c.id })
      if (sent === false) this.finish(c, false, 'not connected')
    }
    this.pending.commands = true
    const n = this.nodes.get(uid)
    if (n) this.touch(n)
    else this.wake()
    return c
  }

  /** pendingCommand is the newest unfinished command for a resource (sent or queued). */
  pendingCommand(uid: string, endpoint: string): CommandRec | undefined {
    return pendingCommand(this.commands, uid, endpoint)
  }

  /**
   * setQueueIfOffline: commands sent from now on may wait up to seconds for
   * an offline node (the "queue if offline" checkbox); off, they may not.
   */
  setQueueIfOffline(on: boolean, seconds = this.queueForSeconds): void {
    this.queueIfOffline = on
    if (seconds > 0) this.queueForSeconds = Math.round(seconds)
    this.pending.commands = true
    this.pending.meta = true
    this.wake()
  }

  /** lastCommand is the newest command for a resource, finished or not. */
  lastCommand(uid: string, endpoint: string): CommandRec | undefined {
    return lastCommand(this.commands, uid, endpoint)
  }

  private onResult(m: ResultMsg): void {
    const c = this.commands.find((x) => x.id === m.id)
    if (!c || c.status !== 'pending') return
    if (m.ok === true && m.code === 'queued' && typeof m.command === 'string') {
      c.status = 'queued'
      c.queued = { command: m.command, until: typeof m.until === 'number' ? m.until : this.now() + c.queueFor * 1000 }
      this.pending.commands = true
      this.wakeFor(c.uid)
      return
    }
    this.finish(c, m.ok === true, m.ok ? undefined : m.error || 'refused')
  }

  /** onOutcome settles the queued command the outcome is about (if this page sent it). */
  private onOutcome(m: OutcomeMsg): void {
    const c = this.commands.find((x) => x.status === 'queued' && x.queued?.command === m.command)
    if (!c) return
    if (m.ok === true) this.finish(c, true)
    else this.finish(c, false, m.error || m.code || 'failed')
  }

  private wakeFor(uid: string): void {
    const n = this.nodes.get(uid)
    if (n) this.touch(n)
    else this.wake()
  }

  private settleCommands(uid: string, endpoint: string, value: string): void {
    for (const c of this.commands) {
      if (c.status === 'pending' && c.uid === uid && c.endpoint === endpoint && c.payload.trim() === value.trim()) {
        this.finish(c, true)
      }
    }
  }

  private finish(c: CommandRec, ok: boolean, error?: string): void {
    c.status = ok ? 'ok' : 'error'
    c.error = ok ? undefined : error
    c.doneAt = this.now()
    this.pending.commands = true
    const n = this.nodes.get(c.uid)
    if (n) this.touch(n)
    else this.wake()
  }

  /** tick times out commands that never got an answer; the page calls it every second. */
  tick(): void {
    const now = this.now()
    for (const [id, p] of this.historyPending) {
      if (now - p.sentAt > this.commandTimeoutMs) {
        this.historyPending.delete(id)
        this.wake()
      }
    }
    for (const c of this.commands) {
      if (c.status === 'pending' && now - c.sentAt > this.commandTimeoutMs) {
        this.finish(c, false, 'timeout')
      }
      // The outcome may have been missed (connection lost): past its
      // deadline and a grace period, a queued command is reported expired.
      if (c.status === 'queued' && c.queued && now > c.queued.until + this.commandTimeoutMs) {
        this.finish(c, false, 'expired: no outcome by the deadline')
      }
    }
  }
}

function emptyChanges(): Changes {
  return { nodes: new Set(), series: new Set(), structure: false, commands: false, meta: false }
}

/** lastCommand is the newest command of the list for a resource, finished or not. */
export function lastCommand(commands: readonly CommandRec[], uid: string, endpoint: string): CommandRec | undefined {
  for (let i = commands.length - 1; i >= 0; i--) {
    const c = commands[i]
    if (c.uid === uid && c.endpoint === endpoint) return c
  }
  return undefined
}

/** pendingCommand is the newest command for a resource if it is unfinished (sent or queued). */
export function pendingCommand(commands: readonly CommandRec[], uid: string, endpoint: string): CommandRec | undefined {
  const c = lastCommand(commands, uid, endpoint)
  return c && (c.status === 'pending' || c.status === 'queued') ? c : undefined
}
