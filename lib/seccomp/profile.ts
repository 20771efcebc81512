/**
 * The model of a seccomp profile in Docker's JSON format (moby's profiles/seccomp), which is
 * also what `docker run --security-opt seccomp=FILE` reads and a superset of the OCI
 * runtime spec's `linux.seccomp`. A profile names a default action and, per system call,
 * rules: an action, optional comparisons on the call's arguments, and conditions on the
 * container (`includes`/`excludes`: capabilities it holds, architecture, kernel version)
 * that decide whether the rule is part of the filter at all.
 *
 * Argument values are 64-bit unsigned integers, held as bigint: a JSON number above 2^53
 * would lose its low bits as a JS number.
 */
import { FlokaError } from "../errors.ts";

/** What the filter does with a call (libseccomp's SCMP_ACT_* names). */
export const ACTIONS = [
  "SCMP_ACT_KILL",
  "SCMP_ACT_KILL_THREAD",
  "SCMP_ACT_KILL_PROCESS",
  "SCMP_ACT_TRAP",
  "SCMP_ACT_ERRNO",
  "SCMP_ACT_TRACE",
  "SCMP_ACT_LOG",
  "SCMP_ACT_ALLOW",
] as const;
export type SeccompAction = typeof ACTIONS[number];

/** How an argument is compared with `value` (libseccomp's SCMP_CMP_* names). */
export const OPERATORS = [
  "SCMP_CMP_NE",
  "SCMP_CMP_LT",
  "SCMP_CMP_LE",
  "SCMP_CMP_EQ",
  "SCMP_CMP_GE",
  "SCMP_CMP_GT",
  "SCMP_CMP_MASKED_EQ",
] as const;
export type SeccompOperator = typeof OPERATORS[number];

/**
 * One comparison on argument `index` (0-5), all 64 bits of it: `arg OP value`, or for
 * MASKED_EQ `(arg & value) == valueTwo`.
 */
export interface SeccompArg {
  index: number;
  value: bigint;
  valueTwo: bigint;
  op: SeccompOperator;
}

/** The container conditions under which a rule takes part (Docker's `includes`/`excludes`). */
export interface SeccompCondition {
  /** Capabilities (`CAP_SYS_ADMIN`): includes needs all of them, excludes any one. */
  caps: string[];
  /** Go architecture names as Docker uses them: amd64, x86, x32, arm64, arm, s390x, ... */
  arches: string[];
  /** "major.minor": includes needs a kernel at least this new, excludes an older one. */
  minKernel?: string;
}

export interface SeccompSyscallRule {
  names: string[];
  action: SeccompAction;
  /** errno for SCMP_ACT_ERRNO, message for SCMP_ACT_TRACE. */
  errnoRet?: number;
  /** Compared together: the rule matches when every comparison holds. */
  args: SeccompArg[];
  includes: SeccompCondition;
  excludes: SeccompCondition;
  comment?: string;
}

export interface SeccompArchMap {
  architecture: string;
  subArchitectures: string[];
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  /** errno of a SCMP_ACT_ERRNO default action (and of rules without their own); EPERM if absent. */
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names; Floka's compiled filter is x86_64 only (see bpf.ts). */
  architectures: string[];
  archMap: SeccompArchMap[];
  syscalls: SeccompSyscallRule[];
}

/** An action's data field (errno or trace message) holds 16 bits. */
const MAX_ACTION_DATA = 0xffff;
const MAX_U64 = (1n << 64n) - 1n;

/** A condition that holds for every container. */
export function anyContainer(): SeccompCondition {
  return { caps: [], arches: [] };
}

/**
 * Reads a profile in Docker's JSON format. Throws a one-line FlokaError naming `source` and
 * the offending field. Syscall names are not checked here: a name unknown to the
 * architecture is skipped when the filter is compiled, as Docker does.
 */
export function parseProfile(json: string, source: string): SeccompProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(json, exactIntegers);
  } catch (err) {
    throw new FlokaError(`seccomp profile ${source}: invalid JSON: ${(err as Error).message}`);
  }
  return new ProfileReader(source).profile(raw);
}

/**
 * JSON.parse reviver that keeps argument values exact: with the parser's source text
 * (`context.source`) `value`/`valueTwo` become bigints even above 2^53.
 */
function exactIntegers(key: string, value: unknown, context?: { source?: string }): unknown {
  if ((key === "value" || key === "valueTwo") && typeof value === "number") {
    const text = context?.source;
    if (text !== undefined && /^-?\d+$/.test(text)) return BigInt(text);
    if (Number.isSafeInteger(value)) return BigInt(value);
  }
  return value;
}

type Json = Record<string, unknown>;

/** Checks and converts the parsed JSON, each error naming the path of the bad field. */
class ProfileReader {
  constructor(private readonly source: string) {}

  profile(raw: unknown): SeccompProfile {
    const top = this.object(raw, "profile");
    const profile: SeccompProfile = {
      defaultAction: this.action(top.defaultAction, "defaultAction"),
      architectures: this.strings(top.architectures, "architectures"),
      archMap: this.list(top.archMap, "archMap").map((entry, i) => this.archMap(entry, `archMap[${i}]`)),
      syscalls: this.list(top.syscalls, "syscalls").map((rule, i) => this.rule(rule, `syscalls[${i}]`)),
    };
    const errno = this.actionData(top.defaultErrnoRet, "defaultErrnoRet");
    if (errno !== undefined) profile.defaultErrnoRet = errno;
    return profile;
  }

  private archMap(raw: unknown, at: string): SeccompArchMap {
    const entry = this.object(raw, at);
    if (typeof entry.architecture !== "string") this.fail(`${at}.architecture`, "must be a string");
    return {
      architecture: entry.architecture as string,
      subArchitectures: this.strings(entry.subArchitectures, `${at}.subArchitectures`),
    };
  }

  private rule(raw: unknown, at: string): SeccompSyscallRule {
    const entry = this.object(raw, at);
    // `name` (one name) is the old form moby still reads.
    const names = entry.names !== undefined || entry.name === undefined
      ? this.strings(entry.names, `${at}.names`)
      : [this.string(entry.name, `${at}.name`)];
    if (names.length === 0) this.fail(`${at}.names`, "must name at least one syscall");
    const rule: SeccompSyscallRule = {
      names,
      action: this.action(entry.action, `${at}.action`),
      args: this.list(entry.args, `${at}.args`).map((arg, i) => this.arg(arg, `${at}.args[${i}]`)),
      includes: this.condition(entry.includes, `${at}.includes`),
      excludes: this.condition(entry.excludes, `${at}.excludes`),
    };
    const errno = this.actionData(entry.errnoRet, `${at}.errnoRet`);
    if (errno !== undefined) rule.errnoRet = errno;
    if (typeof entry.comment === "string" && entry.comment !== "") rule.comment = entry.comment;
    return rule;
  }

  private arg(raw: unknown, at: string): SeccompArg {
    const entry = this.object(raw, at);
    const index = entry.index;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > 5) {
      this.fail(`${at}.index`, "must be an argument number from 0 to 5");
    }
    const op = entry.op;
    if (!(OPERATORS as readonly unknown[]).includes(op)) {
      this.fail(`${at}.op`, `unknown operator ${JSON.stringify(op)} (one of ${OPERATORS.join(", ")})`);
    }
    return {
      index: index as number,
      value: this.u64(entry.value, `${at}.value`),
      valueTwo: this.u64(entry.valueTwo, `${at}.valueTwo`),
      op: op as SeccompOperator,
    };
  }

  private condition(raw: unknown, at: string): SeccompCondition {
    if (raw === undefined || raw === null) return anyContainer();
    const entry = this.object(raw, at);
    const condition: SeccompCondition = {
      caps: this.strings(entry.caps, `${at}.caps`),
      arches: this.strings(entry.arches, `${at}.arches`),
    };
    if (entry.minKernel !== undefined && entry.minKernel !== null && entry.minKernel !== "") {
      const version = this.string(entry.minKernel, `${at}.minKernel`);
      if (!/^\d+\.\d+$/.test(version)) {
        this.fail(`${at}.minKernel`, `must be "major.minor", not "${version}"`);
      }
      condition.minKernel = version;
    }
    return condition;
  }

  private action(raw: unknown, at: string): SeccompAction {
    if (raw === "SCMP_ACT_NOTIFY") this.fail(at, "SCMP_ACT_NOTIFY is not supported by Floka");
    if (!(ACTIONS as readonly unknown[]).includes(raw)) {
      this.fail(at, `unknown action ${JSON.stringify(raw)} (one of ${ACTIONS.join(", ")})`);
    }
    return raw as SeccompAction;
  }

  /** errnoRet and defaultErrnoRet: absent, or what fits the action's 16-bit data field. */
  private actionData(raw: unknown, at: string): number | undefined {
    if (raw === undefined || raw === null) return undefined;
    if (typeof raw !== "number" || !Number.isInteger(raw) || raw < 0 || raw > MAX_ACTION_DATA) {
      this.fail(at, `must be an integer from 0 to ${MAX_ACTION_DATA}`);
    }
    return raw as number;
  }

  private u64(raw: unknown, at: string): bigint {
    if (raw === undefined || raw === null) return 0n;
    if (typeof raw !== "bigint" || raw < 0n || raw > MAX_U64) {
      this.fail(at, "must be an integer from 0 to 18446744073709551615");
    }
    return raw as bigint;
  }

  private object(raw: unknown, at: string): Json {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) this.fail(at, "must be an object");
    return raw as Json;
  }

  /** A JSON array; absent or null reads as empty, as in Go. */
  private list(raw: unknown, at: string): unknown[] {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) this.fail(at, "must be an array");
    return raw as unknown[];
  }

  private strings(raw: unknown, at: string): string[] {
    return this.list(raw, at).map((item, i) => this.string(item, `${at}[${i}]`));
  }

  private string(raw: unknown, at: string): string {
    if (typeof raw !== "string") this.fail(at, "must be a string");
    return raw as string;
  }

  private fail(at: string, problem: string): never {
    throw new FlokaError(`seccomp profile ${this.source}: ${at}: ${problem}`);
  }
}
