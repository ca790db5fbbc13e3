// A real websocket node (Pyaiot's node protocol on aiot's /node endpoint),
// driven by the test: it announces values, answers commands, and can leave.
import WebSocket from 'ws'

export class WsNode {
  constructor(httpUrl, id, values) {
    this.url = `${httpUrl.replace(/^http/, 'ws')}/node?id=${encodeURIComponent(id)}`
    this.id = id
    this.values = { ...values }
    this.commands = []
    this.waiters = []
    /** answer decides whether the node applies (and echoes) a command. */
    this.answer = () => true
    this.ws = null
  }

  connect() {
    return new Promise((res, rej) => {
      const ws = new WebSocket(this.url)
      this.ws = ws
      ws.on('open', () => {
        this.send(this.values)
        res()
      })
      ws.on('error', rej)
      ws.on('message', (buf) => {
        let m
        try {
          m = JSON.parse(buf.toString())
        } catch {
          return
        }
        if (m.request === 'discover') {
          this.send(this.values)
        } else if (typeof m.endpoint === 'string') {
          const cmd = { endpoint: m.endpoint, payload: String(m.payload) }
          this.commands.push(cmd)
          for (const w of this.waiters.splice(0)) w(cmd)
          if (this.answer(cmd)) this.send({ [cmd.endpoint]: cmd.payload })
        }
      })
    })
  }

  send(values) {
    Object.assign(this.values, values)
    this.ws.send(JSON.stringify({ type: 'update', data: values }))
  }

  /** waitCommand resolves with the first command matching pred. */
  waitCommand(pred, timeoutMs = 20_000) {
    const seen = this.commands.find(pred)
    if (seen) return Promise.resolve(seen)
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`node ${this.id} got no matching command; got ${JSON.stringify(this.commands)}`)), timeoutMs)
      const check = (c) => {
        if (pred(c)) {
          clearTimeout(t)
          res(c)
        } else this.waiters.push(check)
      }
      this.waiters.push(check)
    })
  }

  close() {
    return new Promise((res) => {
      if (!this.ws || this.ws.readyState === WebSocket.CLOSED) return res()
      this.ws.once('close', () => res())
      this.ws.close(1000, 'test done')
    })
  }
}
