// @vitest-environment happy-dom
// The login control against a real HTTP server on loopback that answers
// /login and /logout as aiot does.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { nextTick } from 'vue'
import LoginControl from '../../src/components/LoginControl.vue'
import { READ_ONLY_LOGIN } from '../../src/lib/store'
import { mountWith, testStore } from './mount'

let server: Server
const posts: Array<{ path: string; body: string }> = []

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      posts.push({ path: req.url ?? '', body })
      const reply = (code: number, v: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(code, { 'Content-Type': 'application/json', ...headers })
        res.end(JSON.stringify(v))
      }
      if (req.method !== 'POST') return reply(405, { error: 'method' })
      if (req.url === '/logout') return reply(200, { role: 'viewer', login: true })
      if (req.url !== '/login') return reply(404, { error: 'not found' })
      const { user, password } = JSON.parse(body) as { user: string; password: string }
      if (user === 'flood') return reply(429, { error: 'slow down' }, { 'Retry-After': '30' })
      if (user === 'ops' && password === 'secret') return reply(200, { user: 'ops', role: 'operator', login: true })
      reply(401, { error: 'wrong user or password' })
    })
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const { port } = server.address() as AddressInfo
  // The page is served by the same server: /login sits beside /ws.
  ;(window as unknown as { happyDOM: { setURL(url: string): void } }).happyDOM.setURL(`http://127.0.0.1:${port}/`)
})
afterAll(() => new Promise<void>((ok) => server.close(() => ok())))

async function control(hello: Record<string, unknown>) {
  const h = testStore()
  await h.feed({ type: 'hello', server: 'goaiot', version: '1', ...hello } as never)
  const w = mountWith(LoginControl, h.store)
  // Settles once the server answered and the store's frame ran.
  const settle = (check: () => void) =>
    vi.waitFor(async () => {
      await h.frame()
      await nextTick()
      check()
    }, { timeout: 10_000, interval: 20 })
  return { ...h, w, settle }
}

async function logIn(w: Awaited<ReturnType<typeof control>>['w'], user: string, password: string) {
  if (!w.find('[data-testid="login-form"]').exists()) await w.get('[data-testid="login-button"]').trigger('click')
  await w.get('[data-testid="login-user"]').setValue(user)
  await w.get('[data-testid="login-password"]').setValue(password)
  await w.get('[data-testid="login-form"]').trigger('submit')
}

describe('LoginControl', () => {
  it('shows nothing for a server without roles (Pyaiot)', async () => {
    const h = await control({})
    expect(h.w.find('[data-testid="auth"]').exists()).toBe(false)
    h.w.unmount()
  })

  const who: Array<{ name: string; hello: Record<string, unknown>; user: string; role: string; login: boolean; logout: boolean }> = [
    { name: 'an anonymous viewer of a server with users', hello: { role: 'viewer', login: true }, user: 'anonymous', role: 'viewer', login: true, logout: false },
    { name: 'a viewer of a server without users', hello: { role: 'viewer', login: false }, user: 'anonymous', role: 'viewer', login: false, logout: false },
    { name: 'a logged-in operator', hello: { role: 'operator', user: 'ops', login: true }, user: 'ops', role: 'operator', login: false, logout: true },
    { name: 'a local operator (no users)', hello: { role: 'operator' }, user: 'anonymous', role: 'operator', login: false, logout: false },
  ]
  for (const tc of who) {
    it(`shows ${tc.name}`, async () => {
      const h = await control(tc.hello)
      expect(h.w.get('[data-testid="auth-user"]').text()).toBe(tc.user)
      expect(h.w.get('[data-testid="auth-role"]').text()).toBe(tc.role)
      expect(h.w.find('[data-testid="login-button"]').exists()).toBe(tc.login)
      expect(h.w.find('[data-testid="logout"]').exists()).toBe(tc.logout)
      h.w.unmount()
    })
  }

  const refusals: Array<{ name: string; user: string; password: string; shown: string }> = [
    { name: 'a wrong password', user: 'ops', password: 'nope', shown: 'Wrong user or password' },
    { name: 'too many attempts', user: 'flood', password: 'x', shown: 'Too many attempts, try again in 30 s' },
  ]
  for (const tc of refusals) {
    it(`says why a login failed: ${tc.name}`, async () => {
      const h = await control({ role: 'viewer', login: true })
      await logIn(h.w, tc.user, tc.password)
      await h.settle(() => expect(h.w.get('[data-testid="login-error"]').text()).toBe(tc.shown))
      expect(h.w.get('[data-testid="auth-role"]').text()).toBe('viewer')
      expect(h.store.metaRef.value.readOnly).toBe(READ_ONLY_LOGIN)
      h.w.unmount()
    })
  }

  it('logs in as an operator, then out again', async () => {
    const h = await control({ role: 'viewer', login: true })
    const submit = () => h.w.get('[data-testid="login-submit"]')
    await h.w.get('[data-testid="login-button"]').trigger('click')
    expect(submit().attributes('disabled'), 'nothing to send yet').toBeDefined()
    posts.length = 0
    await logIn(h.w, 'ops', 'secret')
    await h.settle(() => expect(h.w.get('[data-testid="auth-role"]').text()).toBe('operator'))
    expect(posts).toEqual([{ path: '/login', body: JSON.stringify({ user: 'ops', password: 'secret' }) }])
    expect(h.w.get('[data-testid="auth-user"]').text()).toBe('ops')
    expect(h.w.find('[data-testid="login-form"]').exists()).toBe(false)
    expect(h.store.canCommand).toBe(true)
    await h.w.get('[data-testid="logout"]').trigger('click')
    await h.settle(() => expect(h.w.get('[data-testid="auth-role"]').text()).toBe('viewer'))
    expect(posts.at(-1)?.path).toBe('/logout')
    expect(h.w.get('[data-testid="auth-user"]').text()).toBe('anonymous')
    expect(h.w.find('[data-testid="login-button"]').exists()).toBe(true)
    h.w.unmount()
  })

  it('Escape closes the form', async () => {
    const h = await control({ role: 'viewer', login: true })
    await h.w.get('[data-testid="login-button"]').trigger('click')
    expect(h.w.find('[data-testid="login-form"]').exists()).toBe(true)
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))
    await nextTick()
    expect(h.w.find('[data-testid="login-form"]').exists()).toBe(false)
    h.w.unmount()
  })
})
