// First paint of the page on the phone layout (390×844, 4× CPU slowdown),
// against `aiot run --demo`: `npm run firstpaint` (builds the web app and
// aiot), or `node e2e/firstpaint.mjs BIN…` to compare aiot binaries (each
// embeds its own page): they run alternately, RUNS times each (default 7),
// each load in a fresh browser profile, and the medians are printed.
//
// Measured per load: first contentful paint, the first node card in the
// DOM, the connection "live" (snapshot received), and the page's script
// bytes (transferred) before "live". A measurement, never a test: it
// asserts nothing.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Aiot, buildAiot, freePorts, runArgs } from './aiot.mjs'
import { launch } from './browser.mjs'

const RUNS = Number(process.env.RUNS ?? 7)
const tmp = mkdtempSync(join(tmpdir(), 'goaiot-paint-'))
const bins = process.argv.length > 2 ? process.argv.slice(2) : [await buildAiot(tmp)]

// Marks when the first card appears and when the page is live.
const OBSERVE = () => {
  const mark = (name) => {
    if (!performance.getEntriesByName(name).length) performance.mark(name)
  }
  new MutationObserver(() => {
    if (document.querySelector('[data-testid="node"]')) mark('first-card')
    if (document.querySelector('[data-testid="conn"]')?.dataset.state === 'live') mark('live')
  }).observe(document, { subtree: true, childList: true, attributes: true })
}

async function measure(url) {
  const b = await launch({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', deviceScaleFactor: 2 })
  try {
    const page = b.context.pages()[0] ?? (await b.context.newPage())
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 })
    await page.addInitScript(OBSERVE)
    await page.goto(`${url}/`)
    await page.waitForFunction(() => performance.getEntriesByName('first-card').length && performance.getEntriesByName('live').length, null, { timeout: 60_000, polling: 100 })
    return await page.evaluate(() => {
      const at = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN
      const live = at('live')
      const js = performance
        .getEntriesByType('resource')
        .filter((r) => r.initiatorType === 'script' || r.name.endsWith('.js'))
        .filter((r) => r.startTime < live)
        .reduce((s, r) => s + r.transferSize, 0)
      return { fcp: at('first-contentful-paint'), card: at('first-card'), live, js }
    })
  } finally {
    await b.close()
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const systems = []
try {
  for (const bin of bins) {
    const aiot = new Aiot(bin, runArgs(await freePorts(), join(tmp, `data-${systems.length}`)))
    await aiot.start()
    systems.push({ bin, aiot, runs: [] })
  }
  // Let the demo nodes come online, so that every page gets the same snapshot.
  await new Promise((r) => setTimeout(r, 10_000))
  for (let i = 0; i < RUNS; i++) {
    for (const s of systems) s.runs.push(await measure(s.aiot.url))
  }
  for (const s of systems) {
    const m = (k) => Math.round(median(s.runs.map((r) => r[k])))
    console.log(`${s.bin}: median of ${RUNS} loads: first contentful paint ${m('fcp')} ms, first card ${m('card')} ms, live ${m('live')} ms, script before live ${(m('js') / 1024).toFixed(1)} KiB`)
    console.log(`  fcp: ${s.runs.map((r) => Math.round(r.fcp)).join(' ')}`)
  }
} finally {
  for (const s of systems) await s.aiot.stop()
  rmSync(tmp, { recursive: true, force: true })
}
