// User settings kept in localStorage: theme, hidden resource types, map.

import { computed, ref, watch } from 'vue'

export type ThemeSetting = 'system' | 'light' | 'dark'
export type StateFilter = 'all' | 'online' | 'offline'

const KEY = 'goaiot.settings.v1'

interface Saved {
  theme: ThemeSetting
  hidden: string[]
  showMap: boolean
  tileUrl: string
  tileAttribution: string
  stateFilter: StateFilter
}

function load(): Partial<Saved> {
  try {
    const raw = globalThis.localStorage?.getItem(KEY)
    return raw ? (JSON.parse(raw) as Partial<Saved>) : {}
  } catch {
    return {}
  }
}

const saved = load()
const query = new URLSearchParams(globalThis.location?.search ?? '')

export const theme = ref<ThemeSetting>(
  saved.theme === 'light' || saved.theme === 'dark' ? saved.theme : 'system',
)
export const hiddenResources = ref<Set<string>>(new Set(saved.hidden ?? []))
export const showMap = ref<boolean>(saved.showMap ?? true)
/** A Leaflet tile URL template; empty means no tiles (the page works offline). */
export const tileUrl = ref<string>(query.get('tiles') ?? saved.tileUrl ?? '')
export const tileAttribution = ref<string>(saved.tileAttribution ?? '')
export const stateFilter = ref<StateFilter>(saved.stateFilter ?? 'all')
export const search = ref<string>(query.get('q') ?? '')

function save(): void {
  const s: Saved = {
    theme: theme.value,
    hidden: [...hiddenResources.value],
    showMap: showMap.value,
    tileUrl: query.get('tiles') ? (saved.tileUrl ?? '') : tileUrl.value,
    tileAttribution: tileAttribution.value,
    stateFilter: stateFilter.value,
  }
  try {
    globalThis.localStorage?.setItem(KEY, JSON.stringify(s))
  } catch {
    // Private mode or full storage: settings last for this page only.
  }
}

watch([theme, hiddenResources, showMap, tileUrl, tileAttribution, stateFilter], save, { deep: true })

const media = globalThis.matchMedia?.('(prefers-color-scheme: dark)')
const systemDark = ref<boolean>(media?.matches ?? false)
media?.addEventListener?.('change', (e) => {
  systemDark.value = e.matches
})

/** The theme in force: the saved choice, or the system's. */
export const resolvedTheme = computed<'light' | 'dark'>(() =>
  theme.value === 'system' ? (systemDark.value ? 'dark' : 'light') : theme.value,
)

watch(
  resolvedTheme,
  (t) => {
    const el = globalThis.document?.documentElement
    if (!el) return
    el.dataset.theme = t
    el.style.colorScheme = t
  },
  { immediate: true },
)

export function cycleTheme(): void {
  theme.value = theme.value === 'system' ? 'light' : theme.value === 'light' ? 'dark' : 'system'
}

export function toggleResource(name: string): void {
  const s = new Set(hiddenResources.value)
  if (s.has(name)) s.delete(name)
  else s.add(name)
  hiddenResources.value = s
}
