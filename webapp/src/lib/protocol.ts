// Messages of the browser protocol at /ws, as described in
// services/dashboard/doc.go (Pyaiot-compatible, plus goaiot extensions).

export type NodeState = 'online' | 'offline' | 'reset'

export interface NewMsg {
  type: 'new'
  uid: string
  site?: string
  gateway?: string
  protocol?: string
  address?: string
  state?: NodeState
  ts?: number
}

export interface UpdateMsg {
  type: 'update'
  uid: string
  endpoint: string
  data: string
  ts?: number
}

export interface OutMsg { type: 'out'; uid: string; ts?: number }
export interface ResetMsg { type: 'reset'; uid: string; ts?: number }
export interface SyncedMsg { type: 'synced'; nodes?: number }

export interface HistoryPoint { ts: number; data: string }
export interface HistoryMsg {
  type: 'history'
  id?: string
  /** Set when the request failed (points is then empty). */
  error?: string
  uid: string
  endpoint: string
  points: HistoryPoint[]
}

export interface ResultMsg {
  type: 'result'
  id?: string
  uid?: string
  endpoint?: string
  ok: boolean
  error?: string
  /** 'queued': the command waits for its offline node; its outcome follows. */
  code?: string
  /** The queue's id of a queued command (matches OutcomeMsg.command). */
  command?: string
  /** A queued command's deadline, ms since the epoch. */
  until?: number
}

/** The final outcome of a queued command, sent to every goaiot page. */
export interface OutcomeMsg {
  type: 'outcome'
  command: string
  uid: string
  endpoint: string
  ok: boolean
  code: 'delivered' | 'failed' | 'expired' | 'replaced'
  error?: string
  ts?: number
}

export interface SiteMsg { type: 'site'; site: string; link: 'up' | 'down'; ts?: number }

export interface HelloMsg {
  type: 'hello'
  server?: string
  version?: string
  role?: 'viewer' | 'operator'
  /** The logged-in user (absent when anonymous). */
  user?: string
  /** True when the dashboard has users (a login form makes sense). */
  login?: boolean
}

export type ServerMsg =
  | NewMsg | UpdateMsg | OutMsg | ResetMsg | SyncedMsg
  | HistoryMsg | ResultMsg | OutcomeMsg | SiteMsg | HelloMsg

// Browser to server.
export interface SubscribeFrame { type: 'new'; data: 'client' }
export interface CommandFrame {
  type: 'update'
  /** queue_for (seconds): wait that long for an offline node (goaiot's queue). */
  data: { uid: string; endpoint: string; payload: string; queue_for?: number }
  id?: string
}
export interface HistoryFrame {
  type: 'history'
  data: { uid: string; endpoint: string; limit: number }
  id?: string
}
export type ClientFrame = SubscribeFrame | CommandFrame | HistoryFrame

/**
 * decode parses one text frame. It returns null for anything that is not a
 * JSON object with a string "type"; unknown types are passed through so the
 * store can ignore them (newer servers may add types).
 */
export function decode(text: string): ServerMsg | null {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    return null
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return null
  const t = (v as { type?: unknown }).type
  if (typeof t !== 'string') return null
  return v as ServerMsg
}

/**
 * decodeFrame parses one text frame of several messages, one JSON object a
 * line (what the server sends a page that asked for `batch=1`; a frame of
 * one message is one line). Lines that are not messages are left out.
 */
export function decodeFrame(text: string): ServerMsg[] {
  if (text.indexOf('\n') < 0) {
    const m = decode(text)
    return m ? [m] : []
  }
  const out: ServerMsg[] = []
  for (const line of text.split('\n')) {
    const m = decode(line)
    if (m) out.push(m)
  }
  return out
}
