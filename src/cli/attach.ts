/** `floka attach`: attach to a running container's output (and input), as `docker attach`. */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { isAlive } from "../containers/liveness.ts";
import { reconcile } from "../containers/reconcile.ts";
import { attachClient, attachSocketPath, parseDetachKeys } from "../runtime/attach.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

/** Puts the terminal on `fd` in raw mode for `fn`, and always back as it was. */
async function withRawTerminal<T>(fd: number, fn: () => Promise<T>): Promise<T> {
  const saved = libc.tcgetattr(fd);
  const restore = () => {
    try {
      libc.tcsetattr(fd, saved);
    } catch { /* the terminal is gone */ }
  };
  libc.tcsetattr(fd, libc.cfmakeraw(libc.tcgetattr(fd)));
  addEventListener("unload", restore);
  try {
    return await fn();
  } finally {
    restore();
    removeEventListener("unload", restore);
  }
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
      detachKeys: {
        long: "detach-keys",
        value: "string",
        default: "ctrl-p,ctrl-q",
        help: "Override the key sequence for detaching a container",
      },
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
    const raw = withInput && !!c.record.config.tty && Deno.stdin.isTerminal();
    const attach = () =>
      attachClient(attachSocketPath(c.record.id), withInput ? Deno.stdin.readable : null, keys, raw);
    const { exitCode } = raw ? await withRawTerminal(0, attach) : await attach();
    // Detached with the keys (or the supervisor went away): the container runs on.
    return exitCode ?? 0;
  },
);
