// End-to-end: login and roles. The real aiot with a users file made by
// `aiot passwd`: the local browser is then an anonymous viewer (no LED
// switch, a read-only hint), logs in as an operator (the page reconnects
// /ws and may toggle a demo LED), and logs out again.
//
// Run with `npm run e2e` (builds the web app, then aiot). AIOT_BIN=path
// skips building aiot.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aiot, buildAiot, freePorts, runArgs } from './aiot.mjs'
import { browserSkip, launch } from './browser.mjs'

const USER = 'ops'
const PASSWORD = 'e2e-secret-pw'
const node = (uid) => `[data-testid="node"][data-uid="${uid}"]`

let tmp, aiot, browser, page
const pageErrors = []

async function waitDom(what, fn, arg, timeout = 30_000) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 200 })
  } catch (e) {
    const auth = await page.evaluate(() => document.querySelector('[data-testid="auth"]')?.outerHTML ?? '(no auth control)').catch(() => '(page unavailable)')
    throw new Error(`timed out waiting for ${what}\n--- auth ---\n${auth}\n--- aiot log tail ---\n${aiot?.tail(25)}\n(${e.message.split('\n')[0]})`)
  }
}

const waitLive = () =>
  waitDom('the connection indicator to show "live"', () => document.querySelector('[data-testid="conn"]')?.dataset.state === 'live')
const waitRole = (role, user) =>
  waitDom(`role ${role} (${user || 'anonymous'})`, ({ role, user }) => {
    const el = document.querySelector('[data-testid="auth"]')
    return el && el.dataset.role === role && el.dataset.user === user
  }, { role, user })

describe('login and roles against aiot run --demo --users FILE', { concurrency: false, skip: browserSkip }, () => {
  let ledNode = ''
  let ledName = ''
  const led = () => `${node(ledNode)} [data-testid="resource"][data-res="${ledName}"]`

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'goaiot-e2e-login-'))
    const bin = await buildAiot(tmp)
    const users = join(tmp, 'users')
    const r = spawnSync(bin, ['passwd', '--users', users, USER], { input: `${PASSWORD}\n`, encoding: 'utf8' })
    assert.equal(r.status, 0, `aiot passwd failed: ${r.stderr}${r.stdout}`)
    aiot = new Aiot(bin, runArgs(await freePorts(), join(tmp, 'data'), ['--users', users]))
    await aiot.start()
    browser = await launch()
    page = browser.context.pages()[0] ?? (await browser.context.newPage())
    page.on('pageerror', (e) => pageErrors.push(e.message))
  })

  after(async () => {
    await browser?.close()
    await aiot?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  test('GET /login says login is possible and the local browser is a viewer', async () => {
    const st = await (await fetch(`${aiot.url}/login`)).json()
    assert.equal(st.login, true)
    assert.equal(st.role, 'viewer')
  })

  test('a viewer sees values but no LED switch, and a read-only hint', async () => {
    await page.goto(`${aiot.url}/`)
    await waitLive()
    await waitRole('viewer', '')
    await waitDom('a demo node with an LED', () =>
      [...document.querySelectorAll('[data-testid="node"][data-state="online"]')].some((el) => {
        const l = el.querySelector('[data-testid="resource"][data-kind="led"]')
        return l && (l.dataset.led === 'on' || l.dataset.led === 'off')
      }), null, 60_000)
    ;[ledNode, ledName] = await page.evaluate(() => {
      for (const el of document.querySelectorAll('[data-testid="node"][data-state="online"]')) {
        const l = el.querySelector('[data-testid="resource"][data-kind="led"]')
        if (l && (l.dataset.led === 'on' || l.dataset.led === 'off')) return [el.dataset.uid, l.dataset.res]
      }
      return ['', '']
    })
    await page.locator(node(ledNode)).scrollIntoViewIfNeeded()
    assert.equal(await page.locator(`${led()} [data-testid="led-toggle"]`).count(), 0, 'a viewer must not get an LED switch')
    const hint = await page.locator(`${led()} [data-testid="led-readonly"]`).getAttribute('title')
    assert.match(hint, /read-only: log in as an operator/)
    assert.equal(await page.locator('[data-testid="led-toggle"]').count(), 0, 'no LED switch anywhere')
  })

  test('a viewer sees the robot, ribot and js widgets read-only', async () => {
    for (const [uid, control] of [['sim-robot-1', 'robot-pad'], ['sim-ribot-1', 'ribot-pad'], ['sim-js-1', 'js-edit']]) {
      await page.locator('[data-testid="search"]').fill(uid)
      await waitDom(`the widget of ${uid}, read-only`, (sel) => !!document.querySelector(sel), `${node(uid)} [data-testid="widget-readonly"]`, 60_000)
      assert.equal(await page.locator(`${node(uid)} [data-testid="${control}"]`).count(), 0, `a viewer must not get the ${control} of ${uid}`)
      assert.match(await page.locator(`${node(uid)} [data-testid="widget-readonly"]`).textContent(), /read-only: log in as an operator/)
    }
    await page.locator('[data-testid="search"]').fill('')
  })

  test('a wrong password is refused with a message', async () => {
    await page.locator('[data-testid="login-button"]').click()
    await page.locator('[data-testid="login-user"]').fill(USER)
    await page.locator('[data-testid="login-password"]').fill('wrong password')
    await page.locator('[data-testid="login-submit"]').click()
    await waitDom('the login error', () => /wrong user or password/i.test(document.querySelector('[data-testid="login-error"]')?.textContent ?? ''))
    assert.equal(await page.locator('[data-testid="auth"]').getAttribute('data-role'), 'viewer')
  })

  test('logging in as an operator reconnects and the LED toggles', async () => {
    await page.locator('[data-testid="login-password"]').fill(PASSWORD)
    await page.locator('[data-testid="login-submit"]').click()
    await waitRole('operator', USER)
    await waitLive()
    await page.locator(node(ledNode)).scrollIntoViewIfNeeded()
    const toggle = page.locator(`${led()} [data-testid="led-toggle"]`)
    await toggle.waitFor({ timeout: 30_000 })
    const from = await page.locator(led()).getAttribute('data-led')
    await toggle.click()
    await waitDom(`the LED ${ledNode}/${ledName} to leave "${from}"`, ({ sel, from }) => {
      const el = document.querySelector(sel)
      return el && el.dataset.led !== from && el.dataset.pending === 'false'
    }, { sel: led(), from })
    assert.equal(await page.locator(`${led()} [data-testid="cmd-error"]`).count(), 0)
  })

  test('the session survives a reload; logging out makes the page a viewer again', async () => {
    await page.reload()
    await waitLive()
    await waitRole('operator', USER)
    await page.locator('[data-testid="logout"]').click()
    await waitRole('viewer', '')
    await waitLive()
    await page.locator(node(ledNode)).scrollIntoViewIfNeeded()
    await page.locator(`${led()} [data-testid="led-readonly"]`).waitFor({ timeout: 30_000 })
    assert.equal(await page.locator('[data-testid="led-toggle"]').count(), 0)
    await page.locator('[data-testid="login-button"]').waitFor()
  })

  test('no script errors', () => {
    assert.deepEqual(pageErrors, [])
  })
})
