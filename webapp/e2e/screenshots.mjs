// Screenshots of the dashboard against a real system, light, dark and
// phone, and of the widgets of the demo's robot, ribot, js and camera
// nodes on a desktop and a phone: `npm run screenshots` (writes docs/*.png).
//
// AIOT_URL=http://host:port uses a running aiot; otherwise this starts
// `aiot run --demo` (built like the e2e tests, or $AIOT_BIN) and lets the
// simulated nodes run for SETTLE seconds (default 120) so that the charts
// have some history.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Aiot, buildAiot, freePorts, runArgs, WEBAPP } from './aiot.mjs'
import { launch } from './browser.mjs'
import { WsNode } from './wsnode.mjs'

const out = resolve(process.argv[2] ?? join(WEBAPP, 'docs'))
mkdirSync(out, { recursive: true })

let aiot = null
let tmp = null
let url = process.env.AIOT_URL?.replace(/\/$/, '')
if (!url) {
  tmp = mkdtempSync(join(tmpdir(), 'goaiot-shots-'))
  aiot = new Aiot(await buildAiot(tmp), runArgs(await freePorts(), join(tmp, 'data')))
  url = await aiot.start()
}

// A Linux node with a position, a label and a firmware download in progress,
// next to the demo's simulated nodes.
const node = new WsNode(url, 'lab-gateway-pi', {
  name: 'Lab Raspberry Pi',
  os: 'linux',
  board: 'rpi4',
  temperature: '41.2°C',
  position: '{"lat":48.7136,"lng":2.2052}',
  text: 'Building B, room 112',
  dwnld: '64',
  led: '1',
})
await node.connect()

const settle = Number(process.env.SETTLE ?? (aiot ? 120 : 5))
for (let i = 0; i < settle; i += 10) {
  node.send({ temperature: `${(41 + Math.sin(i / 20) * 2 + Math.random() * 0.4).toFixed(1)}°C` })
  await new Promise((r) => setTimeout(r, Math.min(10, settle - i) * 1000))
}

// SHOTS=widgets takes only the shots whose file name starts with it.
async function shoot(name, { theme, width, height, query = '', settings = {}, prepare }) {
  if (process.env.SHOTS && !name.startsWith(process.env.SHOTS)) return
  const b = await launch({ viewport: { width, height }, colorScheme: theme })
  try {
    const page = b.context.pages()[0] ?? (await b.context.newPage())
    await page.goto(`${url}/`)
    await page.evaluate(({ theme, settings }) => {
      const s = JSON.parse(localStorage.getItem('goaiot.settings.v1') || '{}')
      localStorage.setItem('goaiot.settings.v1', JSON.stringify({ ...s, ...settings, theme }))
    }, { theme, settings })
    await page.goto(`${url}/${query}`)
    await page.waitForFunction(() => document.querySelector('[data-testid="conn"]')?.dataset.state === 'live', null, { timeout: 30_000 })
    await page.waitForTimeout(4000)
    if (prepare) await prepare(page)
    await page.screenshot({ path: join(out, name) })
    console.log('wrote', join(out, name))
  } finally {
    await b.close()
  }
}

try {
  await shoot('dashboard-light.png', { theme: 'light', width: 1440, height: 1000 })
  await shoot('dashboard-dark.png', { theme: 'dark', width: 1440, height: 1000 })
  await shoot('dashboard-phone.png', { theme: 'dark', width: 390, height: 844 })
  // The demo's widget nodes (robot, ribot, js, camera) sort first on the websocket gateway.
  const openEditor = async (page) => {
    await page.locator('[data-testid="js-edit"]').first().click()
    await page.locator('[data-testid="js-code"]').first().waitFor({ timeout: 30_000 })
    await page.waitForTimeout(500)
  }
  const noMap = { showMap: false }
  await shoot('widgets-desktop.png', { theme: 'light', width: 1440, height: 1000, query: '?q=ws%40', settings: noMap, prepare: openEditor })
  await shoot('widgets-phone.png', { theme: 'dark', width: 390, height: 844, query: '?q=ws%40', settings: noMap })
} finally {
  await node.close()
  await aiot?.stop()
  if (tmp) rmSync(tmp, { recursive: true, force: true })
}
