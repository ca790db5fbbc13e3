// @vitest-environment happy-dom
import { beforeAll, describe, expect, it } from 'vitest'
import NodeCard from '../../src/components/NodeCard.vue'
import type { ServerMsg } from '../../src/lib/protocol'
import { READ_ONLY_LOGIN } from '../../src/lib/store'
import { T, inView, mountWith, testStore } from './mount'

const node = (extra: Partial<Extract<ServerMsg, { type: 'new' }>> = {}): ServerMsg =>
  ({ type: 'new', uid: 'n1', site: 'lab', gateway: 'coap-1', protocol: 'coap', address: 'fd00::1', state: 'online', ts: T, ...extra })
const upd = (endpoint: string, data: string): ServerMsg => ({ type: 'update', uid: 'n1', endpoint, data, ts: T })

async function card(opts: { readOnly?: string; hidden?: string[]; msgs?: ServerMsg[] } = {}) {
  const h = testStore()
  await h.feed(node(), ...(opts.msgs ?? [upd('name', 'Kitchen'), upd('board', 'samr21-xpro'), upd('os', 'riot'), upd('led', '1'), upd('mood', 'happy')]))
  const w = mountWith(NodeCard, h.store, {
    props: { uid: 'n1', hidden: new Set(opts.hidden ?? []), mapShown: false, readOnly: opts.readOnly ?? '' },
  })
  const res = (name: string) => w.find(`[data-testid="resource"][data-res="${name}"]`)
  return { ...h, w, res }
}

describe('NodeCard', () => {
  beforeAll(inView)

  it('shows the node: name, state, protocol, address, details and widgets by kind', async () => {
    const h = await card()
    const el = h.w.get('[data-testid="node"]')
    expect(el.attributes('data-uid')).toBe('n1')
    expect(el.attributes('data-state')).toBe('online')
    expect(h.w.get('[data-testid="node-name"]').text()).toBe('Kitchen')
    expect(h.w.get('[data-testid="node-state"]').text()).toBe('Online')
    expect(h.w.get('.tag').text()).toBe('coap')
    expect(h.w.get('.addr').text()).toBe('fd00::1')
    expect(h.w.get('summary').text()).toContain('samr21-xpro')
    expect(h.res('led').attributes('data-kind')).toBe('led')
    expect(h.res('mood').attributes('data-kind')).toBe('text')
    expect(h.res('mood').get('[data-testid="value"]').text()).toBe('happy')
    expect(h.w.find('time').exists()).toBe(true)
    h.w.unmount()
  })

  it('follows its node at the store\'s frame', async () => {
    const h = await card()
    h.store.apply(upd('mood', 'grumpy'))
    h.store.apply(upd('name', 'Cellar'))
    expect(h.res('mood').attributes('data-value'), 'not before the frame').toBe('happy')
    await h.frame()
    expect(h.res('mood').attributes('data-value')).toBe('grumpy')
    expect(h.w.get('[data-testid="node-name"]').text()).toBe('Cellar')
    h.w.unmount()
  })

  const states: Array<{ name: string; msg: ServerMsg; state: string; label: string; ledDisabled: boolean }> = [
    { name: 'offline', msg: { type: 'out', uid: 'n1', ts: T }, state: 'offline', label: 'Offline', ledDisabled: true },
    { name: 'rebooted', msg: { type: 'reset', uid: 'n1', ts: T }, state: 'reset', label: 'Rebooted', ledDisabled: false },
  ]
  for (const tc of states) {
    it(`shows the node ${tc.name}`, async () => {
      const h = await card()
      await h.feed(tc.msg)
      expect(h.w.get('[data-testid="node"]').attributes('data-state')).toBe(tc.state)
      expect(h.w.get('[data-testid="node-state"]').text()).toBe(tc.label)
      const toggle = h.w.find('[data-testid="led-toggle"]')
      if (tc.state === 'reset') {
        expect(h.w.get('.discovering').text()).toContain('rediscovering')
        expect(toggle.exists(), 'a rebooted node has no resources yet').toBe(false)
      } else {
        expect(toggle.attributes('disabled') !== undefined).toBe(tc.ledDisabled)
        expect(toggle.attributes('title')).toBe('The node is offline')
        expect(h.res('mood').attributes('data-value'), 'the last values stay').toBe('happy')
      }
      h.w.unmount()
    })
  }

  it('a new node is discovered, then shows its resources', async () => {
    const h = await card({ msgs: [] })
    expect(h.w.get('.discovering').text()).toBe('Discovering node…')
    expect(h.w.get('[data-testid="node-name"]').text(), 'no name: the uid').toBe('n1')
    await h.feed(upd('temperature-text', '21'))
    expect(h.w.find('.discovering').exists()).toBe(false)
    expect(h.res('temperature-text').exists()).toBe(true)
    h.w.unmount()
  })

  it('hides the resources the page hides', async () => {
    const h = await card({ hidden: ['mood'] })
    expect(h.res('mood').exists()).toBe(false)
    expect(h.res('led').exists()).toBe(true)
    h.w.unmount()
  })

  it('a viewer gets the read-only hint instead of command controls', async () => {
    const h = await card({ readOnly: READ_ONLY_LOGIN })
    expect(h.w.find('[data-testid="led-toggle"]').exists()).toBe(false)
    expect(h.w.find('[data-testid="led-readonly"]').exists()).toBe(true)
    const details = h.w.get('details')
    ;(details.element as HTMLDetailsElement).open = true
    await details.trigger('toggle')
    expect(h.w.get('[data-testid="command-readonly"]').text()).toBe(READ_ONLY_LOGIN)
    expect(h.w.find('[data-testid="command-form"]').exists()).toBe(false)
    h.w.unmount()
  })

  it('the details hold the info and a command form that sends', async () => {
    const h = await card()
    const details = h.w.get('details')
    expect(h.w.find('[data-testid="command-form"]').exists(), 'built when first opened').toBe(false)
    ;(details.element as HTMLDetailsElement).open = true
    await details.trigger('toggle')
    expect(h.res('board').attributes('data-value')).toBe('samr21-xpro')
    const form = h.w.get('[data-testid="command-form"]')
    await form.get('input.pl').setValue('0')
    await form.trigger('submit')
    expect(h.sent).toEqual([{ type: 'update', data: { uid: 'n1', endpoint: 'led', payload: '0' }, id: 'c1' }])
    await h.frame()
    expect(h.w.get('[data-testid="command-status"]').text()).toContain('Sending led = “0”')
    await h.feed({ type: 'result', id: 'c1', ok: true })
    expect(h.w.get('[data-testid="command-status"]').text()).toBe('Accepted: led = “0”')
    h.w.unmount()
  })

  it('the queue checkbox makes commands wait for an offline node', async () => {
    const h = await card()
    const details = h.w.get('details')
    ;(details.element as HTMLDetailsElement).open = true
    await details.trigger('toggle')
    await h.w.get('[data-testid="command-queue"]').setValue(true)
    await h.frame()
    expect(h.store.queueIfOffline).toBe(true)
    expect((h.w.get('[data-testid="command-queue"]').element as HTMLInputElement).checked).toBe(true)
    await h.w.get('[data-testid="command-form"]').trigger('submit')
    expect(h.sent[0]).toMatchObject({ data: { uid: 'n1', endpoint: 'led', queue_for: 3600 } })
    await h.feed({ type: 'result', id: 'c1', ok: true, code: 'queued', command: 'Q1', until: T + 3_600_000 })
    expect(h.w.get('[data-testid="command-status"]').text()).toContain('Waiting for the node')
    expect(h.res('led').attributes('data-pending')).toBe('queued')
    h.w.unmount()
  })

  it('disappears with its node', async () => {
    const h = await card()
    h.store.beginResync()
    await h.feed({ type: 'synced', nodes: 0 })
    expect(h.w.find('[data-testid="node"]').exists()).toBe(false)
    h.w.unmount()
  })
})
