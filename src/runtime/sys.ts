/**
 * The system calls container setup makes, as one interface. The real implementation is
 * libc through `ffi/` plus Deno's *synchronous* file calls (they run on the calling thread,
 * which is the one inside the container's mount namespace; async ones may run on a thread
 * that still sees the host). Unit tests swap in a recording fake, so the order of mounts and
 * the path handling are tested without root.
 */
import * as libc from "../../ffi/libc.ts";
import type { PathLookup } from "../../lib/secure_join.ts";
import { hostLookup } from "../../lib/secure_join.ts";
import * as L from "../../lib/linux.ts";
import { makeControllingTerminal, openPtyPair, setWindowSize, type WindowSize } from "./pty.ts";
import { waitForHost } from "./sync_channel.ts";

/** Marks the terminal's master sent on the sync channel (`-t`); the host drops it. */
const TERMINAL_MARK = new Uint8Array([0x54]); // "T"

export type FileKind = "dir" | "file" | "symlink" | "other";

export interface Sys extends PathLookup {
  unshare(flags: number): void;
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
  ): void;
  umount2(target: string, flags: number): void;
  pivotRoot(newRoot: string, putOld: string): void;
  chroot(path: string): void;
  chdir(path: string): void;
  sethostname(name: string): void;
  /** A character device, or a block device when `block`. */
  mknod(path: string, mode: number, major: number, minor: number, block?: boolean): void;
  symlink(target: string, path: string): void;
  mkdirAll(path: string): void;
  /** Creates an empty regular file when nothing exists at `path`. */
  touch(path: string): void;
  /** What is at `path` without following a final symlink, null when nothing is. */
  lstatKind(path: string): FileKind | null;
  /** True when `path` (following symlinks) is a regular file with an execute bit set. */
  isExecutableFile(path: string): boolean;
  readTextFile(path: string): string | null;
  writeTextFile(path: string, text: string): void;
  /** Sets the IFF_UP flag on the loopback interface of the current network namespace. */
  loopbackUp(): void;
  /** setns(2) into the network namespace bound at `path`. */
  joinNetworkNamespace(path: string): void;
  /** Blocks until the host's go-ahead line arrives on `channel`; false when it closed it instead. */
  waitForHost(channel: number): boolean;
  setgroups(gids: readonly number[]): void;
  setgid(gid: number): void;
  setuid(uid: number): void;
  umask(mask: number): number;
  prctl(option: number, arg: number): void;
  /** Keeps the effective and permitted sets as they are and empties the inheritable one. */
  clearInheritableCapabilities(): void;
  /** Installs a seccomp filter (classic BPF) on this thread. */
  setSeccompFilter(program: Uint8Array<ArrayBuffer>): void;
  /** getcwd(3); a directory outside the root reads as "(unreachable)/...". */
  cwd(): string;
  /** Every signal back to its default disposition (execve keeps ignored signals ignored). */
  resetSignals(): void;
  /**
   * Opens a terminal from the container's /dev/ptmx, of window size `size`, makes it this
   * process's controlling terminal and its stdin, stdout and stderr, owned by `uid:gid`,
   * and sends the master to the host on `channel`.
   */
  takeTerminal(channel: number, uid: number, gid: number, size: WindowSize | null): void;
  markFdsCloseOnExec(from: number): void;
  execve(path: string, argv: readonly string[], env: readonly string[]): never;
}

function kind(info: Deno.FileInfo): FileKind {
  if (info.isSymlink) return "symlink";
  if (info.isDirectory) return "dir";
  if (info.isFile) return "file";
  return "other";
}

export const linuxSys: Sys = {
  readlinkIfSymlink: hostLookup.readlinkIfSymlink,
  unshare: libc.unshare,
  mount: libc.mount,
  umount2: libc.umount2,
  pivotRoot: libc.pivotRoot,
  chroot: libc.chroot,
  chdir: libc.chdir,
  sethostname: libc.sethostname,
  mknod: (path, mode, major, minor, block) =>
    libc.mknod(path, (block ? L.S_IFBLK : L.S_IFCHR) | mode, major, minor),
  symlink: (target, path) => Deno.symlinkSync(target, path),
  mkdirAll: (path) => Deno.mkdirSync(path, { recursive: true, mode: 0o755 }),
  touch(path) {
    Deno.openSync(path, { write: true, create: true, mode: 0o644 }).close();
  },
  lstatKind(path) {
    try {
      return kind(Deno.lstatSync(path));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return null;
      throw err;
    }
  },
  isExecutableFile(path) {
    try {
      const st = Deno.statSync(path);
      return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
    } catch {
      return false;
    }
  },
  readTextFile(path) {
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  },
  writeTextFile: (path, text) => Deno.writeTextFileSync(path, text),
  loopbackUp() {
    const fd = libc.socket(L.AF_INET, L.SOCK_DGRAM, 0);
    try {
      // struct ifreq: char ifr_name[16]; then a union whose first member is short ifr_flags.
      const ifreq = new Uint8Array(40);
      ifreq.set(new TextEncoder().encode("lo"));
      libc.ioctl(fd, L.SIOCGIFFLAGS, ifreq);
      const view = new DataView(ifreq.buffer);
      view.setInt16(16, view.getInt16(16, true) | L.IFF_UP, true);
      libc.ioctl(fd, L.SIOCSIFFLAGS, ifreq);
    } finally {
      libc.close(fd);
    }
  },
  joinNetworkNamespace(path) {
    const fd = libc.open(path, L.O_RDONLY | L.O_CLOEXEC);
    try {
      libc.setns(fd, L.CLONE_NEWNET);
    } finally {
      libc.close(fd);
    }
  },
  waitForHost,
  setgroups: libc.setgroups,
  setgid: libc.setgid,
  setuid: libc.setuid,
  umask: libc.umask,
  prctl: (option, arg) => void libc.prctl(option, arg),
  clearInheritableCapabilities() {
    libc.capset({ ...libc.capget(), inheritable: 0n });
  },
  setSeccompFilter: libc.setSeccompFilter,
  cwd: () => Deno.cwd(),
  resetSignals: libc.resetSignalDispositions,
  takeTerminal(channel, uid, gid, size) {
    const { master, slave } = openPtyPair();
    try {
      if (size) setWindowSize(master, size.rows, size.cols);
      makeControllingTerminal(slave);
      for (const fd of [0, 1, 2]) libc.dup2(slave, fd);
      // As runc does: the user must be able to reopen its terminal (/dev/tty, /dev/pts/N).
      libc.fchown(slave, uid, gid);
      libc.sendFd(channel, master, TERMINAL_MARK);
    } finally {
      libc.close(master);
      if (slave > 2) libc.close(slave);
    }
  },
  markFdsCloseOnExec: (from) => libc.closeRange(from, 0xffffffff, L.CLOSE_RANGE_CLOEXEC),
  execve: libc.execve,
};
