// `npm run bench`: what the page recomputes when nodes come or go. A file
// of its own, so that its 10 000 nodes do not weigh on store.bench.ts.
import { bench, describe } from 'vitest'
import { Store } from '../src/lib/store'
import { counts, group, resourceNames } from '../src/lib/view'
import { gridItems } from '../src/lib/grid'

describe('10 000 nodes', () => {
  const s = new Store({ schedule: () => {}, send: () => true })
  for (let i = 0; i < 10_000; i++) {
    const uid = `sim-ws-${i}`
    s.apply({ type: 'new', uid, site: 'local', gateway: i % 10 < 7 ? 'ws' : 'mqttsn', protocol: 'ws', state: 'online', ts: 1 })
    s.apply({ type: 'update', uid, endpoint: 'name', data: `sim-ws-${i}`, ts: 1 })
    s.apply({ type: 'update', uid, endpoint: 'board', data: 'native', ts: 1 })
  }
  s.flush()
  bench('group', () => {
    group(s.nodes.values(), { query: '', state: 'all' })
  }, { iterations: 10 })
  bench('group + counts + resource names + grid rows', () => {
    const g = group(s.nodes.values(), { query: '', state: 'all' })
    counts(s.nodes.values())
    resourceNames(s.nodes.values())
    gridItems(g, 4)
  }, { iterations: 10 })
})
