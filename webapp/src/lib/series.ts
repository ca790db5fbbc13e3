// A capped time series with one or more value columns, kept as plain arrays
// in the layout uPlot takes ([xs, ys1, ys2, …], x in seconds), so a chart
// appends by handing the same arrays to setData instead of being rebuilt.

export class Series {
  /** x values: seconds since the epoch (uPlot's time scale). */
  readonly x: number[] = []
  readonly ys: number[][]
  /** Bumped on every change; charts compare it to skip needless redraws. */
  version = 0

  constructor(readonly columns: number, readonly cap: number) {
    this.ys = Array.from({ length: columns }, () => [])
  }

  get length(): number {
    return this.x.length
  }

  /** data is the uPlot data array; it shares the series' arrays. */
  data(): [number[], ...number[][]] {
    return [this.x, ...this.ys]
  }

  last(col = 0): number | undefined {
    const y = this.ys[col]
    return y.length ? y[y.length - 1] : undefined
  }

  /**
   * push adds one sample at tsMs (milliseconds). A sample older than the
   * last one is inserted in order; one with the same time as an existing
   * sample replaces it.
   */
  push(tsMs: number, values: number[]): void {
    const t = tsMs / 1000
    const n = this.x.length
    if (n === 0 || t > this.x[n - 1]) {
      this.x.push(t)
      for (let c = 0; c < this.columns; c++) this.ys[c].push(values[c] ?? NaN)
    } else {
      const i = lowerBound(this.x, t)
      if (i < n && this.x[i] === t) {
        for (let c = 0; c < this.columns; c++) this.ys[c][i] = values[c] ?? NaN
      } else {
        this.x.splice(i, 0, t)
        for (let c = 0; c < this.columns; c++) this.ys[c].splice(i, 0, values[c] ?? NaN)
      }
    }
    this.trim()
    this.version++
  }

  /**
   * merge adds many samples (stored history); they may overlap the live
   * samples already there, duplicates by time are dropped.
   */
  merge(samples: Array<{ tsMs: number; values: number[] }>): void {
    if (samples.length === 0) return
    const byT = new Map<number, number[]>()
    for (let i = 0; i < this.x.length; i++) {
      byT.set(this.x[i], this.ys.map((y) => y[i]))
    }
    for (const s of samples) {
      const t = s.tsMs / 1000
      if (!Number.isFinite(t)) continue
      if (!byT.has(t)) byT.set(t, s.values)
    }
    const ts = [...byT.keys()].sort((a, b) => a - b)
    const from = Math.max(0, ts.length - this.cap)
    this.x.length = 0
    for (const y of this.ys) y.length = 0
    for (let i = from; i < ts.length; i++) {
      const vals = byT.get(ts[i])!
      this.x.push(ts[i])
      for (let c = 0; c < this.columns; c++) this.ys[c].push(vals[c] ?? NaN)
    }
    this.version++
  }

  clear(): void {
    this.x.length = 0
    for (const y of this.ys) y.length = 0
    this.version++
  }

  // Trim in chunks so that appending stays O(1) amortised: the arrays grow
  // to at most cap + cap/4 - 1 samples, then go back to cap in one splice.
  private trim(): void {
    const over = this.x.length - this.cap
    if (over < Math.max(1, this.cap >> 2)) return
    this.x.splice(0, over)
    for (const y of this.ys) y.splice(0, over)
  }
}

function lowerBound(a: number[], t: number): number {
  let lo = 0
  let hi = a.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (a[mid] < t) lo = mid + 1
    else hi = mid
  }
  return lo
}
