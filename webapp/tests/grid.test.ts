import { describe, expect, it } from 'vitest'
import { gridColumns, gridItems } from '../src/lib/grid'
import type { SiteGroup } from '../src/lib/view'

describe('grid', () => {
  const cols: Array<{ name: string; width: number; want: number }> = [
    { name: 'not measured yet', width: 0, want: 1 },
    { name: 'a phone', width: 360, want: 1 },
    { name: 'two cards', width: 654, want: 2 },
    { name: 'just short of two', width: 653, want: 1 },
    { name: 'a wide screen', width: 1376, want: 4 },
  ]
  for (const tc of cols) {
    it(`columns: ${tc.name}`, () => expect(gridColumns(tc.width)).toBe(tc.want))
  }

  const groups: SiteGroup[] = [
    { site: 'lab', count: 5, gateways: [
      { gateway: 'coap', uids: ['a', 'b', 'c'], online: 3 },
      { gateway: 'mqtt', uids: ['d', 'e'], online: 1 },
    ] },
    { site: 'roof', count: 1, gateways: [{ gateway: 'ws', uids: ['f'], online: 0 }] },
  ]

  it('flattens sites and gateways into headers and rows of cards', () => {
    const items = gridItems(groups, 2)
    expect(items.map((i) => (i.kind === 'row' ? i.uids.join(',') : `${i.kind}:${i.kind === 'site' ? i.site : i.gateway}`))).toEqual([
      'site:lab', 'gateway:coap', 'a,b', 'c', 'gateway:mqtt', 'd,e', 'site:roof', 'gateway:ws', 'f',
    ])
    expect(items.filter((i) => i.kind !== 'row' && i.first).map((i) => i.key.split('\u0000').pop())).toEqual(['lab', 'coap', 'ws'])
    expect(new Set(items.map((i) => i.key)).size).toBe(items.length)
  })

  it('keeps keys when only values change', () => {
    expect(gridItems(groups, 3).map((i) => i.key)).toEqual(gridItems(structuredClone(groups), 3).map((i) => i.key))
  })
})
