// Parsing of resource values. Nodes send strings exactly as they produce
// them ("21.5°C", "1013.25hPa", " 3", "{\"lat\":48.71,\"lng\":2.20}").

export interface Numeric {
  num: number
  unit: string
}

const NUM_RE = /^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s\d.,:;][^\n]{0,15})?\s*$/

/**
 * parseNumeric splits a value into its number and unit: "21.5°C" gives
 * {num: 21.5, unit: "°C"}, "45.10 %" gives {45.1, "%"}, "400" gives
 * {400, ""}. It returns null when the value does not start with a finite
 * number or the rest does not look like a short unit.
 */
export function parseNumeric(value: string | null | undefined): Numeric | null {
  if (typeof value !== 'string') return null
  const m = NUM_RE.exec(value)
  if (!m) return null
  const num = Number(m[1])
  if (!Number.isFinite(num)) return null
  const unit = (m[2] ?? '').trim()
  // A unit is a short token such as °C, hPa, %, g/m3, m/s², not a sentence.
  if (unit.length > 12 || /\s{2,}|[{}[\]"]/.test(unit)) return null
  return { num, unit }
}

export interface Position {
  lat: number
  lng: number
}

/**
 * parsePosition reads {"lat":…,"lng":…} (also "lon"/"long"/"longitude"
 * and "latitude"), an object, or the text "48.71,2.20".
 */
export function parsePosition(value: unknown): Position | null {
  let v: unknown = value
  if (typeof v === 'string') {
    const s = v.trim()
    if (s.startsWith('{')) {
      try {
        v = JSON.parse(s)
      } catch {
        return null
      }
    } else {
      const parts = s.split(/[,;\s]+/).filter(Boolean)
      if (parts.length !== 2) return null
      v = { lat: Number(parts[0]), lng: Number(parts[1]) }
    }
  }
  if (v === null || typeof v !== 'object') return null
  const o = v as Record<string, unknown>
  const lat = Number(o.lat ?? o.latitude)
  const lng = Number(o.lng ?? o.lon ?? o.long ?? o.longitude)
  if (!Number.isFinite(lat) || !Number.isFinite(lng)) return null
  if (Math.abs(lat) > 90 || Math.abs(lng) > 180) return null
  return { lat, lng }
}

export interface Imu {
  acc?: [number, number, number]
  gyro?: [number, number, number]
  mag?: [number, number, number]
}

/**
 * parseImu reads the RIOT imu value:
 * [{"type":"acc","values":[x,y,z]},{"type":"gyro","values":[x,y,z]}].
 */
export function parseImu(value: string): Imu | null {
  let v: unknown
  try {
    v = JSON.parse(value)
  } catch {
    return null
  }
  if (!Array.isArray(v)) return null
  const out: Imu = {}
  for (const e of v) {
    if (!e || typeof e !== 'object') continue
    const { type, values } = e as { type?: unknown; values?: unknown }
    if (typeof type !== 'string' || !Array.isArray(values) || values.length < 3) continue
    const xyz = values.slice(0, 3).map(Number) as [number, number, number]
    if (!xyz.every(Number.isFinite)) continue
    if (type === 'acc' || type === 'accel' || type === 'accelerometer') out.acc = xyz
    else if (type === 'gyro' || type === 'gyroscope') out.gyro = xyz
    else if (type === 'mag' || type === 'magnetometer') out.mag = xyz
  }
  return out.acc || out.gyro || out.mag ? out : null
}

export function norm3(v: [number, number, number]): number {
  return Math.hypot(v[0], v[1], v[2])
}

/** formatNumber keeps a sensible number of digits for display. */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const a = Math.abs(n)
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return n.toExponential(2)
  if (Number.isInteger(n)) return String(n)
  if (a >= 100) return n.toFixed(1).replace(/\.0$/, '')
  return String(Number(n.toFixed(2)))
}

/** formatCoord prints 48.71000° N style coordinates. */
export function formatPosition(p: Position): string {
  const lat = `${Math.abs(p.lat).toFixed(5)}° ${p.lat >= 0 ? 'N' : 'S'}`
  const lng = `${Math.abs(p.lng).toFixed(5)}° ${p.lng >= 0 ? 'E' : 'W'}`
  return `${lat}, ${lng}`
}
