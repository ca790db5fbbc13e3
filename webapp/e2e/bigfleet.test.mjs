// End-to-end: the dashboard with 10 000 nodes (`npm run e2e:big`). aiot
// runs its demo with simulated websocket and MQTT-SN nodes (no per-address
// limit on new ids: they all come from 127.0.0.1); Chromium loads the page,
// and the test measures the frame times while live values flow, while
// scrolling through the grid and after a jump to its end. It prints the
// figures; it asserts what must hold on any machine (every node counted,
// only a screenful of cards in the DOM, the last card reachable, no script
// error), never a time.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aiot, buildAiot, freePorts, runArgs } from './aiot.mjs'
import { browserSkip, launch } from './browser.mjs'

const WS = Number(process.env.BIG_WS_NODES ?? 7000)
const SN = Number(process.env.BIG_MQTTSN_NODES ?? 3000)
const NODES = WS + SN

let tmp, aiot, browser, page
const pageErrors = []

/** frames records requestAnimationFrame intervals for ms, scrolling by step px a frame. */
function frames(ms, step = 0) {
  return page.evaluate(async ({ ms, step }) => {
    const deltas = []
    let longTasks = 0
    let longMs = 0
    const po = new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        longTasks++
        longMs += e.duration
      }
    })
    po.observe({ type: 'longtask' })
    let dir = 1
    let last = performance.now()
    const end = last + ms
    await new Promise((done) => {
      const tick = (t) => {
        deltas.push(t - last)
        last = t
        if (step) {
          const max = document.documentElement.scrollHeight - innerHeight
          if ((dir > 0 && scrollY >= max - 1) || (dir < 0 && scrollY <= 0)) dir = -dir
          scrollBy(0, dir * step)
        }
        if (t < end) requestAnimationFrame(tick)
        else done()
      }
      requestAnimationFrame(tick)
    })
    po.disconnect()
    deltas.shift()
    deltas.sort((a, b) => a - b)
    const q = (p) => Math.round(deltas[Math.min(deltas.length - 1, Math.floor(p * deltas.length))] * 10) / 10
    return {
      frames: deltas.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: q(1),
      over50ms: deltas.filter((d) => d > 50).length, longTasks, longMs: Math.round(longMs),
      cards: document.querySelectorAll('[data-testid="node"]').length,
    }
  }, { ms, step })
}

const total = () => page.evaluate(() => Number(document.querySelector('[data-testid="stats"] strong')?.textContent ?? 0))

describe(`dashboard with ${NODES} nodes`, { concurrency: false, skip: browserSkip }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'goaiot-e2e-big-'))
    const bin = await buildAiot(tmp)
    aiot = new Aiot(bin, runArgs(await freePorts(), join(tmp, 'data'), [
      '--ws-nodes', String(WS), '--mqttsn-nodes', String(SN), '--coap-nodes', '0', '--mqtt-nodes', '0',
      '--ws-new-nodes', '-1', '--mqttsn-new-nodes', '-1', '--sim-interval', '30s',
    ]))
    await aiot.start(120_000)
    browser = await launch()
    page = browser.context.pages()[0] ?? (await browser.context.newPage())
    page.on('pageerror', (e) => pageErrors.push(e.message))
  })

  after(async () => {
    await browser?.close()
    await aiot?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  test('every node comes, with a screenful of cards in the DOM', async (t) => {
    await page.goto(`${aiot.url}/`)
    const began = Date.now()
    // The simulated nodes connect over a minute or so, longer on a loaded machine.
    await page
      .waitForFunction((n) => Number(document.querySelector('[data-testid="stats"] strong')?.textContent) >= n, NODES, { timeout: 480_000, polling: 1000 })
      .catch(async (e) => {
        const conn = await page.evaluate(() => document.querySelector('[data-testid="conn"]')?.dataset.state)
        throw new Error(`${await total()} of ${NODES} nodes on the page (connection ${conn}):\n${aiot.tail(15)}\n${e.message}`)
      })
    t.diagnostic(`${await total()} nodes on the page ${Math.round((Date.now() - began) / 1000)} s after loading it`)
    // Let the registration storm pass, then measure with values flowing.
    const idle = await frames(10_000)
    t.diagnostic(`live values, at the top: ${JSON.stringify(idle)}`)
    assert.ok(idle.frames > 0)
    assert.ok(idle.cards > 0 && idle.cards < 300, `${idle.cards} cards in the DOM for ${NODES} nodes`)
  })

  test('scrolling through the grid', async (t) => {
    await page.evaluate(() => scrollTo(0, 0))
    const scroll = await frames(10_000, 60)
    t.diagnostic(`scrolling 60 px a frame: ${JSON.stringify(scroll)}`)
    assert.ok(scroll.cards < 300, `${scroll.cards} cards in the DOM`)
  })

  test('a jump to the end shows the last cards', async (t) => {
    await page.evaluate(() => scrollTo(0, document.documentElement.scrollHeight))
    await page.waitForFunction(() => {
      const cards = [...document.querySelectorAll('[data-testid="node"]')]
      return cards.some((c) => c.getBoundingClientRect().top < innerHeight && c.getBoundingClientRect().bottom > 0)
    }, null, { timeout: 30_000, polling: 100 })
    const end = await frames(5_000)
    t.diagnostic(`at the end: ${JSON.stringify(end)}`)
    // The bottom of the page holds cards, and no more than a screenful.
    assert.ok(await page.evaluate(() => scrollY > 0))
    assert.ok(end.cards > 0 && end.cards < 300, `${end.cards} cards in the DOM`)
    assert.deepEqual(pageErrors, [])
  })
})
