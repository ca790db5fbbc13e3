// Pure helpers that turn the store into what the page lists: names,
// search, grouping by site and gateway, counts.

import type { NodeRec, ResourceRec } from './store'

export function nodeName(n: NodeRec): string {
  const v = n.resources.get('name')?.value.trim()
  return v || n.uid
}

export function infoValue(n: NodeRec, key: string): string {
  return n.resources.get(key)?.value.trim() ?? ''
}

/** matches: every word of the query appears in one of the node's fields. */
export function matches(n: NodeRec, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean)
  if (words.length === 0) return true
  const hay = [
    n.uid, nodeName(n), n.site, n.gateway, n.protocol, n.address, n.state,
    infoValue(n, 'board'), infoValue(n, 'os'), infoValue(n, 'mcu'), infoValue(n, 'vendor'),
    ...n.resources.keys(),
  ].join('\n').toLowerCase()
  return words.every((w) => hay.includes(w))
}

export interface GatewayGroup {
  gateway: string
  uids: string[]
  online: number
}

export interface SiteGroup {
  site: string
  gateways: GatewayGroup[]
  count: number
}

// One collator for every sort: localeCompare with options builds one per call.
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' })

export const NO_SITE = 'Local site'
export const NO_GATEWAY = 'Gateway'

/**
 * group lists the nodes that pass the filters, by site then gateway (both
 * sorted by name), the nodes sorted by name then uid.
 */
export function group(
  nodes: Iterable<NodeRec>,
  opts: { query?: string; state?: 'all' | 'online' | 'offline' } = {},
): SiteGroup[] {
  const sites = new Map<string, Map<string, NodeRec[]>>()
  for (const n of nodes) {
    if (opts.state === 'online' && n.state === 'offline') continue
    if (opts.state === 'offline' && n.state !== 'offline') continue
    if (opts.query && !matches(n, opts.query)) continue
    const site = n.site || NO_SITE
    const gw = n.gateway || (n.protocol ? `${n.protocol} gateway` : NO_GATEWAY)
    let g = sites.get(site)
    if (!g) sites.set(site, (g = new Map()))
    let list = g.get(gw)
    if (!list) g.set(gw, (list = []))
    list.push(n)
  }
  const byName = collator.compare
  return [...sites.entries()]
    .sort((a, b) => byName(a[0], b[0]))
    .map(([site, gws]) => {
      const gateways = [...gws.entries()]
        .sort((a, b) => byName(a[0], b[0]))
        .map(([gateway, list]) => {
          list.sort((a, b) => byName(nodeName(a), nodeName(b)) || byName(a.uid, b.uid))
          return {
            gateway,
            uids: list.map((n) => n.uid),
            online: list.filter((n) => n.state !== 'offline').length,
          }
        })
      return { site, gateways, count: gateways.reduce((s, g) => s + g.uids.length, 0) }
    })
}

export function counts(nodes: Iterable<NodeRec>): { total: number; online: number; offline: number } {
  let total = 0
  let offline = 0
  for (const n of nodes) {
    total++
    if (n.state === 'offline') offline++
  }
  return { total, online: total - offline, offline }
}

/** The resource names seen on any node, for the show/hide panel. */
export function resourceNames(nodes: Iterable<NodeRec>): string[] {
  const s = new Set<string>()
  for (const n of nodes) for (const k of n.resources.keys()) s.add(k)
  return [...s].sort()
}

export function sortedResources(n: NodeRec, hidden: Set<string>): ResourceRec[] {
  return [...n.resources.values()]
    .filter((r) => !hidden.has(r.name))
    .sort((a, b) => a.order - b.order || collator.compare(a.name, b.name))
}

// One formatter for every relative time, in the browser's language.
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' })

/**
 * relTime says how long ago ts was, in the browser's language ("now",
 * "42 sec. ago", "5 min. ago", "3 hr. ago", "3 days ago" in English);
 * "never" for 0. fmt is for tests.
 */
export function relTime(ts: number, now: number, fmt: Intl.RelativeTimeFormat = rtf): string {
  if (!ts) return 'never'
  const s = Math.round((now - ts) / 1000)
  if (s < 3) return fmt.format(0, 'second')
  if (s < 60) return fmt.format(-s, 'second')
  const m = Math.floor(s / 60)
  if (m < 60) return fmt.format(-m, 'minute')
  const h = Math.floor(m / 60)
  if (h < 48) return fmt.format(-h, 'hour')
  return fmt.format(-Math.floor(h / 24), 'day')
}

/**
 * isRoleReadOnly tells a "disabled" reason that comes from the role (the
 * browser is a viewer: command controls are hidden) from a passing one
 * (offline node, no connection: controls are only greyed out).
 */
export function isRoleReadOnly(reason: string): boolean {
  return reason.startsWith('read-only')
}
