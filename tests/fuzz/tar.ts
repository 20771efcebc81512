/**
 * A tiny tar writer for the fuzz tests: ustar headers with any typeflag, long names as PAX
 * records, GNU long-name entries or the ustar prefix, raw PAX records (xattrs, odd uid or
 * mtime values), and whole-archive damage (truncation, flipped bytes, garbage). It writes
 * what it is told, valid or not: checksums are right unless damage changes the bytes.
 */
import { concatBytes } from "../../lib/bytes.ts";

const encoder = new TextEncoder();

export interface TarEntrySpec {
  name: string;
  /** The typeflag character: "0" file, "1" hardlink, "2" symlink, "3"/"4" devices, "5" dir, "6" fifo, or any. */
  typeflag: string;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  data: Uint8Array;
  devmajor: number;
  devminor: number;
  /** How a name or link name longer than the ustar field is written. */
  long: "pax" | "gnu" | "prefix" | "truncate";
  /** Extra PAX records for this entry (key, value). */
  pax: [string, string | Uint8Array][];
}

export type Damage =
  | { kind: "none" }
  | { kind: "truncate"; at: number }
  | { kind: "flip"; at: number; xor: number }
  | { kind: "garbage"; at: number; bytes: Uint8Array }
  | { kind: "noEnd" };

/** `data` padded with zeros to whole 512-byte blocks. */
function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** An octal numeric field, NUL-terminated; a value too large for it becomes all 7s. */
function octal(value: number, width: number): string {
  const digits = Math.max(0, Math.trunc(value)).toString(8);
  return (digits.length > width - 1 ? "7".repeat(width - 1) : digits.padStart(width - 1, "0")) + "\0";
}

interface HeaderFields {
  name: Uint8Array;
  prefix?: Uint8Array;
  typeflag: string;
  linkname: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  devmajor: number;
  devminor: number;
}

function header(f: HeaderFields): Uint8Array {
  const block = new Uint8Array(512);
  const put = (offset: number, width: number, bytes: Uint8Array) =>
    block.set(bytes.subarray(0, width), offset);
  const text = (offset: number, width: number, value: string) => put(offset, width, encoder.encode(value));
  put(0, 100, f.name);
  text(100, 8, octal(f.mode, 8));
  text(108, 8, octal(f.uid, 8));
  text(116, 8, octal(f.gid, 8));
  text(124, 12, octal(f.size, 12));
  text(136, 12, octal(f.mtime, 12));
  text(148, 8, "        ");
  text(156, 1, f.typeflag.slice(0, 1) || "\0");
  put(157, 100, f.linkname);
  text(257, 8, "ustar\x0000");
  text(265, 32, "root");
  text(297, 32, "root");
  text(329, 8, octal(f.devmajor, 8));
  text(337, 8, octal(f.devminor, 8));
  if (f.prefix) put(345, 155, f.prefix);
  const sum = block.reduce((s, b) => s + b, 0);
  text(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** One PAX record, "LEN KEY=VALUE\n", LEN counting itself. */
export function paxRecord(key: string, value: string | Uint8Array): Uint8Array {
  const body = concatBytes([
    encoder.encode(` ${key}=`),
    typeof value === "string" ? encoder.encode(value) : value,
    new Uint8Array([0x0a]),
  ]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return concatBytes([encoder.encode(String(length)), body]);
}

function plain(typeflag: string, name: string, data: Uint8Array): Uint8Array {
  return concatBytes([
    header({
      name: encoder.encode(name),
      typeflag,
      linkname: new Uint8Array(0),
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: data.length,
      mtime: 0,
      devmajor: 0,
      devminor: 0,
    }),
    padded(data),
  ]);
}

/** The blocks of one entry, with the extra headers its long names or PAX records need. */
export function entryBlocks(e: TarEntrySpec): Uint8Array {
  const parts: Uint8Array[] = [];
  let name = encoder.encode(e.name);
  let prefix: Uint8Array | undefined;
  let linkname = encoder.encode(e.linkname);
  const records: Uint8Array[] = e.pax.map(([k, v]) => paxRecord(k, v));
  if (name.length > 100 || linkname.length > 100) {
    if (e.long === "pax") {
      if (name.length > 100) records.push(paxRecord("path", e.name));
      if (linkname.length > 100) records.push(paxRecord("linkpath", e.linkname));
    } else if (e.long === "gnu") {
      if (name.length > 100) parts.push(plain("L", "././@LongLink", concatBytes([name, new Uint8Array(1)])));
      if (linkname.length > 100) {
        parts.push(plain("K", "././@LongLink", concatBytes([linkname, new Uint8Array(1)])));
      }
    } else if (e.long === "prefix" && name.length > 100) {
      const slash = name.lastIndexOf(0x2f, name.length - 2);
      if (slash > 0 && slash <= 155 && name.length - slash - 1 <= 100) {
        prefix = name.subarray(0, slash);
        name = name.subarray(slash + 1);
      }
    }
  }
  if (records.length > 0) parts.push(plain("x", "PaxHeader", concatBytes(records)));
  if (name.length > 100) name = name.subarray(0, 100);
  if (linkname.length > 100) linkname = linkname.subarray(0, 100);
  parts.push(header({
    name,
    prefix,
    typeflag: e.typeflag,
    linkname,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.data.length,
    mtime: e.mtime,
    devmajor: e.devmajor,
    devminor: e.devminor,
  }));
  parts.push(padded(e.data));
  return concatBytes(parts);
}

/** The archive of `entries` with its end blocks, then `damage` applied. */
export function tarOf(entries: TarEntrySpec[], damage: Damage): Uint8Array<ArrayBuffer> {
  let bytes = concatBytes([
    ...entries.map(entryBlocks),
    damage.kind === "noEnd" ? new Uint8Array(0) : new Uint8Array(1024),
  ]);
  switch (damage.kind) {
    case "truncate":
      bytes = bytes.slice(0, damage.at % (bytes.length + 1));
      break;
    case "flip":
      if (bytes.length > 0) bytes[damage.at % bytes.length] ^= damage.xor || 1;
      break;
    case "garbage": {
      const at = damage.at % (bytes.length + 1);
      bytes = concatBytes([bytes.subarray(0, at), damage.bytes, bytes.subarray(at)]);
      break;
    }
  }
  return bytes;
}
