/**
 * Linux capabilities by name (linux/capability.h), the set Docker grants a container by
 * default, and Docker's rules for changing it. A container's set is its bounding set:
 * after execve a root process holds exactly these, effective and permitted, and any other
 * user none (no inheritable or ambient capabilities).
 */
import { FlokaError } from "./errors.ts";

export const CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
] as const;

export type Capability = typeof CAPABILITIES[number];

/** Docker's default capability set (moby's oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: readonly Capability[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** A capability as the command line names it (`net_admin`, `CAP_NET_ADMIN`), or `ALL`. */
export function normalizeCapability(name: string): Capability | "ALL" {
  const upper = name.trim().toUpperCase();
  if (upper === "ALL") return "ALL";
  const full = upper.startsWith("CAP_") ? upper : `CAP_${upper}`;
  if (!(CAPABILITIES as readonly string[]).includes(full)) {
    throw new FlokaError(`unknown capability: ${JSON.stringify(name)}`);
  }
  return full as Capability;
}

/**
 * The capabilities a container gets from `--cap-add`, `--cap-drop` and `--privileged`, by
 * Docker's rules: adding ALL keeps all but the dropped ones; dropping ALL keeps only the
 * added ones; otherwise the defaults, less the dropped, plus the added.
 */
export function containerCapabilities(add: readonly string[], drop: readonly string[], privileged = false) {
  if (privileged) return [...CAPABILITIES];
  const added = add.map(normalizeCapability);
  const dropped = drop.map(normalizeCapability);
  let caps: readonly string[];
  if (added.includes("ALL")) caps = CAPABILITIES.filter((c) => !dropped.includes(c));
  else if (dropped.includes("ALL")) caps = added;
  else caps = [...DEFAULT_CAPABILITIES.filter((c) => !dropped.includes(c)), ...added];
  return CAPABILITIES.filter((c) => caps.includes(c)); // kernel order, once each
}

/** The kernel's number for a capability name, or -1. */
export function capabilityNumber(name: string): number {
  return (CAPABILITIES as readonly string[]).indexOf(name);
}
