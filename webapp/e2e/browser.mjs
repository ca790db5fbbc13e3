// Debian's headless Chromium driven by playwright-core. Never downloads a
// browser. The peer rule of every test (bus/bustest.Peer): CHROMIUM if set,
// else chromium looked up on PATH, then in $GOBIN, then in $(go env
// GOPATH)/bin. Missing, the end-to-end tests fail under CI=true and are
// skipped elsewhere, with the install line.
import { chromium } from 'playwright-core'
import { execFileSync } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

const INSTALL = 'apt-get install chromium'

/** goBinDirs are $GOBIN and the bin of every GOPATH entry, as `go env` reports them. */
function goBinDirs() {
  let gobin = process.env.GOBIN ?? ''
  let gopath = process.env.GOPATH ?? ''
  try {
    ;[gobin, gopath] = execFileSync('go', ['env', 'GOBIN', 'GOPATH'], { encoding: 'utf8' }).trimEnd().split('\n')
  } catch {
    // no go command: the environment's values
  }
  if (!gopath) gopath = join(homedir(), 'go')
  return [gobin, ...gopath.split(delimiter).map((p) => (p ? join(p, 'bin') : ''))].filter(Boolean)
}

/** findPeer returns the path of program, or '' when it is nowhere. */
export function findPeer(program) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...goBinDirs()]
  for (const dir of dirs) {
    try {
      accessSync(join(dir, program), constants.X_OK)
      return join(dir, program)
    } catch {
      // not here
    }
  }
  return ''
}

export const CHROMIUM = process.env.CHROMIUM || findPeer('chromium')

const CI = /^(1|true)$/i.test(process.env.CI ?? '')

/**
 * browserSkip is the `skip` option of a browser test suite: a reason when
 * Chromium is missing outside CI, false otherwise (under CI, launch fails
 * with the install line instead).
 */
export const browserSkip = !CHROMIUM && !CI ? `chromium not found on PATH, in $GOBIN or $(go env GOPATH)/bin (${INSTALL})` : false

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
  if (!CHROMIUM) {
    throw new Error(`CI=true: chromium not found on PATH, in $GOBIN or $(go env GOPATH)/bin (${INSTALL}), and CHROMIUM not set`)
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
