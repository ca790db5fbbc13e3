// Helpers for the component tests: a store of their own, provided to the
// component, whose frames the test runs, and an IntersectionObserver that
// says every element is in view (happy-dom lays nothing out).
import { mount, type ComponentMountingOptions } from '@vue/test-utils'
import { nextTick, type Component } from 'vue'
import { vi } from 'vitest'
import type { ClientFrame, ServerMsg } from '../../src/lib/protocol'
import { Store } from '../../src/lib/store'
import { storeKey } from '../../src/lib/live'

export const T = 1_700_000_000_000

/** inView replaces IntersectionObserver with one that reports every element visible. */
export function inView(): void {
  vi.stubGlobal('IntersectionObserver', class {
    constructor(private cb: (e: Array<{ target: Element; isIntersecting: boolean }>) => void) {}
    observe(target: Element): void {
      this.cb([{ target, isIntersecting: true }])
    }
    unobserve(): void {}
    disconnect(): void {}
  })
}

/** TestStore is a store whose frames run when the test says, with the frames it sent. */
export function testStore(opts: { connected?: boolean } = {}) {
  const sent: ClientFrame[] = []
  const frames: Array<() => void> = []
  const store = new Store({
    send: (f) => {
      if (opts.connected === false) return false
      sent.push(f)
      return true
    },
    schedule: (cb) => frames.push(cb),
    now: () => T,
    timer: () => {},
  })
  /** frame runs the store's pending report and lets Vue render it. */
  const frame = async (): Promise<void> => {
    frames.splice(0).forEach((cb) => cb())
    await nextTick()
  }
  const feed = async (...msgs: ServerMsg[]): Promise<void> => {
    msgs.forEach((m) => store.apply(m))
    await frame()
  }
  return { store, sent, frame, feed }
}

/** mountWith mounts a component with the store provided to it. */
export function mountWith<C extends Component>(c: C, store: Store, opts: ComponentMountingOptions<C> = {}) {
  return mount(c, { ...opts, attachTo: document.body, global: { ...opts.global, provide: { [storeKey as symbol]: store } } } as ComponentMountingOptions<C>)
}
