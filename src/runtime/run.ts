/**
 * The host side of a container's life (DESIGN section 4): everything outside the
 * container is prepared here, then Floka re-executes itself as `containerize` in a new PID
 * namespace, stays its parent, forwards signals, waits, records the exit status and cleans
 * up. Read top to bottom, `runContainer` is the list of steps.
 */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import type { StartFailure } from "../../lib/spec.ts";
import { processStartTime } from "../containers/liveness.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import { debug } from "../log.ts";
import { writeJsonAtomic } from "../store/files.ts";
import type { Cgroup, CgroupManager } from "./cgroups.ts";
import { selfCommand } from "./self_exec.ts";
import { buildSpec } from "./spec.ts";

/** Signals a user or supervisor may send to `floka run`; each goes on to the container's PID 1. */
const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/** The container's process failed to start (containerize reported before execve). */
export class StartError extends FlokaError {}

/** The exit code Docker reports for a status: the command's, or 128+N when killed by signal N. */
export function exitCodeOf(status: Deno.CommandStatus): number {
  if (status.signal) return 128 + (L.SIGNALS[status.signal] ?? 0);
  return status.code;
}

/**
 * Forwards signals to the child. Ctrl-C and Ctrl-\ from a terminal already reach the
 * container's process, which shares our foreground process group; forwarding them too
 * would deliver them twice.
 */
function forwardSignals(child: Deno.ChildProcess): () => void {
  const onTerminal = libc.isForegroundOnTerminal(0);
  const listeners = FORWARDED
    .filter((sig) => !(onTerminal && (sig === "SIGINT" || sig === "SIGQUIT")))
    .map((sig) => {
      const handler = () => {
        try {
          child.kill(sig);
        } catch { /* already gone */ }
      };
      Deno.addSignalListener(sig, handler);
      return () => Deno.removeSignalListener(sig, handler);
    });
  // Still listen for the terminal's signals so they do not kill Floka before the container.
  const ignored = onTerminal
    ? (["SIGINT", "SIGQUIT"] as Deno.Signal[]).map((sig) => {
      const noop = () => {};
      Deno.addSignalListener(sig, noop);
      return () => Deno.removeSignalListener(sig, noop);
    })
    : [];
  return () => [...listeners, ...ignored].forEach((remove) => remove());
}

/**
 * Spawns `command` as PID 1 of a new PID namespace. unshare(CLONE_NEWPID) changes the
 * namespace of this thread's future children only, and while it is in force the kernel
 * refuses to create threads (EINVAL), which Deno does at any time; so the host's own PID
 * namespace is restored for children right after the spawn.
 */
function spawnInNewPidNamespace(command: Deno.Command): Deno.ChildProcess {
  const hostPidNs = libc.open("/proc/self/ns/pid", L.O_RDONLY | L.O_CLOEXEC);
  try {
    libc.unshare(L.CLONE_NEWPID);
    try {
      return command.spawn();
    } finally {
      libc.setns(hostPidNs, L.CLONE_NEWPID);
    }
  } finally {
    libc.close(hostPidNs);
  }
}

/**
 * Starts `floka containerize` with one end of a socket pair, runc's sync channel: the host
 * writes one byte when the container's cgroup is ready, containerize reports a failure on
 * it or execs, which closes it (the end is close-on-exec by then).
 */
function spawnContainerize(specPath: string): { child: Deno.ChildProcess; syncFd: number } {
  const [hostEnd, childEnd] = libc.socketpair(L.AF_UNIX, L.SOCK_STREAM | L.SOCK_CLOEXEC);
  try {
    libc.fcntl(childEnd, L.F_SETFD, 0);
    const { program, args } = selfCommand(["containerize", specPath, String(childEnd)]);
    const child = spawnInNewPidNamespace(
      new Deno.Command(program, {
        args,
        stdin: "inherit",
        stdout: "inherit",
        stderr: "inherit",
        env: { DENO_NO_UPDATE_CHECK: "1" },
      }),
    );
    return { child, syncFd: hostEnd };
  } catch (err) {
    libc.close(hostEnd);
    throw err;
  } finally {
    libc.close(childEnd);
  }
}

/** Reads the sync channel to its end: null when the command was exec'd, else the failure. */
async function startResult(syncFd: number): Promise<StartFailure | null> {
  try {
    const bytes = await libc.readToEnd(syncFd);
    return bytes.length ? JSON.parse(new TextDecoder().decode(bytes)) as StartFailure : null;
  } finally {
    libc.close(syncFd);
  }
}

/** Starts the container's process and waits for it: the start failure, or the exit code. */
async function startAndWait(
  store: ContainerStore,
  container: Container,
  cgroups: CgroupManager,
  cgroup: Cgroup,
): Promise<{ failure: StartFailure | null; exitCode: number }> {
  const { record, dir } = container;
  const specPath = `${dir}/spec.json`;
  writeJsonAtomic(specPath, buildSpec(record, dir));
  const { child, syncFd } = spawnContainerize(specPath);
  const stopForwarding = forwardSignals(child);
  try {
    // Done here, while the child boots, rather than by the child: moving a process between
    // cgroup v1 hierarchies costs milliseconds each. The child waits for the byte below.
    try {
      cgroups.join(cgroup, child.pid);
      libc.writeAll(syncFd, new Uint8Array([1]));
    } catch (err) {
      child.kill("SIGKILL");
      await child.status;
      libc.close(syncFd);
      throw err;
    }
    store.updateState(record.id, () => ({
      status: "running",
      pid: child.pid,
      pidStartTime: processStartTime(child.pid) ?? undefined,
      startedAt: new Date().toISOString(),
    }));
    const failure = await startResult(syncFd);
    return { failure, exitCode: exitCodeOf(await child.status) };
  } finally {
    stopForwarding();
  }
}

/**
 * Runs a created container in the foreground and returns its exit code. The container's
 * cgroup exists only while it runs; with `--rm` the container is removed at the end. When
 * the container cannot be started, nothing of it is left and the error carries Docker's
 * exit code (125, or 126/127 when its command cannot be executed or found).
 */
export async function runContainer(
  store: ContainerStore,
  container: Container,
  cgroups: CgroupManager,
): Promise<number> {
  const { record } = container;
  let outcome: { failure: StartFailure | null; exitCode: number };
  const cgroup = (() => {
    try {
      return cgroups.create(record.id, record.hostConfig);
    } catch (err) {
      store.remove(record.id);
      throw err;
    }
  })();
  try {
    outcome = await startAndWait(store, container, cgroups, cgroup);
  } catch (err) {
    cgroups.remove(cgroup);
    store.remove(record.id);
    throw err;
  }
  debug(`container ${record.id.slice(0, 12)} exited with ${outcome.exitCode}`);
  const left = cgroups.remove(cgroup);
  if (outcome.failure) {
    store.remove(record.id);
    throw new StartError(outcome.failure.message, outcome.failure.exitCode);
  }
  store.updateState(record.id, (s) => ({
    ...s,
    status: "exited",
    pid: 0,
    exitCode: outcome.exitCode,
    finishedAt: new Date().toISOString(),
  }));
  if (left.length) {
    throw new FlokaError(
      `could not remove the container's cgroup ${left.join(", ")}: it still has processes`,
    );
  }
  if (record.hostConfig.autoRemove) store.remove(record.id);
  return outcome.exitCode;
}
