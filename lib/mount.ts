/**
 * The mount model shared by the image side and the runtime: a mount is a type, a source,
 * a target and fstab-style options (containerd's `Mount`). The image side decides what to
 * mount; the runtime turns options into mount(2) flags and data and performs them in order.
 */
import * as L from "./linux.ts";

export interface Mount {
  /** Filesystem type (`overlay`, `proc`, `tmpfs`, ...) or `bind`. */
  type: string;
  source: string;
  /** Absolute path inside the container (`/` is the root filesystem itself). */
  target: string;
  options: string[];
}

const FLAG_OPTIONS: Readonly<Record<string, [set: boolean, flag: number]>> = {
  ro: [true, L.MS_RDONLY],
  rw: [false, L.MS_RDONLY],
  nosuid: [true, L.MS_NOSUID],
  suid: [false, L.MS_NOSUID],
  nodev: [true, L.MS_NODEV],
  dev: [false, L.MS_NODEV],
  noexec: [true, L.MS_NOEXEC],
  exec: [false, L.MS_NOEXEC],
  sync: [true, L.MS_SYNCHRONOUS],
  async: [false, L.MS_SYNCHRONOUS],
  dirsync: [true, L.MS_DIRSYNC],
  noatime: [true, L.MS_NOATIME],
  atime: [false, L.MS_NOATIME],
  nodiratime: [true, L.MS_NODIRATIME],
  relatime: [true, L.MS_RELATIME],
  norelatime: [false, L.MS_RELATIME],
  strictatime: [true, L.MS_STRICTATIME],
  nosymfollow: [true, L.MS_NOSYMFOLLOW],
  bind: [true, L.MS_BIND],
  rbind: [true, L.MS_BIND | L.MS_REC],
};

const PROPAGATION_OPTIONS: Readonly<Record<string, number>> = {
  private: L.MS_PRIVATE,
  rprivate: L.MS_PRIVATE | L.MS_REC,
  slave: L.MS_SLAVE,
  rslave: L.MS_SLAVE | L.MS_REC,
  shared: L.MS_SHARED,
  rshared: L.MS_SHARED | L.MS_REC,
  unbindable: L.MS_UNBINDABLE,
  runbindable: L.MS_UNBINDABLE | L.MS_REC,
};

export interface MountCall {
  /** Flags for the mount itself. */
  flags: number;
  /** Filesystem-specific options joined for the data argument, or null. */
  data: string | null;
  /** Propagation flags, applied by a second mount(2) call (the kernel ignores them otherwise). */
  propagation: number;
  /** True when a bind mount must be remounted to apply ro/nosuid/... (bind ignores them). */
  remount: boolean;
}

/** Splits fstab options into mount(2) flags and data, as runc's parseMountOptions does. */
export function mountCall(m: Mount): MountCall {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const opt of m.options) {
    const flag = FLAG_OPTIONS[opt];
    if (flag) {
      flags = flag[0] ? flags | flag[1] : flags & ~flag[1];
    } else if (opt in PROPAGATION_OPTIONS) {
      propagation |= PROPAGATION_OPTIONS[opt];
    } else {
      data.push(opt);
    }
  }
  if (m.type === "bind") flags |= L.MS_BIND;
  const isBind = (flags & L.MS_BIND) !== 0;
  const extra = flags & ~(L.MS_BIND | L.MS_REC);
  return {
    flags,
    data: data.length ? data.join(",") : null,
    propagation,
    remount: isBind && extra !== 0,
  };
}
