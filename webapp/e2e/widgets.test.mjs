// End-to-end: the widgets that drive a node (robot pad, ribot joystick, js
// editor), the camera panel, the imu 3D view and the os icons, against the
// real aiot (`aiot run --demo`, its simulated robot, ribot, js and camera
// nodes) and a websocket node driven by this test, which asserts the frames
// it receives. Headless Chromium, mouse, keyboard and touch.
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

const ID = 'e2e-widgets'
const node = (uid) => `[data-testid="node"][data-uid="${uid}"]`
const res = (uid, name) => `${node(uid)} [data-testid="resource"][data-res="${name}"]`

let tmp, aiot, browser, page, wsnode
const pageErrors = []

/** waitDom waits for a condition evaluated in the page, with a readable failure. */
async function waitDom(what, fn, arg, timeout = 30_000, p = page) {
  try {
    return await p.waitForFunction(fn, arg, { timeout, polling: 200 })
  } catch (e) {
    const cards = await p
      .evaluate(() => [...document.querySelectorAll('[data-testid="node"]')].map((n) => `${n.dataset.uid} ${n.dataset.state}: ${[...n.querySelectorAll('[data-testid="resource"]')].map((r) => `${r.dataset.res}=${JSON.stringify(r.dataset.value)}`).join(', ')}`).join('\n'))
      .catch(() => '(page unavailable)')
    throw new Error(`timed out waiting for ${what}\n--- cards ---\n${cards}\n--- node got ---\n${JSON.stringify(wsnode?.commands)}\n--- aiot log tail ---\n${aiot?.tail(25)}\n(${e.message.split('\n')[0]})`)
  }
}

/** only shows one node (the search box), scrolled into view, with its widget res built. */
async function only(uid, resName, p = page) {
  await p.locator('[data-testid="search"]').fill(uid)
  await waitDom(`the card of ${uid} alone`, (sel) => document.querySelectorAll('[data-testid="node"]').length === 1 && !!document.querySelector(sel), node(uid), 60_000, p)
  await p.locator(node(uid)).scrollIntoViewIfNeeded()
  if (resName) await waitDom(`the ${resName} widget of ${uid}`, (sel) => !!document.querySelector(sel), res(uid, resName), 60_000, p)
}

/** status waits for the widget's command status to be want and returns its payload. */
async function status(uid, resName, want, payload) {
  await waitDom(
    `${uid}/${resName}: command ${JSON.stringify(payload)} ${want}`,
    ({ sel, want, payload }) => {
      const el = document.querySelector(sel)
      return el?.dataset.status === want && el.dataset.payload === payload
    },
    { sel: `${res(uid, resName)} [data-testid="cmd-status"]`, want, payload },
  )
}

/** framesOf are the commands the test node got on endpoint. */
const framesOf = (endpoint) => wsnode.commands.filter((c) => c.endpoint === endpoint).map((c) => c.payload)

/** waitFrames waits until the test node has n frames on endpoint. */
async function waitFrames(endpoint, n) {
  await wsnode.waitCommand(() => framesOf(endpoint).length >= n, 30_000)
}

describe('widgets against aiot run --demo', { concurrency: false, skip: browserSkip }, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'goaiot-e2e-widgets-'))
    const bin = await buildAiot(tmp)
    aiot = new Aiot(bin, runArgs(await freePorts(), join(tmp, 'data')))
    await aiot.start()
    browser = await launch()
    page = browser.context.pages()[0] ?? (await browser.context.newPage())
    page.on('pageerror', (e) => pageErrors.push(e.message))
    wsnode = new WsNode(aiot.url, ID, {
      name: 'E2E widgets',
      os: 'micropython',
      robot: 's',
      ribot: '0:0:0\n',
      js: 'print("before");',
      webcam: 'sim-camera.svg',
    })
    await wsnode.connect()
    await page.goto(`${aiot.url}/`)
    await waitDom('the page live', () => document.querySelector('[data-testid="conn"]')?.dataset.state === 'live')
  })

  after(async () => {
    await wsnode?.close().catch(() => {})
    await browser?.close()
    await aiot?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  test('os icons: RIOT, Android and MicroPython in the card header', async () => {
    for (const [uid, os] of [['sim-robot-1', 'riot'], ['sim-camera-1', 'android'], [ID, 'micropython'], ['sim-ws-1', 'other']]) {
      await only(uid)
      await waitDom(`the ${os} icon of ${uid}`, ({ sel, os }) => document.querySelector(sel)?.dataset.os === os, { sel: `${node(uid)} [data-testid="os-icon"]`, os })
    }
  })

  test('robot pad: the buttons and the arrow keys send u, l, r, s', async () => {
    await only(ID, 'robot')
    for (const [m, payload] of [['u', 'u'], ['l', 'l'], ['r', 'r'], ['s', 's']]) {
      await page.locator(`${res(ID, 'robot')} [data-testid="robot-${m}"]`).click()
      await status(ID, 'robot', 'ok', payload)
    }
    assert.deepEqual(framesOf('robot'), ['u', 'l', 'r', 's'])
    await waitDom('the last move shown', (sel) => document.querySelector(sel)?.dataset.value === 's', res(ID, 'robot'))

    await page.locator(`${res(ID, 'robot')} [data-testid="robot-pad"]`).focus()
    for (const [key, payload] of [['ArrowUp', 'u'], ['ArrowLeft', 'l'], ['ArrowRight', 'r'], ['ArrowDown', 's']]) {
      await page.keyboard.press(key)
      await status(ID, 'robot', 'ok', payload)
    }
    assert.deepEqual(framesOf('robot'), ['u', 'l', 'r', 's', 'u', 'l', 'r', 's'])
  })

  test('robot pad on the demo robot: its last move comes back', async () => {
    await only('sim-robot-1', 'robot')
    await page.locator(`${res('sim-robot-1', 'robot')} [data-testid="robot-u"]`).click()
    await status('sim-robot-1', 'robot', 'ok', 'u')
    await waitDom('the demo robot reporting u', (sel) => document.querySelector(sel)?.dataset.value === 'u', res('sim-robot-1', 'robot'))
  })

  test('ribot joystick with the mouse: the frame at once, every second while held, 0:0:0 on release', async () => {
    await only(ID, 'ribot')
    const pad = page.locator(`${res(ID, 'ribot')} [data-testid="ribot-pad"]`)
    const box = await pad.boundingBox()
    const cx = box.x + box.width / 2
    const cy = box.y + box.height / 2
    const max = Math.min(box.width, box.height) / 4 // Pyaiot: half the smaller radius
    await page.mouse.move(cx, cy)
    await page.mouse.down()
    await page.mouse.move(cx + max, cy) // full right: dx -255, as Pyaiot's joystick
    await waitFrames('ribot', 3)
    // The first frame is 0:0:0 too (the centre): wait for one sent after
    // the release, not for that one.
    const held = framesOf('ribot').length
    await page.mouse.up()
    await wsnode.waitCommand(() => framesOf('ribot').slice(held).includes('0:0:0\n'))
    const frames = framesOf('ribot')
    assert.ok(frames.length >= 4, `frames ${JSON.stringify(frames)}`)
    assert.equal(frames.at(-1), '0:0:0\n', 'the release frame')
    for (const f of frames) assert.match(f, /^-?\d{1,3}:-?\d{1,3}:-?\d{1,3}\n$/, `a Pyaiot frame: ${JSON.stringify(f)}`)
    // The first frame is where the button went down (the centre); once
    // moved, the held frames say full right.
    assert.equal(frames[0], '0:0:0\n')
    assert.ok(frames.slice(1, -1).includes('-255:0:-255\n'), `held frames ${JSON.stringify(frames)}`)
    for (const f of frames.slice(1, -1)) {
      const [dx, dy, sum] = f.trim().split(':').map(Number)
      assert.equal(sum, dx + dy, f)
    }
    await status(ID, 'ribot', 'ok', '0:0:0\n')
    await waitDom('the joystick released', (sel) => document.querySelector(sel)?.dataset.held === 'false', `${res(ID, 'ribot')} [data-testid="ribot-pad"]`)
  })

  test('ribot joystick with a finger (touch events)', async () => {
    const before = framesOf('ribot').length
    const box = await page.locator(`${res(ID, 'ribot')} [data-testid="ribot-pad"]`).boundingBox()
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Emulation.setTouchEmulationEnabled', { enabled: true, maxTouchPoints: 1 })
    const x = box.x + box.width / 2
    const y = box.y + box.height / 2 + Math.min(box.width, box.height) / 4 // full down
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x, y, id: 1 }] })
    await waitFrames('ribot', before + 2)
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] })
    await wsnode.waitCommand(() => framesOf('ribot').length > before + 2 && framesOf('ribot').at(-1) === '0:0:0\n')
    const frames = framesOf('ribot').slice(before)
    assert.equal(frames[0], '0:255:255\n', `touch frames ${JSON.stringify(frames)}`)
    assert.equal(frames.at(-1), '0:0:0\n')
    await cdp.detach()
  })

  test('js editor: loaded on demand, Send updates js with the script, the result shows', async () => {
    await only(ID, 'js')
    const editorLoaded = () => page.evaluate(() => performance.getEntriesByType('resource').some((r) => /JsEditor-[^/]*\.js$/.test(r.name)))
    assert.equal(await editorLoaded(), false, 'the editor chunk is not loaded before Edit')
    await page.locator(`${res(ID, 'js')} [data-testid="js-edit"]`).click()
    const code = page.locator(`${res(ID, 'js')} [data-testid="js-code"]`)
    await code.waitFor({ timeout: 30_000 })
    assert.equal(await editorLoaded(), true)
    assert.equal(await code.textContent(), 'print("before");', 'the editor starts from the node script')
    const script = 'var n = 0;\nfor (var i = 0; i < 3; i++) { n += i; }\nprint("n = " + n);'
    await code.fill(script)
    await page.locator(`${res(ID, 'js')} [data-testid="js-send"]`).click()
    const cmd = await wsnode.waitCommand((c) => c.endpoint === 'js')
    assert.equal(cmd.payload, script)
    await status(ID, 'js', 'ok', script)
    await waitDom('the node script shown', ({ sel, script }) => document.querySelector(sel)?.dataset.value === script, { sel: res(ID, 'js'), script })

    // Too long for a node value: refused on the page, nothing sent.
    await code.fill('x'.repeat(4000))
    await page.locator(`${res(ID, 'js')} [data-testid="js-too-long"]`).waitFor()
    assert.equal(await page.locator(`${res(ID, 'js')} [data-testid="js-send"]`).isDisabled(), true)
    await page.locator(`${res(ID, 'js')} [data-testid="js-close"]`).click()
    assert.equal(framesOf('js').length, 1)
  })

  test('js on the demo js node: it reports the script it ran', async () => {
    await only('sim-js-1', 'js')
    await page.locator(`${res('sim-js-1', 'js')} [data-testid="js-edit"]`).click()
    const code = page.locator(`${res('sim-js-1', 'js')} [data-testid="js-code"]`)
    await code.waitFor({ timeout: 30_000 })
    await code.fill('print("from the e2e test");')
    await page.locator(`${res('sim-js-1', 'js')} [data-testid="js-send"]`).click()
    await status('sim-js-1', 'js', 'ok', 'print("from the e2e test");')
    await waitDom('the demo js node reporting it', (sel) => document.querySelector(sel)?.dataset.value === 'print("from the e2e test");', res('sim-js-1', 'js'))
  })

  test('camera: the demo camera shows its test image; a URL of ones own is kept across a reload', async () => {
    await only('sim-camera-1', 'webcam')
    const img = `${res('sim-camera-1', 'webcam')} [data-testid="camera-img"]`
    await waitDom('the test image loaded', (sel) => {
      const i = document.querySelector(sel)
      return i?.complete && i.naturalWidth > 0 && i.src.endsWith('/sim-camera.svg')
    }, img)
    const dot = 'data:image/svg+xml,' + encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="red"/></svg>')
    await page.locator(`${res('sim-camera-1', 'webcam')} [data-testid="camera-settings"]`).click()
    await page.locator(`${res('sim-camera-1', 'webcam')} [data-testid="camera-url"]`).fill(dot)
    await page.locator(`${res('sim-camera-1', 'webcam')} [data-testid="camera-save"]`).click()
    await waitDom('the image of the URL set', ({ sel, dot }) => document.querySelector(sel)?.getAttribute('src') === dot && document.querySelector(sel).naturalWidth === 40, { sel: img, dot })
    await page.reload()
    await only('sim-camera-1', 'webcam')
    await waitDom('the URL set, after a reload', ({ sel, dot }) => document.querySelector(sel)?.getAttribute('src') === dot, { sel: img, dot })
  })

  test('imu: the 3D view turns with the gyro on a desktop', async () => {
    await only('sim-coap-1', 'imu')
    const view = `${res('sim-coap-1', 'imu')} [data-testid="imu-3d"]`
    await waitDom('the 3D view', (sel) => !!document.querySelector(sel), view)
    const first = await page.locator(view).getAttribute('data-angles')
    await waitDom('the box to turn', ({ sel, first }) => document.querySelector(sel)?.dataset.angles !== first, { sel: view, first })
  })

  test('imu: the 3D view is off by default on a phone, with a toggle', async () => {
    const phone = await launch({ viewport: { width: 390, height: 844 } })
    try {
      const p = phone.context.pages()[0] ?? (await phone.context.newPage())
      p.on('pageerror', (e) => pageErrors.push(e.message))
      await p.goto(`${aiot.url}/?q=sim-coap-1`)
      await waitDom('the imu of sim-coap-1 on the phone', (sel) => !!document.querySelector(sel), res('sim-coap-1', 'imu'), 60_000, p)
      const toggle = p.locator(`${res('sim-coap-1', 'imu')} [data-testid="imu-3d-toggle"]`)
      assert.equal(await toggle.isChecked(), false)
      assert.equal(await p.locator(`${res('sim-coap-1', 'imu')} [data-testid="imu-3d"]`).count(), 0)
      const loaded = () => p.evaluate(() => performance.getEntriesByType('resource').some((r) => /Imu3D-[^/]*\.js$/.test(r.name)))
      assert.equal(await loaded(), false, 'the 3D chunk is not fetched on a phone until asked for')
      await toggle.check()
      await p.locator(`${res('sim-coap-1', 'imu')} [data-testid="imu-3d"]`).waitFor({ timeout: 30_000 })
    } finally {
      await phone.close()
    }
  })

  test('the page raised no script errors', () => {
    assert.deepEqual(pageErrors, [])
  })
})
