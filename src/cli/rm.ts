/** `floka rm`: remove containers; `-f` kills a running one first. */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { SIGNALS } from "../../lib/linux.ts";
import { isAlive, supervisorAlive } from "../containers/liveness.ts";
import { reconcile, releaseNetwork } from "../containers/reconcile.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import { CgroupManager } from "../runtime/cgroups.ts";
import { attachSocketPath } from "../runtime/attach.ts";
import { markStopped } from "../runtime/lifecycle.ts";
import { removeAnonymousVolumes } from "../containers/volumes.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { forEachContainer } from "./output.ts";

/** Waits up to `ms` for the container's process to be gone. */
async function waitGone(c: Container, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(c.state)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/**
 * Removes one container. Killing PID 1 of its PID namespace kills every process in it; the
 * container's `floka run` then finds the container gone and only cleans up.
 */
export async function removeContainer(
  store: ContainerStore,
  ref: string,
  force: boolean,
  volumes = false,
): Promise<void> {
  const cgroups = new CgroupManager();
  const c = reconcile(store, store.find(ref), cgroups);
  if (!c) return; // it was --rm, and is gone now
  if (isAlive(c.state)) {
    if (!force) {
      throw new FlokaError(
        `cannot remove container "${ref}": container is running: stop the container before removing or force remove`,
      );
    }
    markStopped(store, c.record.id); // no restart policy brings it back
    libc.kill(c.state.pid, SIGNALS.SIGKILL);
    if (!await waitGone(c, 10_000)) {
      throw new FlokaError(`container ${ref}: its process ${c.state.pid} did not die after SIGKILL`);
    }
  }
  const left = cgroups.remove(cgroups.locate(c.record.id));
  if (left.length) throw new FlokaError(`container ${ref}: could not remove its cgroup ${left.join(", ")}`);
  // Without its supervisor (killed while the container lived on) nobody else releases its network.
  if (!supervisorAlive(c.state)) releaseNetwork(store, c);
  store.remove(c.record.id);
  if (volumes) removeAnonymousVolumes(store.store, c.record.hostConfig.mounts);
  try {
    Deno.removeSync(attachSocketPath(c.record.id)); // left by a supervisor that was killed
  } catch { /* none */ }
}

export const rmCommand = defineCommand(
  {
    name: "rm",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Remove one or more containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      force: { short: "f", long: "force", help: "Force the removal of a running container (uses SIGKILL)" },
      volumes: {
        short: "v",
        long: "volumes",
        help: "Remove anonymous volumes associated with the container",
      },
    },
  },
  async ({ options, args, globals }) => {
    const store = openStore(globals);
    return await forEachContainer(args, (ref) => removeContainer(store, ref, options.force, options.volumes));
  },
);
