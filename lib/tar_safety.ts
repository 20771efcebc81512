/**
 * The rules that keep an image layer inside the directory it is unpacked into, as pure
 * functions over tar header fields (no file system here; `src/images/unpack.ts` applies them).
 *
 * A layer is a tar stream written by whoever built the image, so every name in it is
 * untrusted: `../../etc/passwd`, `/etc/passwd`, a hardlink to a host file, a whiteout named
 * `.wh..`. Each entry name becomes a list of plain components relative to the layer root;
 * anything that would climb above the root is refused, and everything else that only the
 * file system can answer (is a parent component a symlink?) is decided by the unpacker.
 *
 * OCI layers mark deletions with whiteouts (image-spec `layer.md`): an empty file
 * `.wh.NAME` deletes NAME from the layers below, and `.wh..wh..opq` in a directory hides
 * everything the lower layers have in it ("opaque"). Names starting with `.wh..wh.` are
 * otherwise AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`) that carries no meaning.
 */
import { FlokaError } from "./errors.ts";

/** Why one tar entry is refused; the unpacker prefixes the entry's name. */
export class TarEntryError extends FlokaError {
  constructor(reason: string) {
    super(reason);
    this.name = "TarEntryError";
  }
}

export const WHITEOUT_PREFIX = ".wh.";
export const WHITEOUT_META_PREFIX = ".wh..wh.";
export const WHITEOUT_OPAQUE = ".wh..wh..opq";

/**
 * The components of entry `name` relative to the layer root; [] is the root itself.
 *
 * A leading `/` is dropped (GNU tar, Docker and containerd all read `/etc/x` as `etc/x`),
 * `.` and empty components vanish, and `..` removes the component before it. A `..` with
 * nothing left to remove would leave the layer: that name is refused rather than clamped at
 * the root, because no honest image contains one.
 */
export function entryPath(name: string): string[] {
  if (name.includes("\0")) throw new TarEntryError("path contains a NUL byte");
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) throw new TarEntryError("path leaves the layer");
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts;
}

/** What a whiteout entry's last component asks for; null when it is not a whiteout. */
export type Whiteout =
  | { kind: "opaque" }
  | { kind: "delete"; name: string }
  | { kind: "ignore" };

/** Classifies the last component of an entry name (see the module doc). */
export function whiteoutOf(base: string): Whiteout | null {
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  if (base === WHITEOUT_OPAQUE) return { kind: "opaque" };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: "ignore" };
  const name = base.slice(WHITEOUT_PREFIX.length);
  // `.wh.` deletes nothing, and `.wh..` / `.wh...` would delete the directory itself or
  // its parent: never a meaningful whiteout, and dangerous to act on.
  if (name === "" || name === "." || name === "..") {
    throw new TarEntryError(`invalid whiteout ${JSON.stringify(base)}`);
  }
  return { kind: "delete", name };
}

/**
 * Linux keeps device numbers in 32 bits: a 12-bit major and a 20-bit minor. Anything larger
 * would be truncated into some other device, so it is refused.
 */
export function checkDeviceNumbers(major: number, minor: number): void {
  if (!Number.isSafeInteger(major) || major < 0 || major > 0xfff) {
    throw new TarEntryError(`device major number ${major} is out of range (0-4095)`);
  }
  if (!Number.isSafeInteger(minor) || minor < 0 || minor > 0xfffff) {
    throw new TarEntryError(`device minor number ${minor} is out of range (0-1048575)`);
  }
}

/**
 * A uid or gid from a header. 4294967295 is (uid_t)-1, which chown reads as "leave
 * unchanged", so the largest usable id is one less.
 */
export function checkId(id: number, what: "uid" | "gid"): number {
  if (!Number.isSafeInteger(id) || id < 0 || id > 0xfffffffe) {
    throw new TarEntryError(`${what} ${id} is out of range`);
  }
  return id;
}

/** Seconds and nanoseconds since the epoch; `sec` may be negative, `nsec` is 0..999999999. */
export interface TarTime {
  sec: number;
  nsec: number;
}

/** A PAX time record (`mtime=1700000000.123456789`, possibly negative); null when malformed. */
export function parsePaxTime(text: string): TarTime | null {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!m) return null;
  const whole = Number(m[2]);
  const nsec = Number((m[3] ?? "").slice(0, 9).padEnd(9, "0"));
  if (!Number.isSafeInteger(whole)) return null;
  if (m[1] !== "-") return { sec: whole, nsec };
  // -1.25 s is 1.75 s after -3 s: keep nsec non-negative as timespec wants.
  return nsec === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1e9 - nsec };
}

/** A header's Date (whole seconds in classic tar headers) as a TarTime. */
export function timeOfDate(date: Date): TarTime {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) return { sec: 0, nsec: 0 };
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: (ms - sec * 1000) * 1e6 };
}

const SCHILY_XATTR = "SCHILY.xattr.";
const LIBARCHIVE_XATTR = "LIBARCHIVE.xattr.";
const decoder = new TextDecoder();

/**
 * The extended attributes recorded in a PAX extended header's raw bytes, values kept as
 * bytes. Go's archive/tar (Docker, containerd, BuildKit) and GNU tar write
 * `SCHILY.xattr.NAME=VALUE` with VALUE raw and often binary (`security.capability`), so the
 * records must be split by their byte lengths and never decoded as text. bsdtar's
 * `LIBARCHIVE.xattr.NAME=BASE64` (NAME percent-encoded) is read too.
 */
export function paxXattrs(pax: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let at = 0;
  while (at < pax.length) {
    // Each record is "LENGTH KEY=VALUE\n", LENGTH counting the whole record in bytes.
    const space = pax.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(decoder.decode(pax.subarray(at, space)));
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > pax.length) break;
    const record = pax.subarray(space + 1, at + length - 1); // without the trailing newline
    at += length;
    const eq = record.indexOf(0x3d); // '='
    if (eq === -1) continue;
    const key = decoder.decode(record.subarray(0, eq));
    const value = record.subarray(eq + 1);
    if (key.startsWith(SCHILY_XATTR)) {
      out.set(key.slice(SCHILY_XATTR.length), value);
    } else if (key.startsWith(LIBARCHIVE_XATTR)) {
      try {
        const name = decodeURIComponent(key.slice(LIBARCHIVE_XATTR.length));
        out.set(name, Uint8Array.from(atob(decoder.decode(value)), (c) => c.charCodeAt(0)));
      } catch {
        throw new TarEntryError(`malformed PAX record ${JSON.stringify(key)}`);
      }
    }
  }
  return out;
}

/**
 * Whether an extended attribute from a layer may be set. `trusted.overlay.*` (and
 * `user.overlay.*`, its unprivileged twin) steer overlayfs itself: opaque directories,
 * redirects, metacopy. Only whiteouts may produce them; a layer that carries its own could
 * redirect lookups to other layers' files, so they are dropped.
 */
export function xattrAllowed(name: string): boolean {
  return name !== "" && !name.startsWith("trusted.overlay.") && !name.startsWith("user.overlay.");
}
