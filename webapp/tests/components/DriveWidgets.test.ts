// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import RobotWidget from '../../src/widgets/RobotWidget.vue'
import RibotWidget from '../../src/widgets/RibotWidget.vue'
import JsWidget from '../../src/widgets/JsWidget.vue'
import CameraWidget from '../../src/widgets/CameraWidget.vue'
import OsIcon from '../../src/components/OsIcon.vue'
import { READ_ONLY_LOGIN, type ResourceRec } from '../../src/lib/store'
import { T, mountWith, testStore } from './mount'

/** widget mounts a drive widget on resource res of node a, whose value is value. */
async function widget(c: typeof RobotWidget | typeof RibotWidget | typeof JsWidget, res: string, value: string, disabled = '') {
  const h = testStore()
  await h.feed({ type: 'new', uid: 'a', state: 'online', ts: T }, { type: 'update', uid: 'a', endpoint: res, data: value, ts: T })
  const r = h.store.nodes.get('a')!.resources.get(res) as ResourceRec
  const w = mountWith(c, h.store, { props: { res: r, value, disabled } })
  const payloads = () => h.sent.map((f) => (f.type === 'update' ? (f.data as { endpoint: string; payload: string }) : null)).filter(Boolean).map((d) => `${d!.endpoint}=${d!.payload}`)
  return { ...h, w, payloads }
}

describe('RobotWidget', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  const buttons: Array<{ move: string; label: string }> = [
    { move: 'u', label: 'Forward' },
    { move: 'l', label: 'Left' },
    { move: 'r', label: 'Right' },
    { move: 's', label: 'Stop' },
  ]
  for (const tc of buttons) {
    it(`the ${tc.label} button sends robot ${tc.move}`, async () => {
      const h = await widget(RobotWidget, 'robot', 's')
      await h.w.get(`[data-testid="robot-${tc.move}"]`).trigger('click')
      expect(h.sent).toEqual([{ type: 'update', data: { uid: 'a', endpoint: 'robot', payload: tc.move }, id: 'c1' }])
      h.w.unmount()
    })
  }

  const keys: Array<{ key: string; move: string }> = [
    { key: 'ArrowUp', move: 'u' },
    { key: 'ArrowLeft', move: 'l' },
    { key: 'ArrowRight', move: 'r' },
    { key: 'ArrowDown', move: 's' },
    { key: ' ', move: 's' },
  ]
  for (const tc of keys) {
    it(`the ${tc.key === ' ' ? 'space' : tc.key} key sends robot ${tc.move}`, async () => {
      const h = await widget(RobotWidget, 'robot', 's')
      await h.w.get('[data-testid="robot-pad"]').trigger('keydown', { key: tc.key })
      expect(h.payloads()).toEqual([`robot=${tc.move}`])
      h.w.unmount()
    })
  }

  it('ignores key repeats; a move within 200 ms of the last waits, only the newest', async () => {
    const h = await widget(RobotWidget, 'robot', 's')
    const pad = h.w.get('[data-testid="robot-pad"]')
    await pad.trigger('keydown', { key: 'ArrowUp' })
    await pad.trigger('keydown', { key: 'ArrowUp', repeat: true })
    await pad.trigger('keydown', { key: 'ArrowLeft' })
    await pad.trigger('keydown', { key: 'ArrowRight' })
    expect(h.payloads()).toEqual(['robot=u'])
    vi.advanceTimersByTime(199)
    expect(h.payloads()).toEqual(['robot=u'])
    vi.advanceTimersByTime(1)
    expect(h.payloads()).toEqual(['robot=u', 'robot=r'])
    vi.advanceTimersByTime(1000)
    await pad.trigger('keydown', { key: 'ArrowDown' })
    expect(h.payloads()).toEqual(['robot=u', 'robot=r', 'robot=s'])
    h.w.unmount()
  })

  it('shows the last move and the command pending, then its result', async () => {
    const h = await widget(RobotWidget, 'robot', 'u')
    expect(h.w.get('[data-testid="value"]').text()).toBe('Forward')
    await h.w.get('[data-testid="robot-r"]').trigger('click')
    await h.frame()
    expect(h.w.get('[data-testid="cmd-status"]').attributes('data-status')).toBe('pending')
    await h.feed({ type: 'result', id: 'c1', ok: false, error: 'refused: the node reported robot="u", not "r"' })
    const st = h.w.get('[data-testid="cmd-status"]')
    expect(st.attributes('data-status')).toBe('error')
    expect(st.text()).toBe('Refused: refused: the node reported robot="u", not "r"')
    h.w.unmount()
  })

  it('a viewer sees the last move, a lock and no pad', async () => {
    const h = await widget(RobotWidget, 'robot', 'l', READ_ONLY_LOGIN)
    expect(h.w.find('[data-testid="robot-pad"]').exists()).toBe(false)
    expect(h.w.get('[data-testid="widget-readonly"]').text()).toBe(READ_ONLY_LOGIN)
    expect(h.w.get('[data-testid="value"]').text()).toBe('Left')
    h.w.unmount()
  })

  it('an offline node: the buttons are disabled and send nothing', async () => {
    const h = await widget(RobotWidget, 'robot', 's', 'The node is offline')
    await h.w.get('[data-testid="robot-u"]').trigger('click')
    await h.w.get('[data-testid="robot-pad"]').trigger('keydown', { key: 'ArrowUp' })
    expect(h.sent).toEqual([])
    expect(h.w.get('[data-testid="robot-u"]').attributes('disabled')).toBeDefined()
    h.w.unmount()
  })
})

describe('RibotWidget', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  async function held() {
    const h = await widget(RibotWidget, 'ribot', '0:0:0\n')
    const pad = h.w.get('[data-testid="ribot-pad"]')
    // happy-dom lays nothing out: the joystick is 200×200 at (0, 0).
    ;(pad.element as HTMLElement).getBoundingClientRect = () => ({ left: 0, top: 0, width: 200, height: 200, right: 200, bottom: 200, x: 0, y: 0, toJSON: () => ({}) })
    return { ...h, pad }
  }

  it('sends the frame at once, every second while held, and 0:0:0 on release', async () => {
    const h = await held()
    await h.pad.trigger('pointerdown', { button: 0, clientX: 125, clientY: 100, pointerId: 1 })
    expect(h.payloads()).toEqual(['ribot=-128:0:-128\n'])
    await h.pad.trigger('pointermove', { clientX: 100, clientY: 150, pointerId: 1 })
    vi.advanceTimersByTime(999)
    expect(h.payloads()).toHaveLength(1)
    vi.advanceTimersByTime(1)
    vi.advanceTimersByTime(1000)
    expect(h.payloads()).toEqual(['ribot=-128:0:-128\n', 'ribot=0:255:255\n', 'ribot=0:255:255\n'])
    await h.pad.trigger('pointerup', { pointerId: 1 })
    vi.advanceTimersByTime(3000)
    expect(h.payloads()).toEqual(['ribot=-128:0:-128\n', 'ribot=0:255:255\n', 'ribot=0:255:255\n', 'ribot=0:0:0\n'])
    h.w.unmount()
  })

  it('a lost pointer (cancel) releases it too, once', async () => {
    const h = await held()
    await h.pad.trigger('pointerdown', { button: 0, clientX: 100, clientY: 50, pointerId: 1 })
    await h.pad.trigger('pointercancel', { pointerId: 1 })
    await h.pad.trigger('lostpointercapture', { pointerId: 1 })
    expect(h.payloads()).toEqual(['ribot=0:-255:-255\n', 'ribot=0:0:0\n'])
    h.w.unmount()
  })

  it('unmounted while held, it releases', async () => {
    const h = await held()
    await h.pad.trigger('pointerdown', { button: 0, clientX: 150, clientY: 100, pointerId: 1 })
    h.w.unmount()
    vi.advanceTimersByTime(5000)
    expect(h.payloads()).toEqual(['ribot=-255:0:-255\n', 'ribot=0:0:0\n'])
  })

  it('a viewer gets no joystick', async () => {
    const h = await widget(RibotWidget, 'ribot', '3:4:7\n', READ_ONLY_LOGIN)
    expect(h.w.find('[data-testid="ribot-pad"]').exists()).toBe(false)
    expect(h.w.get('[data-testid="value"]').text()).toBe('3:4:7')
    h.w.unmount()
  })
})

describe('JsWidget', () => {
  it('shows the script the node runs and an Edit button', async () => {
    const h = await widget(JsWidget, 'js', 'print(1);')
    expect(h.w.get('[data-testid="value"]').text()).toBe('print(1);')
    expect(h.w.find('[data-testid="js-edit"]').exists()).toBe(true)
    h.w.unmount()
  })

  it('a viewer sees the script read-only', async () => {
    const h = await widget(JsWidget, 'js', 'print(1);', READ_ONLY_LOGIN)
    expect(h.w.find('[data-testid="js-edit"]').exists()).toBe(false)
    expect(h.w.find('[data-testid="widget-readonly"]').exists()).toBe(true)
    h.w.unmount()
  })
})

describe('CameraWidget', () => {
  it('shows the image at the node URL; a URL of its own replaces it', async () => {
    const h = testStore()
    await h.feed({ type: 'new', uid: 'cam', state: 'online', ts: T }, { type: 'update', uid: 'cam', endpoint: 'webcam', data: 'http://cam.local/a.jpg', ts: T })
    const res = h.store.nodes.get('cam')!.resources.get('webcam') as ResourceRec
    const w = mountWith(CameraWidget, h.store, { props: { res, value: 'http://cam.local/a.jpg' } })
    expect(w.get('[data-testid="camera-img"]').attributes('src')).toBe('http://cam.local/a.jpg')
    await w.get('[data-testid="camera-settings"]').trigger('click')
    await w.get('[data-testid="camera-url"]').setValue('javascript:alert(1)')
    expect(w.get('[data-testid="camera-save"]').attributes('disabled')).toBeDefined()
    await w.get('[data-testid="camera-url"]').setValue('http://other.local/stream.mjpg')
    await w.get('[data-testid="camera-form"]').trigger('submit')
    expect(w.get('[data-testid="camera-img"]').attributes('src')).toBe('http://other.local/stream.mjpg')
    expect(JSON.parse(localStorage.getItem('goaiot.widgets.v1')!).cameras.cam.url).toBe('http://other.local/stream.mjpg')
    expect(h.sent, 'a camera setting sends nothing to the node').toEqual([])
    w.unmount()
  })

  it('a value that is no image URL shows no image', async () => {
    const h = testStore()
    await h.feed({ type: 'new', uid: 'c2', state: 'online', ts: T }, { type: 'update', uid: 'c2', endpoint: 'webcam', data: 'off', ts: T })
    const res = h.store.nodes.get('c2')!.resources.get('webcam') as ResourceRec
    const w = mountWith(CameraWidget, h.store, { props: { res, value: 'javascript:alert(1)' } })
    expect(w.find('[data-testid="camera-img"]').exists()).toBe(false)
    expect(w.find('[data-testid="camera-none"]').exists()).toBe(true)
    w.unmount()
  })
})

describe('OsIcon', () => {
  const cases: Array<{ os: string; want: string; title?: string }> = [
    { os: 'riot', want: 'riot', title: 'RIOT' },
    { os: 'RIOT', want: 'riot', title: 'RIOT' },
    { os: 'android', want: 'android', title: 'Android' },
    { os: 'MicroPython', want: 'micropython', title: 'MicroPython' },
    { os: 'micro-python', want: 'micropython', title: 'MicroPython' },
    { os: 'linux', want: 'other', title: 'linux' },
    { os: '', want: 'other' },
  ]
  for (const tc of cases) {
    it(`${tc.os || '(none)'} → ${tc.want}`, async () => {
      const h = testStore()
      const w = mountWith(OsIcon, h.store, { props: { os: tc.os } })
      const el = w.get('[data-testid="os-icon"]')
      expect(el.attributes('data-os')).toBe(tc.want)
      expect(el.attributes('title')).toBe(tc.title)
      w.unmount()
    })
  }
})

describe('CameraWidget reload', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('reloads a still image every N s while on screen, not while off', async () => {
    const h = testStore()
    await h.feed({ type: 'new', uid: 'c3', state: 'online', ts: T }, { type: 'update', uid: 'c3', endpoint: 'webcam', data: 'http://cam.local/still.jpg', ts: T })
    const res = h.store.nodes.get('c3')!.resources.get('webcam') as ResourceRec
    const w = mountWith(CameraWidget, h.store, { props: { res, value: 'http://cam.local/still.jpg', active: true } })
    await w.get('[data-testid="camera-settings"]').trigger('click')
    await w.get('[data-testid="camera-refresh"]').setValue('5')
    await w.get('[data-testid="camera-form"]').trigger('submit')
    const src = () => w.get('[data-testid="camera-img"]').attributes('src')
    expect(src()).toBe('http://cam.local/still.jpg')
    vi.advanceTimersByTime(10_000)
    await w.vm.$nextTick()
    expect(src()).toBe('http://cam.local/still.jpg?_frame=2')
    await w.setProps({ active: false })
    vi.advanceTimersByTime(60_000)
    await w.vm.$nextTick()
    expect(src(), 'off screen: no reload').toBe('http://cam.local/still.jpg?_frame=2')
    await w.setProps({ active: true })
    vi.advanceTimersByTime(5_000)
    await w.vm.$nextTick()
    expect(src()).toBe('http://cam.local/still.jpg?_frame=3')
    w.unmount()
  })
})
