/**
 * A small assembler for classic BPF, the language of seccomp filters. Code is written with
 * labels; `assemble` places them and encodes `struct sock_filter` (8 bytes: u16 code, u8 jt,
 * u8 jf, u32 k, in the host's little-endian order).
 *
 * Classic BPF only jumps forward, and a conditional jump reaches at most 255 instructions
 * ahead (jt/jf are 8 bits). A conditional jump whose target is farther goes through a
 * trampoline: an unconditional BPF_JA (32-bit offset) placed right after it. Adding
 * trampolines moves code, so placement repeats until every jump fits.
 */

// Instruction classes and fields (linux/bpf_common.h).
const BPF_LD = 0x00;
const BPF_ALU = 0x04;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_W = 0x00;
const BPF_ABS = 0x20;
const BPF_AND = 0x50;
const BPF_JA = 0x00;
const BPF_JEQ = 0x10;
const BPF_JGT = 0x20;
const BPF_JGE = 0x30;
const BPF_K = 0x00;

export const OP_LD_ABS = BPF_LD | BPF_W | BPF_ABS;
export const OP_AND = BPF_ALU | BPF_AND | BPF_K;
export const OP_JA = BPF_JMP | BPF_JA;
export const OP_JEQ = BPF_JMP | BPF_JEQ | BPF_K;
export const OP_JGT = BPF_JMP | BPF_JGT | BPF_K;
export const OP_JGE = BPF_JMP | BPF_JGE | BPF_K;
export const OP_RET = BPF_RET | BPF_K;

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const MAX_INSTRUCTIONS = 4096;

const MAX_SHORT_JUMP = 255;

/** A place in the program, bound once with `bind`. */
export interface Label {
  position: number;
}

/** `null` as a jump target: the next instruction. */
type Target = Label | null;

interface Instruction {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
  /** BPF_JA's target (its offset goes in k). */
  to: Target;
}

type Item = Instruction | Label;

export class Assembler {
  private items: Item[] = [];

  label(): Label {
    return { position: -1 };
  }

  /** Places `label` at the next instruction. */
  bind(label: Label): void {
    this.items.push(label);
  }

  /** A = the 32-bit word at `offset` of struct seccomp_data. */
  load(offset: number): void {
    this.emit(OP_LD_ABS, offset);
  }

  and(k: number): void {
    this.emit(OP_AND, k);
  }

  /** if (A <op> k) goto jt else goto jf; null means the next instruction. */
  jump(code: typeof OP_JEQ | typeof OP_JGT | typeof OP_JGE, k: number, jt: Target, jf: Target): void {
    this.items.push({ code, k, jt, jf, to: null });
  }

  goto(label: Label): void {
    this.items.push({ code: OP_JA, k: 0, jt: null, jf: null, to: label });
  }

  ret(k: number): void {
    this.emit(OP_RET, k);
  }

  /** The encoded program. Throws if a jump goes backwards or to an unbound label. */
  assemble(): Uint8Array<ArrayBuffer> {
    let count = this.place();
    while (this.addTrampolines()) count = this.place();
    const out = new Uint8Array(count * 8);
    const view = new DataView(out.buffer);
    let at = 0;
    for (const item of this.items) {
      if (!isInstruction(item)) continue;
      const next = at / 8 + 1;
      view.setUint16(at, item.code, true);
      if (item.code === OP_JA) {
        view.setUint32(at + 4, distance(item.to, next, 0xffffffff), true);
      } else {
        view.setUint8(at + 2, distance(item.jt, next, MAX_SHORT_JUMP));
        view.setUint8(at + 3, distance(item.jf, next, MAX_SHORT_JUMP));
        view.setUint32(at + 4, item.k >>> 0, true);
      }
      at += 8;
    }
    return out;
  }

  private emit(code: number, k: number): void {
    this.items.push({ code, k, jt: null, jf: null, to: null });
  }

  /** Gives every label its instruction index; returns the number of instructions. */
  private place(): number {
    let count = 0;
    for (const item of this.items) {
      if (isInstruction(item)) count++;
      else item.position = count;
    }
    return count;
  }

  /**
   * Routes each conditional jump that cannot reach its target through a trampoline right
   * after it. Returns whether any was added.
   */
  private addTrampolines(): boolean {
    const out: Item[] = [];
    let index = 0;
    let added = false;
    for (const item of this.items) {
      out.push(item);
      if (!isInstruction(item)) continue;
      const next = ++index;
      if (!isConditionalJump(item.code)) continue;
      const farTrue = item.jt !== null && item.jt.position - next > MAX_SHORT_JUMP;
      const farFalse = item.jf !== null && item.jf.position - next > MAX_SHORT_JUMP;
      if (!farTrue && !farFalse) continue;
      added = true;
      // The fall-through target now lies past the trampolines: give it a label there.
      const after: Label = { position: -1 };
      const jt = item.jt ?? after, jf = item.jf ?? after;
      if (farTrue) item.jt = trampoline(out, jt);
      else item.jt = jt;
      if (farFalse) item.jf = trampoline(out, jf);
      else item.jf = jf;
      out.push(after);
    }
    this.items = out;
    return added;
  }
}

function trampoline(out: Item[], target: Label): Label {
  const here: Label = { position: -1 };
  out.push(here, { code: OP_JA, k: 0, jt: null, jf: null, to: target });
  return here;
}

function isConditionalJump(code: number): boolean {
  return (code & 0x07) === BPF_JMP && code !== OP_JA;
}

function isInstruction(item: Item): item is Instruction {
  return "code" in item;
}

/** The jump offset from instruction index `next` to `target` (null: 0), at most `max`. */
function distance(target: Target, next: number, max: number): number {
  if (target === null) return 0;
  if (target.position < 0) throw new Error("BPF: jump to a label that was never bound");
  const offset = target.position - next;
  if (offset < 0 || offset > max) throw new Error(`BPF: jump offset ${offset} out of range`);
  return offset;
}
