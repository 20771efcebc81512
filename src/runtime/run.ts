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
import type { Container, ContainerRecord, ContainerStore } from "../containers/store.ts";
import { debug } from "../log.ts";
import { pathExists } from "../store/files.ts";
import type { Cgroup, CgroupManager } from "./cgroups.ts";
import { selfCommand } from "./self_exec.ts";
import { etcFiles } from "./etc_files.ts";
import { findInitBinary } from "./init.ts";
import { getWindowSize, type WindowSize } from "./pty.ts";
import { buildSpec, ETC_FILES, INIT_LAYER, LAYER_LINKS } from "./spec.ts";
import { hostDevices } from "./host_devices.ts";
import { NetworkSession } from "../network/attach.ts";
import { joinHosts, leaveHosts } from "../network/hosts.ts";

/** Signals a user or supervisor may send to `floka run`; each goes on to the container's PID 1. */
const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

/** The container's process failed to start (containerize reported before execve). */
export class StartError extends FlokaError {}

/**
 * Forwards signals to `pid` (a container's PID 1, an exec'd process) while it runs. Ctrl-C
 * and Ctrl-\ typed on a terminal already reach it when it shares our foreground process
 * group, so those are only kept from killing Floka, not sent a second time; a process with
 * a terminal of its own (`ownTerminal`) gets them from us.
 */
export function forwardSignals(pid: number, ownTerminal = false): () => void {
  const fromTerminal = !ownTerminal && libc.isForegroundOnTerminal(0) ? ["SIGINT", "SIGQUIT"] : [];
  const removers = FORWARDED.map((sig) => {
    const handler = () => {
      if (!fromTerminal.includes(sig)) libc.kill(pid, L.SIGNALS[sig]);
    };
    Deno.addSignalListener(sig, handler);
    return () => Deno.removeSignalListener(sig, handler);
  });
  return () => removers.forEach((remove) => remove());
}

/**
 * Calls `spawn` so that the process it starts is PID 1 of a new PID namespace. unshare(CLONE_NEWPID) changes the
 * namespace of this thread's future children only, and while it is in force the kernel
 * refuses to create threads (EINVAL), which Deno does at any time; so the host's own PID
 * namespace is restored for children right after the spawn.
 */
function spawnInNewPidNamespace(spawn: () => number): number {
  const hostPidNs = libc.open("/proc/self/ns/pid", L.O_RDONLY | L.O_CLOEXEC);
  try {
    libc.unshare(L.CLONE_NEWPID);
    try {
      return spawn();
    } finally {
      libc.setns(hostPidNs, L.CLONE_NEWPID);
    }
  } finally {
    libc.close(hostPidNs);
  }
}

/** A `floka containerize` that is booting and waits for its spec on `channel`. */
interface Starting {
  pid: number;
  channel: number;
}

/**
 * Starts `floka containerize` with one end of a socket pair, runc's sync channel. The
 * host sends the spec on it (one line of JSON) once the container's record and cgroup are
 * ready; containerize reports a failure on it, or execs the command, which closes it (the
 * end is close-on-exec by then).
 */
function spawnContainerize(stdio?: Stdio): Starting {
  const [hostEnd, childEnd] = libc.socketpair(L.AF_UNIX, L.SOCK_STREAM | L.SOCK_CLOEXEC);
  try {
    libc.fcntl(childEnd, L.F_SETFD, 0);
    const { program, args } = selfCommand(["containerize", String(childEnd)]);
    const env = Object.entries({ ...Deno.env.toObject(), DENO_NO_UPDATE_CHECK: "1" }).map(([k, v]) =>
      `${k}=${v}`
    );
    // posix_spawn rather than Deno.Command: the latter's first use costs milliseconds.
    const pid = spawnInNewPidNamespace(() => libc.spawn(program, [program, ...args], env, stdio));
    return { pid, channel: hostEnd };
  } catch (err) {
    libc.close(hostEnd);
    throw err;
  } finally {
    libc.close(childEnd);
  }
}

/**
 * Reads the sync channel to its end: the terminal's master first (with `-t`), then nothing
 * when the command was exec'd, else the failure.
 */
export async function startResult(
  channel: number,
  tty: boolean,
): Promise<{ failure: StartFailure | null; master: number | null }> {
  let head = new Uint8Array(0);
  let master: number | null = null;
  if (tty) {
    const buf = new Uint8Array(4096);
    const got = await libc.receiveWithFd(channel, buf);
    master = got.fd;
    head = buf.subarray(master === null ? 0 : 1, got.bytes);
  }
  const rest = await libc.readToEnd(channel);
  const bytes = new Uint8Array(head.length + rest.length);
  bytes.set(head);
  bytes.set(rest, head.length);
  if (!bytes.length) return { failure: null, master };
  if (master !== null) libc.close(master);
  return { failure: JSON.parse(new TextDecoder().decode(bytes)) as StartFailure, master: null };
}

/** What became of a container's process. */
type Outcome = { failure: StartFailure; exitCode?: never } | { failure?: never; exitCode: number };

/** The container's stdin, stdout and stderr: file descriptors of this process. */
export type Stdio = readonly [stdin: number, stdout: number, stderr: number];

/** Creates the container's directory: generated /etc files, overlay directories. */
/**
 * The mount points the runtime needs in every container: present in a layer of their own
 * (Docker's "init layer") between the image's layers and the container's own, so that
 * making them is no change of the container's (`commit` and build steps keep none).
 */
export function makeInitLayer(dir: string): string {
  for (const sub of ["proc", "sys", "dev", "etc"]) Deno.mkdirSync(`${dir}/${sub}`, { recursive: true });
  for (const file of ETC_FILES) Deno.writeTextFileSync(`${dir}/etc/${file}`, "");
  return dir;
}

export function prepareContainerDir(record: ContainerRecord): (dir: string) => void {
  return (dir: string) => {
    for (const sub of ["upper", "work", "rootfs", LAYER_LINKS]) {
      Deno.mkdirSync(`${dir}/${sub}`, { mode: 0o755 });
    }
    makeInitLayer(`${dir}/${INIT_LAYER}`);
    record.lowerDirs.forEach((lower, i) => Deno.symlinkSync(lower, `${dir}/${LAYER_LINKS}/${i}`));
    for (const [file, text] of Object.entries(etcFiles(record))) {
      Deno.writeTextFileSync(`${dir}/${file}`, text);
    }
  };
}

/** A container to create: its record, and what fills its directory. */
export interface NewContainer {
  record: ContainerRecord;
  prepare: (dir: string) => void;
}

/** How one run of a container's process ended. */
export interface ProcessEnd {
  exitCode: number;
  oomKilled: boolean;
}

export interface StartOptions {
  /** Replaces Floka's own stdin, stdout and stderr (pipes to a log, a build step's output). */
  stdio?: Stdio;
  /** Kills the container when aborted (a cancelled build step). */
  signal?: AbortSignal;
  /** Told once the command runs (null) or could not be started. */
  onStarted?: (failure: StartFailure | null) => void;
  /**
   * With `-t`: given the master of the container's terminal (to relay and close) once the
   * command runs, and the process's end.
   */
  onTerminal?: (master: number, ended: Promise<unknown>) => void;
  /** Called once the process has ended, before its end is recorded: its output is drained. */
  drain?: () => Promise<void>;
  /** The command has a terminal of its own: Ctrl-C on Floka's terminal does not reach it by itself. */
  ownTerminal?: boolean;
  /**
   * When the process ends for good (no restart policy), its network is released by a
   * background process instead of before this returns (src/network/release.ts).
   */
  releaseNetworkInBackground?: boolean;
  /** With `-t`, the terminal's first size, when not Floka's own terminal's. */
  windowSize?: WindowSize | null;
}

/**
 * Starts the container's process once and waits for it to end. containerize is spawned
 * first, so that its boot (the larger part of a start) overlaps all of the host's work:
 * `container` (which creates a new container, or reads an existing one for a restart), the
 * cgroup and the spec. The cgroup exists only while the process runs. The state says
 * "running" while it does and "exited", with the exit code, after. When the command cannot
 * be started a StartError carries Docker's exit code (125, or 126/127 when it cannot be
 * executed or found).
 */
export async function startProcess(
  store: ContainerStore,
  container: () => Container,
  cgroups: CgroupManager,
  opts: StartOptions = {},
): Promise<ProcessEnd> {
  const { pid, channel } = spawnContainerize(opts.stdio);
  const exited = libc.waitExit(pid);
  const stopForwarding = forwardSignals(pid, opts.ownTerminal);
  const kill = () => libc.kill(pid, L.SIGNALS.SIGKILL);
  opts.signal?.addEventListener("abort", kill);
  let record: ContainerRecord | undefined;
  let cgroup: Cgroup | undefined;
  let net: NetworkSession | null = null;
  let outcome: Outcome;
  try {
    const { record: r, dir } = container();
    record = r;
    // A container made by an older Floka has no init layer yet.
    if (!pathExists(`${dir}/${INIT_LAYER}`)) makeInitLayer(`${dir}/${INIT_LAYER}`);
    // The network namespace first, then CNI ADD runs while the cgroup and spec are made
    // (and containerize boots): the spec needs only the namespace's path.
    const session = asStartError(() => NetworkSession.open(store.store, r));
    if (session) {
      asStartError(() => session.createNamespace());
      net = session;
    }
    const adding = net?.add();
    adding?.catch(() => {}); // awaited below; a failure there must not be unhandled meanwhile
    cgroup = cgroups.create(record.id, record.hostConfig);
    cgroups.hostJoin(cgroup, pid);
    const init = record.hostConfig.init ? findInitBinary() : undefined;
    const devices = record.hostConfig.privileged ? hostDevices() : [];
    const spec = buildSpec(record, dir, cgroups.selfJoinFiles(cgroup), init, net?.state.netns, devices);
    if (spec.process.terminal) {
      spec.process.windowSize = opts.windowSize ?? getWindowSize(1) ?? getWindowSize(0);
    }
    // containerize sets the container up while CNI ADD finishes; it waits for a go-ahead
    // line before it runs the command.
    if (adding) spec.awaitHost = true;
    libc.writeAll(channel, new TextEncoder().encode(JSON.stringify(spec) + "\n"));
    if (adding) {
      const attached = await asStartErrorAsync(adding);
      // In place: containerize may have bound the file already.
      joinHosts(store, r, dir, attached);
      try {
        libc.writeAll(channel, new TextEncoder().encode("go\n"));
      } catch { /* containerize failed meanwhile: its report follows on the channel */ }
    }
    store.updateState(record.id, (s) => ({
      status: "running",
      pid,
      pidStartTime: processStartTime(pid) ?? undefined,
      startedAt: new Date().toISOString(),
      restartCount: s.restartCount,
      supervisorPid: Deno.pid,
      supervisorStartTime: processStartTime(Deno.pid) ?? undefined,
      ...(net ? { network: net.state } : {}),
    }));
    const { failure, master } = await startResult(channel, !!spec.process.terminal);
    if (master !== null) {
      if (opts.onTerminal) opts.onTerminal(master, exited);
      else libc.close(master);
    }
    opts.onStarted?.(failure);
    const { code: exitCode } = await exited;
    // Everything the process wrote is in its log before its end is recorded (`logs` after `wait`).
    await opts.drain?.();
    outcome = failure ? { failure } : { exitCode };
  } catch (err) {
    libc.kill(pid, L.SIGNALS.SIGKILL);
    await exited;
    if (cgroup) cgroups.remove(cgroup);
    await net?.teardown().catch((e) => debug(`network teardown: ${e}`));
    throw err;
  } finally {
    stopForwarding();
    opts.signal?.removeEventListener("abort", kill);
    libc.close(channel);
  }
  debug(`container ${record.id.slice(0, 12)} ended: ${JSON.stringify(outcome)}`);
  // The network goes while the cgroup is reclaimed.
  const final = !record.hostConfig.restartPolicy || record.hostConfig.restartPolicy.name === "no";
  const detaching = net ? detach(store, record, net, !!opts.releaseNetworkInBackground && final) : null;
  const oomKilled = cgroups.oomKilled(cgroup);
  const left = cgroups.remove(cgroup);
  const detachError = await detaching;
  store.updateState(record.id, ({ network: _, ...s }) => ({
    ...s,
    status: "exited",
    pid: 0,
    exitCode: outcome.failure ? outcome.failure.exitCode : outcome.exitCode,
    oomKilled,
    finishedAt: new Date().toISOString(),
    ...(outcome.failure ? { error: outcome.failure.message } : {}),
  }));
  if (outcome.failure) throw new StartError(outcome.failure.message, outcome.failure.exitCode);
  if (detachError) throw new FlokaError(`could not detach the container from its network: ${detachError}`);
  if (left.length) {
    throw new FlokaError(
      `could not remove the container's cgroup ${left.join(", ")}: it still has processes`,
    );
  }
  return { exitCode: outcome.exitCode, oomKilled };
}

/** A failure of the network's setup is a failure to start (exit 125, the container not kept). */
function asStartError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FlokaError && !(err instanceof StartError)) throw new StartError(err.message);
    throw err;
  }
}

async function asStartErrorAsync<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof FlokaError && !(err instanceof StartError)) throw new StartError(err.message);
    throw err;
  }
}

/**
 * The peers' hosts files updated, then CNI DEL and the namespace removed, here or (`later`)
 * by a background process; the error, if any.
 */
async function detach(
  store: ContainerStore,
  record: ContainerRecord,
  net: NetworkSession,
  later: boolean,
): Promise<string | null> {
  try {
    leaveHosts(store, record, net.state);
    if (later) {
      try {
        net.releaseInBackground();
        return null;
      } catch (err) {
        debug(`background network release failed, releasing now: ${err}`);
      }
    }
    const started = performance.now();
    await net.teardown();
    debug(`network released in ${(performance.now() - started).toFixed(1)} ms`);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Creates a container and runs its process once in the foreground (a build step); returns
 * its exit code. When it cannot be started nothing of it is left; with `--rm` it is removed
 * at the end.
 */
export async function runContainer(
  store: ContainerStore,
  describe: () => NewContainer,
  cgroups: CgroupManager,
  opts: StartOptions = {},
): Promise<number> {
  let created: Container | undefined;
  try {
    const end = await startProcess(
      store,
      () => {
        const { record, prepare } = describe();
        return created = store.create(record, prepare);
      },
      cgroups,
      opts,
    );
    if (created!.record.hostConfig.autoRemove) store.remove(created!.record.id);
    return end.exitCode;
  } catch (err) {
    if (created) store.remove(created.record.id);
    throw err;
  }
}
