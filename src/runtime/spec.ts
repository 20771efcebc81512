/**
 * Builds the spec `floka containerize` performs, from a container's record. Pure: the
 * defaults below are Docker's (runc's default spec), so a container sees the same /proc,
 * /dev and /sys it would see under Docker.
 */
import { containerCapabilities } from "../../lib/capabilities.ts";
import { compileFilter } from "../../lib/seccomp/bpf.ts";
import { defaultProfile } from "../../lib/seccomp/default_profile.ts";
import { parseProfile } from "../../lib/seccomp/profile.ts";
import type { ContainerSpec, DeviceNode, ProcessSpec } from "../../lib/spec.ts";
import type { Mount } from "../../lib/mount.ts";
import type { ContainerRecord } from "../containers/store.ts";
import type { MountSpec } from "../containers/volumes.ts";
import { withInit } from "./init.ts";

/**
 * The overlay root filesystem: the image's layers below, then the init layer of the runtime's
 * mount points, the container's own layer on top.
 * Its paths are relative to the container's directory, where `layers/<i>` links to the
 * i-th lower directory (top first), as Docker's overlay2 does: mount(2) takes one page of
 * options, which 120 absolute layer paths would overflow, and the short names need no
 * escaping of overlayfs's `:` and `,`.
 */
export function rootMount(layerCount: number, readOnly = false): Mount {
  const lower = [INIT_LAYER, ...imageLayers(layerCount)].join(":");
  return {
    type: "overlay",
    source: "overlay",
    target: "/",
    // `ro` (--read-only) is applied by containerize once every mount point exists.
    options: [`lowerdir=${lower}`, "upperdir=upper", "workdir=work", ...(readOnly ? ["ro"] : [])],
  };
}

/**
 * The container's own mounts (`-v`, `--mount`, `--tmpfs`), parents before children: binds
 * and volumes recursive and private, `ro` by a remount; tmpfs with its options.
 */
export function containerMounts(mounts: readonly MountSpec[]): Mount[] {
  const depth = (m: MountSpec) => m.target.split("/").filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a) - depth(b)).map((m) => {
    const mode = m.readOnly ? ["ro"] : [];
    if (m.type === "tmpfs") {
      return { type: "tmpfs", source: "tmpfs", target: m.target, options: [...(m.options ?? []), ...mode] };
    }
    return { type: "bind", source: m.source, target: m.target, options: ["rbind", "rprivate", ...mode] };
  });
}

/** The links to the image's layers in the container's directory, top first. */
function imageLayers(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${LAYER_LINKS}/${i}`);
}

/** The container directory's folder of links to the image's layers. */
export const LAYER_LINKS = "layers";

/** The container directory's init layer (run.ts's makeInitLayer), above the image's layers. */
export const INIT_LAYER = "init";

type HostConfig = ContainerRecord["hostConfig"];

function systemMounts(network: HostConfig["networkMode"], privileged: boolean): Mount[] {
  // --privileged: /sys is writable, as in Docker.
  const sysMode = privileged ? [] : ["ro"];
  return [
    { type: "proc", source: "proc", target: "/proc", options: ["nosuid", "noexec", "nodev"] },
    {
      type: "tmpfs",
      source: "tmpfs",
      target: "/dev",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      type: "devpts",
      source: "devpts",
      target: "/dev/pts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
      type: "tmpfs",
      source: "shm",
      target: "/dev/shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { type: "mqueue", source: "mqueue", target: "/dev/mqueue", options: ["nosuid", "noexec", "nodev"] },
    // sysfs can only be mounted by the owner of the network namespace; with the host's
    // network the container gets a read-only view of the host's /sys instead, as runc does.
    network === "host"
      ? {
        type: "bind",
        source: "/sys",
        target: "/sys",
        options: ["rbind", "nosuid", "noexec", "nodev", ...sysMode],
      }
      : {
        type: "sysfs",
        source: "sysfs",
        target: "/sys",
        options: ["nosuid", "noexec", "nodev", ...sysMode],
      },
  ];
}

const DEVICES: DeviceNode[] = [
  { path: "/dev/null", major: 1, minor: 3, mode: 0o666 },
  { path: "/dev/zero", major: 1, minor: 5, mode: 0o666 },
  { path: "/dev/full", major: 1, minor: 7, mode: 0o666 },
  { path: "/dev/random", major: 1, minor: 8, mode: 0o666 },
  { path: "/dev/urandom", major: 1, minor: 9, mode: 0o666 },
  { path: "/dev/tty", major: 5, minor: 0, mode: 0o666 },
];

const DEV_SYMLINKS: [string, string][] = [
  ["pts/ptmx", "/dev/ptmx"],
  ["/proc/self/fd", "/dev/fd"],
  ["/proc/self/fd/0", "/dev/stdin"],
  ["/proc/self/fd/1", "/dev/stdout"],
  ["/proc/self/fd/2", "/dev/stderr"],
];

/** Docker's default masked paths: hidden (bind of /dev/null, or an empty read-only tmpfs). */
export const MASKED_PATHS = [
  "/proc/asound",
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
];

/** Docker's default read-only paths. */
export const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** The /etc files Floka generates per container and binds over the image's. */
export const ETC_FILES = ["hostname", "hosts", "resolv.conf"] as const;

/**
 * What confines every process of a container, `exec`'s too: its capabilities (Docker's
 * rules for --cap-add, --cap-drop and --privileged), no-new-privileges, and the seccomp
 * filter compiled for those capabilities (none with --privileged or seccomp=unconfined,
 * as in Docker).
 */
export function processSecurity(
  hostConfig: HostConfig,
): Pick<ProcessSpec, "capabilities" | "noNewPrivileges" | "seccomp"> {
  const capabilities = containerCapabilities(
    hostConfig.capAdd ?? [],
    hostConfig.capDrop ?? [],
    hostConfig.privileged,
  );
  const profile = hostConfig.seccompProfile;
  const confined = !hostConfig.privileged && profile !== "unconfined";
  const program = confined
    ? compileFilter(
      profile ? parseProfile(profile, "the container's seccomp profile") : defaultProfile(),
      capabilities,
      { kernelRelease: Deno.osRelease() },
    )
    : null;
  return {
    capabilities,
    ...(hostConfig.noNewPrivileges ? { noNewPrivileges: true } : {}),
    ...(program ? { seccomp: btoa(String.fromCharCode(...program)) } : {}),
  };
}

/**
 * The spec of a container's start. `hostDevices` are the host's device nodes a
 * --privileged container gets besides its own.
 */
export function buildSpec(
  record: ContainerRecord,
  containerDir: string,
  cgroupJoinFiles: string[],
  initBinary?: string,
  netnsPath?: string,
  hostDevices: readonly DeviceNode[] = [],
): ContainerSpec {
  const privileged = !!record.hostConfig.privileged;
  const init = initBinary ? withInit(initBinary, [record.path, ...record.args]) : null;
  const userMounts = record.hostConfig.mounts ?? [];
  // As Docker: the generated /etc files go over a volume on /etc, and a mount of the
  // container's own on one of them replaces it.
  const etcMounts: Mount[] = ETC_FILES
    .filter((file) => !userMounts.some((m) => m.target === `/etc/${file}`))
    .map((file) => ({
      type: "bind",
      source: `${containerDir}/${file}`,
      target: `/etc/${file}`,
      options: ["rbind", "rprivate"],
    }));
  return {
    id: record.id,
    bundle: containerDir,
    hostname: record.config.hostname,
    rootfs: `${containerDir}/rootfs`,
    rootMount: rootMount(record.lowerDirs.length, record.hostConfig.readOnly),
    imageLayers: imageLayers(record.lowerDirs.length),
    mounts: [
      ...systemMounts(record.hostConfig.networkMode, privileged),
      ...containerMounts(userMounts),
      ...etcMounts,
      ...(init ? [init.mount] : []),
    ],
    devices: [...DEVICES, ...hostDevices.filter((d) => !DEVICES.some((own) => own.path === d.path))],
    devSymlinks: DEV_SYMLINKS,
    maskedPaths: privileged ? [] : MASKED_PATHS,
    readonlyPaths: privileged ? [] : READONLY_PATHS,
    cgroupJoinFiles,
    network: netnsPath ? { path: netnsPath } : record.hostConfig.networkMode === "host" ? "host" : "none",
    process: {
      args: init?.args ?? [record.path, ...record.args],
      env: record.config.env,
      cwd: record.config.workingDir,
      user: record.config.user,
      ...processSecurity(record.hostConfig),
      terminal: record.config.tty ?? false,
    },
  };
}
