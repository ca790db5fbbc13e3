// The command path of the widgets that drive a node (robot, ribot, js):
// the same one as the LED switch, the store's command(), whose outcome
// (result, refusal, timeout, queued) the widget shows.

import { computed, type ComputedRef } from 'vue'
import { lastCommand, type CommandRec, type ResourceRec } from '../lib/store'
import { useStore } from '../lib/live'
import { isRoleReadOnly } from '../lib/view'

/** ResourceCommand is what a widget needs to send commands to its resource. */
export interface ResourceCommand {
  /** The browser is a viewer: the widget shows its value and a lock, no controls. */
  viewer: ComputedRef<boolean>
  /** The newest command sent to this resource from this page, finished or not. */
  last: ComputedRef<CommandRec | undefined>
  /** send sends payload to the resource, unless disabled; the command, or null. */
  send(payload: string): CommandRec | null
}

/** useResourceCommand binds the store's command path to one resource. */
export function useResourceCommand(props: { res: ResourceRec; disabled: string }): ResourceCommand {
  const store = useStore()
  return {
    viewer: computed(() => isRoleReadOnly(props.disabled)),
    // The command list is a ref the store triggers when a command changes;
    // the store changes a command in place, so the widget gets a copy (the
    // same record again would not count as a change for Vue).
    last: computed(() => {
      const c = lastCommand(store.commandsRef.value, props.res.uid, props.res.name)
      return c ? { ...c } : undefined
    }),
    send(payload: string): CommandRec | null {
      if (props.disabled) return null
      return store.command(props.res.uid, props.res.name, payload)
    },
  }
}

/** shown is how a command's payload is written in a status line. */
export function shown(payload: string, max = 40): string {
  const p = payload.replace(/\n/g, '\\n')
  return p.length > max ? `${p.slice(0, max - 1)}…` : p
}
