// Limits of a script sent to a js node.

/**
 * MAX_SCRIPT_BYTES bounds a script as JSON text (UTF-8): the node reports
 * what it ran as its js value, and a value on the bus is at most 4096
 * bytes with its envelope (bus.DefaultMaxValueBytes); a larger one would
 * be dropped and the command would time out.
 */
export const MAX_SCRIPT_BYTES = 3500

/** scriptTooLong says why a script cannot be sent, or ''. */
export function scriptTooLong(code: string): string {
  const n = new TextEncoder().encode(JSON.stringify(code)).length
  return n > MAX_SCRIPT_BYTES ? `too long: ${n} bytes as JSON, at most ${MAX_SCRIPT_BYTES} (a node value holds 4096)` : ''
}
