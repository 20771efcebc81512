/**
 * Compiles a seccomp profile into the classic BPF program the kernel runs on every system
 * call of the container (seccomp(SECCOMP_SET_MODE_FILTER)). The program reads
 * `struct seccomp_data` { u32 nr; u32 arch; u64 instruction_pointer; u64 args[6] } and
 * returns a SECCOMP_RET_* value.
 *
 * Layout, chosen because it runs on every call:
 * 1. the architecture check;
 * 2. a balanced binary search over the syscall number: numbers with the same unconditional
 *    outcome form contiguous ranges (the default profile's 450 numbers make 63), so a call
 *    costs about 6 comparisons instead of a walk down a list of hundreds;
 * 3. at a leaf, either the outcome (one BPF_RET) or, for a call with argument rules, a small
 *    block that compares the arguments, rule by rule, and returns the first match's action.
 */
import { FlokaError } from "../errors.ts";
import { Assembler, type Label, MAX_INSTRUCTIONS, OP_JEQ, OP_JGE, OP_JGT } from "./assembler.ts";
import type { SeccompArg, SeccompProfile } from "./profile.ts";
import {
  type CallRule,
  type FilterPlan,
  MAX_SYSCALL_NUMBER,
  planFilter,
  type PlanOptions,
  SECCOMP_RET_ERRNO,
} from "./rules.ts";

/** AUDIT_ARCH_X86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE), seccomp_data.arch. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 calls arrive with the x86_64 arch and this bit set in the number. */
export const X32_SYSCALL_BIT = 0x40000000;

// Offsets in struct seccomp_data.
const NR_OFFSET = 0;
const ARCH_OFFSET = 4;
const ARGS_OFFSET = 16;

const ENOSYS = 38;
const RET_ENOSYS = SECCOMP_RET_ERRNO | ENOSYS;

/**
 * The filter for a container whose bounding set is `capabilities` (names such as
 * CAP_SYS_ADMIN; they decide which rules apply, as in Docker), as `struct sock_filter`
 * entries, 8 bytes each. Throws a FlokaError when the program would exceed the kernel's
 * 4096 instructions.
 *
 * Calls the profile cannot describe get ENOSYS, the kernel's own answer for a call that
 * does not exist, which programs already handle and which runs nothing:
 * - other architectures (i386 `int 0x80`, whose numbers differ from x86_64's) and x32 calls
 *   (the x86_64 arch with bit 30 set in the number): Floka's table is x86_64's, so
 *   comparing their numbers against it would let e.g. i386's 26 (ptrace) through as x86_64's
 *   26 (msync). Refusing them, rather than killing the process, mirrors a kernel built
 *   without 32-bit emulation, and a program that only probes keeps running.
 * - numbers above the highest one in the table (syscalls newer than it), unless the default
 *   action lets calls through: libc falls back on ENOSYS (clone3, fchmodat2, ...) but not
 *   on EPERM. runc does the same.
 */
export function compileFilter(
  profile: SeccompProfile,
  capabilities: readonly string[],
  options: PlanOptions = {},
): Uint8Array<ArrayBuffer> {
  const plan = planFilter(profile, capabilities, options);
  const asm = new Assembler();
  const foreignArch = asm.label();
  asm.load(ARCH_OFFSET);
  asm.jump(OP_JEQ, AUDIT_ARCH_X86_64, null, foreignArch);
  asm.load(NR_OFFSET);
  const ranges = syscallRanges(plan);
  emitSearch(asm, ranges, 0, ranges.length, plan.defaultRet);
  asm.bind(foreignArch);
  asm.ret(RET_ENOSYS);
  const program = asm.assemble();
  const length = program.length / 8;
  if (length > MAX_INSTRUCTIONS) {
    throw new FlokaError(
      `seccomp profile compiles to ${length} BPF instructions, more than the kernel's limit of ${MAX_INSTRUCTIONS}`,
    );
  }
  return program;
}

/** What happens to the calls of a range: one return value, or a syscall's argument rules. */
type Outcome = { ret: number; rules?: undefined } | { ret?: undefined; rules: readonly CallRule[] };

/** Syscall numbers from `start` up to the next range's start. */
interface Range {
  start: number;
  outcome: Outcome;
}

/** Every 32-bit syscall number, cut into ranges of equal outcome, in ascending order. */
function syscallRanges(plan: FilterPlan): Range[] {
  const ranges: Range[] = [];
  const add = (start: number, outcome: Outcome) => {
    const last = ranges[ranges.length - 1];
    if (last && outcome.ret !== undefined && last.outcome.ret === outcome.ret) return;
    ranges.push({ start, outcome });
  };
  for (let nr = 0; nr <= MAX_SYSCALL_NUMBER; nr++) {
    const rules = plan.calls.get(nr);
    if (rules === undefined) add(nr, { ret: plan.defaultRet });
    else if (rules.length === 1 && rules[0].args.length === 0) add(nr, { ret: rules[0].ret });
    else add(nr, { rules });
  }
  add(MAX_SYSCALL_NUMBER + 1, { ret: plan.defaultPermits ? plan.defaultRet : RET_ENOSYS });
  add(X32_SYSCALL_BIT, { ret: RET_ENOSYS }); // and above: unsigned, so this includes -1
  return ranges;
}

/** Binary search over ranges[from, to), the syscall number in A. */
function emitSearch(
  asm: Assembler,
  ranges: readonly Range[],
  from: number,
  to: number,
  defaultRet: number,
): void {
  if (to - from === 1) {
    const { outcome } = ranges[from];
    if (outcome.ret !== undefined) asm.ret(outcome.ret);
    else emitArgumentRules(asm, outcome.rules, defaultRet);
    return;
  }
  const middle = (from + to) >>> 1;
  const upper = asm.label();
  asm.jump(OP_JGE, ranges[middle].start, upper, null);
  emitSearch(asm, ranges, from, middle, defaultRet);
  asm.bind(upper);
  emitSearch(asm, ranges, middle, to, defaultRet);
}

/** One syscall's rules: the first whose comparisons all hold decides; else the default. */
function emitArgumentRules(asm: Assembler, rules: readonly CallRule[], defaultRet: number): void {
  for (const rule of rules) {
    const nextRule = asm.label();
    for (const arg of rule.args) emitComparison(asm, arg, nextRule);
    asm.ret(rule.ret);
    asm.bind(nextRule);
  }
  asm.ret(defaultRet);
}

/**
 * Falls through when `arg` holds, else jumps to `fail`. Arguments are 64-bit and BPF words
 * 32-bit: compare the high words, and the low words only when the high words are equal.
 */
function emitComparison(asm: Assembler, arg: SeccompArg, fail: Label): void {
  const low = ARGS_OFFSET + 8 * arg.index, high = low + 4; // little endian
  const [valueHigh, valueLow] = words(arg.value);
  const pass = asm.label();
  switch (arg.op) {
    case "SCMP_CMP_EQ":
      asm.load(high);
      asm.jump(OP_JEQ, valueHigh, null, fail);
      asm.load(low);
      asm.jump(OP_JEQ, valueLow, null, fail);
      break;
    case "SCMP_CMP_NE":
      asm.load(high);
      asm.jump(OP_JEQ, valueHigh, null, pass);
      asm.load(low);
      asm.jump(OP_JEQ, valueLow, fail, null);
      break;
    case "SCMP_CMP_GT":
    case "SCMP_CMP_GE":
      asm.load(high);
      asm.jump(OP_JGT, valueHigh, pass, null);
      asm.jump(OP_JEQ, valueHigh, null, fail); // high word smaller
      asm.load(low);
      asm.jump(arg.op === "SCMP_CMP_GT" ? OP_JGT : OP_JGE, valueLow, null, fail);
      break;
    case "SCMP_CMP_LT":
    case "SCMP_CMP_LE":
      asm.load(high);
      asm.jump(OP_JGT, valueHigh, fail, null);
      asm.jump(OP_JEQ, valueHigh, null, pass); // high word smaller
      asm.load(low);
      asm.jump(arg.op === "SCMP_CMP_LT" ? OP_JGE : OP_JGT, valueLow, fail, null);
      break;
    case "SCMP_CMP_MASKED_EQ": {
      // (arg & value) == valueTwo
      const [datumHigh, datumLow] = words(arg.valueTwo);
      if (valueHigh !== 0 || datumHigh !== 0) {
        asm.load(high);
        asm.and(valueHigh);
        asm.jump(OP_JEQ, datumHigh, null, fail);
      }
      asm.load(low);
      asm.and(valueLow);
      asm.jump(OP_JEQ, datumLow, null, fail);
      break;
    }
  }
  asm.bind(pass);
}

/** [high, low] 32-bit words of a 64-bit value. */
function words(value: bigint): [number, number] {
  return [Number((value >> 32n) & 0xffffffffn), Number(value & 0xffffffffn)];
}
