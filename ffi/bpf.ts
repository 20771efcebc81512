/**
 * The bpf(2) calls Floka makes: loading an eBPF program and attaching it to a cgroup. Only
 * the cgroup v2 device policy needs them (v2 has no devices.allow; the policy is a
 * BPF_PROG_TYPE_CGROUP_DEVICE program, as runc and crun attach). glibc has no bpf()
 * wrapper, so this goes through syscall(2), bound on first use like ffi/libc.ts's groups.
 */
import { SyscallError } from "../lib/errors.ts";
import { close, cString, open } from "./libc.ts";

const SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" }, // int *__errno_location(void)
  // long syscall(SYS_bpf, int cmd, union bpf_attr *attr, unsigned int size)
  syscall_bpf: { name: "syscall", parameters: ["i64", "i64", "buffer", "u64"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

let bound: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;

const SYS_BPF: Readonly<Record<string, number>> = { x86_64: 321, aarch64: 280 };
/** O_DIRECTORY differs between the two architectures. */
const O_DIRECTORY: Readonly<Record<string, number>> = { x86_64: 0o200000, aarch64: 0o40000 };
const O_RDONLY_CLOEXEC = 0o2000000;

// bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD = 5;
const BPF_PROG_ATTACH = 8;
export const BPF_PROG_TYPE_CGROUP_DEVICE = 15;
export const BPF_CGROUP_DEVICE = 6;
export const BPF_F_ALLOW_MULTI = 2;

/**
 * Room for union bpf_attr as far as Floka fills it; the kernel accepts a shorter or
 * longer one as long as the bytes it does not know are zero.
 */
const ATTR_SIZE = 128;
/** The verifier's log on a rejection; a device program's is a few hundred bytes. */
const LOG_SIZE = 64 * 1024;

/** bpf(cmd, attr): the result, or a SyscallError naming `what`. */
function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>, what: string, args: readonly unknown[]): number {
  bound ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  const nr = SYS_BPF[Deno.build.arch];
  const r = bound.syscall_bpf(BigInt(nr), BigInt(cmd), attr, BigInt(attr.length));
  if (r === -1n) {
    // errno right away, on this thread, before any other libc call can change it.
    const errno = new Deno.UnsafePointerView(bound.__errno_location()!).getInt32();
    throw new SyscallError(what, args, errno);
  }
  return Number(r);
}

function address(buf: Uint8Array): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/** A load the verifier refused, with what it said (the last lines are the reason). */
export class BpfVerifierError extends SyscallError {
  constructor(readonly log: string, errno: number) {
    super("bpf", ["BPF_PROG_LOAD"], errno);
    const tail = log.trim().split("\n").slice(-8).join("\n");
    if (tail) this.message += `\nverifier log:\n${tail}`;
  }
}

/**
 * Loads an eBPF program (8-byte struct bpf_insn, little endian) and returns its fd. The
 * verifier's log is asked for from the start, so a rejection reads as the verifier's words
 * instead of a bare EACCES or EINVAL.
 */
export function loadProgram(
  type: number,
  insns: Uint8Array,
  opts: { license?: string; name?: string; expectedAttachType?: number } = {},
): number {
  if (insns.length === 0 || insns.length % 8 !== 0) {
    throw new TypeError(`an eBPF program is whole 8-byte instructions, not ${insns.length} bytes`);
  }
  const code = new Uint8Array(insns); // a copy the pointer below can safely point into
  const license = cString(opts.license ?? "Apache-2.0")!;
  const log = new Uint8Array(LOG_SIZE);
  const attr = new Uint8Array(ATTR_SIZE);
  const view = new DataView(attr.buffer);
  view.setUint32(0, type, true); // prog_type
  view.setUint32(4, code.length / 8, true); // insn_cnt
  view.setBigUint64(8, address(code), true); // insns
  view.setBigUint64(16, address(license), true); // license
  view.setUint32(24, 1, true); // log_level
  view.setUint32(28, log.length, true); // log_size
  view.setBigUint64(32, address(log), true); // log_buf
  // prog_name (16 bytes at 48): what `bpftool prog` shows; the kernel wants [A-Za-z0-9_.].
  const name = new TextEncoder().encode((opts.name ?? "").replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 15));
  attr.set(name, 48);
  view.setUint32(68, opts.expectedAttachType ?? 0, true); // expected_attach_type
  try {
    return bpf(BPF_PROG_LOAD, attr, "bpf", ["BPF_PROG_LOAD"]);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    const end = log.indexOf(0);
    const text = new TextDecoder().decode(log.subarray(0, end === -1 ? log.length : end));
    if (text.trim() === "") throw err;
    throw new BpfVerifierError(text, err.errno);
  }
}

/** BPF_PROG_ATTACH of program `progFd` to the cgroup open at `cgroupFd` (`target` names it in errors). */
export function attachProgram(
  cgroupFd: number,
  progFd: number,
  attachType: number,
  flags: number,
  target: string = String(cgroupFd),
): void {
  const attr = new Uint8Array(ATTR_SIZE);
  const view = new DataView(attr.buffer);
  view.setUint32(0, cgroupFd, true); // target_fd
  view.setUint32(4, progFd, true); // attach_bpf_fd
  view.setUint32(8, attachType, true); // attach_type
  view.setUint32(12, flags, true); // attach_flags
  bpf(BPF_PROG_ATTACH, attr, "bpf", ["BPF_PROG_ATTACH", target]);
}

/**
 * Loads a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to cgroup v2 directory
 * `cgroupDir` with BPF_F_ALLOW_MULTI, so a program of a parent cgroup (a host's own
 * policy) still runs too and a device must pass both. Both fds are closed: the attachment
 * holds the program for as long as the cgroup lives.
 */
export function attachDeviceProgram(cgroupDir: string, insns: Uint8Array): void {
  const progFd = loadProgram(BPF_PROG_TYPE_CGROUP_DEVICE, insns, {
    name: "floka_devices",
    expectedAttachType: BPF_CGROUP_DEVICE,
  });
  try {
    const dirFd = open(cgroupDir, O_DIRECTORY[Deno.build.arch] | O_RDONLY_CLOEXEC);
    try {
      attachProgram(dirFd, progFd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, cgroupDir);
    } finally {
      close(dirFd);
    }
  } finally {
    close(progFd);
  }
}
