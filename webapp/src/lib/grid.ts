// The node grid as a flat list for the virtual list: a header per site and
// gateway, then the gateway's nodes in rows of as many cards as the
// responsive grid has columns.

import type { SiteGroup } from './view'

/** One entry of the virtual list. key is stable while the grouping stays. */
export type GridItem =
  | { kind: 'site'; key: string; site: string; count: number; first: boolean }
  | { kind: 'gateway'; key: string; gateway: string; online: number; size: number; first: boolean }
  | { kind: 'row'; key: string; uids: string[]; cols: number }

/** The card grid's smallest column (px) and its gap: keep in step with style.css. */
export const CARD_MIN = 320
export const CARD_GAP = 14

/** gridColumns is how many cards fit side by side in width px (at least one). */
export function gridColumns(width: number, min = CARD_MIN, gap = CARD_GAP): number {
  return Math.max(1, Math.floor((width + gap) / (min + gap)))
}

/** gridItems flattens the groups into headers and rows of cols cards. */
export function gridItems(groups: SiteGroup[], cols: number): GridItem[] {
  const out: GridItem[] = []
  groups.forEach((s, si) => {
    out.push({ kind: 'site', key: `s\u0000${s.site}`, site: s.site, count: s.count, first: si === 0 })
    s.gateways.forEach((g, gi) => {
      const gk = `${s.site}\u0000${g.gateway}`
      out.push({ kind: 'gateway', key: `g\u0000${gk}`, gateway: g.gateway, online: g.online, size: g.uids.length, first: gi === 0 })
      for (let i = 0; i < g.uids.length; i += cols) {
        out.push({ kind: 'row', key: `r\u0000${gk}\u0000${i / cols}`, uids: g.uids.slice(i, i + cols), cols })
      }
    })
  })
  return out
}
