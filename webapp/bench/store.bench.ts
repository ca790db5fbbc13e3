// Store throughput: `npm run bench`. 1 000 nodes, each with 6 sensors,
// then live values; measures what the page spends outside rendering.
import { bench, describe } from 'vitest'
import { Store } from '../src/lib/store'

const SENSORS = ['temperature', 'pressure', 'humidity', 'illuminance', 'eco2', 'tvoc']

function snapshot(): Store {
  const s = new Store({ schedule: () => {}, send: () => true })
  s.beginResync()
  for (let i = 0; i < 1000; i++) {
    const uid = `node-${i}`
    s.apply({ type: 'new', uid, site: `site-${i % 4}`, gateway: `gw-${i % 16}`, protocol: 'coap', state: 'online', ts: 1 })
    s.apply({ type: 'update', uid, endpoint: 'name', data: `Node ${i}`, ts: 1 })
    s.apply({ type: 'update', uid, endpoint: 'led', data: '0', ts: 1 })
    for (const r of SENSORS) s.apply({ type: 'update', uid, endpoint: r, data: '21.5°C', ts: 1 })
  }
  s.apply({ type: 'synced', nodes: 1000 })
  s.flush()
  return s
}

describe('store', () => {
  bench('snapshot of 1 000 nodes × 8 resources', () => {
    snapshot()
  }, { iterations: 20 })

  const live = snapshot()
  let ts = 2
  bench('10 000 live values + one frame', () => {
    for (let k = 0; k < 10_000; k++) {
      const i = k % 1000
      live.apply({ type: 'update', uid: `node-${i}`, endpoint: SENSORS[k % 6], data: `${20 + (k % 50) / 10}°C`, ts: ts++ })
    }
    live.flush()
  })

  bench('text frames: decode + apply 10 000', () => {
    for (let k = 0; k < 10_000; k++) {
      live.applyText(`{"type":"update","uid":"node-${k % 1000}","endpoint":"humidity","data":"45.${k % 10}%","ts":${ts++}}`)
    }
    live.flush()
  })
})

