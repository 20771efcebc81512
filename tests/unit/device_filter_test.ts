/**
 * The cgroup v2 device filter: rule parsing, and the compiled eBPF program run by a small
 * interpreter (the few opcodes it emits, with the verifier's basic checks) over synthetic
 * struct bpf_cgroup_dev_ctx requests, against Docker's default policy and a reference
 * model of v1 devices.allow. The kernel's own verdict is in the integration test.
 */
import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { ALLOWED_DEVICES } from "../../src/runtime/cgroups.ts";
import {
  BPF_DEVCG_ACC_MKNOD as M,
  BPF_DEVCG_ACC_READ as R,
  BPF_DEVCG_ACC_WRITE as W,
  BPF_DEVCG_DEV_BLOCK as BLOCK,
  BPF_DEVCG_DEV_CHAR as CHAR,
  deviceFilterProgram,
  type DeviceRule,
  OP,
  parseDeviceRule,
} from "../../src/runtime/device_filter.ts";

// --- an eBPF interpreter for device programs --------------------------------------------

interface Request {
  type: number;
  major: number;
  minor: number;
  access: number;
}

const U32 = 0xffffffffn;
const CTX = Symbol("ctx");
type Reg = bigint | typeof CTX | undefined;

/** Runs `program` on `req` and returns r0, checking what the verifier would refuse. */
function run(program: Uint8Array, req: Request): number {
  assert.equal(program.length % 8, 0, "whole instructions");
  const count = program.length / 8;
  assert.ok(count > 0);
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const ctx = new DataView(new ArrayBuffer(12)); // struct bpf_cgroup_dev_ctx
  ctx.setUint32(0, ((req.access << 16) | req.type) >>> 0, true);
  ctx.setUint32(4, req.major >>> 0, true);
  ctx.setUint32(8, req.minor >>> 0, true);
  const regs: Reg[] = new Array(11).fill(undefined);
  regs[1] = CTX;
  const value = (r: number, pc: number): bigint => {
    const v = regs[r];
    assert.equal(typeof v, "bigint", `r${r} read at ${pc} holds no number`);
    return v as bigint;
  };
  for (let pc = 0, steps = 0; pc < count; pc++, steps++) {
    assert.ok(steps < 10_000, "the program loops");
    const at = pc * 8;
    const code = view.getUint8(at);
    const dst = view.getUint8(at + 1) & 0xf, src = view.getUint8(at + 1) >> 4;
    const off = view.getInt16(at + 2, true), imm = view.getInt32(at + 4, true);
    assert.ok(dst <= 10 && src <= 10, `register out of range at ${pc}`);
    const jump = (taken: boolean) => {
      const target = pc + 1 + off;
      assert.ok(target >= 0 && target < count, `jump at ${pc} leaves the program`);
      if (taken) pc = target - 1;
    };
    switch (code) {
      case OP.LDX_MEM_W:
        assert.equal(regs[src], CTX, `load at ${pc} from a non-context register`);
        assert.ok(off >= 0 && off % 4 === 0 && off + 4 <= 12, `context load at offset ${off}`);
        regs[dst] = BigInt(ctx.getUint32(off, true));
        break;
      case OP.AND32_K:
        regs[dst] = (value(dst, pc) & BigInt(imm >>> 0)) & U32;
        break;
      case OP.RSH32_K:
        assert.ok(imm >= 0 && imm < 32, `shift by ${imm}`);
        regs[dst] = (value(dst, pc) & U32) >> BigInt(imm);
        break;
      case OP.JNE32_K:
        jump((value(dst, pc) & U32) !== BigInt(imm >>> 0));
        break;
      case OP.JSET32_K:
        jump((value(dst, pc) & U32 & BigInt(imm >>> 0)) !== 0n);
        break;
      case OP.MOV64_K:
        regs[dst] = BigInt.asUintN(64, BigInt(imm));
        break;
      case OP.EXIT:
        return Number(value(0, pc));
      default:
        assert.fail(`opcode 0x${code.toString(16)} at ${pc} is not one the filter emits`);
    }
  }
  assert.fail("fell off the end of the program");
}

/** v1 devices.allow semantics after "deny a": some rule covers the device and every access bit. */
function reference(rules: readonly DeviceRule[], req: Request): number {
  return rules.some((r) =>
      (r.type === null || r.type === req.type) &&
      (r.major === null || r.major === req.major) &&
      (r.minor === null || r.minor === req.minor) &&
      (req.access & ~r.access) === 0
    )
    ? 1
    : 0;
}

const c = (major: number, minor: number, access: number): Request => ({ type: CHAR, major, minor, access });
const b = (major: number, minor: number, access: number): Request => ({ type: BLOCK, major, minor, access });

// --- Docker's default policy ---------------------------------------------------------------

Deno.test("device filter: Docker's default policy allows the container's own nodes", () => {
  const program = deviceFilterProgram(ALLOWED_DEVICES);
  for (
    const req of [
      c(1, 3, R), // /dev/null
      c(1, 3, R | W),
      c(1, 5, R), // /dev/zero
      c(1, 7, W), // /dev/full
      c(1, 8, R), // /dev/random
      c(1, 9, R | W | M), // /dev/urandom
      c(5, 0, R | W), // /dev/tty
      c(5, 1, R | W), // /dev/console
      c(5, 2, R | W), // /dev/ptmx
      c(136, 0, R | W), // /dev/pts/0
      c(136, 5, R | W),
      c(136, 1048575, R),
      b(8, 0, M), // mknod of any node is allowed, opening it is not
      c(1, 1, M),
      c(10, 200, M),
      b(7, 0, M),
    ]
  ) {
    assert.equal(run(program, req), 1, `${JSON.stringify(req)} is allowed`);
  }
});

Deno.test("device filter: Docker's default policy denies the host's devices", () => {
  const program = deviceFilterProgram(ALLOWED_DEVICES);
  for (
    const req of [
      b(8, 0, R), // /dev/sda
      b(8, 0, W),
      b(8, 0, R | M),
      b(7, 0, R), // /dev/loop0
      b(259, 0, R), // nvme
      c(1, 1, R), // /dev/mem
      c(1, 1, R | M),
      c(1, 2, R), // /dev/kmem
      c(1, 4, R), // /dev/port
      c(1, 11, R), // /dev/kmsg
      c(4, 0, R | W), // /dev/tty0
      c(5, 3, R),
      c(10, 200, R | W), // /dev/net/tun
      c(10, 229, R), // /dev/fuse
      c(137, 0, R),
      c(135, 0, R),
      c(3, 1, R), // a char device with /dev/null's minor and major swapped
      b(1, 3, R), // /dev/null's numbers as a block device
      b(136, 0, R),
    ]
  ) {
    assert.equal(run(program, req), 0, `${JSON.stringify(req)} is denied`);
  }
});

Deno.test("device filter: the program agrees with v1 semantics over a grid of requests", () => {
  const ruleSets: string[][] = [
    ALLOWED_DEVICES,
    [],
    ["a"],
    ["a *:* rwm"],
    ["a 1:* r"],
    ["b 8:* r", "c *:5 w"],
    ["c 1:3 r", "c 1:3 w"], // rules add up only per request: rw needs one rule with both
    ["c 4294967295:2147483648 rw", "b 2147483647:* m"],
    ["c *:* m", "b *:* m", "c 0:0 rwm"],
  ];
  const types = [BLOCK, CHAR];
  const numbers = [0, 1, 2, 3, 5, 7, 8, 9, 136, 65535, 2147483647, 2147483648, 4294967295];
  for (const lines of ruleSets) {
    const program = deviceFilterProgram(lines);
    const rules = lines.map(parseDeviceRule);
    for (const type of types) {
      for (const major of numbers) {
        for (const minor of numbers) {
          for (let access = 1; access <= 7; access++) {
            const req = { type, major, minor, access };
            assert.equal(
              run(program, req),
              reference(rules, req),
              `${JSON.stringify(lines)} on ${JSON.stringify(req)}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("device filter: an access bit the kernel may add later is denied", () => {
  const program = deviceFilterProgram(["a"]);
  assert.equal(run(program, c(1, 3, R)), 1);
  assert.equal(run(program, c(1, 3, 8)), 0);
});

Deno.test("device filter: no rules deny everything", () => {
  const program = deviceFilterProgram([]);
  assert.equal(program.length, 8 * 8, "the context loads, r0 = 0, exit");
  assert.equal(run(program, c(1, 3, R)), 0);
});

// --- parsing -------------------------------------------------------------------------------

Deno.test("device filter: rules parse as devices.allow lines", () => {
  assert.deepEqual(parseDeviceRule("a"), { type: null, major: null, minor: null, access: 7 });
  assert.deepEqual(parseDeviceRule("c 1:3 rwm"), { type: CHAR, major: 1, minor: 3, access: 7 });
  assert.deepEqual(parseDeviceRule("c 136:* rw"), { type: CHAR, major: 136, minor: null, access: 6 });
  assert.deepEqual(parseDeviceRule("b *:* m"), { type: BLOCK, major: null, minor: null, access: 1 });
  assert.deepEqual(parseDeviceRule("a *:7 mr"), { type: null, major: null, minor: 7, access: 3 });
  for (
    const bad of [
      "",
      "x 1:3 r",
      "c 1:3",
      "c 1 r",
      "c 1:3 rr",
      "c 1:3 rwmx",
      "c -1:3 r",
      "c 1:3 x",
      "c 4294967296:0 r",
      "c  1:3 r",
      "a rwm",
    ]
  ) {
    assert.throws(() => parseDeviceRule(bad), FlokaError, JSON.stringify(bad));
    assert.throws(() => deviceFilterProgram(["c 1:3 rwm", bad]), FlokaError, JSON.stringify(bad));
  }
});
