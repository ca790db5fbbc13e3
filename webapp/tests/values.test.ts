import { describe, expect, it } from 'vitest'
import { formatNumber, formatPosition, norm3, parseImu, parseNumeric, parsePosition } from '../src/lib/values'

describe('parseNumeric', () => {
  it.each([
    ['21.5°C', 21.5, '°C'],
    ['1013.25hPa', 1013.25, 'hPa'],
    ['45.10%', 45.1, '%'],
    ['12lx', 12, 'lx'],
    ['400ppm', 400, 'ppm'],
    ['5ppb', 5, 'ppb'],
    ['0.3g/m3', 0.3, 'g/m3'],
    ['-4.25 °C', -4.25, '°C'],
    [' 3', 3, ''],
    ['42', 42, ''],
    ['1e3 Pa', 1000, 'Pa'],
    ['.5V', 0.5, 'V'],
  ])('%s', (input, num, unit) => {
    expect(parseNumeric(input)).toEqual({ num, unit })
  })

  it.each(['', 'riot', 'native64', 'NaN', '{"lat":1}', 'abc 12', '12 is a number in a long sentence', '1.2.3'])(
    'rejects %j',
    (input) => {
      expect(parseNumeric(input)).toBeNull()
    },
  )

  it('rejects non-strings', () => {
    expect(parseNumeric(undefined)).toBeNull()
    expect(parseNumeric(null)).toBeNull()
  })
})

describe('parsePosition', () => {
  it('reads the RIOT JSON text', () => {
    expect(parsePosition('{"lat":48.71,"lng":2.20}')).toEqual({ lat: 48.71, lng: 2.2 })
  })
  it('reads other spellings and plain pairs', () => {
    expect(parsePosition({ latitude: -33.9, longitude: 151.2 })).toEqual({ lat: -33.9, lng: 151.2 })
    expect(parsePosition('{"lat":"1.5","lon":"2.5"}')).toEqual({ lat: 1.5, lng: 2.5 })
    expect(parsePosition('48.71, 2.20')).toEqual({ lat: 48.71, lng: 2.2 })
  })
  it('rejects garbage and out-of-range values', () => {
    expect(parsePosition('{"lat":')).toBeNull()
    expect(parsePosition('{"lat":91,"lng":0}')).toBeNull()
    expect(parsePosition('{"x":1}')).toBeNull()
    expect(parsePosition('somewhere')).toBeNull()
  })
  it('formats coordinates', () => {
    expect(formatPosition({ lat: 48.71, lng: -2.2 })).toBe('48.71000° N, 2.20000° W')
  })
})

describe('parseImu', () => {
  it('reads acc and gyro', () => {
    const v = parseImu('[{"type":"acc","values":[0,0,9.81]},{"type":"gyro","values":[1,2,3]}]')
    expect(v).toEqual({ acc: [0, 0, 9.81], gyro: [1, 2, 3] })
    expect(norm3(v!.acc!)).toBeCloseTo(9.81)
  })
  it('ignores unknown entries and rejects non-arrays', () => {
    expect(parseImu('[{"type":"temp","values":[1,2,3]}]')).toBeNull()
    expect(parseImu('{"type":"acc"}')).toBeNull()
    expect(parseImu('not json')).toBeNull()
    expect(parseImu('[{"type":"acc","values":[1,"x",3]},{"type":"gyro","values":[1,2,3]}]')).toEqual({ gyro: [1, 2, 3] })
  })
})

describe('formatNumber', () => {
  it('keeps sensible digits', () => {
    expect(formatNumber(21.5)).toBe('21.5')
    expect(formatNumber(1013.25)).toBe('1013.3')
    expect(formatNumber(400)).toBe('400')
    expect(formatNumber(0.123456)).toBe('0.12')
    expect(formatNumber(2e7)).toBe('2.00e+7')
  })
})
