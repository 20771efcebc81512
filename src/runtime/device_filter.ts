/**
 * The device policy on cgroup v2. v2 has no devices.allow file: the kernel asks an eBPF
 * program of type BPF_PROG_TYPE_CGROUP_DEVICE, attached to the cgroup, on every open or
 * mknod of a device node (as runc's devicefilter and crun do). `deviceFilterProgram`
 * compiles the same v1 `devices.allow` lines that cgroups.ts writes on v1 (deny all, then
 * allow each line) into such a program, so both versions enforce one policy.
 *
 * The program reads struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; },
 * where access_type is (access << 16) | type, and returns 1 (allow) when some rule matches
 * the type, major and minor and grants every access bit asked for; else 0 (EPERM).
 */
import { attachDeviceProgram } from "../../ffi/bpf.ts";
import { FlokaError } from "../../lib/errors.ts";

// include/uapi/linux/bpf.h
export const BPF_DEVCG_DEV_BLOCK = 1;
export const BPF_DEVCG_DEV_CHAR = 2;
export const BPF_DEVCG_ACC_MKNOD = 1;
export const BPF_DEVCG_ACC_READ = 2;
export const BPF_DEVCG_ACC_WRITE = 4;

/** One parsed `devices.allow` line; null major or minor is `*`, null type is `a` (any). */
export interface DeviceRule {
  type: number | null;
  major: number | null;
  minor: number | null;
  /** BPF_DEVCG_ACC_* bits. */
  access: number;
}

const ACCESS_BITS: Record<string, number> = {
  m: BPF_DEVCG_ACC_MKNOD,
  r: BPF_DEVCG_ACC_READ,
  w: BPF_DEVCG_ACC_WRITE,
};

/** Parses a v1 `devices.allow` line: `a`, or `TYPE MAJOR:MINOR ACCESS` as `c 136:* rwm`. */
export function parseDeviceRule(line: string): DeviceRule {
  const text = line.trim();
  if (text === "a") return { type: null, major: null, minor: null, access: 7 };
  const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]{1,3})$/.exec(text);
  const number = (s: string) => s === "*" ? null : Number(s);
  if (m) {
    const [, type, major, minor, access] = m;
    const bits = [...access].reduce((acc, c) => acc | ACCESS_BITS[c], 0);
    const valid = new Set(access).size === access.length &&
      [major, minor].every((s) => s === "*" || Number(s) <= 0xffffffff);
    if (valid) {
      return {
        type: type === "a" ? null : type === "b" ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR,
        major: number(major),
        minor: number(minor),
        access: bits,
      };
    }
  }
  throw new FlokaError(
    `invalid device rule ${JSON.stringify(line)}: expected "a" or "c|b|a MAJOR:MINOR rwm"`,
  );
}

// The few eBPF opcodes the program uses (struct bpf_insn.code).
export const OP = {
  LDX_MEM_W: 0x61, // dst = *(u32 *)(src + off)
  AND32_K: 0x54, // (u32) dst &= imm
  RSH32_K: 0x74, // (u32) dst >>= imm
  // Jumps of class BPF_JMP32: they compare the low 32 bits, so a u32 above 2^31 - 1 matches
  // its imm (which BPF_JMP would sign-extend to 64 bits).
  JNE32_K: 0x56, // if (u32) dst != (u32) imm: pc += off
  JSET32_K: 0x46, // if (u32) dst & (u32) imm: pc += off
  MOV64_K: 0xb7, // dst = imm
  EXIT: 0x95, // return r0
} as const;

// Registers: r1 holds the context on entry; r2-r5 are scratch.
const R0 = 0, R1 = 1, TYPE = 2, ACCESS = 3, MAJOR = 4, MINOR = 5;

type Insn = [code: number, dst: number, src: number, off: number, imm: number];

/**
 * The eBPF program (8-byte struct bpf_insn each, little endian) that allows exactly what
 * `rules` allow. Rules only ever allow, so their order does not matter.
 */
export function deviceFilterProgram(rules: readonly string[]): Uint8Array<ArrayBuffer> {
  const insns: Insn[] = [
    [OP.LDX_MEM_W, TYPE, R1, 0, 0],
    [OP.AND32_K, TYPE, 0, 0, 0xffff],
    [OP.LDX_MEM_W, ACCESS, R1, 0, 0],
    [OP.RSH32_K, ACCESS, 0, 0, 16],
    [OP.LDX_MEM_W, MAJOR, R1, 4, 0],
    [OP.LDX_MEM_W, MINOR, R1, 8, 0],
  ];
  for (const rule of rules.map(parseDeviceRule)) {
    // Each test jumps past the rest of this rule's block to the next rule when it fails.
    const tests: [code: number, reg: number, imm: number][] = [];
    if (rule.type !== null) tests.push([OP.JNE32_K, TYPE, rule.type]);
    // Any access bit asked for that the rule does not grant (future bits too) fails it.
    tests.push([OP.JSET32_K, ACCESS, ~rule.access]);
    if (rule.major !== null) tests.push([OP.JNE32_K, MAJOR, rule.major]);
    if (rule.minor !== null) tests.push([OP.JNE32_K, MINOR, rule.minor]);
    tests.forEach(([code, reg, imm], i) => insns.push([code, reg, 0, tests.length - i - 1 + 2, imm]));
    insns.push([OP.MOV64_K, R0, 0, 0, 1], [OP.EXIT, 0, 0, 0, 0]);
  }
  insns.push([OP.MOV64_K, R0, 0, 0, 0], [OP.EXIT, 0, 0, 0, 0]);
  return encode(insns);
}

function encode(insns: readonly Insn[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(insns.length * 8);
  const view = new DataView(out.buffer);
  insns.forEach(([code, dst, src, off, imm], i) => {
    view.setUint8(i * 8, code);
    view.setUint8(i * 8 + 1, (src << 4) | dst);
    view.setInt16(i * 8 + 2, off, true);
    view.setInt32(i * 8 + 4, imm | 0, true);
  });
  return out;
}

/**
 * Makes `rules` the device policy of cgroup v2 directory `cgroupDir`: every device node
 * they do not allow cannot be opened or made by its processes (EPERM). Call it once, on
 * a new cgroup before any process joins; each call adds a program that must also allow.
 */
export function applyDeviceFilter(cgroupDir: string, rules: readonly string[]): void {
  attachDeviceProgram(cgroupDir, deviceFilterProgram(rules));
}
