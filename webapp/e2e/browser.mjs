// Debian's headless Chromium driven by playwright-core. Never downloads a
// browser: CHROMIUM (default /usr/bin/chromium) must be installed
// (apt-get install chromium).
import { chromium } from 'playwright-core'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * launch starts Chromium with a fresh profile directory and returns the
 * browser context; close() also removes the profile.
 */
export async function launch({ viewport = { width: 1440, height: 960 }, colorScheme = 'light', deviceScaleFactor = 1 } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set CHROMIUM`)
  }
  const profile = mkdtempSync(join(tmpdir(), 'goaiot-e2e-profile-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    colorScheme,
    deviceScaleFactor,
    timeout: 60_000,
  })
  return {
    context,
    async close() {
      await context.close().catch(() => {})
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
