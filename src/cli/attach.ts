/** `floka attach`: attach to a running container's output (and input), as `docker attach`. */
import { FlokaError } from "../../lib/errors.ts";
import { isAlive } from "../containers/liveness.ts";
import { reconcile } from "../containers/reconcile.ts";
import { attachClient, attachSocketPath, parseDetachKeys } from "../runtime/attach.ts";
import { withRawTerminal } from "../runtime/pty.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

/** `--detach-keys`, of `attach` and `run -it`. */
export const DETACH_KEYS_OPTION = {
  long: "detach-keys",
  value: "string",
  default: "ctrl-p,ctrl-q",
  help: "Override the key sequence for detaching a container",
} as const;

/**
 * Attaches to the running container `id` until its process ends (its exit code) or the
 * detach keys are typed (null): with Floka's stdin as its input when `withInput`, and
 * Floka's terminal raw and its size followed when the container has one too.
 */
export async function attachTo(
  id: string,
  withInput: boolean,
  tty: boolean,
  keys: Uint8Array,
): Promise<number | null> {
  const raw = withInput && tty && Deno.stdin.isTerminal();
  const attach = () => attachClient(attachSocketPath(id), withInput ? Deno.stdin.readable : null, keys, raw);
  const { exitCode } = raw ? await withRawTerminal(0, attach) : await attach();
  return exitCode;
}

export const attachCommand = defineCommand(
  {
    name: "attach",
    usage: "[OPTIONS] CONTAINER",
    description: "Attach local standard input, output, and error streams to a running container",
    minArgs: 1,
    maxArgs: 1,
    options: {
      noStdin: { long: "no-stdin", help: "Do not attach STDIN" },
      detachKeys: DETACH_KEYS_OPTION,
    },
  },
  async ({ options, args, globals }) => {
    const store = openStore(globals);
    const keys = parseDetachKeys(options.detachKeys);
    const c = reconcile(store, store.find(args[0]));
    if (!c || !isAlive(c.state)) {
      throw new FlokaError("You cannot attach to a stopped container, start it first", 1);
    }
    const withInput = !options.noStdin && !!c.record.config.openStdin;
    const exitCode = await attachTo(c.record.id, withInput, !!c.record.config.tty, keys);
    // Detached with the keys (or the supervisor went away): the container runs on.
    return exitCode ?? 0;
  },
);
