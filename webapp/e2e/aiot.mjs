// Builds and runs the real aiot binary of this repository for the e2e tests.
import { spawn } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { readFile } from 'node:fs/promises'

export const WEBAPP = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const REPO = resolve(WEBAPP, '..')

function run(cmd, args, opts) {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts })
    p.on('error', rej)
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))))
  })
}

/**
 * buildAiot builds ./cmd/aiot into dir (it embeds webapp/dist/app, so run
 * `npm run build` first), or returns $AIOT_BIN when set.
 */
export async function buildAiot(dir) {
  if (process.env.AIOT_BIN) return process.env.AIOT_BIN
  const out = join(dir, 'aiot')
  await run('go', ['build', '-o', out, './cmd/aiot'], { cwd: REPO })
  return out
}

export function freeTcpPort() {
  return new Promise((res, rej) => {
    const s = createServer()
    s.on('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

export function freeUdpPort() {
  return new Promise((res, rej) => {
    const s = createSocket('udp4')
    s.on('error', rej)
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })
}

/** freePorts picks the ports one aiot uses; a restart reuses them. */
export async function freePorts() {
  return {
    http: await freeTcpPort(),
    nats: await freeTcpPort(),
    mqtt: await freeTcpPort(),
    coap: await freeUdpPort(),
    mqttsn: await freeUdpPort(),
  }
}

export function runArgs(ports, dataDir, extra = []) {
  return [
    'run', '--demo',
    '--data', dataDir,
    '--ready-file', `${dataDir}.ready.json`,
    '--http', `127.0.0.1:${ports.http}`,
    '--nats-listen', `127.0.0.1:${ports.nats}`,
    '--mqtt-listen', `127.0.0.1:${ports.mqtt}`,
    '--coap-listen', `127.0.0.1:${ports.coap}`,
    '--mqttsn-listen', `127.0.0.1:${ports.mqttsn}`,
    '--gateway-name', 'e2e',
    ...extra,
  ]
}

// readyFileOf is the --ready-file in args: aiot writes it, atomically, once every
// part is bound and serving (internal/readiness in the Go code):
// {"ready":true,"pid":N,"took_ms":…,"addrs":{…},"urls":{"http":"http://127.0.0.1:PORT",…}}
function readyFileOf(args) {
  const i = args.indexOf('--ready-file')
  if (i < 0 || i + 1 >= args.length) throw new Error('aiot args lack --ready-file (use runArgs)')
  return args[i + 1]
}

/** Aiot is one running `aiot run --demo` process. */
export class Aiot {
  constructor(bin, args) {
    this.bin = bin
    this.args = args
    this.readyFile = readyFileOf(args)
    this.logs = []
    this.proc = null
    this.url = ''
  }

  /** start spawns aiot and resolves with the dashboard's URL once its ready file names it. */
  start(timeoutMs = 60_000) {
    return new Promise((res, rej) => {
      const p = spawn(this.bin, this.args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } })
      this.proc = p
      let done = false
      this.exited = new Promise((r) => p.on('exit', (code, sig) => r({ code, sig })))
      const finish = (err) => {
        if (done) return
        done = true
        clearTimeout(timer)
        clearInterval(poll)
        if (err) rej(err)
        else res(this.url)
      }
      const timer = setTimeout(() => finish(new Error(`aiot was not ready within ${timeoutMs} ms:\n${this.tail()}`)), timeoutMs)
      const poll = setInterval(async () => {
        let r
        try {
          r = JSON.parse(await readFile(this.readyFile, 'utf8'))
        } catch {
          return // not there yet (it appears whole: written to a temporary file, then renamed)
        }
        if (done || !r.ready || r.pid !== p.pid || !r.urls?.http) return // an earlier run's
        this.url = r.urls.http.replace(/\/$/, '')
        finish()
      }, 20)
      const onLine = (line) => {
        this.logs.push(line)
        if (this.logs.length > 5000) this.logs.splice(0, 1000)
      }
      createInterface({ input: p.stderr }).on('line', onLine)
      createInterface({ input: p.stdout }).on('line', onLine)
      p.on('error', (e) => finish(e))
      p.on('exit', (code, sig) => {
        if (!this.url) finish(new Error(`aiot exited (${code ?? sig}) before it was ready:\n${this.tail()}`))
      })
    })
  }

  /** stop sends signal and waits for the exit (SIGKILL after 10 s). */
  async stop(signal = 'SIGTERM') {
    const p = this.proc
    if (!p || p.exitCode !== null || p.signalCode !== null) return
    p.kill(signal)
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000)
    await this.exited
    clearTimeout(t)
    this.url = ''
  }

  tail(n = 40) {
    return this.logs.slice(-n).join('\n')
  }
}
