// Series colours by resource: the same resource has the same colour on
// every card. Mid-tone hues that read on light and dark surfaces.
const BY_NAME: Record<string, string> = {
  temperature: '#f97316',
  pressure: '#8b5cf6',
  humidity: '#0ea5e9',
  illuminance: '#eab308',
  eco2: '#10b981',
  co2: '#10b981',
  tvoc: '#14b8a6',
  tsp: '#a16207',
  tlp: '#b45309',
}
const PALETTE = ['#3b82f6', '#ec4899', '#22c55e', '#f59e0b', '#06b6d4', '#a855f7', '#ef4444']

export function colorFor(name: string): string {
  if (BY_NAME[name]) return BY_NAME[name]
  let h = 0
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length]
}

export const XYZ = ['#ef4444', '#22c55e', '#3b82f6']
