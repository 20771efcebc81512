/**
 * `floka containerize`: the inside of a container. The host side of `floka run` unshares a
 * PID namespace and re-executes Floka with this command, so this process is PID 1 of the
 * new namespace. It sets up the container as a flat list of steps on the main thread, then
 * replaces itself with the user's command through execve: no Floka code stays inside.
 *
 * Each step fails early with an error naming
 * the call and its argument. A failure before execve is reported to the host on the sync
 * channel (runc's pattern): the host prints it and cleans up; a successful execve closes the
 * channel, which the host reads as "started".
 *
 * This module is on every container start: it imports only ffi/, lib/ and its own steps.
 */
import {
  describeError,
  EXIT_CANNOT_EXECUTE,
  EXIT_FLOKA,
  EXIT_NOT_FOUND,
  FlokaError,
  SyscallError,
} from "../../lib/errors.ts";
import { CAPABILITIES, capabilityNumber } from "../../lib/capabilities.ts";
import { DEFAULT_PATH, envValue, mergeEnv } from "../../lib/env.ts";
import * as L from "../../lib/linux.ts";
import { type Mount, mountCall } from "../../lib/mount.ts";
import { type ExecUser, resolveUser } from "../../lib/passwd.ts";
import { secureJoin } from "../../lib/secure_join.ts";
import type { ContainerSpec, ProcessSpec, StartFailure } from "../../lib/spec.ts";
import type { FileKind, Sys } from "./sys.ts";

/** What execve gets once the container is set up. */
export interface ExecPlan {
  path: string;
  argv: string[];
  env: string[];
}

/** Enters the container's cgroup, before the cgroup namespace is made (it is rooted there). */
export function joinCgroup(spec: ContainerSpec, sys: Sys): void {
  for (const file of spec.cgroupJoinFiles) sys.writeTextFile(file, "0");
}

/** Mount, UTS, IPC and cgroup namespaces, and a network namespace unless the host's is used. */
export function unshareNamespaces(spec: ContainerSpec, sys: Sys): void {
  // The prepared namespace is joined by its path on the host, before the mount namespace changes.
  if (typeof spec.network === "object") sys.joinNetworkNamespace(spec.network.path);
  let flags = L.CLONE_NEWNS | L.CLONE_NEWUTS | L.CLONE_NEWIPC | L.CLONE_NEWCGROUP;
  if (spec.network === "none") flags |= L.CLONE_NEWNET;
  sys.unshare(flags);
  if (spec.network !== "host") sys.loopbackUp();
}

/** Stops mount events from propagating back to the host (mounts below are ours alone). */
export function makeRootPrivate(sys: Sys): void {
  sys.mount(null, "/", null, L.MS_REC | L.MS_PRIVATE, null);
}

/** Performs `m` with its target resolved inside `root`, creating the target as needed. */
export function mountInRoot(root: string, m: Mount, sys: Sys): void {
  const target = m.target === "/" ? root : secureJoin(root, m.target, sys);
  const call = mountCall(m);
  const isBind = (call.flags & L.MS_BIND) !== 0;
  if (sys.lstatKind(target) === null) {
    if (isBind && sys.lstatKind(m.source) !== "dir") {
      sys.mkdirAll(target.slice(0, target.lastIndexOf("/")) || "/");
      sys.touch(target);
    } else {
      sys.mkdirAll(target);
    }
  }
  const fstype = m.type === "bind" ? null : m.type;
  // A bind mount ignores every flag but MS_REC; the rest takes a remount.
  sys.mount(m.source, target, fstype, isBind ? call.flags & (L.MS_BIND | L.MS_REC) : call.flags, call.data);
  if (call.remount) sys.mount(null, target, null, call.flags | L.MS_REMOUNT, null);
  if (call.propagation) sys.mount(null, target, null, call.propagation, null);
}

/**
 * The kernel's mounts go on these paths, and /dev/null is what masked files are bound to:
 * an image that makes them symlinks is refused, as runc refuses it (the init layer's
 * directories would hide the links in the merged root, so the image's own layers are read).
 */
export function refuseSymlinkedSystemDirs(spec: ContainerSpec, sys: Sys): void {
  for (const path of ["/proc", "/sys", "/dev", "/dev/null"]) {
    if (imageKind(spec, path, sys) === "symlink") {
      throw new FlokaError(
        `the image's ${path} is a symlink: refusing to mount over it (rebuild the image with ${path} as a directory)`,
      );
    }
  }
}

/** What the image has at `path`: its kind in the topmost of the image's layers that has it. */
function imageKind(spec: ContainerSpec, path: string, sys: Sys): FileKind | null {
  for (const layer of spec.imageLayers) {
    const kind = sys.lstatKind(`${spec.bundle}/${layer}${path}`);
    if (kind !== null) return kind;
  }
  return null;
}

export function createDevices(spec: ContainerSpec, sys: Sys): void {
  for (const dev of spec.devices) {
    const path = secureJoin(spec.rootfs, dev.path, sys);
    // --privileged brings the host's nodes in subdirectories (/dev/net/tun, /dev/dri/...).
    const parent = path.slice(0, path.lastIndexOf("/"));
    if (dev.path.lastIndexOf("/") > "/dev".length && sys.lstatKind(parent) === null) sys.mkdirAll(parent);
    sys.mknod(path, dev.mode, dev.major, dev.minor, dev.block);
  }
  for (const [target, link] of spec.devSymlinks) {
    const path = secureJoin(spec.rootfs, link, sys);
    if (sys.lstatKind(path) === null) sys.symlink(target, path);
  }
}

/**
 * Makes the container's root filesystem `/`. pivot_root(".", ".") stacks the old root on
 * top of the new one, and the lazy unmount takes it away: no directory for the old root is
 * needed in the image. chroot is the fallback where pivot_root is impossible (a rootfs on
 * ramfs), after moving the rootfs mount onto `/`.
 */
export function enterRoot(root: string, sys: Sys): void {
  sys.chdir(root);
  try {
    sys.pivotRoot(".", ".");
    sys.umount2(".", L.MNT_DETACH);
  } catch (err) {
    if (!(err instanceof SyscallError && err.errno === L.EINVAL)) throw err;
    sys.mount(root, "/", null, L.MS_MOVE, null);
    sys.chroot(".");
  }
  sys.chdir("/");
}

/** Hides the masked paths: an empty read-only tmpfs over directories, /dev/null over files. */
export function maskPaths(paths: readonly string[], sys: Sys): void {
  for (const path of paths) {
    const kind = sys.lstatKind(path);
    if (kind === null) continue;
    if (kind === "dir") sys.mount("tmpfs", path, "tmpfs", L.MS_RDONLY, null);
    else sys.mount("/dev/null", path, null, L.MS_BIND, null);
  }
}

export function makeReadonly(paths: readonly string[], sys: Sys): void {
  for (const path of paths) {
    if (sys.lstatKind(path) === null) continue;
    sys.mount(path, path, null, L.MS_BIND | L.MS_REC, null);
    sys.mount(path, path, null, L.MS_BIND | L.MS_REC | L.MS_REMOUNT | L.MS_RDONLY, null);
  }
}

/**
 * `--read-only`: the root mount becomes read-only once every mount point and the working
 * directory exist (a bind remount of `/` changes this mount only: /proc, /dev, tmpfs mounts
 * and volumes keep their own flags).
 */
export function remountRootReadonly(sys: Sys): void {
  sys.mount(null, "/", null, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY, null);
}

/** Looks `name` up as execvp would, in the container's PATH. */
export function findExecutable(name: string, env: readonly string[], sys: Sys): string {
  if (name.includes("/")) {
    if (sys.lstatKind(name) === null) {
      throw new FlokaError(`exec: "${name}": stat ${name}: no such file or directory`, EXIT_NOT_FOUND);
    }
    return name;
  }
  for (const dir of (envValue(env, "PATH") ?? DEFAULT_PATH).split(":")) {
    const candidate = `${dir || "."}/${name}`;
    if (sys.isExecutableFile(candidate)) return candidate;
  }
  throw new FlokaError(`exec: "${name}": executable file not found in $PATH`, EXIT_NOT_FOUND);
}

/**
 * Limits the bounding set to `keep`. Done as root, before switching user: after execve a
 * root process gets exactly the bounding set, and another user nothing.
 */
export function limitCapabilities(keep: readonly string[], sys: Sys): void {
  const last = Number(sys.readTextFile("/proc/sys/kernel/cap_last_cap") ?? CAPABILITIES.length - 1);
  const kept = new Set(keep.map(capabilityNumber));
  for (let cap = 0; cap <= last; cap++) {
    if (!kept.has(cap)) sys.prctl(L.PR_CAPBSET_DROP, cap);
  }
}

/**
 * The user a process runs as, resolved against the container's own /etc/passwd and
 * /etc/group (read inside its root), and its environment with that user's HOME.
 */
export function processUser(process: ProcessSpec, sys: Sys): { user: ExecUser; env: string[] } {
  const user = resolveUser(
    process.user,
    sys.readTextFile("/etc/passwd") ?? "",
    sys.readTextFile("/etc/group") ?? "",
  );
  const env = envValue(process.env, "HOME") === undefined
    ? mergeEnv(process.env, [`HOME=${user.home}`])
    : process.env;
  return { user, env };
}

/**
 * Changes to the working directory, resolved inside the root (symlinks and `..` stay in
 * it), and checks with getcwd that it is below the root: a directory reached through a
 * descriptor of the host's reads as "(unreachable)" (CVE-2024-21626).
 */
export function enterWorkingDir(dir: string, sys: Sys, create: boolean): void {
  const path = secureJoin("/", dir, sys) || "/";
  try {
    if (create && sys.lstatKind(path) === null) sys.mkdirAll(path);
    sys.chdir(path);
    if (!sys.cwd().startsWith("/")) throw new Error("getcwd: not below the root");
  } catch (err) {
    throw new FlokaError(
      `cannot change to the working directory ${dir}: ${describeError(err)}`,
      EXIT_CANNOT_EXECUTE,
    );
  }
}

/**
 * The last steps as root: the bounding set, an empty inheritable set, the seccomp filter
 * when it must go in while this process still holds CAP_SYS_ADMIN (without
 * no-new-privileges, the kernel allows a filter only then), then the user's groups and ids.
 * Setting a non-root uid clears the effective and permitted sets; execve then gives root
 * the bounding set and anyone else nothing.
 */
export function becomeUser(process: ProcessSpec, user: ExecUser, sys: Sys): void {
  limitCapabilities(process.capabilities, sys);
  // No inheritable capabilities, as Docker since CVE-2022-24769: with them a non-root
  // process would gain capabilities by executing a file that carries inheritable ones.
  sys.clearInheritableCapabilities();
  if (process.seccomp && !process.noNewPrivileges) sys.setSeccompFilter(decodeFilter(process.seccomp));
  sys.setgroups(user.groups);
  sys.setgid(user.gid);
  sys.setuid(user.uid);
  sys.umask(0o022);
}

/** The last step before execve: no-new-privileges, and then the seccomp filter it allows. */
export function lockDown(process: ProcessSpec, sys: Sys): void {
  if (!process.noNewPrivileges) return;
  sys.prctl(L.PR_SET_NO_NEW_PRIVS, 1);
  if (process.seccomp) sys.setSeccompFilter(decodeFilter(process.seccomp));
}

function decodeFilter(base64: string): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** Every step up to execve, in order. Runs on the main thread; uses only synchronous calls. */
export function setUpContainer(spec: ContainerSpec, sys: Sys, channel = -1): ExecPlan {
  // Nothing in the container may ptrace or read /proc of this process before execve.
  sys.prctl(L.PR_SET_DUMPABLE, 0);
  joinCgroup(spec, sys);
  unshareNamespaces(spec, sys);
  makeRootPrivate(sys);
  // Device nodes and the modes given in mount options are exact; the process gets 022 at the end.
  sys.umask(0);
  sys.chdir(spec.bundle);
  const readonlyRoot = spec.rootMount.options.includes("ro");
  const rootMount = { ...spec.rootMount, options: spec.rootMount.options.filter((o) => o !== "ro") };
  mountInRoot(spec.rootfs, rootMount, sys);
  refuseSymlinkedSystemDirs(spec, sys);
  for (const m of spec.mounts) mountInRoot(spec.rootfs, m, sys);
  createDevices(spec, sys);
  sys.sethostname(spec.hostname);
  enterRoot(spec.rootfs, sys);
  maskPaths(spec.maskedPaths, sys);
  makeReadonly(spec.readonlyPaths, sys);

  const { process } = spec;
  const { user, env } = processUser(process, sys);
  enterWorkingDir(process.cwd, sys, true);
  if (readonlyRoot) remountRootReadonly(sys);
  const path = findExecutable(process.args[0], env, sys);
  // Everything is ready but the network, which the host attaches meanwhile.
  if (spec.awaitHost && !sys.waitForHost(channel)) {
    throw new FlokaError("the host gave up before the container's network was attached");
  }
  if (process.terminal) {
    sys.takeTerminal(channel, user.uid, user.gid, process.windowSize ?? null);
    // As in Docker, /dev/console is the container's terminal (now its stdin).
    sys.touch("/dev/console");
    sys.mount("/proc/self/fd/0", "/dev/console", null, L.MS_BIND, null);
  }
  becomeUser(process, user, sys);
  // The container dies with the Floka process that waits for it (a killed supervisor must
  // not leave it running unwatched). Set after setuid, which clears it.
  sys.prctl(L.PR_SET_PDEATHSIG, L.SIGNALS.SIGKILL);
  sys.resetSignals();
  lockDown(process, sys);
  return { path, argv: process.args, env };
}

/** Exit code and message for a failure before the user's command runs. */
export function startFailure(err: unknown): StartFailure {
  if (err instanceof SyscallError && err.call === "execve") {
    const notFound = err.errno === L.ENOENT || err.errno === L.ENOTDIR;
    return { exitCode: notFound ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE, message: `exec: ${err.message}` };
  }
  const exitCode = err instanceof FlokaError ? err.exitCode : EXIT_FLOKA;
  return { exitCode, message: describeError(err) };
}

/** Sets the container up and execs its command; on failure calls `report` and exits. */
export function containerize(
  spec: ContainerSpec,
  sys: Sys,
  channel: number,
  report: (f: StartFailure) => void,
): never {
  try {
    const plan = setUpContainer(spec, sys, channel);
    // The sync pipe and anything else inherited must not reach the container's process.
    sys.markFdsCloseOnExec(3);
    sys.execve(plan.path, plan.argv, plan.env);
  } catch (err) {
    const failure = startFailure(err);
    report(failure);
    Deno.exit(failure.exitCode);
  }
}
