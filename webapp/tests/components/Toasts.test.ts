// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest'
import Toasts from '../../src/components/Toasts.vue'
import { T, mountWith, testStore } from './mount'

describe('Toasts', () => {
  it('shows one toast per node resource, its newest command', async () => {
    const h = testStore()
    await h.feed({ type: 'new', uid: 'a', state: 'online', ts: T })
    const w = mountWith(Toasts, h.store)
    h.store.command('a', 'ribot', '10:0:10\n')
    h.store.command('a', 'ribot', '20:0:20\n')
    h.store.command('a', 'led', '1')
    h.store.command('a', 'ribot', '0:0:0\n')
    await h.frame()
    const toasts = w.findAll('[data-testid="toast"]')
    expect(toasts).toHaveLength(2)
    expect(toasts.map((t) => t.text()).join(' | ')).toMatch(/led.*\|.*ribot/s)
    expect(toasts[1].text()).toContain('0:0:0')
    w.unmount()
  })
})
