import { beforeEach, describe, expect, it } from 'vitest'
import { computed } from 'vue'
import type { ClientFrame, ServerMsg } from '../src/lib/protocol'
import { READ_ONLY, READ_ONLY_LOGIN, Store, seriesKey, type Changes } from '../src/lib/store'

function harness(opts: { connected?: boolean; cap?: number; historyInFlight?: number; historyRate?: number; historyBurst?: number } = {}) {
  const sent: ClientFrame[] = []
  const frames: Array<() => void> = []
  const timers: Array<() => void> = []
  const reports: Changes[] = []
  let clock = 1_700_000_000_000
  const store = new Store({
    send: (f) => {
      if (opts.connected === false) return false
      sent.push(f)
      return true
    },
    schedule: (cb) => frames.push(cb),
    now: () => clock,
    cap: opts.cap ?? 240,
    historyInFlight: opts.historyInFlight ?? 100,
    historyRate: opts.historyRate ?? 1000,
    historyBurst: opts.historyBurst ?? 1000,
    timer: (cb) => timers.push(cb),
  })
  store.subscribe((c) => reports.push(c))
  const feed = (...msgs: ServerMsg[]) => msgs.forEach((m) => store.apply(m))
  const frame = () => {
    const cbs = frames.splice(0)
    cbs.forEach((cb) => cb())
  }
  const history = () => sent.filter((f) => f.type === 'history')
  const runTimers = () => timers.splice(0).forEach((cb) => cb())
  return {
    store, sent, reports, feed, frame, frames, history, timers, runTimers,
    advance: (ms: number) => { clock += ms },
    get clock() { return clock },
  }
}

const T = 1_700_000_000_000

function newNode(uid: string, extra: Partial<Extract<ServerMsg, { type: 'new' }>> = {}): ServerMsg {
  return { type: 'new', uid, site: 'lab', gateway: 'coap-1', protocol: 'coap', address: 'fd00::1', state: 'online', ts: T, ...extra }
}
function upd(uid: string, endpoint: string, data: string, ts = T): ServerMsg {
  return { type: 'update', uid, endpoint, data, ts }
}

describe('Store: node life', () => {
  let h: ReturnType<typeof harness>
  beforeEach(() => { h = harness() })

  it('applies new with its extension fields', () => {
    h.feed(newNode('n1'))
    const n = h.store.nodes.get('n1')!
    expect(n).toMatchObject({ uid: 'n1', site: 'lab', gateway: 'coap-1', protocol: 'coap', address: 'fd00::1', state: 'online', lastSeen: T })
    expect(n.resources.size).toBe(0)
  })

  it('accepts Pyaiot-style new without extensions', () => {
    h.feed({ type: 'new', uid: 'p1' } as ServerMsg)
    expect(h.store.nodes.get('p1')).toMatchObject({ site: '', gateway: '', state: 'online', lastSeen: h.clock })
  })

  it('applies update: raw value, parsed number and unit, widget kind', () => {
    h.feed(newNode('n1'), upd('n1', 'temperature', '21.5°C', T + 1000))
    const r = h.store.nodes.get('n1')!.resources.get('temperature')!
    expect(r).toMatchObject({ value: '21.5°C', num: 21.5, unit: '°C', kind: 'chart', ts: T + 1000 })
    expect(r.series!.data()).toEqual([[(T + 1000) / 1000], [21.5]])
    expect(h.store.nodes.get('n1')!.lastSeen).toBe(T + 1000)
  })

  it('strips a leading slash of the endpoint', () => {
    h.feed(newNode('n1'), upd('n1', '/led', '1'))
    expect(h.store.nodes.get('n1')!.resources.has('led')).toBe(true)
  })

  it('keeps the unit when a later value has none and parses position and imu', () => {
    h.feed(newNode('n1'), upd('n1', 'pressure', '1013.25hPa'), upd('n1', 'pressure', '1013', T + 5))
    const n = h.store.nodes.get('n1')!
    expect(n.resources.get('pressure')).toMatchObject({ num: 1013, unit: 'hPa' })
    h.feed(upd('n1', 'position', '{"lat":48.71,"lng":2.20}'))
    expect(n.resources.get('position')!.position).toEqual({ lat: 48.71, lng: 2.2 })
    h.feed(upd('n1', 'imu', '[{"type":"acc","values":[3,4,0]},{"type":"gyro","values":[1,2,3]}]'))
    const imu = n.resources.get('imu')!
    expect(imu.series!.last()).toBe(5)
    expect(imu.series2!.data()).toEqual([[T / 1000], [1], [2], [3]])
  })

  it('keeps a non-numeric chart value as text without plotting it', () => {
    h.feed(newNode('n1'), upd('n1', 'temperature', 'sensor error'))
    const r = h.store.nodes.get('n1')!.resources.get('temperature')!
    expect(r.num).toBeNull()
    expect(r.value).toBe('sensor error')
    expect(r.series!.length).toBe(0)
  })

  it('applies out: the node stays, greyed out, with its values', () => {
    h.feed(newNode('n1'), upd('n1', 'temperature', '21.5°C'), { type: 'out', uid: 'n1', ts: T + 9000 })
    const n = h.store.nodes.get('n1')!
    expect(n.state).toBe('offline')
    expect(n.lastSeen).toBe(T + 9000)
    expect(n.resources.get('temperature')!.value).toBe('21.5°C')
  })

  it('brings an offline node back online on a new value', () => {
    h.feed(newNode('n1'), { type: 'out', uid: 'n1' }, upd('n1', 'temperature', '22°C', T + 20))
    expect(h.store.nodes.get('n1')!.state).toBe('online')
  })

  it('applies reset: values forgotten, state reset, then rediscovered', () => {
    h.feed(newNode('n1'), upd('n1', 'temperature', '21.5°C'), upd('n1', 'led', '1'))
    h.feed({ type: 'reset', uid: 'n1', ts: T + 50 })
    const n = h.store.nodes.get('n1')!
    expect(n.state).toBe('reset')
    expect(n.resources.size).toBe(0)
    h.feed(upd('n1', 'led', '0', T + 60))
    expect(n.state).toBe('online')
    expect(n.resources.get('led')!.value).toBe('0')
  })

  it('ignores out and reset for unknown nodes and unknown message types', () => {
    h.feed({ type: 'out', uid: 'x' }, { type: 'reset', uid: 'y' }, { type: 'future-thing' } as unknown as ServerMsg)
    expect(h.store.nodes.size).toBe(0)
  })

  it('creates a node for an update that came without new', () => {
    h.feed(upd('lost', 'temperature', '1°C'))
    expect(h.store.nodes.get('lost')!.resources.size).toBe(1)
  })

  it('decodes text frames and rejects junk', () => {
    expect(h.store.applyText('{"type":"new","uid":"t1"}')).toBe(true)
    expect(h.store.applyText('not json')).toBe(false)
    expect(h.store.applyText('[1,2]')).toBe(false)
    expect(h.store.applyText('{"uid":"x"}')).toBe(false)
    expect(h.store.nodes.has('t1')).toBe(true)
  })

  it('applies every message of a batched frame, a line each, in order', () => {
    const frame = [
      '{"type":"new","uid":"b1","state":"online"}',
      '{"type":"update","uid":"b1","endpoint":"temperature","data":"20"}',
      'not json',
      '{"type":"update","uid":"b1","endpoint":"temperature","data":"21\\n5"}',
      '{"type":"out","uid":"b1"}',
    ].join('\n')
    expect(h.store.applyText(frame)).toBe(true)
    const n = h.store.nodes.get('b1')!
    expect(n.state).toBe('offline')
    expect(n.resources.get('temperature')!.value).toBe('21\n5')
    expect(h.store.applyText('junk\n[1]\n')).toBe(false)
  })

  it('records hello and site links', () => {
    h.feed({ type: 'hello', server: 'goaiot', version: '0.1', role: 'viewer' }, { type: 'site', site: 'north', link: 'down', ts: T })
    expect(h.store.server).toEqual({ server: 'goaiot', version: '0.1', role: 'viewer', user: '', login: false })
    expect(h.store.sites.get('north')).toEqual({ link: 'down', ts: T })
  })
})

describe('Store: batching per frame', () => {
  it('reports many messages once, with the nodes and series that changed', () => {
    const h = harness()
    h.feed(newNode('a'), newNode('b'))
    for (let i = 0; i < 100; i++) h.feed(upd('a', 'temperature', `${20 + i / 10}°C`, T + i))
    expect(h.frames.length).toBe(1)
    expect(h.reports.length).toBe(0)
    h.frame()
    expect(h.reports.length).toBe(1)
    const c = h.reports[0]
    expect([...c.nodes].sort()).toEqual(['a', 'b'])
    expect([...c.series]).toEqual([seriesKey('a', 'temperature')])
    expect(c.structure).toBe(true)
  })

  it('reports value-only changes without a structure change', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'temperature', '1°C'))
    h.frame()
    h.feed(upd('a', 'temperature', '2°C', T + 1))
    h.frame()
    const c = h.reports.at(-1)!
    expect(c.structure).toBe(false)
    expect([...c.nodes]).toEqual(['a'])
  })

  it('calls series listeners after a frame', () => {
    const h = harness()
    let calls = 0
    h.store.onSeries('a', 'temperature', () => calls++)
    h.feed(newNode('a'), upd('a', 'temperature', '1°C'), upd('a', 'temperature', '2°C', T + 1))
    expect(calls).toBe(0)
    h.frame()
    expect(calls).toBe(1)
  })

  it('caps points per chart', () => {
    const h = harness({ cap: 100 })
    h.feed(newNode('a'))
    for (let i = 0; i < 1000; i++) h.feed(upd('a', 'temperature', `${i}°C`, T + i * 1000))
    const s = h.store.nodes.get('a')!.resources.get('temperature')!.series!
    expect(s.length).toBeLessThan(125)
    expect(s.length).toBeGreaterThanOrEqual(100)
    expect(s.last()).toBe(999)
  })
})

describe('Store: history', () => {
  it('asks history once per chart resource when its first value arrives', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'temperature', '21°C'), upd('a', 'temperature', '22°C', T + 1), upd('a', 'led', '1'), upd('a', 'imu', '[]'))
    h.frame()
    expect(h.sent).toEqual([
      { type: 'history', data: { uid: 'a', endpoint: 'temperature', limit: 240 }, id: 'h1' },
      { type: 'history', data: { uid: 'a', endpoint: 'imu', limit: 150 }, id: 'h2' },
    ])
  })

  it('merges the stored points before the live ones, without duplicates', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'temperature', '22°C', T + 3000))
    h.feed({
      type: 'history', uid: 'a', endpoint: 'temperature',
      points: [{ ts: T, data: '20°C' }, { ts: T + 1000, data: '20.5°C' }, { ts: T + 2000, data: 'junk' }, { ts: T + 3000, data: '22°C' }],
    })
    const s = h.store.nodes.get('a')!.resources.get('temperature')!.series!
    expect(s.data()).toEqual([[T / 1000, T / 1000 + 1, T / 1000 + 3], [20, 20.5, 22]])
    h.frame()
    expect(h.reports.at(-1)!.series.has(seriesKey('a', 'temperature'))).toBe(true)
  })

  it('fills imu charts from history', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'imu', '[{"type":"acc","values":[0,0,1]}]', T + 10))
    h.feed({ type: 'history', uid: 'a', endpoint: 'imu', points: [{ ts: T, data: '[{"type":"acc","values":[0,3,4]},{"type":"gyro","values":[1,1,1]}]' }] })
    const r = h.store.nodes.get('a')!.resources.get('imu')!
    expect(r.series!.data()).toEqual([[T / 1000, (T + 10) / 1000], [5, 1]])
    expect(r.series2!.length).toBe(1)
  })

  it('ignores history for unknown resources', () => {
    const h = harness()
    h.feed({ type: 'history', uid: 'zz', endpoint: 'temperature', points: [{ ts: T, data: '1' }] })
    expect(h.store.nodes.size).toBe(0)
  })

  it('keeps at most historyInFlight requests unanswered', () => {
    const h = harness({ historyInFlight: 4 })
    for (let i = 0; i < 10; i++) h.feed(newNode(`n${i}`), upd(`n${i}`, 'temperature', '1°C'))
    h.frame()
    expect(h.history().length).toBe(4)
    h.frame()
    expect(h.history().length).toBe(4)
    // An answer (by id) frees a slot.
    h.feed({ type: 'history', id: 'h1', uid: 'n0', endpoint: 'temperature', points: [] })
    h.frame()
    expect(h.history().length).toBe(5)
    // An answer without id is matched by uid and endpoint.
    h.feed({ type: 'history', uid: 'n1', endpoint: 'temperature', points: [] })
    h.frame()
    expect(h.history().length).toBe(6)
  })

  it('stays under the rate limit, in bursts', () => {
    const h = harness({ historyRate: 10, historyBurst: 5 })
    for (let i = 0; i < 12; i++) h.feed(newNode(`n${i}`), upd(`n${i}`, 'temperature', '1°C'))
    h.frame()
    expect(h.history().length).toBe(5)
    expect(h.timers.length).toBe(1)
    h.advance(300) // 3 tokens refill
    h.runTimers()
    h.frame()
    expect(h.history().length).toBe(8)
    h.advance(10_000)
    h.runTimers()
    h.frame()
    expect(h.history().length).toBe(12)
  })

  it('asks again when the server is busy, and gives up on other errors', () => {
    const h = harness({ historyInFlight: 1 })
    h.feed(newNode('a'), upd('a', 'temperature', '1°C'), upd('a', 'humidity', '40%'))
    h.frame()
    expect(h.history().map((f) => f.type === 'history' && f.data.endpoint)).toEqual(['temperature'])
    h.feed({ type: 'history', id: 'h1', uid: 'a', endpoint: 'temperature', points: [], error: 'busy: too many requests in flight' })
    h.frame()
    h.feed({ type: 'history', id: 'h2', uid: 'a', endpoint: 'humidity', points: [], error: 'stream unavailable' })
    h.frame()
    h.feed({ type: 'history', id: 'h3', uid: 'a', endpoint: 'temperature', points: [{ ts: T - 5, data: '0.5°C' }] })
    h.frame()
    expect(h.history().map((f) => f.type === 'history' && f.data.endpoint)).toEqual(['temperature', 'humidity', 'temperature'])
    expect(h.store.nodes.get('a')!.resources.get('temperature')!.series!.length).toBe(2)
  })

  it('frees slots of requests never answered', () => {
    const h = harness({ historyInFlight: 1 })
    h.feed(newNode('a'), upd('a', 'temperature', '1°C'), upd('a', 'humidity', '40%'))
    h.frame()
    h.advance(60_000)
    h.store.tick()
    h.frame()
    expect(h.history().length).toBe(2)
  })

  it('asks visible charts first', () => {
    const h = harness({ historyInFlight: 1 })
    h.feed(newNode('a'), upd('a', 'temperature', '1°C'), upd('a', 'humidity', '40%'), upd('a', 'pressure', '1000hPa'))
    h.store.prioritizeHistory('a', 'pressure')
    h.frame()
    expect(h.history().map((f) => f.type === 'history' && f.data.endpoint)).toEqual(['pressure'])
  })

  it('asks history again after a reset', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'temperature', '1°C'))
    h.frame()
    h.feed({ type: 'reset', uid: 'a' }, upd('a', 'temperature', '1°C'))
    h.frame()
    expect(h.sent.filter((f) => f.type === 'history').length).toBe(2)
  })
})

describe('Store: resync', () => {
  it('rebuilds the state from the new snapshot', () => {
    const h = harness()
    h.store.beginResync()
    h.feed(newNode('keep'), upd('keep', 'temperature', '20°C'), upd('keep', 'text', 'old'), newNode('gone'), { type: 'synced', nodes: 2 })
    expect(h.store.synced).toBe(true)
    h.frame()
    h.sent.length = 0

    // Connection lost, then back: the snapshot no longer has "gone", nor
    // "keep"'s text; "keep" is now offline.
    h.store.connectionLost()
    expect(h.store.synced).toBe(false)
    h.store.beginResync()
    h.feed(newNode('keep', { state: 'offline' }), upd('keep', 'temperature', '21°C', T + 5000), { type: 'out', uid: 'keep' })
    expect(h.store.nodes.has('gone')).toBe(true) // not before synced
    h.feed({ type: 'synced', nodes: 1 })
    expect([...h.store.nodes.keys()]).toEqual(['keep'])
    const keep = h.store.nodes.get('keep')!
    expect(keep.state).toBe('offline')
    expect([...keep.resources.keys()]).toEqual(['temperature'])
    // Live points were kept and history is asked again to fill the gap.
    expect(keep.resources.get('temperature')!.series!.length).toBe(2)
    h.frame()
    expect(h.history().at(-1)).toMatchObject({ type: 'history', data: { uid: 'keep', endpoint: 'temperature', limit: 240 } })
    expect(h.reports.at(-1)!.nodes.has('gone')).toBe(true)
  })

  it('a synced without a resync only marks the end of the snapshot', () => {
    const h = harness()
    h.feed(newNode('a'), { type: 'synced' })
    expect(h.store.synced).toBe(true)
    expect(h.store.nodes.has('a')).toBe(true)
  })
})

describe('Store: commands', () => {
  it('sends the command with an id and applies an ok result', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'led', '0'))
    const c = h.store.command('a', 'led', '1')
    expect(h.sent.at(-1)).toEqual({ type: 'update', data: { uid: 'a', endpoint: 'led', payload: '1' }, id: c.id })
    expect(h.store.pendingCommand('a', 'led')).toBe(c)
    h.feed({ type: 'result', id: c.id, uid: 'a', endpoint: 'led', ok: true })
    expect(c.status).toBe('ok')
    expect(h.store.pendingCommand('a', 'led')).toBeUndefined()
    h.frame()
    expect(h.reports.at(-1)!.commands).toBe(true)
  })

  it('shows the node refusing with its error', () => {
    const h = harness()
    h.feed(newNode('a'))
    const c = h.store.command('a', 'led', '5')
    h.feed({ type: 'result', id: c.id, ok: false, error: '4.00 Bad Request' })
    expect(c).toMatchObject({ status: 'error', error: '4.00 Bad Request' })
    expect(h.store.lastCommand('a', 'led')).toBe(c)
  })

  it('reports a server timeout', () => {
    const h = harness()
    h.feed(newNode('a'))
    const c = h.store.command('a', 'led', '1')
    h.feed({ type: 'result', id: c.id, uid: 'a', endpoint: 'led', ok: false, error: 'timeout' })
    expect(c).toMatchObject({ status: 'error', error: 'timeout' })
  })

  it('settles on the echoed value when the server sends no result (Pyaiot)', () => {
    const h = harness()
    h.feed(newNode('a'), upd('a', 'led', '0'))
    const c = h.store.command('a', 'led', '1')
    h.feed(upd('a', 'led', '1', T + 10))
    expect(c.status).toBe('ok')
    // A late result for a settled command changes nothing.
    h.feed({ type: 'result', id: c.id, ok: false, error: 'timeout' })
    expect(c.status).toBe('ok')
  })

  it('times out on the client when nothing answers', () => {
    const h = harness()
    h.feed(newNode('a'))
    const c = h.store.command('a', 'led', '1')
    h.advance(5000)
    h.store.tick()
    expect(c.status).toBe('pending')
    h.advance(30000)
    h.store.tick()
    expect(c).toMatchObject({ status: 'error', error: 'timeout' })
  })

  it('fails at once when not connected, and pending ones when the connection drops', () => {
    const off = harness({ connected: false })
    off.feed(newNode('a'))
    expect(off.store.command('a', 'led', '1')).toMatchObject({ status: 'error', error: 'not connected' })

    const h = harness()
    h.feed(newNode('a'))
    const c = h.store.command('a', 'led', '1')
    h.store.connectionLost()
    expect(c).toMatchObject({ status: 'error', error: 'connection lost' })
  })
})

describe('Store: roles', () => {
  const hello = (extra: Record<string, unknown>): ServerMsg => ({ type: 'hello', server: 'goaiot', version: '1', ...extra }) as ServerMsg
  const commands = (h: ReturnType<typeof harness>) => h.sent.filter((f) => f.type === 'update')

  it('allows commands before any hello (Pyaiot sends none)', () => {
    const h = harness()
    expect(h.store.canCommand).toBe(true)
    expect(h.store.readOnly).toBe('')
    h.store.command('n1', 'led', '1')
    expect(commands(h)).toHaveLength(1)
  })

  const cases = [
    { name: 'viewer with login', msg: { role: 'viewer', login: true }, can: false, hint: READ_ONLY_LOGIN, user: '' },
    { name: 'viewer without users file', msg: { role: 'viewer', login: false }, can: false, hint: READ_ONLY, user: '' },
    { name: 'logged-in viewer', msg: { role: 'viewer', login: true, user: 'ann' }, can: false, hint: READ_ONLY_LOGIN, user: 'ann' },
    { name: 'anonymous operator', msg: { role: 'operator', login: false }, can: true, hint: '', user: '' },
    { name: 'logged-in operator', msg: { role: 'operator', login: true, user: 'bob' }, can: true, hint: '', user: 'bob' },
    { name: 'unknown role', msg: { role: 'admin', login: true }, can: true, hint: '', user: '' },
  ]
  for (const tc of cases) {
    it(`hello: ${tc.name}`, () => {
      const h = harness()
      h.feed(hello(tc.msg))
      expect(h.store.canCommand).toBe(tc.can)
      expect(h.store.readOnly).toBe(tc.hint)
      expect(h.store.server.user).toBe(tc.user)
      expect(h.store.server.login).toBe(tc.msg.login)
      h.frame()
      expect(h.reports.at(-1)?.meta).toBe(true)
      const c = h.store.command('n1', 'led', '1')
      if (tc.can) {
        expect(c.status).toBe('pending')
        expect(commands(h)).toHaveLength(1)
      } else {
        // A viewer's command never leaves the page; it fails at once.
        expect(c.status).toBe('error')
        expect(c.error).toBe(`forbidden: ${tc.hint}`)
        expect(commands(h)).toHaveLength(0)
      }
    })
  }

  it('a new hello replaces the role (after login, then logout)', () => {
    const h = harness()
    h.feed(hello({ role: 'viewer', login: true }))
    expect(h.store.canCommand).toBe(false)
    h.store.beginResync()
    h.feed(hello({ role: 'operator', login: true, user: 'bob' }))
    expect(h.store.canCommand).toBe(true)
    expect(h.store.server.user).toBe('bob')
    h.store.beginResync()
    h.feed(hello({ role: 'viewer', login: true }))
    expect(h.store.canCommand).toBe(false)
    expect(h.store.server.user).toBe('')
  })

  it('setAuth applies a /login or /logout answer at once, keeping server and version', () => {
    const h = harness()
    h.feed(hello({ role: 'viewer', login: true }))
    h.frame()
    h.store.setAuth({ user: 'bob', role: 'operator', login: true })
    expect(h.store.server).toEqual({ server: 'goaiot', version: '1', role: 'operator', user: 'bob', login: true })
    expect(h.store.canCommand).toBe(true)
    h.frame()
    expect(h.reports.at(-1)?.meta).toBe(true)
    h.store.setAuth({ user: '', role: 'viewer', login: true })
    expect(h.store.readOnly).toBe(READ_ONLY_LOGIN)
  })
})

describe('Store: commands queued for offline nodes', () => {
  const queuedResult = (id: string, command = 'Q1', until = T + 3_600_000): ServerMsg =>
    ({ type: 'result', id, uid: 'a', endpoint: 'led', ok: true, code: 'queued', command, until })

  it('sends queue_for only while "queue if offline" is on', () => {
    const h = harness()
    h.feed(newNode('a'))
    h.store.command('a', 'led', '1')
    expect(h.sent.at(-1)).toMatchObject({ data: { uid: 'a', endpoint: 'led', payload: '1' } })
    expect((h.sent.at(-1) as { data: object }).data).not.toHaveProperty('queue_for')
    h.store.setQueueIfOffline(true, 600)
    const c = h.store.command('a', 'led', '0')
    expect(h.sent.at(-1)).toEqual({ type: 'update', data: { uid: 'a', endpoint: 'led', payload: '0', queue_for: 600 }, id: c.id })
    h.store.setQueueIfOffline(false)
    h.store.command('a', 'led', '1')
    expect((h.sent.at(-1) as { data: object }).data).not.toHaveProperty('queue_for')
  })

  it('stays pending as queued until its outcome arrives', () => {
    const h = harness()
    h.feed(newNode('a'))
    h.store.setQueueIfOffline(true)
    const c = h.store.command('a', 'led', '1')
    h.feed(queuedResult(c.id))
    expect(c).toMatchObject({ status: 'queued', queued: { command: 'Q1', until: T + 3_600_000 } })
    expect(h.store.pendingCommand('a', 'led')).toBe(c)
    h.advance(60_000)
    h.store.tick()
    expect(c.status).toBe('queued') // no client timeout while the node is away
    h.feed({ type: 'outcome', command: 'OTHER', uid: 'a', endpoint: 'led', ok: true, code: 'delivered' })
    expect(c.status).toBe('queued') // another page's command
    h.feed({ type: 'outcome', command: 'Q1', uid: 'a', endpoint: 'led', ok: true, code: 'delivered' })
    expect(c.status).toBe('ok')
    expect(h.store.pendingCommand('a', 'led')).toBeUndefined()
  })

  it.each([
    ['expired', 'expired: node a did not come back by …'],
    ['replaced', 'replaced by command Q2'],
    ['failed', '4.00 Bad Request'],
  ] as const)('reports a %s outcome with its reason', (code, error) => {
    const h = harness()
    h.feed(newNode('a'))
    h.store.setQueueIfOffline(true)
    const c = h.store.command('a', 'led', '1')
    h.feed(queuedResult(c.id))
    h.feed({ type: 'outcome', command: 'Q1', uid: 'a', endpoint: 'led', ok: false, code, error })
    expect(c).toMatchObject({ status: 'error', error })
  })

  it('gives up on a missed outcome once the deadline is well past', () => {
    const h = harness()
    h.feed(newNode('a'))
    h.store.setQueueIfOffline(true, 60)
    const c = h.store.command('a', 'led', '1')
    h.feed(queuedResult(c.id, 'Q1', T + 60_000))
    h.advance(60_000)
    h.store.tick()
    expect(c.status).toBe('queued')
    h.advance(60_000)
    h.store.tick()
    expect(c.status).toBe('error')
    expect(c.error).toMatch(/^expired/)
  })

  it('keeps queued commands across a lost connection (the server keeps them)', () => {
    const h = harness()
    h.feed(newNode('a'))
    h.store.setQueueIfOffline(true)
    const c = h.store.command('a', 'led', '1')
    h.feed(queuedResult(c.id))
    h.store.connectionLost()
    expect(c.status).toBe('queued')
  })
})

describe('reactive views', () => {
  // counted wraps a ref read in a computed and counts how often it runs.
  function counted<T>(read: () => T) {
    let runs = 0
    const c = computed(() => {
      runs++
      return read()
    })
    return { get value() { return c.value }, get runs() { return runs } }
  }

  const cases: Array<{ name: string; view: (h: ReturnType<typeof harness>) => () => unknown; act: (h: ReturnType<typeof harness>) => void; moves: boolean }> = [
    { name: 'a value moves its node', view: (h) => { const r = h.store.nodeRef('a'); return () => r.value }, act: (h) => h.feed(upd('a', 'temperature', '22°C')), moves: true },
    { name: 'a value leaves another node still', view: (h) => { const r = h.store.nodeRef('b'); return () => r.value }, act: (h) => h.feed(upd('a', 'temperature', '22°C')), moves: false },
    { name: 'a value leaves the node map still', view: (h) => () => h.store.nodesRef.value, act: (h) => h.feed(upd('a', 'temperature', '22°C')), moves: false },
    { name: 'a new node moves the node map', view: (h) => () => h.store.nodesRef.value, act: (h) => h.feed(newNode('c')), moves: true },
    { name: 'a node going offline moves the node map', view: (h) => () => h.store.nodesRef.value, act: (h) => h.feed({ type: 'out', uid: 'a', ts: T }), moves: true },
    { name: 'a command moves the command list', view: (h) => () => h.store.commandsRef.value, act: (h) => void h.store.command('a', 'led', '1'), moves: true },
    { name: 'hello moves meta', view: (h) => () => h.store.metaRef.value, act: (h) => h.feed({ type: 'hello', server: 'goaiot', version: '1', role: 'viewer', login: true }), moves: true },
    { name: 'the queue checkbox moves meta', view: (h) => () => h.store.metaRef.value.queueIfOffline, act: (h) => h.store.setQueueIfOffline(true), moves: true },
  ]
  for (const tc of cases) {
    it(tc.name + ' (once, at the frame)', () => {
      const h = harness()
      h.feed(newNode('a'), newNode('b'), upd('a', 'temperature', '21°C'))
      h.frame()
      const v = counted(tc.view(h))
      void v.value
      expect(v.runs).toBe(1)
      tc.act(h)
      tc.act(h)
      void v.value
      expect(v.runs, 'before the frame').toBe(1)
      h.frame()
      void v.value
      expect(v.runs, 'after the frame').toBe(tc.moves ? 2 : 1)
    })
  }

  it('a node ref follows its node and is dropped with it', () => {
    const h = harness()
    h.feed(newNode('a'))
    h.frame()
    const r = h.store.nodeRef('a')
    expect(r.value?.uid).toBe('a')
    expect(h.store.nodeRef('a')).toBe(r)
    h.store.beginResync()
    h.feed({ type: 'synced', nodes: 0 })
    h.frame()
    expect(r.value).toBeUndefined()
    expect(h.store.nodeRef('a')).not.toBe(r)
  })

  it('keeps no ref for a node it does not hold', () => {
    const h = harness()
    const r = h.store.nodeRef('ghost')
    expect(r.value).toBeUndefined()
    expect(h.store.nodeRef('ghost')).not.toBe(r)
  })

  it('meta says read-only for a viewer', () => {
    const h = harness()
    h.feed({ type: 'hello', server: 'goaiot', version: '1', role: 'viewer', login: true })
    h.frame()
    expect(h.store.metaRef.value).toMatchObject({ readOnly: READ_ONLY_LOGIN, server: { role: 'viewer' } })
  })
})

describe('node map throttle', () => {
  function throttled(every: number, snapshot: number) {
    const frames: Array<() => void> = []
    const timers: Array<{ cb: () => void; ms: number }> = []
    let clock = T
    const store = new Store({
      schedule: (cb) => frames.push(cb), now: () => clock, timer: (cb, ms) => timers.push({ cb, ms }),
      structureEveryMs: every, snapshotStructureEveryMs: snapshot,
    })
    let runs = 0
    const c = computed(() => (runs++, store.nodesRef.value))
    const moved = () => { const before = runs; void c.value; return runs > before }
    const frame = () => frames.splice(0).forEach((cb) => cb())
    void c.value
    return { store, timers, moved, frame, advance: (ms: number) => { clock += ms } }
  }

  it('moves the node map at most every structureEveryMs, then catches up', () => {
    const h = throttled(100, 1000)
    h.store.apply(newNode('a'))
    h.frame()
    expect(h.moved(), 'the first change').toBe(true)
    h.advance(16)
    h.store.apply(newNode('b'))
    h.frame()
    expect(h.moved(), 'too soon').toBe(false)
    expect(h.timers.map((t) => t.ms)).toEqual([84])
    h.advance(84)
    h.timers.splice(0).forEach((t) => t.cb())
    h.frame()
    expect(h.moved(), 'when due').toBe(true)
    expect([...h.store.nodesRef.value.keys()]).toEqual(['a', 'b'])
  })

  it('moves it once a second while a snapshot arrives, and at synced', () => {
    const h = throttled(100, 1000)
    h.store.beginResync()
    h.store.apply(newNode('a'))
    h.frame()
    expect(h.moved()).toBe(true)
    for (let i = 0; i < 10; i++) {
      h.advance(50)
      h.store.apply(newNode(`n${i}`))
      h.frame()
      expect(h.moved(), `frame ${i}`).toBe(false)
    }
    h.advance(500)
    h.store.apply({ type: 'synced', nodes: 11 })
    h.frame()
    expect(h.moved(), 'synced ends the snapshot').toBe(true)
    expect(h.store.nodesRef.value.size).toBe(11)
  })
})
