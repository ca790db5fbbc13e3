// Pyaiot's joystick (dashboard/static/js/joystick.js), the arithmetic
// part: where the knob is and the frame sent to the ribot resource.

/** RIBOT_INTERVAL_MS: while held, the joystick sends its frame this often (Pyaiot: every second). */
export const RIBOT_INTERVAL_MS = 1000

/** RELEASE is the frame sent when the joystick is let go. */
export const RELEASE = '0:0:0\n'

/** Stick is the knob's offset from the centre (px) and the frame's dx, dy. */
export interface Stick {
  x: number
  y: number
  dx: number
  dy: number
}

/**
 * stick is the knob for a pointer at (offsetX, offsetY) inside a joystick
 * of width × height: as Pyaiot, the knob moves at most half the smaller
 * radius from the centre, and dx, dy scale that to ±255 (dx positive to
 * the left, dy positive downwards).
 */
export function stick(offsetX: number, offsetY: number, width: number, height: number): Stick {
  const cx = width / 2
  const cy = height / 2
  const max = Math.min(cx, cy) * 0.5
  let x = offsetX - cx
  let y = offsetY - cy
  const d = Math.hypot(x, y)
  if (d > max) {
    x *= max / d
    y *= max / d
  }
  // + 0 turns -0 into 0 (Pyaiot's page prints "0", not "-0").
  return { x, y, dx: -Math.round((x * 255) / max) + 0, dy: Math.round((y * 255) / max) + 0 }
}

/** frame is Pyaiot's ribot payload, "dx:dy:dx+dy\n". */
export function frame(s: Pick<Stick, 'dx' | 'dy'>): string {
  return `${s.dx}:${s.dy}:${s.dx + s.dy}\n`
}
