import { describe, expect, it } from 'vitest'
import { READ_ONLY, READ_ONLY_LOGIN, Store } from '../src/lib/store'
import { counts, group, matches, nodeName, relTime, resourceNames, isRoleReadOnly } from '../src/lib/view'
import { backoffDelay, defaultWsUrl } from '../src/lib/connection'

function store() {
  const s = new Store({ schedule: () => {} })
  const add = (uid: string, site: string, gateway: string, name?: string, state: 'online' | 'offline' = 'online') => {
    s.apply({ type: 'new', uid, site, gateway, protocol: 'coap', state })
    if (name) s.apply({ type: 'update', uid, endpoint: 'name', data: name })
    if (state === 'offline') s.apply({ type: 'out', uid })
  }
  add('u3', 'north', 'coap-b', 'Node 10')
  add('u1', 'north', 'coap-a', 'Node 2')
  add('u2', 'north', 'coap-a', 'Node 1', 'offline')
  add('u4', '', '', undefined)
  s.apply({ type: 'update', uid: 'u1', endpoint: 'board', data: 'native64' })
  return s
}

describe('view helpers', () => {
  it('groups by site then gateway, sorted by name', () => {
    const g = group(store().nodes.values())
    expect(g.map((s) => s.site)).toEqual(['Local site', 'north'])
    const north = g[1]
    expect(north.gateways.map((x) => [x.gateway, x.uids, x.online])).toEqual([
      ['coap-a', ['u2', 'u1'], 1],
      ['coap-b', ['u3'], 1],
    ])
    expect(g[0].gateways[0].gateway).toBe('coap gateway')
  })

  it('filters by state and search words', () => {
    const s = store()
    expect(group(s.nodes.values(), { state: 'offline' }).flatMap((x) => x.gateways.flatMap((g) => g.uids))).toEqual(['u2'])
    expect(group(s.nodes.values(), { state: 'online' }).flatMap((x) => x.gateways.flatMap((g) => g.uids))).toHaveLength(3)
    expect(group(s.nodes.values(), { query: 'native64' }).flatMap((x) => x.gateways.flatMap((g) => g.uids))).toEqual(['u1'])
    expect(matches(s.nodes.get('u3')!, 'north coap-b')).toBe(true)
    expect(matches(s.nodes.get('u3')!, 'north coap-a')).toBe(false)
  })

  it('names, counts and resource names', () => {
    const s = store()
    expect(nodeName(s.nodes.get('u1')!)).toBe('Node 2')
    expect(nodeName(s.nodes.get('u4')!)).toBe('u4')
    expect(counts(s.nodes.values())).toEqual({ total: 4, online: 3, offline: 1 })
    expect(resourceNames(s.nodes.values())).toEqual(['board', 'name'])
  })

  it('relative times', () => {
    const now = 1_000_000_000
    const en = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' })
    expect(relTime(now - 1000, now, en)).toBe('now')
    expect(relTime(now - 42_000, now, en)).toBe('42 sec. ago')
    expect(relTime(now - 5 * 60_000, now, en)).toBe('5 min. ago')
    expect(relTime(now - 3 * 3600_000, now, en)).toBe('3 hr. ago')
    expect(relTime(now - 72 * 3600_000, now, en)).toBe('3 days ago')
    expect(relTime(0, now, en)).toBe('never')
    const fr = new Intl.RelativeTimeFormat('fr', { numeric: 'auto', style: 'short' })
    expect(relTime(now - 5 * 60_000, now, fr)).toMatch(/^il y a 5\s+min$/)
  })
})

describe('connection helpers', () => {
  it('uses /ws on the page origin, ws: or wss: after its scheme', () => {
    expect(defaultWsUrl({ protocol: 'http:', host: 'h:8080', search: '' })).toBe('ws://h:8080/ws?ext=1&batch=1')
    expect(defaultWsUrl({ protocol: 'https:', host: 'h', search: '' })).toBe('wss://h/ws?ext=1&batch=1')
  })
  it('takes ?ws= for development', () => {
    expect(defaultWsUrl({ protocol: 'http:', host: 'h', search: '?ws=ws://other:9/ws' })).toBe('ws://other:9/ws?ext=1&batch=1')
    expect(defaultWsUrl({ protocol: 'https:', host: 'h', search: '?ws=other:9/ws' })).toBe('wss://other:9/ws?ext=1&batch=1')
    expect(defaultWsUrl({ protocol: 'http:', host: 'h:1', search: '?ws=/custom' })).toBe('ws://h:1/custom?ext=1&batch=1')
    expect(defaultWsUrl({ protocol: 'http:', host: 'h', search: '?ws=http://x/ws' })).toBe('ws://x/ws?ext=1&batch=1')
  })
  it('backs off exponentially with jitter up to a maximum', () => {
    expect(backoffDelay(1, 500, 15000, () => 0.5)).toBe(500)
    expect(backoffDelay(2, 500, 15000, () => 0.5)).toBe(1000)
    expect(backoffDelay(4, 500, 15000, () => 0.5)).toBe(4000)
    expect(backoffDelay(20, 500, 15000, () => 0.5)).toBe(15000)
    expect(backoffDelay(1, 500, 15000, () => 0)).toBe(400)
    expect(backoffDelay(1, 500, 15000, () => 1)).toBe(600)
  })
})

describe('isRoleReadOnly', () => {
  const cases = [
    { name: 'viewer with login', reason: READ_ONLY_LOGIN, want: true },
    { name: 'viewer without login', reason: READ_ONLY, want: true },
    { name: 'allowed', reason: '', want: false },
    { name: 'offline node', reason: 'The node is offline', want: false },
    { name: 'not connected', reason: 'Not connected to the server', want: false },
  ]
  for (const tc of cases) {
    it(tc.name, () => expect(isRoleReadOnly(tc.reason)).toBe(tc.want))
  }
})
