/**
 * `floka exec-inside SYNC_FD`: the inside of `floka exec`, reached from main.ts before the
 * CLI is loaded. The host side (exec.ts) joined the container's PID namespace for its
 * children only and started this process in it, so it is already a process of the
 * container; it inherits file descriptors for the container's other namespaces. On the
 * main thread, with synchronous calls only (DESIGN section 4), it joins the container's
 * cgroup, then its cgroup, IPC, UTS, network and, last, mount namespace, then takes the
 * container's terminal (`-t`), user, working directory and capabilities, and execs the
 * command: no Floka code stays in the container.
 *
 * Failures before execve go to the host on the sync channel as containerize's do (runc's
 * pattern), with Docker's exit codes: 126 cannot execute, 127 not found, 125 otherwise.
 * With `-t` the channel first carries the terminal's master (SCM_RIGHTS), marked by one
 * byte that the host drops.
 *
 * Why each step is where it is:
 * - non-dumpable first: this process is root with every capability and runs the host's
 *   Deno binary; until execve nothing in the container may ptrace it or open its
 *   /proc/PID/exe (CVE-2019-5736). execve makes the command dumpable again, as in runc.
 * - the cgroup before the namespaces: its files are host paths, out of sight afterwards.
 * - the namespace descriptors were opened by the host, all before any is entered; the
 *   mount namespace is entered last, after unshare(CLONE_FS) (setns refuses a process
 *   whose threads share root and cwd, and Deno has threads). setns puts root and cwd at
 *   the namespace's root; chdir("/") and a check that "/" is no longer the host's make
 *   sure no host directory is left as root or cwd (CVE-2024-21626).
 * - the working directory is resolved inside the container's root (symlinks and `..` stay
 *   in it) and checked with getcwd, which fails for a directory outside the root.
 * - every descriptor above 2 is close-on-exec before execve, and every signal is back to its
 *   default (Deno ignores SIGPIPE).
 * - unlike containerize, no PR_SET_PDEATHSIG: as with `docker exec`, the command outlives
 *   the client that started it (and `-d` returns at once).
 */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import type { ProcessSpec } from "../../lib/spec.ts";
import {
  becomeUser,
  enterWorkingDir,
  type ExecPlan,
  findExecutable,
  lockDown,
  processUser,
  startFailure,
} from "./containerize.ts";
import type { WindowSize } from "./pty.ts";
import { receiveSpec, reporter } from "./sync_channel.ts";
import { linuxSys, type Sys } from "./sys.ts";

/** The namespaces `exec` joins besides the PID namespace, in the order it joins them. */
export const NAMESPACES = ["cgroup", "ipc", "uts", "net", "mnt"] as const;
export type NamespaceName = typeof NAMESPACES[number];

const NAMESPACE_FLAGS: Readonly<Record<NamespaceName, number>> = {
  cgroup: L.CLONE_NEWCGROUP,
  ipc: L.CLONE_NEWIPC,
  uts: L.CLONE_NEWUTS,
  net: L.CLONE_NEWNET,
  mnt: L.CLONE_NEWNS,
};

/** unshare(2): stop sharing root, cwd and umask with the other threads. */
const CLONE_FS = 0x200;

/** What the host side of `floka exec` hands to `exec-inside`. */
export interface ExecSpec {
  /** The container's ID, for messages. */
  id: string;
  /** Inherited descriptors of the container's namespaces (`/proc/PID/ns/NAME` of its PID 1). */
  namespaces: Record<NamespaceName, number>;
  /** Host paths of cgroup files to write "0" into, to join the container's cgroup (v1). */
  cgroupJoinFiles: string[];
  process: ProcessSpec;
  /** Give the command a terminal of the container's own (`-t`). */
  tty: boolean;
  /** That terminal's first window size: Floka's, so that the command sees it from the start. */
  windowSize?: WindowSize | null;
}

/** The calls `exec-inside` makes beyond container setup's. */
export interface ExecSys extends Sys {
  setns(fd: number, nstype: number): void;
  close(fd: number): void;
  /** `dev:inode` of what `path` names, symlinks followed. */
  identity(path: string): string;
}

/** Every step up to execve, in order; `channel` is the sync channel to the host. */
export function setUpExec(spec: ExecSpec, sys: ExecSys, channel: number): ExecPlan {
  sys.prctl(L.PR_SET_DUMPABLE, 0);
  for (const file of spec.cgroupJoinFiles) sys.writeTextFile(file, "0");
  const hostRoot = sys.identity("/");
  sys.unshare(CLONE_FS);
  for (const name of NAMESPACES) {
    sys.setns(spec.namespaces[name], NAMESPACE_FLAGS[name]);
    sys.close(spec.namespaces[name]);
  }
  sys.chdir("/");
  if (sys.identity("/") === hostRoot) {
    throw new FlokaError(
      `container ${spec.id}: its mount namespace has the host's root; refusing to exec there`,
    );
  }

  const { process } = spec;
  const { user, env } = processUser(process, sys);
  enterWorkingDir(process.cwd, sys, false);
  const path = findExecutable(process.args[0], env, sys);
  if (spec.tty) sys.takeTerminal(channel, user.uid, user.gid, spec.windowSize ?? null);
  becomeUser(process, user, sys);
  // Deno ignores SIGPIPE (and more), and execve would keep them ignored.
  sys.resetSignals();
  lockDown(process, sys);
  return { path, argv: process.args, env };
}

export const linuxExecSys: ExecSys = {
  ...linuxSys,
  setns: libc.joinNamespace,
  close: libc.close,
  identity(path) {
    const st = Deno.statSync(path);
    return `${st.dev}:${st.ino}`;
  },
};

export function main(args: string[]): never {
  const channel = Number(args[0]);
  const report = reporter(channel);
  const spec = receiveSpec<ExecSpec>(channel, "exec-inside");
  try {
    const plan = setUpExec(spec, linuxExecSys, channel);
    // The sync channel and anything else inherited must not reach the command.
    linuxExecSys.markFdsCloseOnExec(3);
    linuxExecSys.execve(plan.path, plan.argv, plan.env);
  } catch (err) {
    const failure = startFailure(err);
    report(failure);
    Deno.exit(failure.exitCode);
  }
}
