import { describe, expect, it } from 'vitest'
import { RELEASE, frame, stick } from '../src/widgets/joystick'
import { MAX_CAMERAS, cameraPref, imageUrl, refreshed, setCameraPref } from '../src/widgets/prefs'
import { MAX_SCRIPT_BYTES, scriptTooLong } from '../src/widgets/script'
import { shown } from '../src/widgets/command'

describe('joystick (Pyaiot joystick.js arithmetic)', () => {
  // A 200×200 joystick as Pyaiot's: centre (100, 100), the knob moves 50 px at most.
  const cases: Array<{ name: string; x: number; y: number; frame: string; knob: [number, number] }> = [
    { name: 'centre', x: 100, y: 100, frame: '0:0:0\n', knob: [0, 0] },
    { name: 'half way right: dx is negative, as Pyaiot', x: 125, y: 100, frame: '-128:0:-128\n', knob: [25, 0] },
    { name: 'down to the edge', x: 100, y: 150, frame: '0:255:255\n', knob: [0, 50] },
    { name: 'beyond the edge is clamped', x: 100, y: 0, frame: '0:-255:-255\n', knob: [0, -50] },
    { name: 'up and left (Math.round of -127.5 is -127, as in Pyaiot)', x: 75, y: 75, frame: '127:-127:0\n', knob: [-25, -25] },
    { name: 'diagonal beyond the edge keeps its direction', x: 200, y: 200, frame: '-180:180:0\n', knob: [35.36, 35.36] },
  ]
  for (const tc of cases) {
    it(tc.name, () => {
      const s = stick(tc.x, tc.y, 200, 200)
      expect(frame(s)).toBe(tc.frame)
      expect(s.x).toBeCloseTo(tc.knob[0], 1)
      expect(s.y).toBeCloseTo(tc.knob[1], 1)
    })
  }
  it('releases with 0:0:0 and a newline', () => {
    expect(RELEASE).toBe('0:0:0\n')
  })
})

describe('camera URLs', () => {
  const base = 'http://aiot.example:8080/'
  const cases: Array<{ name: string; value: string; want: string }> = [
    { name: 'http', value: 'http://cam.local/stream.mjpg', want: 'http://cam.local/stream.mjpg' },
    { name: 'https with spaces around', value: '  https://cam.example/a.jpg ', want: 'https://cam.example/a.jpg' },
    { name: 'relative to the page', value: 'sim-camera.svg', want: 'http://aiot.example:8080/sim-camera.svg' },
    { name: 'data image', value: 'data:image/png;base64,iVBOR', want: 'data:image/png;base64,iVBOR' },
    { name: 'javascript refused', value: 'javascript:alert(1)', want: '' },
    { name: 'data html refused', value: 'data:text/html,<b>x</b>', want: '' },
    { name: 'text with spaces refused', value: 'no camera here', want: '' },
    { name: 'empty', value: '', want: '' },
    { name: 'too long refused', value: `http://x/${'a'.repeat(3000)}`, want: '' },
  ]
  for (const tc of cases) {
    it(tc.name, () => expect(imageUrl(tc.value, base)).toBe(tc.want))
  }
  it('reloads a still image with a counter, never a data URL', () => {
    expect(refreshed('http://cam/a.jpg?x=1', 3)).toBe('http://cam/a.jpg?x=1&_frame=3')
    expect(refreshed('http://cam/a.jpg', 0)).toBe('http://cam/a.jpg')
    expect(refreshed('data:image/png;base64,AA', 3)).toBe('data:image/png;base64,AA')
  })
  it(`keeps the settings of at most ${MAX_CAMERAS} cameras, dropping the oldest`, () => {
    for (let i = 0; i < MAX_CAMERAS + 5; i++) setCameraPref(`cam${i}`, { url: `http://c/${i}.jpg`, refresh: 5 })
    expect(cameraPref('cam0')).toEqual({ url: '', refresh: 0 })
    expect(cameraPref('cam4')).toEqual({ url: '', refresh: 0 })
    expect(cameraPref('cam5')).toEqual({ url: 'http://c/5.jpg', refresh: 5 })
    expect(cameraPref(`cam${MAX_CAMERAS + 4}`).url).toBe(`http://c/${MAX_CAMERAS + 4}.jpg`)
    setCameraPref('cam5', { url: '', refresh: 0 })
    expect(cameraPref('cam5')).toEqual({ url: '', refresh: 0 })
  })
})

describe('js scripts', () => {
  it('takes a script that fits in a node value', () => {
    expect(scriptTooLong('print("hi");')).toBe('')
    expect(scriptTooLong('x'.repeat(MAX_SCRIPT_BYTES - 2))).toBe('')
  })
  it('refuses one that does not, counting its JSON escaping and UTF-8', () => {
    expect(scriptTooLong('x'.repeat(MAX_SCRIPT_BYTES))).toMatch(/^too long: 3502 bytes/)
    expect(scriptTooLong('"'.repeat(MAX_SCRIPT_BYTES / 2))).toMatch(/^too long/)
    expect(scriptTooLong('é'.repeat(MAX_SCRIPT_BYTES / 2))).toMatch(/^too long/)
  })
  it('shows payloads on one line, cut', () => {
    expect(shown('1:2:3\n')).toBe('1:2:3\\n')
    expect(shown('a'.repeat(50), 10)).toBe(`${'a'.repeat(9)}…`)
  })
})
