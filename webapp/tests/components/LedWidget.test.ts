// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest'
import LedWidget from '../../src/widgets/LedWidget.vue'
import { READ_ONLY_LOGIN, type ResourceRec } from '../../src/lib/store'
import { T, mountWith, testStore } from './mount'

async function led(value: string, opts: { disabled?: string; connected?: boolean } = {}) {
  const h = testStore({ connected: opts.connected })
  await h.feed({ type: 'new', uid: 'a', state: 'online', ts: T }, { type: 'update', uid: 'a', endpoint: 'led', data: value, ts: T })
  const res = h.store.nodes.get('a')!.resources.get('led') as ResourceRec
  const w = mountWith(LedWidget, h.store, { props: { res, value, disabled: opts.disabled ?? '' } })
  const section = () => w.get('[data-testid="resource"]')
  const toggle = () => w.find('[data-testid="led-toggle"]')
  return { ...h, w, res, section, toggle }
}

describe('LedWidget', () => {
  const states: Array<{ name: string; value: string; led: string; shown: string; next: string }> = [
    { name: '1 is on', value: '1', led: 'on', shown: 'ON', next: '0' },
    { name: 'on is on', value: ' On ', led: 'on', shown: 'ON', next: '0' },
    { name: 'true is on', value: 'true', led: 'on', shown: 'ON', next: '0' },
    { name: '0 is off', value: '0', led: 'off', shown: 'OFF', next: '1' },
    { name: 'off is off', value: 'off', led: 'off', shown: 'OFF', next: '1' },
    { name: 'anything else is unknown, shown as sent', value: 'blink', led: 'unknown', shown: 'blink', next: '1' },
  ]
  for (const tc of states) {
    it(`${tc.name}; the switch sends ${tc.next}`, async () => {
      const h = await led(tc.value)
      expect(h.section().attributes('data-led')).toBe(tc.led)
      expect(h.w.get('[data-testid="value"]').text()).toBe(tc.shown)
      expect(h.toggle().attributes('aria-checked')).toBe(String(tc.led === 'on'))
      await h.toggle().trigger('click')
      expect(h.sent).toEqual([{ type: 'update', data: { uid: 'a', endpoint: 'led', payload: tc.next }, id: 'c1' }])
      h.w.unmount()
    })
  }

  it('shows the command pending until its result, then ready again', async () => {
    const h = await led('0')
    await h.toggle().trigger('click')
    await h.frame()
    expect(h.section().attributes('data-pending')).toBe('true')
    expect(h.toggle().attributes('disabled')).toBeDefined()
    expect(h.toggle().attributes('aria-busy')).toBe('true')
    expect(h.w.get('[role="status"]').text()).toBe('Sending 1…')
    await h.toggle().trigger('click')
    expect(h.sent, 'a second click while pending sends nothing').toHaveLength(1)
    await h.feed({ type: 'result', id: 'c1', ok: true })
    expect(h.section().attributes('data-pending')).toBe('false')
    expect(h.toggle().attributes('disabled')).toBeUndefined()
    h.w.unmount()
  })

  const failures: Array<{ name: string; error: string; shown: string }> = [
    { name: 'refused by the node', error: 'node said no', shown: 'Refused: node said no' },
    { name: 'timed out', error: 'timeout', shown: 'No answer from the node (timed out)' },
  ]
  for (const tc of failures) {
    it(`says why a command failed: ${tc.name}`, async () => {
      const h = await led('0')
      await h.toggle().trigger('click')
      await h.feed({ type: 'result', id: 'c1', ok: false, error: tc.error })
      expect(h.w.get('[data-testid="cmd-error"]').text()).toBe(tc.shown)
      expect(h.section().attributes('data-pending')).toBe('false')
      h.w.unmount()
    })
  }

  it('a queued command waits for the node until its outcome', async () => {
    const h = await led('0')
    h.store.setQueueIfOffline(true, 600)
    await h.toggle().trigger('click')
    expect(h.sent[0]).toMatchObject({ data: { payload: '1', queue_for: 600 } })
    await h.feed({ type: 'result', id: 'c1', ok: true, code: 'queued', command: 'Q7', until: T + 600_000 })
    expect(h.section().attributes('data-pending')).toBe('queued')
    expect(h.toggle().attributes('title')).toBe('Queued: waits for the node to come back')
    await h.feed({ type: 'outcome', command: 'Q7', uid: 'a', endpoint: 'led', ok: true, code: 'delivered' })
    expect(h.section().attributes('data-pending')).toBe('false')
    h.w.unmount()
  })

  it('a command that cannot be sent says so', async () => {
    const h = await led('0', { connected: false })
    await h.toggle().trigger('click')
    await h.frame()
    expect(h.w.get('[data-testid="cmd-error"]').text()).toBe('Refused: not connected')
    h.w.unmount()
  })

  it('disabled (offline node): the switch is greyed out with the reason', async () => {
    const h = await led('1', { disabled: 'The node is offline' })
    expect(h.toggle().attributes('disabled')).toBeDefined()
    expect(h.toggle().attributes('title')).toBe('The node is offline')
    await h.toggle().trigger('click')
    expect(h.sent).toEqual([])
    h.w.unmount()
  })

  it('a viewer gets a lock and no switch', async () => {
    const h = await led('1', { disabled: READ_ONLY_LOGIN })
    expect(h.toggle().exists()).toBe(false)
    expect(h.w.get('[data-testid="led-readonly"]').attributes('title')).toBe(READ_ONLY_LOGIN)
    expect(h.w.get('[data-testid="value"]').text()).toBe('ON')
    h.w.unmount()
  })
})
