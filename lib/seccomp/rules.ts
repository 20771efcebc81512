/**
 * From a profile and a container to what the filter decides per system call number: which
 * rules take part (their `includes`/`excludes` hold for this container), with their actions
 * turned into the kernel's SECCOMP_RET_* values. bpf.ts turns the result into a program.
 */
import type { SeccompAction, SeccompArg, SeccompCondition, SeccompProfile } from "./profile.ts";
import { SYSCALLS_X86_64 } from "./syscalls_x86_64.ts";

// seccomp(2) return values: the action in the high 16 bits, its data (errno, message) in the low.
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;

const EPERM = 1;

/** Docker's name (Go's GOARCH) for the architecture the filter is compiled for. */
const NATIVE_ARCH = "amd64";

/** A rule for one system call: its SECCOMP_RET_* value when all of `args` hold. */
export interface CallRule {
  ret: number;
  args: readonly SeccompArg[];
}

export interface FilterPlan {
  /** SECCOMP_RET_* for calls no rule matches. */
  defaultRet: number;
  /** True when the default action lets calls through (ALLOW or LOG): a denylist profile. */
  defaultPermits: boolean;
  /**
   * Per syscall number, its rules in the order they are tried. An unconditional rule is
   * always alone: it matches every call, so, as in libseccomp, it replaces the conditional
   * ones (the first unconditional rule of a syscall wins; later ones are redundant).
   */
  calls: Map<number, CallRule[]>;
}

export interface PlanOptions {
  /**
   * The kernel release (`uname -r`, Deno.osRelease()) for `minKernel` conditions. Without
   * it they count as met: Floka targets current kernels.
   */
  kernelRelease?: string;
}

/** The x86_64 number of syscall `name`, or undefined when the table does not know it. */
export function syscallNumber(name: string): number | undefined {
  return Object.hasOwn(SYSCALLS_X86_64, name) ? SYSCALLS_X86_64[name] : undefined;
}

/** The highest syscall number the table knows. */
export const MAX_SYSCALL_NUMBER = Math.max(...Object.values(SYSCALLS_X86_64));

/** Applies `profile` to a container holding `capabilities` (names like CAP_SYS_ADMIN). */
export function planFilter(
  profile: SeccompProfile,
  capabilities: readonly string[],
  options: PlanOptions = {},
): FilterPlan {
  const held = new Set(capabilities.map(capabilityName));
  const kernel = options.kernelRelease === undefined ? null : kernelVersion(options.kernelRelease);
  const defaultErrno = profile.defaultErrnoRet ?? EPERM;
  const calls = new Map<number, CallRule[]>();
  for (const rule of profile.syscalls) {
    if (!applies(rule.includes, rule.excludes, held, kernel)) continue;
    const callRule: CallRule = {
      ret: actionRet(rule.action, rule.errnoRet ?? defaultErrno),
      args: rule.args,
    };
    for (const name of rule.names) {
      const nr = syscallNumber(name);
      if (nr === undefined) continue; // unknown on x86_64: skipped, as libseccomp does
      const existing = calls.get(nr);
      if (existing === undefined) calls.set(nr, [callRule]);
      else if (existing.length === 1 && existing[0].args.length === 0) continue; // already decided
      else if (callRule.args.length === 0) calls.set(nr, [callRule]);
      else existing.push(callRule);
    }
  }
  return {
    defaultRet: actionRet(profile.defaultAction, defaultErrno),
    defaultPermits: profile.defaultAction === "SCMP_ACT_ALLOW" || profile.defaultAction === "SCMP_ACT_LOG",
    calls,
  };
}

/** SECCOMP_RET_* for an action; `data` is the errno (ERRNO) or message (TRACE). */
export function actionRet(action: SeccompAction, data: number): number {
  switch (action) {
    case "SCMP_ACT_ALLOW":
      return SECCOMP_RET_ALLOW;
    case "SCMP_ACT_ERRNO":
      return SECCOMP_RET_ERRNO | (data & 0xffff);
    case "SCMP_ACT_KILL":
    case "SCMP_ACT_KILL_THREAD":
      return SECCOMP_RET_KILL_THREAD;
    case "SCMP_ACT_KILL_PROCESS":
      return SECCOMP_RET_KILL_PROCESS;
    case "SCMP_ACT_TRAP":
      return SECCOMP_RET_TRAP;
    case "SCMP_ACT_LOG":
      return SECCOMP_RET_LOG;
    case "SCMP_ACT_TRACE":
      return (SECCOMP_RET_TRACE | (data & 0xffff)) >>> 0;
  }
}

/** Docker's rule selection: includes must all hold, excludes must not. */
function applies(
  includes: SeccompCondition,
  excludes: SeccompCondition,
  held: ReadonlySet<string>,
  kernel: readonly [number, number] | null,
): boolean {
  if (includes.arches.length > 0 && !includes.arches.includes(NATIVE_ARCH)) return false;
  if (excludes.arches.includes(NATIVE_ARCH)) return false;
  if (!includes.caps.every((cap) => held.has(capabilityName(cap)))) return false;
  if (excludes.caps.some((cap) => held.has(capabilityName(cap)))) return false;
  if (kernel !== null && includes.minKernel !== undefined && older(kernel, includes.minKernel)) return false;
  if (kernel !== null && excludes.minKernel !== undefined && !older(kernel, excludes.minKernel)) return false;
  return true;
}

/** CAP_SYS_ADMIN for sys_admin, SYS_ADMIN or CAP_SYS_ADMIN, as Docker accepts all three. */
function capabilityName(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith("CAP_") ? upper : "CAP_" + upper;
}

/** [major, minor] of a kernel release such as "6.1.0-18-amd64". */
function kernelVersion(release: string): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

function older(kernel: readonly [number, number], version: string): boolean {
  const [major, minor] = kernelVersion(version);
  return kernel[0] < major || (kernel[0] === major && kernel[1] < minor);
}
