import { describe, expect, it } from 'vitest'
import { isPlotted, widgetFor } from '../src/lib/widgets'

describe('widgetFor', () => {
  it.each([
    ['temperature', 'chart'],
    ['pressure', 'chart'],
    ['humidity', 'chart'],
    ['eco2', 'chart'],
    ['tvoc', 'chart'],
    ['illuminance', 'chart'],
    ['tsp', 'chart'],
    ['tlp', 'chart'],
    ['led', 'led'],
    ['led1', 'led'],
    ['position', 'position'],
    ['imu', 'imu'],
    ['board', 'info'],
    ['mcu', 'info'],
    ['os', 'info'],
    ['name', 'info'],
    ['vendor', 'info'],
    ['version', 'info'],
    ['suit_state', 'info'],
    ['dwnld', 'progress'],
    ['webcam', 'camera'],
    ['camera', 'camera'],
    ['robot', 'robot'],
    ['ribot', 'ribot'],
    ['js', 'js'],
    ['text', 'text'],
    ['twitter', 'text'],
    ['something_new', 'text'],
  ])('%s -> %s', (name, kind) => {
    expect(widgetFor(name).kind).toBe(kind)
  })

  it('ignores case and a leading slash', () => {
    expect(widgetFor('/Temperature').kind).toBe('chart')
    expect(widgetFor('/LED').kind).toBe('led')
  })

  it('labels unknown resources readably', () => {
    expect(widgetFor('wind_speed').label).toBe('Wind speed')
    expect(widgetFor('eco2').label).toBe('eCO₂')
  })

  it('keeps series only for charts and imu', () => {
    expect(isPlotted('chart')).toBe(true)
    expect(isPlotted('imu')).toBe(true)
    expect(isPlotted('led')).toBe(false)
    expect(isPlotted('text')).toBe(false)
  })

  it('orders LEDs first and info last', () => {
    expect(widgetFor('led').order).toBeLessThan(widgetFor('temperature').order)
    expect(widgetFor('temperature').order).toBeLessThan(widgetFor('board').order)
  })
})
