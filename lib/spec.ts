/**
 * What the host side of `floka run` hands to `floka containerize`: everything the inside
 * of the container needs, already decided, so containerize only performs it (the role of
 * an OCI runtime spec, cut to what Floka uses).
 */
import type { Mount } from "./mount.ts";

export interface DeviceNode {
  path: string;
  major: number;
  minor: number;
  /** Permission bits. */
  mode: number;
  /** A block device; else a character device. */
  block?: boolean;
}

export interface ProcessSpec {
  /** The command and its arguments; args[0] is looked up in PATH when it has no slash. */
  args: string[];
  env: string[];
  cwd: string;
  /** `uid[:gid]`, `name[:group]`, or "" for root; resolved against the image's /etc/passwd. */
  user: string;
  /** The bounding capability set (`CAP_*` names); every other capability is dropped. */
  capabilities: string[];
  /** `--security-opt no-new-privileges`: execve grants no privilege (setuid bits, file caps). */
  noNewPrivileges?: boolean;
  /** The seccomp filter (classic BPF, base64), installed last before execve; none when absent. */
  seccomp?: string;
  /** A terminal of the container's own (`-t`), its master sent back on the sync channel. */
  terminal?: boolean;
  /** That terminal's first window size: Floka's, so the command sees it from the start. */
  windowSize?: { rows: number; cols: number } | null;
}

export interface ContainerSpec {
  id: string;
  /** The container's directory on the host; the root mount's relative paths start there. */
  bundle: string;
  hostname: string;
  /** Host directory where the root filesystem is mounted, and that mount. */
  rootfs: string;
  rootMount: Mount;
  /** The image's layers, top first, as the root mount names them (relative to `bundle`). */
  imageLayers: string[];
  /** Mounts inside the container, in order; targets are container paths. */
  mounts: Mount[];
  devices: DeviceNode[];
  /** [link target, link path] pairs created in /dev. */
  devSymlinks: [string, string][];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Host paths of cgroup files the process writes "0" into first, to join its cgroup. */
  cgroupJoinFiles: string[];
  /**
   * "none": a new network namespace with loopback up; "host": the host's; `{ path }`: the
   * namespace the host prepared (and attached to a network) at that path, loopback up.
   */
  network: "none" | "host" | { path: string };
  /**
   * The host sends one more line on the sync channel, once the network is attached (CNI
   * ADD runs while the container is set up); the command is not started before it.
   */
  awaitHost?: boolean;
  process: ProcessSpec;
}

/** What containerize reports on the sync channel when it fails before execve. */
export interface StartFailure {
  exitCode: number;
  message: string;
}
