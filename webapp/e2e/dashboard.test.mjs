// End-to-end: the real aiot (`aiot run --demo`, built from this repo with
// the web app embedded) and the page in Debian's headless Chromium. No
// network mocks: the page talks to aiot's /ws, the simulated demo nodes and
// a websocket node driven by this test talk to aiot's gateways.
//
// Run with `npm run e2e` (builds the web app, then aiot). AIOT_BIN=path
// skips building aiot.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aiot, buildAiot, freePorts, runArgs } from './aiot.mjs'
import { browserSkip, launch } from './browser.mjs'
import { WsNode } from './wsnode.mjs'

const E2E_ID = 'e2e-node'
const node = (uid) => `[data-testid="node"][data-uid="${uid}"]`
const res = (uid, name) => `${node(uid)} [data-testid="resource"][data-res="${name}"]`

let tmp, aiot, browser, page, wsnode
const pageErrors = []
const failedRequests = [] // the page's requests to aiot answered with an error

/** waitDom waits for a condition evaluated in the page, with a readable failure. */
async function waitDom(what, fn, arg, timeout = 30_000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 200 })
  } catch (e) {
    const cards = await page
      .evaluate(() => [...document.querySelectorAll('[data-testid="node"]')].map((n) => `${n.dataset.uid} ${n.dataset.state}: ${[...n.querySelectorAll('[data-testid="resource"]')].map((r) => `${r.dataset.res}=${r.dataset.value}${r.dataset.points ? ` (${r.dataset.points} pts)` : ''}`).join(', ')}`).join('\n'))
      .catch(() => '(page unavailable)')
    throw new Error(`timed out waiting for ${what}\n--- cards ---\n${cards}\n--- aiot log tail ---\n${aiot?.tail(25)}\n(${e.message.split('\n')[0]})`)
  }
}

/**
 * showCard scrolls a node's card into view: like a person, the test looks
 * at a card to see it change (cards off screen are not kept up to date).
 */
async function showCard(uid) {
  await waitDom(`the card of ${uid}`, (sel) => !!document.querySelector(sel), node(uid))
  await page.locator(node(uid)).scrollIntoViewIfNeeded()
}

const attr = (sel, name) => page.locator(sel).first().getAttribute(name)

/** waitLive waits for the connection indicator to say the snapshot arrived. */
const waitLive = (timeout = 30_000) =>
  waitDom('the connection indicator to show "live"', () => document.querySelector('[data-testid="conn"]')?.dataset.state === 'live', null, timeout)

/** Current data-value of every chart on demo nodes: {"uid/res": value}. */
const demoChartValues = (id) =>
  page.evaluate((id) => {
    const out = {}
    for (const el of document.querySelectorAll('[data-testid="node"]')) {
      if (el.dataset.uid === id) continue
      for (const r of el.querySelectorAll('[data-testid="resource"][data-kind="chart"], [data-testid="resource"][data-kind="imu"]')) {
        out[`${el.dataset.uid}/${r.dataset.res}`] = r.dataset.value
      }
    }
    return out
  }, id)

describe('dashboard against aiot run --demo', { concurrency: false, skip: browserSkip }, () => {
  let ports, args

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'goaiot-e2e-'))
    const bin = await buildAiot(tmp)
    ports = await freePorts()
    args = runArgs(ports, join(tmp, 'data'))
    aiot = new Aiot(bin, args)
    await aiot.start()
    browser = await launch()
    page = browser.context.pages()[0] ?? (await browser.context.newPage())
    page.on('pageerror', (e) => pageErrors.push(e.message))
    page.on('response', (r) => {
      if (r.status() >= 400 && r.url().startsWith(aiot.url)) failedRequests.push(`${r.status()} ${r.url()}`)
    })
  })

  after(async () => {
    await wsnode?.close().catch(() => {})
    await browser?.close()
    await aiot?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  test('aiot serves the built dashboard, which connects and syncs', async () => {
    const resp = await fetch(`${aiot.url}/`)
    const html = await resp.text()
    assert.equal(resp.status, 200)
    assert.ok(
      !html.includes('was not built'),
      'aiot serves the placeholder page: run `npm run build` in webapp/ before building aiot',
    )
    await page.goto(`${aiot.url}/`)
    assert.match(await page.title(), /goaiot/)
    await waitDom('the tab title to count nodes', () => /online · goaiot$|No nodes · goaiot$/.test(document.title))
    await waitLive()
  })

  test('demo nodes appear with values', async () => {
    await waitDom(
      'at least two demo node cards with values',
      () => [...document.querySelectorAll('[data-testid="node"]')].filter((n) => n.querySelector('[data-testid="resource"]')).length >= 2,
      null,
      60_000,
    )
    const cards = await page.locator('[data-testid="node"]').count()
    assert.ok(cards >= 2, `expected several demo nodes, got ${cards}`)
    // Grouped by site and gateway.
    assert.ok((await page.locator('[data-testid="site"]').count()) >= 1)
    assert.ok((await page.locator('[data-testid="gateway"]').count()) >= 1)
  })

  test('a changing demo value shows up', async () => {
    await waitDom(
      'a demo chart',
      () => document.querySelector('[data-testid="resource"][data-kind="chart"], [data-testid="resource"][data-kind="imu"]'),
      null,
      60_000,
    )
    const before = await demoChartValues(E2E_ID)
    await waitDom(
      'a demo sensor value to change on the page',
      ({ before, id }) => {
        for (const el of document.querySelectorAll('[data-testid="node"]')) {
          if (el.dataset.uid === id) continue
          for (const r of el.querySelectorAll('[data-testid="resource"][data-kind="chart"], [data-testid="resource"][data-kind="imu"]')) {
            const k = `${el.dataset.uid}/${r.dataset.res}`
            if (k in before && before[k] !== r.dataset.value) return true
          }
        }
        return false
      },
      { before, id: E2E_ID },
      60_000,
    )
  })

  test('a websocket node appears, its values update, its chart starts from history', async () => {
    wsnode = new WsNode(aiot.url, E2E_ID, {
      name: 'E2E node',
      temperature: '20.0°C',
      led: '0',
      position: '{"lat":48.7128,"lng":2.2005}',
      board: 'e2e-board',
    })
    await wsnode.connect()
    await showCard(E2E_ID)
    await waitDom('the e2e node card', (sel) => document.querySelector(sel)?.dataset.value === '20.0°C', res(E2E_ID, 'temperature'))
    assert.equal(await page.locator(`${node(E2E_ID)} [data-testid="node-name"]`).textContent(), 'E2E node')
    assert.equal(await attr(node(E2E_ID), 'data-state'), 'online')

    wsnode.send({ temperature: '21.5°C' })
    await waitDom('21.5°C', (sel) => document.querySelector(sel)?.dataset.value === '21.5°C', res(E2E_ID, 'temperature'))
    wsnode.send({ temperature: '23.25°C' })
    await waitDom('23.25°C', (sel) => document.querySelector(sel)?.dataset.value === '23.25°C', res(E2E_ID, 'temperature'))
    // The unit is kept for the label, the number is plotted.
    const shown = await page.locator(`${res(E2E_ID, 'temperature')} .reading`).textContent()
    assert.match(shown.replace(/\s+/g, ''), /^23\.25°C/)

    // A fresh page asks the stored history: the chart starts with 3 points.
    await page.reload()
    await waitLive()
    await showCard(E2E_ID)
    await waitDom(
      'the chart of the e2e node to be filled from history',
      (sel) => Number(document.querySelector(sel)?.dataset.points ?? 0) >= 3,
      res(E2E_ID, 'temperature'),
    )
    // The position is listed with its coordinates (no tiles needed).
    await waitDom('the position in the marker list', () => document.querySelector('[data-testid="map"]')?.textContent.includes('48.71280° N'))
    // Drawing markers requests nothing that is not there (Leaflet's default
    // marker images used to 404 on every load).
    assert.deepEqual(failedRequests, [])
  })

  test('the LED toggle reaches the node and the page shows its new state', async () => {
    await showCard(E2E_ID)
    const toggle = page.locator(`${res(E2E_ID, 'led')} [data-testid="led-toggle"]`)
    assert.equal(await attr(res(E2E_ID, 'led'), 'data-led'), 'off')
    await toggle.click()
    const cmd = await wsnode.waitCommand((c) => c.endpoint === 'led')
    assert.equal(cmd.payload, '1')
    await waitDom('the LED to show ON', (sel) => document.querySelector(sel)?.dataset.led === 'on', res(E2E_ID, 'led'))
    await waitDom('the "accepted" toast', () => [...document.querySelectorAll('[data-testid="toast"]')].some((t) => t.dataset.status === 'ok'))
    assert.equal(await attr(res(E2E_ID, 'led'), 'data-pending'), 'false')
  })

  test('a demo node LED toggles', async (t) => {
    const uid = await page.evaluate((id) => {
      for (const el of document.querySelectorAll('[data-testid="node"][data-state="online"]')) {
        const led = el.querySelector('[data-testid="resource"][data-kind="led"]')
        if (el.dataset.uid !== id && led && (led.dataset.led === 'on' || led.dataset.led === 'off')) return el.dataset.uid
      }
      return ''
    }, E2E_ID)
    if (!uid) {
      t.skip('no demo node has an LED')
      return
    }
    const name = await page.locator(`${node(uid)} [data-testid="resource"][data-kind="led"]`).first().getAttribute('data-res')
    const from = await attr(res(uid, name), 'data-led')
    await page.locator(`${res(uid, name)} [data-testid="led-toggle"]`).click()
    await waitDom(
      `the demo LED ${uid}/${name} to leave "${from}"`,
      ({ sel, from }) => {
        const el = document.querySelector(sel)
        return el && el.dataset.led !== from && el.dataset.pending === 'false'
      },
      { sel: res(uid, name), from },
    )
  })

  test('search, resource filter and theme', async () => {
    const uids = () => page.evaluate(() => [...document.querySelectorAll('[data-testid="node"]')].map((n) => n.dataset.uid))
    await page.locator('[data-testid="search"]').fill('e2e-board')
    await waitDom('the search to leave only the e2e node', (id) => {
      const cards = [...document.querySelectorAll('[data-testid="node"]')]
      return cards.length === 1 && cards[0].dataset.uid === id
    }, E2E_ID)
    await page.locator('[data-testid="search"]').fill('')
    await waitDom('every card back', () => document.querySelectorAll('[data-testid="node"]').length > 1)
    assert.ok((await uids()).length > 1)

    // Hide, then show again, the temperature resource.
    await showCard(E2E_ID)
    await page.locator('[data-testid="resources-button"]').click()
    const box = page.locator('.popover label', { hasText: 'temperature' }).first().locator('input')
    await box.uncheck()
    await waitDom('temperature hidden', (sel) => !document.querySelector(sel), res(E2E_ID, 'temperature'))
    await box.check()
    await waitDom('temperature shown', (sel) => !!document.querySelector(sel), res(E2E_ID, 'temperature'))
    await page.keyboard.press('Escape')

    // Theme: system (light here) → light → dark, kept across a reload.
    const theme = () => page.evaluate(() => document.documentElement.dataset.theme)
    assert.equal(await theme(), 'light')
    await page.locator('[data-testid="theme"]').click()
    await page.locator('[data-testid="theme"]').click()
    assert.equal(await theme(), 'dark')
    await page.reload()
    await waitLive()
    assert.equal(await theme(), 'dark')
    await page.locator('[data-testid="theme"]').click()
    assert.equal(await theme(), 'light')
  })

  test('a command the node never answers is reported as failed', async () => {
    wsnode.answer = () => false
    await showCard(E2E_ID)
    const card = page.locator(node(E2E_ID))
    await card.locator('details.more summary').click()
    const form = card.locator('[data-testid="command-form"]')
    await form.locator('input').nth(0).fill('led')
    await form.locator('input').nth(1).fill('0')
    await form.locator('button[type="submit"]').click()
    await wsnode.waitCommand((c) => c.endpoint === 'led' && c.payload === '0')
    await waitDom(
      'the command to be reported as failed',
      (sel) => document.querySelector(sel)?.querySelector('[data-testid="command-status"]')?.classList.contains('error'),
      node(E2E_ID),
      40_000,
    )
    const text = await form.locator('[data-testid="command-status"]').textContent()
    assert.match(text, /timed out|refused|failed|error/i)
    // The LED still shows what the node last said.
    assert.equal(await attr(res(E2E_ID, 'led'), 'data-led'), 'on')
    wsnode.answer = () => true
  })

  test('a node going offline is shown', async () => {
    await wsnode.close()
    await showCard(E2E_ID)
    await waitDom('the e2e node to show offline', (sel) => document.querySelector(sel)?.dataset.state === 'offline', node(E2E_ID))
    assert.equal((await page.locator(`${node(E2E_ID)} [data-testid="node-state"]`).textContent()).trim(), 'Offline')
    // Its last values stay visible.
    assert.equal(await attr(res(E2E_ID, 'temperature'), 'data-value'), '23.25°C')
  })

  test('a dropped connection recovers after aiot restarts', async () => {
    await aiot.stop('SIGTERM')
    await waitDom('the indicator to show the connection lost', () => document.querySelector('[data-testid="conn"]')?.dataset.state !== 'live', null, 20_000)
    await waitDom('the stale-data banner', () => !!document.querySelector('[data-testid="stale-banner"]'), null, 20_000)

    aiot = new Aiot(aiot.bin, args)
    await aiot.start()
    await waitLive(60_000)
    await showCard(E2E_ID)
    // State is rebuilt from the new snapshot: the stored e2e node is back
    // (offline, with its last values) and demo nodes are live again.
    await waitDom('the e2e node from the stored state', (sel) => document.querySelector(sel)?.dataset.value === '23.25°C', res(E2E_ID, 'temperature'), 30_000)
    assert.equal(await attr(node(E2E_ID), 'data-state'), 'offline')
    await waitDom(
      'demo nodes online again',
      (id) => [...document.querySelectorAll('[data-testid="node"][data-state="online"]')].some((n) => n.dataset.uid !== id),
      E2E_ID,
      60_000,
    )
    assert.equal(await page.locator('[data-testid="stale-banner"]').count(), 0)
    const before = await demoChartValues(E2E_ID)
    await waitDom(
      'live values after the restart',
      ({ before, id }) => {
        for (const el of document.querySelectorAll('[data-testid="node"]')) {
          if (el.dataset.uid === id) continue
          for (const r of el.querySelectorAll('[data-testid="resource"][data-kind="chart"], [data-testid="resource"][data-kind="imu"]')) {
            const k = `${el.dataset.uid}/${r.dataset.res}`
            if (!(k in before) || before[k] !== r.dataset.value) return true
          }
        }
        return false
      },
      { before, id: E2E_ID },
      60_000,
    )
  })

  test('the page raised no script errors', () => {
    assert.deepEqual(pageErrors, [])
  })
})
