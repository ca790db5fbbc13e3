import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Connection, type ConnStatus } from '../src/lib/connection'

// A stand-in for the browser's WebSocket class: the unit under test is the
// reconnect logic, not the network (the e2e tests cover the real socket).
class FakeSocket {
  static all: FakeSocket[] = []
  readyState = 0
  sent: string[] = []
  onopen: (() => void) | null = null
  onmessage: ((e: { data: unknown }) => void) | null = null
  onclose: ((e: { code: number; reason: string }) => void) | null = null
  constructor(readonly url: string) {
    FakeSocket.all.push(this)
  }
  send(s: string) {
    this.sent.push(s)
  }
  close(code = 1000, reason = '') {
    this.readyState = 3
    this.onclose?.({ code, reason })
  }
  open() {
    this.readyState = 1
    this.onopen?.()
  }
}

describe('Connection', () => {
  let statuses: ConnStatus[]
  let opened: number
  let closed: number
  let messages: string[]
  let conn: Connection

  beforeEach(() => {
    vi.useFakeTimers()
    vi.spyOn(Math, 'random').mockReturnValue(0.5)
    FakeSocket.all = []
    statuses = []
    opened = 0
    closed = 0
    messages = []
    conn = new Connection({
      url: 'ws://h/ws',
      onOpen: () => opened++,
      onClose: () => closed++,
      onMessage: (t) => messages.push(t),
      onStatus: (s) => statuses.push(s),
      WebSocketImpl: FakeSocket as unknown as typeof WebSocket,
    })
  })
  afterEach(() => {
    conn.stop()
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  it('opens, passes text frames on, and sends only while open', () => {
    conn.start()
    expect(statuses.at(-1)!.state).toBe('connecting')
    expect(conn.send({ type: 'new', data: 'client' })).toBe(false)
    FakeSocket.all[0].open()
    expect(opened).toBe(1)
    expect(statuses.at(-1)!.state).toBe('open')
    expect(conn.send({ type: 'new', data: 'client' })).toBe(true)
    expect(FakeSocket.all[0].sent).toEqual(['{"type":"new","data":"client"}'])
    FakeSocket.all[0].onmessage!({ data: '{"type":"synced"}' })
    FakeSocket.all[0].onmessage!({ data: new ArrayBuffer(2) })
    expect(messages).toEqual(['{"type":"synced"}'])
  })

  it('reconnects with a growing delay, and resets it after a good connection', () => {
    conn.start()
    FakeSocket.all[0].close(1006)
    expect(statuses.at(-1)).toMatchObject({ state: 'waiting', attempts: 1, lastClose: 'unreachable' })
    vi.advanceTimersByTime(499)
    expect(FakeSocket.all.length).toBe(1)
    vi.advanceTimersByTime(1)
    expect(FakeSocket.all.length).toBe(2)
    FakeSocket.all[1].close(1006)
    vi.advanceTimersByTime(999)
    expect(FakeSocket.all.length).toBe(2)
    vi.advanceTimersByTime(1)
    expect(FakeSocket.all.length).toBe(3)
    FakeSocket.all[2].open()
    expect(statuses.at(-1)!.attempts).toBe(0)
    FakeSocket.all[2].close(1013, 'too slow')
    expect(closed).toBe(1)
    expect(statuses.at(-1)).toMatchObject({ state: 'waiting', attempts: 1, lastClose: '1013 too slow' })
    vi.advanceTimersByTime(500)
    expect(FakeSocket.all.length).toBe(4)
  })

  it('retries at once on request and stops for good', () => {
    conn.start()
    FakeSocket.all[0].close(1006)
    conn.retryNow()
    expect(FakeSocket.all.length).toBe(2)
    conn.stop()
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.all.length).toBe(2)
  })

  it('reconnects at once on request (login, logout), from open or waiting', () => {
    conn.start()
    FakeSocket.all[0].open()
    conn.reconnect()
    expect(closed).toBe(1)
    expect(FakeSocket.all.length).toBe(2)
    expect(FakeSocket.all[0].readyState).toBe(3)
    expect(statuses.at(-1)!.state).toBe('connecting')
    FakeSocket.all[1].open()
    expect(opened).toBe(2)
    // The old socket's late close does not schedule another attempt.
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.all.length).toBe(2)
    FakeSocket.all[1].close(1006)
    expect(statuses.at(-1)!.state).toBe('waiting')
    conn.reconnect()
    expect(FakeSocket.all.length).toBe(3)
    vi.advanceTimersByTime(60_000)
    expect(FakeSocket.all.length).toBe(3)
  })
})
