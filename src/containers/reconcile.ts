/**
 * Brings a container's recorded state in line with the kernel's. A container whose process
 * ended while no Floka was watching (its `floka run` was killed) still says "running";
 * the next command that looks finds the process gone, records the container as exited,
 * reclaims its cgroup, and removes it if it was started with `--rm`.
 */
import { attachSocketPath } from "../runtime/attach.ts";
import { CgroupManager } from "../runtime/cgroups.ts";
import { ownNetwork, teardownStale } from "../network/attach.ts";
import { netnsExists, netnsPath } from "../network/netns.ts";
import { NetworkStore } from "../network/networks.ts";
import { settleRelease } from "../network/release.ts";
import { isAlive, supervisorAlive } from "./liveness.ts";
import type { Container, ContainerStore } from "./store.ts";
import { removeAnonymousVolumes } from "./volumes.ts";

/** Docker's exit code for a container whose real status was lost. */
export const EXIT_UNKNOWN = 255;

/**
 * CNI DEL (idempotent) and the network namespace removed, for a container whose process
 * ended unwatched: from its recorded attachment, else (killed before it was recorded) from
 * its record, when its namespace file is still there.
 */
export function releaseNetwork(store: ContainerStore, container: Container): void {
  const { record, state } = container;
  try {
    if (state.network) return teardownStale(record.id, state.network);
    // A background release of its last run may be under way: let it finish first.
    settleRelease(record.id, (s) => teardownStale(record.id, s));
    if (!ownNetwork(record.hostConfig.networkMode) || !netnsExists(record.id)) return;
    const config = new NetworkStore(store.store).resolve(record.hostConfig.networkMode);
    teardownStale(record.id, {
      name: config.name,
      netns: netnsPath(record.id),
      config,
      ports: record.hostConfig.portBindings ?? [],
    });
  } catch { /* best effort: the next reconcile tries again only if state still says so */ }
}

/** The container as it really is, or null when it was `--rm` and is now removed. */
export function reconcile(
  store: ContainerStore,
  container: Container,
  cgroups = new CgroupManager(),
): Container | null {
  const { state } = container;
  if (state.status !== "running" && state.status !== "restarting") return container;
  // A live supervisor records the end itself (it may be doing so right now).
  if (isAlive(state) || supervisorAlive(state)) return container;
  const { network: _, ...rest } = container.state;
  const finished = {
    ...rest,
    status: "exited" as const,
    pid: 0,
    exitCode: EXIT_UNKNOWN,
    finishedAt: new Date().toISOString(),
    error: "the container's process ended while no Floka process was watching it; its exit status is unknown",
  };
  store.updateState(
    container.record.id,
    (current) => current.status === "running" || current.status === "restarting" ? finished : current,
  );
  cgroups.remove(cgroups.locate(container.record.id), 0);
  releaseNetwork(store, container);
  try {
    Deno.removeSync(attachSocketPath(container.record.id)); // its dead supervisor's
  } catch { /* it had none, or it is gone */ }
  if (container.record.hostConfig.autoRemove) {
    store.remove(container.record.id);
    removeAnonymousVolumes(store.store, container.record.hostConfig.mounts);
    return null;
  }
  return { ...container, state: finished };
}
