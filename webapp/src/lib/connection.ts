// The websocket to the dashboard service: connects, subscribes with
// {"type":"new","data":"client"}, and reconnects with exponential backoff
// (with jitter) when the socket drops. Every (re)connect starts a resync of
// the store.

import type { ClientFrame } from './protocol'

export type ConnState = 'connecting' | 'open' | 'waiting'

export interface ConnStatus {
  state: ConnState
  /** Failed attempts since the last good connection. */
  attempts: number
  /** When the next attempt starts (ms since epoch), in state "waiting". */
  retryAt: number
  /** Why the last socket closed, when the server said so. */
  lastClose: string
  url: string
}

export interface ConnectionOptions {
  url: string
  onOpen: () => void
  onMessage: (text: string) => void
  onClose: () => void
  onStatus: (s: ConnStatus) => void
  /** First retry delay, doubled per failure up to maxDelayMs. */
  baseDelayMs?: number
  maxDelayMs?: number
  WebSocketImpl?: typeof WebSocket
}

/** backoffDelay is the wait before attempt n (1-based) with ±20 % jitter. */
export function backoffDelay(attempt: number, base = 500, max = 15000, rand = Math.random): number {
  const d = Math.min(max, base * 2 ** Math.max(0, attempt - 1))
  return Math.round(d * (0.8 + 0.4 * rand()))
}

/**
 * defaultWsUrl is `/ws` on the page's own origin (ws: or wss: after the
 * page's scheme), unless the page's query has ?ws=URL (for development).
 * It always asks for goaiot's extensions (`ext=1`: hello, synced, results,
 * history, sites…; without it the server speaks exactly Pyaiot's protocol)
 * and for several messages per frame (`batch=1`: one JSON object a line,
 * see decodeFrame).
 */
export function defaultWsUrl(loc: { protocol: string; host: string; search: string }): string {
  const q = new URLSearchParams(loc.search).get('ws')
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:'
  if (q) {
    if (/^wss?:\/\//i.test(q)) return withExt(q)
    if (/^https?:\/\//i.test(q)) return withExt(q.replace(/^http/i, 'ws'))
    return withExt(q.startsWith('/') ? `${scheme}//${loc.host}${q}` : `${scheme}//${q}`)
  }
  return withExt(`${scheme}//${loc.host}/ws`)
}

/**
 * withExt adds `ext=1` and `batch=1` to a websocket URL's query unless it
 * has them.
 */
export function withExt(url: string): string {
  const u = new URL(url)
  if (!u.searchParams.has('ext')) u.searchParams.set('ext', '1')
  if (!u.searchParams.has('batch')) u.searchParams.set('batch', '1')
  return u.toString()
}

export class Connection {
  private ws: WebSocket | null = null
  private timer: ReturnType<typeof setTimeout> | null = null
  private stopped = false
  private status: ConnStatus

  constructor(private readonly opts: ConnectionOptions) {
    this.status = { state: 'connecting', attempts: 0, retryAt: 0, lastClose: '', url: opts.url }
  }

  start(): void {
    this.stopped = false
    this.open()
  }

  stop(): void {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.ws?.close(1000, 'page closed')
    this.ws = null
  }

  /** retryNow skips the wait before the next attempt. */
  retryNow(): void {
    if (this.status.state !== 'waiting') return
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    this.open()
  }

  /**
   * reconnect closes the socket and opens a new one at once, e.g. after a
   * login or logout: the server fixes a socket's role at the handshake.
   */
  reconnect(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    const old = this.ws
    this.ws = null
    if (old) {
      const wasOpen = old.readyState === 1
      old.close(1000, 'reconnecting')
      if (wasOpen) this.opts.onClose()
    }
    this.setStatus({ attempts: 0 })
    this.open()
  }

  send(frame: ClientFrame): boolean {
    if (!this.ws || this.ws.readyState !== 1) return false
    this.ws.send(JSON.stringify(frame))
    return true
  }

  private setStatus(p: Partial<ConnStatus>): void {
    this.status = { ...this.status, ...p }
    this.opts.onStatus(this.status)
  }

  private open(): void {
    const WS = this.opts.WebSocketImpl ?? WebSocket
    this.setStatus({ state: 'connecting', retryAt: 0 })
    let ws: WebSocket
    try {
      ws = new WS(this.opts.url)
    } catch (e) {
      this.setStatus({ lastClose: String(e) })
      this.scheduleRetry()
      return
    }
    this.ws = ws
    let opened = false
    ws.onopen = () => {
      opened = true
      this.setStatus({ state: 'open', attempts: 0, lastClose: '' })
      this.opts.onOpen()
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data === 'string') this.opts.onMessage(ev.data)
    }
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return
      this.ws = null
      const why = ev.reason ? `${ev.code} ${ev.reason}` : opened ? `closed (${ev.code})` : 'unreachable'
      this.setStatus({ lastClose: why })
      if (opened) this.opts.onClose()
      if (!this.stopped) this.scheduleRetry()
    }
  }

  private scheduleRetry(): void {
    const attempts = this.status.attempts + 1
    const delay = backoffDelay(attempts, this.opts.baseDelayMs, this.opts.maxDelayMs)
    this.setStatus({ state: 'waiting', attempts, retryAt: Date.now() + delay })
    this.timer = setTimeout(() => {
      this.timer = null
      this.open()
    }, delay)
  }
}
