// One IntersectionObserver and one ResizeObserver shared by every card and
// chart: thousands of observers of their own would cost more than the
// elements they watch.
import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'

type Cb<T> = (v: T) => void

let io: IntersectionObserver | null = null
const ioCbs = new WeakMap<Element, Cb<boolean>>()
let ro: ResizeObserver | null = null
const roCbs = new WeakMap<Element, Cb<number>>()

function getIO(): IntersectionObserver {
  if (!io) {
    io = new IntersectionObserver(
      (entries) => {
        for (const e of entries) ioCbs.get(e.target)?.(e.isIntersecting)
      },
      { rootMargin: '300px 0px' },
    )
  }
  return io
}

function getRO(): ResizeObserver {
  if (!ro) {
    ro = new ResizeObserver((entries) => {
      for (const e of entries) roCbs.get(e.target)?.(e.contentRect.width)
    })
  }
  return ro
}

/** useVisible is true while el is in (or near) the viewport. */
export function useVisible(el: Ref<Element | undefined | null>, onChange?: Cb<boolean>): Ref<boolean> {
  const visible = ref(false)
  let target: Element | null = null
  onMounted(() => {
    target = el.value ?? null
    if (!target) return
    ioCbs.set(target, (v) => {
      if (visible.value === v) return
      visible.value = v
      onChange?.(v)
    })
    getIO().observe(target)
  })
  onBeforeUnmount(() => {
    if (!target) return
    io?.unobserve(target)
    ioCbs.delete(target)
  })
  return visible
}

/** onWidth calls fn with el's width whenever it changes. */
export function onWidth(el: Ref<Element | undefined | null>, fn: Cb<number>): void {
  let target: Element | null = null
  onMounted(() => {
    target = el.value ?? null
    if (!target) return
    roCbs.set(target, fn)
    getRO().observe(target)
  })
  onBeforeUnmount(() => {
    if (!target) return
    ro?.unobserve(target)
    roCbs.delete(target)
  })
}
