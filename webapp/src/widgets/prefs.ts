// The widgets' settings kept in this browser (localStorage, apart from the
// page's settings): the imu 3D view on or off, and a camera URL and
// refresh period per camera node.

import { ref, watch } from 'vue'

const KEY = 'goaiot.widgets.v1'
/** At most this many cameras keep a setting; the oldest is dropped first. */
export const MAX_CAMERAS = 50
/** A camera URL longer than this is refused. */
export const MAX_URL = 2048

/** CameraPref is what the user set for one camera node. */
export interface CameraPref {
  /** Shown instead of the node's URL when set. */
  url: string
  /** Seconds between reloads of a still image; 0: never (an MJPEG stream needs none). */
  refresh: number
}

interface Saved {
  imu3d?: boolean
  cameras?: Record<string, CameraPref>
}

function load(): Saved {
  try {
    const v = JSON.parse(globalThis.localStorage?.getItem(KEY) ?? '{}') as unknown
    return v && typeof v === 'object' ? (v as Saved) : {}
  } catch {
    return {}
  }
}

const saved = load()

/** phone: the narrow layout, where the imu 3D view is off by default. */
export const phone = (): boolean => globalThis.matchMedia?.('(max-width: 640px)').matches ?? false

/** imu3d: the imu 3D view is shown (the user's choice, else off on phones). */
export const imu3d = ref<boolean>(typeof saved.imu3d === 'boolean' ? saved.imu3d : !phone())

const cameras = ref<Record<string, CameraPref>>(cleanCameras(saved.cameras))

function cleanCameras(v: unknown): Record<string, CameraPref> {
  const out: Record<string, CameraPref> = {}
  if (!v || typeof v !== 'object') return out
  for (const [uid, p] of Object.entries(v as Record<string, Partial<CameraPref>>).slice(-MAX_CAMERAS)) {
    if (typeof p?.url === 'string' && p.url.length <= MAX_URL && typeof p.refresh === 'number') out[uid] = { url: p.url, refresh: p.refresh }
  }
  return out
}

watch(
  [imu3d, cameras],
  () => {
    try {
      globalThis.localStorage?.setItem(KEY, JSON.stringify({ imu3d: imu3d.value, cameras: cameras.value }))
    } catch {
      // private mode or full storage: the settings last for this page only
    }
  },
  { deep: true },
)

/** cameraPref is the setting of one camera node ({url:'', refresh:0} when none). */
export function cameraPref(uid: string): CameraPref {
  return cameras.value[uid] ?? { url: '', refresh: 0 }
}

/** setCameraPref saves (or, with no URL and no refresh, forgets) a camera's setting. */
export function setCameraPref(uid: string, p: CameraPref): void {
  const next = { ...cameras.value }
  delete next[uid]
  if (p.url || p.refresh) next[uid] = { url: p.url.slice(0, MAX_URL), refresh: Math.max(0, Math.round(p.refresh)) }
  const uids = Object.keys(next)
  for (const old of uids.slice(0, Math.max(0, uids.length - MAX_CAMERAS))) delete next[old]
  cameras.value = next
}

/**
 * imageUrl is the URL an <img> may load for a camera value: http(s) (a
 * relative URL resolves against the page) or a data:image URL; '' for
 * anything else (javascript:, blank, spaces, too long).
 */
export function imageUrl(value: string, base = globalThis.location?.href ?? 'http://localhost/'): string {
  const s = value.trim()
  if (!s || s.length > MAX_URL || /\s/.test(s)) return ''
  if (/^data:image\//i.test(s)) return s
  try {
    const u = new URL(s, base)
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : ''
  } catch {
    return ''
  }
}

/** refreshed is url with a reload counter in its query (data: URLs as they are). */
export function refreshed(url: string, n: number): string {
  if (!n || url.startsWith('data:')) return url
  const u = new URL(url)
  u.searchParams.set('_frame', String(n))
  return u.href
}
