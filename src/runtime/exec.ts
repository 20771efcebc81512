/**
 * The host side of `floka exec`: runs a new process in a running container (DESIGN section
 * 4.5). The process must be born in the container's PID namespace, and a process cannot
 * move itself into one: setns(CLONE_NEWPID) only decides where this thread's next child
 * goes. So Floka joins the container's PID namespace that way on the main thread, starts
 * `floka exec-inside` (itself again, see self_exec.ts), and restores its own at once;
 * `exec-inside` joins the rest and execs the command (exec_main.ts). Floka stays its
 * parent: it forwards signals, relays the terminal with `-t`, waits, and exits with the
 * command's code, as `docker exec` does.
 *
 * The namespace descriptors are opened here, all at once, from /proc/PID/ns of the
 * container's PID 1, and the start time of that PID is checked after they are open: they
 * then belong to the container's process and not to a later process that reused its PID.
 */
import * as libc from "../../ffi/libc.ts";
import { FlokaError, SyscallError } from "../../lib/errors.ts";
import { mergeEnv } from "../../lib/env.ts";
import * as L from "../../lib/linux.ts";
import { isAlive, processStartTime } from "../containers/liveness.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import { CgroupManager } from "./cgroups.ts";
import type { ExecSpec, NamespaceName } from "./exec_main.ts";
import { attachSocketPath, requestExec } from "./attach.ts";
import type { StartReport } from "./detach.ts";
import { attachTerminal, getWindowSize } from "./pty.ts";
import { forwardSignals, startResult } from "./run.ts";
import { selfCommand } from "./self_exec.ts";
import { processSecurity } from "./spec.ts";

/** Docker's exit code for the errors its daemon reports to `docker exec` (no such container, ...). */
export const EXIT_EXEC_REFUSED = 1;

const ENOMEM = 12;

/** What to run in the container, and how: `docker exec`'s options. */
export interface ExecRequest {
  /** The command and its arguments; args[0] is looked up in the container's PATH. */
  args: string[];
  /** `KEY=VALUE` entries from -e and --env-file; they override the container's. */
  env: string[];
  /** -w: the working directory; the container's when not given. */
  workdir?: string;
  /** -u: `uid[:gid]` or names from the container's /etc/passwd; the container's user when not given. */
  user?: string;
  /** -i: the command reads Floka's stdin; otherwise its stdin is /dev/null. */
  interactive: boolean;
  /** -t: the command gets a terminal of its own, relayed to Floka's. */
  tty: boolean;
  /** -d: start the command and return without waiting (its stdio is /dev/null). */
  detach: boolean;
}

/** The namespace files of process `pid`, opened close-on-exec; on failure none stays open. */
function openNamespaces(pid: number): { pid: number } & Record<NamespaceName, number> {
  const names = ["pid", "cgroup", "ipc", "uts", "net", "mnt"] as const;
  const fds: number[] = [];
  try {
    for (const name of names) fds.push(libc.open(`/proc/${pid}/ns/${name}`, L.O_RDONLY | L.O_CLOEXEC));
  } catch (err) {
    fds.forEach((fd) => libc.close(fd));
    throw err;
  }
  return Object.fromEntries(names.map((name, i) => [name, fds[i]])) as
    & { pid: number }
    & Record<
      NamespaceName,
      number
    >;
}

function notRunning(c: Container): FlokaError {
  return new FlokaError(`container ${c.record.id} is not running`, EXIT_EXEC_REFUSED);
}

/** The container's namespaces, provided its PID 1 is still the process the state names. */
function containerNamespaces(c: Container) {
  let fds;
  try {
    fds = openNamespaces(c.state.pid);
  } catch (err) {
    if (err instanceof SyscallError && (err.errno === L.ENOENT || err.errno === L.ESRCH)) throw notRunning(c);
    throw err;
  }
  if (processStartTime(c.state.pid) !== c.state.pidStartTime) {
    Object.values(fds).forEach((fd) => libc.close(fd));
    throw notRunning(c);
  }
  return fds;
}

/**
 * Starts `floka exec-inside` in the PID namespace `pidNs` with one end of a socket pair,
 * the sync channel; `inherit` are descriptors it must inherit. Everything else here is
 * close-on-exec. As with unshare in run.ts: while this thread's children go to another PID
 * namespace, the kernel refuses to create threads from it (EINVAL), so the host's own is
 * restored right after the spawn.
 */
function spawnExecInside(
  pidNs: number,
  inherit: number[],
  stdio: readonly [number, number, number],
): { pid: number; channel: number } {
  const [hostEnd, childEnd] = libc.socketpair(L.AF_UNIX, L.SOCK_STREAM | L.SOCK_CLOEXEC);
  const hostPidNs = libc.open("/proc/self/ns/pid", L.O_RDONLY | L.O_CLOEXEC);
  try {
    for (const fd of [childEnd, ...inherit]) libc.fcntl(fd, L.F_SETFD, 0);
    const { program, args } = selfCommand(["exec-inside", String(childEnd)]);
    const env = Object.entries({ ...Deno.env.toObject(), DENO_NO_UPDATE_CHECK: "1" }).map(([k, v]) =>
      `${k}=${v}`
    );
    libc.setns(pidNs, L.CLONE_NEWPID);
    let pid: number;
    try {
      pid = libc.spawn(program, [program, ...args], env, stdio);
    } finally {
      libc.setns(hostPidNs, L.CLONE_NEWPID);
    }
    return { pid, channel: hostEnd };
  } catch (err) {
    libc.close(hostEnd);
    throw err;
  } finally {
    libc.close(hostPidNs);
    libc.close(childEnd);
  }
}

/** The spec `exec-inside` performs: the container's settings, overridden by the request. */
export function execSpec(
  c: Container,
  req: ExecRequest,
  namespaces: Record<NamespaceName, number>,
  cgroupJoinFiles: string[],
): ExecSpec {
  // Docker: TERM=xterm with -t, then the container's environment, then the exec's own.
  const env = mergeEnv(mergeEnv(req.tty ? ["TERM=xterm"] : [], c.record.config.env), req.env);
  return {
    id: c.record.id,
    namespaces,
    cgroupJoinFiles,
    process: {
      args: req.args,
      env,
      cwd: req.workdir || c.record.config.workingDir || "/",
      user: req.user ?? c.record.config.user,
      ...processSecurity(c.record.hostConfig),
    },
    tty: req.tty,
    windowSize: req.tty ? getWindowSize(1) ?? getWindowSize(0) : null,
  };
}

/**
 * Runs `req` in the running container `ref` (name, ID or ID prefix). Returns the command's
 * exit code (128+N when a signal N ended it), or 0 at once with `detach`. A command that
 * cannot be started is an error with Docker's code: 126, 127, or 125.
 */
export async function execInContainer(
  store: ContainerStore,
  ref: string,
  req: ExecRequest,
  cgroups = new CgroupManager(),
  opts: { bySupervisor?: boolean } = {},
): Promise<number> {
  let found: Container | null;
  try {
    found = reconcile(store, store.find(ref), cgroups);
  } catch (err) {
    if (err instanceof FlokaError && err.message.startsWith("No such container")) {
      throw new FlokaError(err.message, EXIT_EXEC_REFUSED);
    }
    throw err;
  }
  if (!found) throw new FlokaError(`No such container: ${ref}`, EXIT_EXEC_REFUSED); // it was --rm
  const c = found;
  if (c.state.status === "restarting") {
    throw new FlokaError(
      `Container ${c.record.id} is restarting, wait until the container is running`,
      EXIT_EXEC_REFUSED,
    );
  }
  // Nothing would relay a detached command's terminal: it gets /dev/null, as without -t.
  if (req.detach) req = { ...req, tty: false, interactive: false };
  if (!isAlive(c.state)) throw notRunning(c);
  // `-d`: the container's supervisor starts the command, and reaps it when it ends (it
  // would be a zombie under a PID 1 that reaps nothing), as Docker's shim does.
  if (req.detach && !opts.bySupervisor) {
    const report = await requestExec(attachSocketPath(c.record.id), req) as StartReport | null;
    if (report && "started" in report) return 0;
    if (report) throw new FlokaError(report.message, report.exitCode);
    // No supervisor answers: started from here, the command is its PID 1's to reap.
  }
  // As the docker CLI, after the container: "no such container" comes first.
  if (req.tty && req.interactive && !req.detach && !Deno.stdin.isTerminal()) {
    throw new FlokaError("the input device is not a TTY", EXIT_EXEC_REFUSED);
  }
  const workdir = req.workdir;
  if (workdir !== undefined && workdir !== "" && !workdir.startsWith("/")) {
    throw new FlokaError(`the working directory '${workdir}' is invalid: it needs to be an absolute path`);
  }

  const { pid: pidNs, ...namespaces } = containerNamespaces(c);
  const cgroup = cgroups.locate(c.record.id);
  const devNull = libc.open("/dev/null", L.O_RDWR | L.O_CLOEXEC);
  let child: { pid: number; channel: number };
  try {
    const quiet = req.detach;
    const stdio = [
      req.interactive && !quiet ? 0 : devNull,
      quiet ? devNull : 1,
      quiet ? devNull : 2,
    ] as const;
    child = spawnExecInside(pidNs, Object.values(namespaces), stdio);
  } catch (err) {
    // fork fails with ENOMEM in a PID namespace whose init has just died.
    if (err instanceof SyscallError && err.call === "posix_spawn" && err.errno === ENOMEM) {
      throw notRunning(c);
    }
    throw err;
  } finally {
    libc.close(devNull);
    libc.close(pidNs);
    Object.values(namespaces).forEach((fd) => libc.close(fd));
  }
  const { pid, channel } = child;
  let exited: Promise<libc.ExitStatus> | undefined;
  const waitChild = () => exited ??= libc.waitExit(pid);
  if (!req.detach || opts.bySupervisor) waitChild();
  const stopForwarding = req.detach ? () => {} : forwardSignals(pid, req.tty);
  try {
    let result;
    try {
      cgroups.hostJoin(cgroup, pid); // v2; on v1 exec-inside joins itself (cgroupJoinFiles)
      const spec = execSpec(c, req, namespaces, cgroups.selfJoinFiles(cgroup));
      libc.writeAll(channel, new TextEncoder().encode(JSON.stringify(spec) + "\n"));
      result = await startResult(channel, req.tty);
    } catch (err) {
      libc.kill(pid, L.SIGNALS.SIGKILL);
      await waitChild();
      throw err;
    }
    if (result.failure) {
      await waitChild();
      throw new FlokaError(result.failure.message, result.failure.exitCode);
    }
    if (req.detach) return 0;
    if (result.master !== null) {
      try {
        await attachTerminal(result.master, {
          input: req.interactive ? 0 : null,
          until: waitChild(),
          exitOnSignal: false,
        });
      } finally {
        libc.close(result.master);
      }
    }
    return (await waitChild()).code;
  } finally {
    stopForwarding();
    libc.close(channel);
  }
}
