/**
 * Seccomp: profile parsing, the default profile's decisions and the compiled BPF program,
 * run here by a small classic-BPF interpreter over synthetic `struct seccomp_data`, and
 * once for real: a child process installs the default filter and makes refused calls.
 */
import assert from "node:assert/strict";
import { DEFAULT_CAPABILITIES } from "../../lib/capabilities.ts";
import { FlokaError } from "../../lib/errors.ts";
import { compileFilter } from "../../lib/seccomp/bpf.ts";
import { defaultProfile } from "../../lib/seccomp/default_profile.ts";
import { parseProfile, type SeccompOperator, type SeccompProfile } from "../../lib/seccomp/profile.ts";
import { SYSCALLS_X86_64 } from "../../lib/seccomp/syscalls_x86_64.ts";

// --- a classic BPF interpreter for seccomp programs ---------------------------------------

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;
const SECCOMP_DATA_SIZE = 64;

const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const KILL_THREAD = 0;
const TRAP = 0x00030000;
const LOG = 0x7ffc0000;
const TRACE = 0x7ff00000;
const errno = (n: number) => 0x00050000 | n;
const EPERM = errno(1);
const ENOSYS = errno(38);

interface Call {
  nr: number;
  arch?: number;
  args?: readonly (bigint | number)[];
}

/** Checks what the kernel checks before it accepts a filter (bpf_check_classic, seccomp). */
function checkProgram(program: Uint8Array): void {
  assert.equal(program.length % 8, 0, "whole instructions");
  const count = program.length / 8;
  assert.ok(count >= 1 && count <= 4096, `${count} instructions`);
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  for (let pc = 0; pc < count; pc++) {
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2),
      jf = view.getUint8(pc * 8 + 3),
      k = view.getUint32(pc * 8 + 4, true);
    if (code === 0x05) assert.ok(pc + 1 + k < count, `BPF_JA at ${pc} jumps out of the program`);
    else if ((code & 0x07) === 0x05) {
      assert.ok(pc + 1 + Math.max(jt, jf) < count, `jump at ${pc} out of the program`);
    } else if (code === 0x20) assert.ok(k % 4 === 0 && k + 4 <= SECCOMP_DATA_SIZE, `load of ${k} at ${pc}`);
  }
  assert.equal(view.getUint16((count - 1) * 8, true), 0x06, "the last instruction returns");
}

/** Runs `program` on `call`: the SECCOMP_RET_* value and how many instructions it took. */
function runFilter(program: Uint8Array, call: Call): { ret: number; steps: number } {
  const data = new DataView(new ArrayBuffer(SECCOMP_DATA_SIZE));
  data.setUint32(0, call.nr >>> 0, true);
  data.setUint32(4, call.arch ?? AUDIT_ARCH_X86_64, true);
  (call.args ?? []).forEach((arg, i) => data.setBigUint64(16 + 8 * i, BigInt.asUintN(64, BigInt(arg)), true));
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  let a = 0, pc = 0, steps = 0;
  for (;;) {
    assert.ok(pc < program.length / 8, "ran off the end");
    const code = view.getUint16(pc * 8, true);
    const jt = view.getUint8(pc * 8 + 2),
      jf = view.getUint8(pc * 8 + 3),
      k = view.getUint32(pc * 8 + 4, true);
    steps++;
    switch (code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        a = data.getUint32(k, true);
        pc++;
        break;
      case 0x54: // BPF_ALU | BPF_AND | BPF_K
        a = (a & k) >>> 0;
        pc++;
        break;
      case 0x05: // BPF_JMP | BPF_JA
        pc += 1 + k;
        break;
      case 0x15: // BPF_JEQ
        pc += 1 + (a === k ? jt : jf);
        break;
      case 0x25: // BPF_JGT
        pc += 1 + (a > k ? jt : jf);
        break;
      case 0x35: // BPF_JGE
        pc += 1 + (a >= k ? jt : jf);
        break;
      case 0x45: // BPF_JSET
        pc += 1 + ((a & k) !== 0 ? jt : jf);
        break;
      case 0x06: // BPF_RET | BPF_K
        return { ret: k, steps };
      default:
        throw new Error(`unexpected BPF opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
}

/** Syscall names from lines of names separated by single spaces. */
function names(...lines: string[]): string[] {
  return lines.join(" ").split(" ");
}

function nr(name: string): number {
  const number = SYSCALLS_X86_64[name];
  assert.ok(number !== undefined, `unknown syscall ${name}`);
  return number;
}

/** The filter's answer to syscall `name` with `args`. */
function decide(program: Uint8Array, name: string, ...args: (bigint | number)[]): number {
  return runFilter(program, { nr: nr(name), args }).ret;
}

function hex(ret: number): string {
  return "0x" + (ret >>> 0).toString(16);
}

function assertDecision(
  program: Uint8Array,
  name: string,
  expected: number,
  args: (bigint | number)[] = [],
): void {
  const got = decide(program, name, ...args);
  assert.equal(hex(got), hex(expected), `${name}(${args.join(", ")})`);
}

function compiled(
  capabilities: readonly string[] = DEFAULT_CAPABILITIES,
  profile = defaultProfile(),
): Uint8Array {
  const program = compileFilter(profile, capabilities);
  checkProgram(program);
  return program;
}

// --- the default profile ---------------------------------------------------------------------

Deno.test("default filter: ordinary calls are allowed", () => {
  const program = compiled();
  const ordinary = names(
    "read write openat close mmap mprotect munmap brk futex execve exit_group wait4 rt_sigaction",
    "rt_sigreturn newfstatat statx getdents64 epoll_wait accept4 connect sendto recvfrom pipe2 dup3",
    "fcntl ioctl getrandom clock_gettime nanosleep arch_prctl set_tid_address rseq prlimit64 setuid",
    "setgroups chroot kill uname io_uring_setup vfork fork modify_ldt name_to_handle_at ptrace",
    "process_vm_readv",
  );
  for (const name of ordinary) assertDecision(program, name, ALLOW);
  assertDecision(program, "socket", ALLOW, [2, 1, 0]); // AF_INET
  assertDecision(program, "socket", ALLOW, [1, 1, 0]); // AF_UNIX
});

/** Calls refused without a capability, with the capability that allows them. */
const GATED: readonly (readonly [string, readonly string[]])[] = [
  [
    "CAP_SYS_ADMIN",
    names(
      "mount umount2 unshare setns bpf perf_event_open fsopen fsconfig fsmount fspick move_mount",
      "open_tree mount_setattr sethostname setdomainname quotactl lookup_dcookie syslog fanotify_init",
    ),
  ],
  ["CAP_SYS_BOOT", names("reboot")],
  ["CAP_SYS_MODULE", names("init_module finit_module delete_module")],
  ["CAP_SYS_TIME", names("settimeofday clock_settime")],
  ["CAP_SYSLOG", names("syslog")],
  ["CAP_SYS_PACCT", names("acct")],
  ["CAP_SYS_RAWIO", names("iopl ioperm")],
  ["CAP_SYS_PTRACE", names("kcmp pidfd_getfd process_madvise")],
  ["CAP_SYS_NICE", names("mbind set_mempolicy get_mempolicy set_mempolicy_home_node")],
  ["CAP_SYS_TTY_CONFIG", names("vhangup")],
  ["CAP_DAC_READ_SEARCH", names("open_by_handle_at")],
  ["CAP_BPF", names("bpf")],
  ["CAP_PERFMON", names("perf_event_open")],
];

/** Refused to every container, whatever its capabilities (Docker's answer is --privileged). */
const NEVER = names(
  "keyctl add_key request_key kexec_load kexec_file_load swapon swapoff pivot_root userfaultfd",
  "move_pages migrate_pages uselib ustat sysfs _sysctl nfsservctl create_module vserver",
);

Deno.test("default filter: privileged calls are EPERM with Docker's default capabilities", () => {
  const program = compiled();
  for (const name of [...GATED.flatMap(([, calls]) => calls), ...NEVER]) assertDecision(program, name, EPERM);
  assertDecision(program, "chroot", ALLOW); // CAP_SYS_CHROOT is a default capability, and needed:
  assertDecision(compiled([]), "chroot", EPERM);
});

Deno.test("default filter: each privileged call is allowed with its capability, and only with it", () => {
  for (const [cap, calls] of GATED) {
    const program = compiled([...DEFAULT_CAPABILITIES, cap]);
    for (const name of calls) assertDecision(program, name, ALLOW);
    for (const name of NEVER) assertDecision(program, name, EPERM);
    const others = GATED.filter(([other]) => other !== cap).flatMap(([, n]) => n).filter((n) =>
      !calls.includes(n)
    );
    for (const name of others) assertDecision(program, name, EPERM);
  }
  // Capability names are read as Docker reads them.
  assertDecision(compiled(["sys_admin"]), "mount", ALLOW);
  assertDecision(compiled(["SYS_BOOT"]), "reboot", ALLOW);
});

Deno.test("default filter: some calls stay refused with every capability", () => {
  const program = compiled(GATED.map(([cap]) => cap));
  for (const name of NEVER) assertDecision(program, name, EPERM);
});

const CLONE_NEW = {
  NS: 0x00020000,
  CGROUP: 0x02000000,
  UTS: 0x04000000,
  IPC: 0x08000000,
  USER: 0x10000000,
  PID: 0x20000000,
  NET: 0x40000000,
};
const SIGCHLD = 17;
const CLONE_THREAD_FLAGS = 0x003d0f00; // what pthread_create passes

Deno.test("default filter: clone may not create namespaces without CAP_SYS_ADMIN", () => {
  const program = compiled();
  assertDecision(program, "clone", ALLOW, [SIGCHLD]);
  assertDecision(program, "clone", ALLOW, [CLONE_THREAD_FLAGS]);
  for (const [name, flag] of Object.entries(CLONE_NEW)) {
    assert.equal(hex(decide(program, "clone", flag | SIGCHLD)), hex(EPERM), `CLONE_NEW${name}`);
  }
  // The mask covers the low word only: bits in the high word do not matter.
  assertDecision(program, "clone", ALLOW, [(1n << 40n) | 17n]);
  const admin = compiled([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]);
  assertDecision(admin, "clone", ALLOW, [CLONE_NEW.USER | CLONE_NEW.NS | SIGCHLD]);
});

Deno.test("default filter: clone3 answers ENOSYS without CAP_SYS_ADMIN", () => {
  assertDecision(compiled(), "clone3", ENOSYS);
  assertDecision(compiled([...DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"]), "clone3", ALLOW);
});

Deno.test("default filter: personality only for the personas Docker allows", () => {
  const program = compiled();
  for (const persona of [0, 0x8, 0x20000, 0x20008, 0xffffffff]) {
    assertDecision(program, "personality", ALLOW, [persona]);
  }
  for (const persona of [0x0040000, 0x1, 0x0400000, 0x1_0000_0000n, 0xffff_ffff_ffff_ffffn, 0x1_0000_0008n]) {
    assertDecision(program, "personality", EPERM, [persona]);
  }
});

Deno.test("default filter: socket refuses AF_VSOCK only", () => {
  const program = compiled();
  assertDecision(program, "socket", EPERM, [40, 1, 0]);
  assertDecision(program, "socket", ALLOW, [10, 2, 0]); // AF_INET6
  assertDecision(program, "socket", ALLOW, [16, 3, 0]); // AF_NETLINK
  assertDecision(program, "socket", ALLOW, [(1n << 32n) | 40n]); // not 40 as a 64-bit value
});

Deno.test("default filter: other architectures and x32 calls get ENOSYS", () => {
  const program = compiled();
  for (const arch of [AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, 0]) {
    assert.equal(hex(runFilter(program, { nr: 3, arch }).ret), hex(ENOSYS), `arch ${hex(arch)}`);
    assert.equal(hex(runFilter(program, { nr: 26, arch }).ret), hex(ENOSYS)); // i386 ptrace, x86_64 msync
  }
  for (
    const number of [0x40000000, 0x40000000 | nr("read"), 0x40000000 | nr("mount"), 0x7fffffff, 0xffffffff]
  ) {
    assert.equal(hex(runFilter(program, { nr: number }).ret), hex(ENOSYS), `nr ${hex(number)}`);
  }
});

Deno.test("default filter: numbers above the table get ENOSYS, gaps below it EPERM", () => {
  const program = compiled();
  const max = Math.max(...Object.values(SYSCALLS_X86_64));
  for (const number of [max + 1, 452, /* fchmodat2 */ 1000, 0x3fffffff]) {
    assert.equal(hex(runFilter(program, { nr: number }).ret), hex(ENOSYS), `nr ${number}`);
  }
  assert.equal(hex(runFilter(program, { nr: 400 }).ret), hex(EPERM)); // no syscall between 335 and 423
  // A profile whose default lets calls through lets unknown numbers through too.
  const permissive = compiled([], parse({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [] }));
  assert.equal(hex(runFilter(permissive, { nr: max + 1 }).ret), hex(ALLOW));
  assert.equal(hex(runFilter(permissive, { nr: 0x40000000 }).ret), hex(ENOSYS)); // x32 still not
});

Deno.test("default filter: a binary search, not a list: every call decided in few instructions", () => {
  const program = compiled();
  const count = program.length / 8;
  assert.ok(count < 400, `${count} instructions`);
  let worst = 0;
  for (let number = 0; number < 512; number++) {
    worst = Math.max(worst, runFilter(program, { nr: number, args: [0, 0, 0, 0, 0, 0] }).steps);
  }
  // log2(about 100 ranges) comparisons, plus the arch check and an argument block.
  assert.ok(worst <= 24, `worst path ${worst} instructions`);
});

Deno.test("default filter: compiles the same from its JSON form", () => {
  const json = JSON.stringify(
    defaultProfile(),
    (_key, value) =>
      typeof value === "bigint" ? (JSON as unknown as RawJson).rawJSON(value.toString()) : value,
  );
  const parsed = parseProfile(json, "default.json");
  assert.deepEqual(parsed, defaultProfile());
  assert.deepEqual(
    compileFilter(parsed, DEFAULT_CAPABILITIES),
    compileFilter(defaultProfile(), DEFAULT_CAPABILITIES),
  );
});

interface RawJson {
  rawJSON(text: string): unknown;
}

// --- compiling any profile -------------------------------------------------------------------

/** A profile from a plain object, through the JSON parser. */
function parse(profile: unknown): SeccompProfile {
  return parseProfile(JSON.stringify(profile), "test.json");
}

const VALUES = [
  0n,
  1n,
  2n,
  0x7fffffffn,
  0x80000000n,
  0xfffffffen,
  0xffffffffn,
  0x1_0000_0000n,
  0x1_0000_0001n,
  0x1_ffff_ffffn,
  0x2_0000_0000n,
  0x8000_0000_0000_0000n,
  0xffff_ffff_0000_0000n,
  0xffff_ffff_ffff_fffen,
  0xffff_ffff_ffff_ffffn,
];

function reference(op: SeccompOperator, arg: bigint, value: bigint, valueTwo: bigint): boolean {
  switch (op) {
    case "SCMP_CMP_EQ":
      return arg === value;
    case "SCMP_CMP_NE":
      return arg !== value;
    case "SCMP_CMP_LT":
      return arg < value;
    case "SCMP_CMP_LE":
      return arg <= value;
    case "SCMP_CMP_GT":
      return arg > value;
    case "SCMP_CMP_GE":
      return arg >= value;
    case "SCMP_CMP_MASKED_EQ":
      return (arg & value) === valueTwo;
  }
}

Deno.test("compileFilter: 64-bit argument comparisons, high word first", () => {
  const ops: SeccompOperator[] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
  ];
  for (const op of ops) {
    for (const value of VALUES) {
      // JSON text with the exact 64-bit value, as a profile file would have it.
      const json =
        `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 3, "value": ${value}, "op": "${op}"}]}]}`;
      const program = compiled([], parseProfile(json, "op.json"));
      for (const arg of VALUES) {
        const got = runFilter(program, { nr: nr("getpid"), args: [0, 0, 0, arg] }).ret;
        assert.equal(
          got === ALLOW,
          reference(op, arg, value, 0n),
          `${hex(Number(arg))}: ${arg} ${op} ${value}`,
        );
      }
    }
  }
});

Deno.test("compileFilter: MASKED_EQ on both words", () => {
  const masks = [0xffn, 0xff_0000_0000n, 0xffff_ffff_ffff_ffffn, 0x7e020000n, 0n];
  for (const mask of masks) {
    for (const datum of [0n, 0x12n, 0x12_0000_0000n, 0x12_0000_0012n]) {
      const json =
        `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 5, "value": ${mask}, "valueTwo": ${datum}, "op": "SCMP_CMP_MASKED_EQ"}]}]}`;
      const program = compiled([], parseProfile(json, "masked.json"));
      for (const arg of [...VALUES, 0x12n, 0x12_0000_0012n, 0xab12_0000_0012n]) {
        const got = runFilter(program, { nr: nr("getpid"), args: [0, 0, 0, 0, 0, arg] }).ret === ALLOW;
        assert.equal(
          got,
          reference("SCMP_CMP_MASKED_EQ", arg, mask, datum),
          `(${arg} & ${mask}) == ${datum}`,
        );
      }
    }
  }
});

Deno.test("compileFilter: a rule's comparisons are ANDed, a syscall's rules tried in order", () => {
  const program = compiled(
    [],
    parse({
      defaultAction: "SCMP_ACT_ERRNO",
      defaultErrnoRet: 13,
      syscalls: [
        {
          names: ["getpid"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }, { index: 1, value: 10, op: "SCMP_CMP_GT" }],
        },
        {
          names: ["getpid"],
          action: "SCMP_ACT_ERRNO",
          errnoRet: 22,
          args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }],
        },
        { names: ["getpid"], action: "SCMP_ACT_LOG", args: [{ index: 0, value: 2, op: "SCMP_CMP_EQ" }] },
        {
          names: ["getpid"],
          action: "SCMP_ACT_KILL_PROCESS",
          args: [{ index: 0, value: 2, op: "SCMP_CMP_LE" }],
        },
      ],
    }),
  );
  assertDecision(program, "getpid", ALLOW, [1, 11]);
  assertDecision(program, "getpid", errno(22), [1, 10]);
  assertDecision(program, "getpid", LOG, [2]);
  assertDecision(program, "getpid", KILL_PROCESS, [0]);
  assertDecision(program, "getpid", errno(13), [3]); // no rule: the default, with its errno
  assertDecision(program, "getppid", errno(13));
});

Deno.test("compileFilter: an unconditional rule decides its syscall, as in libseccomp", () => {
  const program = compiled(
    [],
    parse({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        {
          names: ["getpid"],
          action: "SCMP_ACT_ERRNO",
          errnoRet: 5,
          args: [{ index: 0, value: 1, op: "SCMP_CMP_EQ" }],
        },
        { names: ["getpid", "getppid"], action: "SCMP_ACT_ALLOW" },
        { names: ["getppid"], action: "SCMP_ACT_ERRNO", errnoRet: 7 }, // redundant: getppid is decided
      ],
    }),
  );
  assertDecision(program, "getpid", ALLOW, [1]);
  assertDecision(program, "getppid", ALLOW);
});

Deno.test("compileFilter: every action's return value", () => {
  const rules = [
    ["getpid", "SCMP_ACT_KILL", KILL_THREAD],
    ["getppid", "SCMP_ACT_KILL_THREAD", KILL_THREAD],
    ["gettid", "SCMP_ACT_KILL_PROCESS", KILL_PROCESS],
    ["getuid", "SCMP_ACT_TRAP", TRAP],
    ["getgid", "SCMP_ACT_LOG", LOG],
    ["geteuid", "SCMP_ACT_ERRNO", EPERM],
    ["getegid", "SCMP_ACT_ALLOW", ALLOW],
  ] as const;
  const program = compiled(
    [],
    parse({
      defaultAction: "SCMP_ACT_KILL_PROCESS",
      syscalls: [
        ...rules.map(([name, action]) => ({ names: [name], action })),
        { names: ["getpgrp"], action: "SCMP_ACT_TRACE", errnoRet: 0x1234 },
      ],
    }),
  );
  for (const [name, , ret] of rules) assertDecision(program, name, ret);
  assertDecision(program, "getpgrp", TRACE | 0x1234);
  assertDecision(program, "getsid", KILL_PROCESS);
});

Deno.test("compileFilter: includes and excludes: capabilities, architectures, kernel version", () => {
  const profile = parse({
    defaultAction: "SCMP_ACT_ERRNO",
    syscalls: [
      { names: ["getpid"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"] } },
      {
        names: ["getppid"],
        action: "SCMP_ACT_ALLOW",
        excludes: { caps: ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"] },
      },
      { names: ["gettid"], action: "SCMP_ACT_ALLOW", includes: { arches: ["arm64", "s390x"] } },
      {
        names: ["getuid"],
        action: "SCMP_ACT_ALLOW",
        includes: { arches: ["amd64"] },
        excludes: { arches: ["x86"] },
      },
      { names: ["getgid"], action: "SCMP_ACT_ALLOW", excludes: { arches: ["amd64"] } },
      { names: ["geteuid"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "5.10" } },
      { names: ["getegid"], action: "SCMP_ACT_ALLOW", excludes: { minKernel: "5.10" } },
    ],
  });
  const decideWith = (caps: string[], name: string, kernelRelease?: string) =>
    hex(runFilter(compileFilter(profile, caps, { kernelRelease }), { nr: nr(name) }).ret);
  assert.equal(decideWith(["CAP_SYS_ADMIN"], "getpid"), hex(EPERM)); // includes needs all
  assert.equal(decideWith(["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], "getpid"), hex(ALLOW));
  assert.equal(decideWith(["CAP_NET_ADMIN"], "getppid"), hex(EPERM)); // excludes any
  assert.equal(decideWith([], "getppid"), hex(ALLOW));
  assert.equal(decideWith([], "gettid"), hex(EPERM));
  assert.equal(decideWith([], "getuid"), hex(ALLOW));
  assert.equal(decideWith([], "getgid"), hex(EPERM));
  assert.equal(decideWith([], "geteuid", "5.4.0-150-generic"), hex(EPERM));
  assert.equal(decideWith([], "geteuid", "5.10.0"), hex(ALLOW));
  assert.equal(decideWith([], "geteuid", "6.1.0-18-amd64"), hex(ALLOW));
  assert.equal(decideWith([], "getegid", "5.4.0"), hex(ALLOW));
  assert.equal(decideWith([], "getegid", "6.1.0"), hex(EPERM));
  assert.equal(decideWith([], "geteuid"), hex(ALLOW)); // no release given: a current kernel
});

Deno.test("compileFilter: names unknown on x86_64 are skipped", () => {
  const program = compiled(
    [],
    parse({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [{
        names: ["chown32", "no_such_call", "constructor", "__proto__", "getpid"],
        action: "SCMP_ACT_ALLOW",
      }],
    }),
  );
  assertDecision(program, "getpid", ALLOW);
  assertDecision(program, "chown", EPERM);
});

Deno.test("compileFilter: long argument blocks use BPF_JA for jumps beyond 255 instructions", () => {
  // 150 rules on one syscall, 4 instructions each: jumps across them need trampolines.
  const values = Array.from({ length: 150 }, (_, i) => (i * 3 + 1) * 2 ** 32);
  const ordinary = ["read", "write", "close", "mmap", "getpid", "exit_group"];
  const program = compiled(
    [],
    parse({
      defaultAction: "SCMP_ACT_ERRNO",
      syscalls: [
        ...values.map((value) => ({
          names: ["ioctl"],
          action: "SCMP_ACT_ALLOW",
          args: [{ index: 1, value, op: "SCMP_CMP_EQ" }],
        })),
        { names: ordinary, action: "SCMP_ACT_ALLOW" },
      ],
    }),
  );
  assert.ok(program.length / 8 > 600);
  const view = new DataView(program.buffer);
  const codes = Array.from({ length: program.length / 8 }, (_, i) => view.getUint16(i * 8, true));
  assert.ok(codes.includes(0x05), "some BPF_JA");
  for (const value of values) assertDecision(program, "ioctl", ALLOW, [0, value]);
  assertDecision(program, "ioctl", EPERM, [0, 2 * 2 ** 32]);
  for (const name of ordinary) assertDecision(program, name, ALLOW);
  assertDecision(program, "openat", EPERM);
});

Deno.test("compileFilter: a program over the kernel's 4096 instructions is refused", () => {
  const rules = Array.from({ length: 1100 }, (_, i) => ({
    names: ["ioctl"],
    action: "SCMP_ACT_ALLOW",
    args: [{ index: 1, value: i, op: "SCMP_CMP_EQ" }],
  }));
  const profile = parse({ defaultAction: "SCMP_ACT_ERRNO", syscalls: rules });
  assert.throws(() => compileFilter(profile, []), (err: Error) => {
    assert.ok(err instanceof FlokaError);
    assert.match(err.message, /compiles to \d+ BPF instructions, more than the kernel's limit of 4096/);
    return true;
  });
});

// --- parsing ---------------------------------------------------------------------------------

function parseError(json: string): string {
  try {
    parseProfile(json, "/etc/floka/bad.json");
  } catch (err) {
    assert.ok(err instanceof FlokaError, `a FlokaError, not ${err}`);
    assert.ok(!err.message.includes("\n"), "one line");
    return err.message;
  }
  assert.fail("no error");
}

Deno.test("parseProfile: clear one-line errors naming the file and the field", () => {
  const rule = (fields: string) =>
    `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], ${fields}}]}`;
  assert.match(parseError("{"), /^seccomp profile \/etc\/floka\/bad\.json: invalid JSON: /);
  assert.equal(
    parseError(`{"defaultAction": "SCMP_ACT_DENY"}`),
    `seccomp profile /etc/floka/bad.json: defaultAction: unknown action "SCMP_ACT_DENY" (one of SCMP_ACT_KILL, ` +
      `SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_LOG, ` +
      `SCMP_ACT_ALLOW)`,
  );
  assert.match(parseError(`{}`), /: defaultAction: unknown action undefined/);
  assert.match(parseError(`[]`), /: profile: must be an object$/);
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ALOW"`)),
    /: syscalls\[0\]\.action: unknown action "SCMP_ACT_ALOW"/,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_NOTIFY"`)),
    /: syscalls\[0\]\.action: SCMP_ACT_NOTIFY is not supported/,
  );
  assert.match(
    parseError(
      rule(`"action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]`),
    ),
    /: syscalls\[0\]\.args\[0\]\.op: unknown operator "SCMP_CMP_EQUAL" \(one of SCMP_CMP_NE, /,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]`)),
    /: syscalls\[0\]\.args\[0\]\.index: must be an argument number from 0 to 5$/,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]`)),
    /: syscalls\[0\]\.args\[0\]\.value: must be an integer from 0 to 18446744073709551615$/,
  );
  assert.match(
    parseError(
      rule(
        `"action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 18446744073709551616, "op": "SCMP_CMP_EQ"}]`,
      ),
    ),
    /\.value: must be an integer from 0 to 18446744073709551615$/,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": "1", "op": "SCMP_CMP_EQ"}]`)),
    /\.value: must be an integer/,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ERRNO", "errnoRet": -1`)),
    /: syscalls\[0\]\.errnoRet: must be an integer from 0 to 65535$/,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}`)),
    /\.includes\.minKernel: must be "major\.minor"/,
  );
  assert.match(
    parseError(rule(`"action": "SCMP_ACT_ALLOW", "includes": {"caps": "CAP_SYS_ADMIN"}`)),
    /\.includes\.caps: must be an array$/,
  );
  assert.match(
    parseError(
      `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}`,
    ),
    /\.names: must name at least one syscall$/,
  );
  assert.match(
    parseError(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {}}`),
    /: syscalls: must be an array$/,
  );
});

Deno.test("parseProfile: Docker's fields, exact 64-bit values, unknown names and fields accepted", () => {
  const profile = parseProfile(
    `{
      "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
      "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
      "flags": ["SECCOMP_FILTER_FLAG_LOG"],
      "syscalls": [
        {"names": ["no_such_syscall", "read"], "action": "SCMP_ACT_ALLOW", "comment": "why"},
        {"name": "write", "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": null, "includes": null, "excludes": {}},
        {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 1, "value": 18446744073709551615, "valueTwo": 9007199254740993, "op": "SCMP_CMP_MASKED_EQ"}]}
      ]
    }`,
    "docker.json",
  );
  assert.deepEqual(profile.archMap, [{
    architecture: "SCMP_ARCH_X86_64",
    subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  }]);
  assert.deepEqual(profile.syscalls[0].names, ["no_such_syscall", "read"]);
  assert.equal(profile.syscalls[0].comment, "why");
  assert.deepEqual(profile.syscalls[1].names, ["write"]);
  assert.equal(profile.syscalls[1].errnoRet, 38);
  assert.deepEqual(profile.syscalls[1].args, []);
  assert.deepEqual(profile.syscalls[2].args[0], {
    index: 1,
    value: 18446744073709551615n,
    valueTwo: 9007199254740993n, // 2^53 + 1: not a JS number
    op: "SCMP_CMP_MASKED_EQ",
  });
  const program = compiled([], profile);
  assertDecision(program, "read", ALLOW);
  assertDecision(program, "write", ENOSYS);
});

// --- the real kernel -------------------------------------------------------------------------

Deno.test({
  name: "installFilter: the kernel accepts the default filter and refuses what it refuses",
  ignore: Deno.build.os !== "linux" || Deno.build.arch !== "x86_64",
  fn: async () => {
    const child = new URL("./seccomp_child.ts", import.meta.url);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--quiet", child.pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.signal, null, `the child was killed: ${stderr}`);
    assert.equal(out.code, 0, stderr);
    const report = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.deepEqual(report, {
      unshareUserBefore: "EINVAL", // what the kernel says to a multi-threaded process
      getpid: true,
      unshareUser: "EPERM",
      unshareMount: "EPERM",
      mount: "EPERM",
      keyctl: "EPERM",
      personalityQuery: true,
      personalityNoRandomize: "EPERM",
      clone3: "ENOSYS",
      fchmodat2: "ENOSYS",
      vsock: "EPERM",
      readFile: true,
      spawnTrue: 0,
    });
  },
});
