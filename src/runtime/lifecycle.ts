/**
 * What `floka stop`, `kill`, `wait` and `rm -f` do to a running container: signal its
 * PID 1 (which takes every process of its PID namespace with it when it ends) and watch
 * the state its supervisor records.
 */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { SIGNALS } from "../../lib/linux.ts";
import { isAlive } from "../containers/liveness.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container, ContainerState, ContainerStore } from "../containers/store.ts";

/** A signal as Docker takes it: `KILL`, `SIGKILL`, `kill` or `9`. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = text.toUpperCase().replace(/^SIG/, "");
    const n = SIGNALS[`SIG${name}`];
    if (n !== undefined) return n;
  }
  throw new FlokaError(`invalid signal: ${text}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The container as it is now (a dead supervisor's container shows as exited); null once removed. */
function current(store: ContainerStore, id: string): Container | null {
  try {
    return reconcile(store, store.find(id));
  } catch {
    return null; // removed meanwhile
  }
}

/** Waits until the container is neither running nor restarting; its last state, null if removed. */
export async function waitStopped(
  store: ContainerStore,
  id: string,
  pollMs = 25,
): Promise<ContainerState | null> {
  for (;;) {
    const c = current(store, id);
    if (!c) return null;
    if (c.state.status !== "running" && c.state.status !== "restarting") return c.state;
    await sleep(pollMs);
  }
}

/** Marks the container stopped by the user, so that no restart policy brings it back. */
export function markStopped(store: ContainerStore, id: string, stopped = true): void {
  store.updateState(id, (s) => ({ ...s, manuallyStopped: stopped }));
}

/** Sends `signal` to the container's PID 1; the container must be running. */
export function killContainer(store: ContainerStore, ref: string, signal: number): void {
  const c = current(store, store.find(ref).record.id);
  if (!c || !isAlive(c.state)) {
    const id = c?.record.id ?? ref;
    throw new FlokaError(`cannot kill container: ${ref}: container ${id} is not running`);
  }
  if (signal === SIGNALS.SIGKILL) markStopped(store, c.record.id);
  libc.kill(c.state.pid, signal);
}

/**
 * `docker stop`: the container's stop signal (its image's STOPSIGNAL, else SIGTERM), then
 * SIGKILL after `timeoutSeconds`; returns once its supervisor has recorded the end. A
 * container that is not running is left as it is.
 */
export async function stopContainer(
  store: ContainerStore,
  ref: string,
  timeoutSeconds: number,
  signal?: number,
): Promise<void> {
  const id = store.find(ref).record.id;
  const c = current(store, id);
  if (!c || (c.state.status !== "running" && c.state.status !== "restarting")) return;
  markStopped(store, id);
  if (isAlive(c.state)) {
    libc.kill(c.state.pid, signal ?? parseSignal(c.record.config.stopSignal ?? "SIGTERM"));
    const deadline = Date.now() + timeoutSeconds * 1000;
    while (isAlive(current(store, id)?.state ?? { status: "exited", pid: 0 })) {
      if (Date.now() >= deadline) {
        libc.kill(c.state.pid, SIGNALS.SIGKILL);
        break;
      }
      await sleep(25);
    }
  }
  await waitStopped(store, id);
}
