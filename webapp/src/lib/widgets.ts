// Widget selection by resource name, as Pyaiot's dashboard does it
// (reference §6), extended with a few common sensor names.

export type WidgetKind =
  | 'chart'    // numeric value with a unit: live chart with history
  | 'led'      // on/off toggle that sends a command
  | 'position' // {"lat","lng"}: map marker and coordinates
  | 'imu'      // accelerometer norm and gyro x/y/z charts
  | 'info'     // board, mcu, os, … in the card's details
  | 'progress' // dwnld: a percentage bar
  | 'camera'   // webcam, camera: the image at the value's URL (or a URL set on the page)
  | 'robot'    // robot: Pyaiot's direction pad (u, l, r, s)
  | 'ribot'    // ribot: Pyaiot's joystick ("dx:dy:dx+dy\n" every second while held)
  | 'js'       // js: the script a node runs, edited and sent from the page
  | 'text'     // everything else, including unknown resources

export interface WidgetSpec {
  kind: WidgetKind
  label: string
  /** Order inside a card; lower first. */
  order: number
}

const CHART: Record<string, string> = {
  temperature: 'Temperature',
  pressure: 'Pressure',
  humidity: 'Humidity',
  illuminance: 'Illuminance',
  eco2: 'eCO₂',
  co2: 'CO₂',
  tvoc: 'TVOC',
  tsp: 'Dust (TSP)',
  tlp: 'Dust (TLP)',
  pm1: 'PM1',
  pm25: 'PM2.5',
  pm10: 'PM10',
  voltage: 'Voltage',
  current: 'Current',
  power: 'Power',
  battery: 'Battery',
  sound: 'Sound level',
  noise: 'Noise',
  altitude: 'Altitude',
  distance: 'Distance',
  rssi: 'RSSI',
}

const INFO: Record<string, string> = {
  name: 'Name',
  os: 'OS',
  board: 'Board',
  mcu: 'MCU',
  vendor: 'Vendor',
  version: 'Version',
  suit_state: 'SUIT state',
  ip: 'IP',
  id: 'Node id',
  protocol: 'Protocol',
}

/** The info keys in the order they are listed. */
export const INFO_ORDER = Object.keys(INFO)

function titleCase(name: string): string {
  const s = name.replace(/[_-]+/g, ' ').trim()
  return s ? s[0].toUpperCase() + s.slice(1) : name
}

/** widgetFor chooses the widget for a resource name (case-insensitive). */
export function widgetFor(resource: string): WidgetSpec {
  const name = resource.replace(/^\/+/, '').toLowerCase()
  if (name in CHART) {
    return { kind: 'chart', label: CHART[name], order: 10 + Object.keys(CHART).indexOf(name) }
  }
  if (/^led\d*$/.test(name)) {
    return { kind: 'led', label: name === 'led' ? 'LED' : `LED ${name.slice(3)}`, order: 1 }
  }
  if (name === 'position' || name === 'location' || name === 'gps') {
    return { kind: 'position', label: 'Position', order: 60 }
  }
  if (name === 'imu') return { kind: 'imu', label: 'Motion (IMU)', order: 50 }
  if (name in INFO) return { kind: 'info', label: INFO[name], order: 100 + INFO_ORDER.indexOf(name) }
  if (name === 'dwnld') return { kind: 'progress', label: 'Firmware download', order: 70 }
  if (name === 'webcam' || name === 'camera') return { kind: 'camera', label: 'Camera', order: 55 }
  if (name === 'robot') return { kind: 'robot', label: 'Robot', order: 2 }
  if (name === 'ribot') return { kind: 'ribot', label: 'Ribot joystick', order: 3 }
  if (name === 'js') return { kind: 'js', label: 'JavaScript', order: 4 }
  return { kind: 'text', label: titleCase(resource), order: 90 }
}

/** isPlotted tells whether a resource keeps a time series (and asks history). */
export function isPlotted(kind: WidgetKind): boolean {
  return kind === 'chart' || kind === 'imu'
}
