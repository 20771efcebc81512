/** `floka start`: start stopped containers again, as `docker start`. */
import { FlokaError } from "../../lib/errors.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { ContainerStore } from "../containers/store.ts";
import { CgroupManager } from "../runtime/cgroups.ts";
import { startDetached } from "../runtime/detach.ts";
import { markStopped } from "../runtime/lifecycle.ts";
import { supervise } from "../runtime/supervise.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { forEachContainer } from "./output.ts";

/**
 * The container `ref` made ready for another run: same record, same writable layer. One
 * that runs already is left alone (false), as Docker does.
 */
function prepareStart(store: ContainerStore, ref: string): { id: string; dir: string } | null {
  const c = reconcile(store, store.find(ref));
  if (!c) throw new FlokaError(`No such container: ${ref}`);
  if (c.state.status === "running" || c.state.status === "restarting") return null;
  markStopped(store, c.record.id, false);
  return { id: c.record.id, dir: c.dir };
}

/** Starts `ref` under a detached supervisor; resolves once its command runs. */
export async function startInBackground(store: ContainerStore, ref: string): Promise<void> {
  const c = prepareStart(store, ref);
  if (c) await startDetached(store.store.root, c.dir, c.id);
}

export const startCommand = defineCommand(
  {
    name: "start",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Start one or more stopped containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      attach: { short: "a", long: "attach", help: "Attach STDOUT/STDERR and forward signals" },
      interactive: { short: "i", long: "interactive", help: "Attach container's STDIN" },
    },
  },
  async ({ options, args, globals }) => {
    requireRoot("start");
    const store = openStore(globals);
    if (options.attach || options.interactive) {
      if (args.length > 1) throw new FlokaError("you cannot start and attach multiple containers at once");
      const c = prepareStart(store, args[0]);
      if (!c) throw new FlokaError(`container ${args[0]} is already running`);
      return await supervise(store, () => store.find(c.id), new CgroupManager(), {
        foreground: true,
        stdin: options.interactive,
        terminal: store.find(c.id).record.config.tty ?? false,
      });
    }
    return await forEachContainer(args, (ref) => startInBackground(store, ref));
  },
);
