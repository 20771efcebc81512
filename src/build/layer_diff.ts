/**
 * Turns the upper directory of an overlayfs mount (exactly what a build step changed) into
 * an OCI image layer: the reverse of `src/images/unpack.ts`.
 *
 * Whiteouts. overlayfs records a deleted name as a character device 0:0 of that name, and
 * a directory that replaced a lower one (`rm -rf d; mkdir d`) as a directory with the xattr
 * `trusted.overlay.opaque=y`. OCI spells them `.wh.NAME` (an empty regular file) and
 * `.wh..wh..opq` inside the directory. Since Linux 6.7 overlayfs also reads "xattr
 * whiteouts" (an empty regular file with `trusted.overlay.whiteout`, its directory marked
 * `trusted.overlay.opaque=x`, which means "holds such whiteouts", not opaque); the kernel
 * never creates them, but one found here in a marked directory is a whiteout too. The
 * kernel does make the whiteouts of an upper directory hard links of one shared 0:0 inode
 * (seen on 6.18), so whiteouts are never treated as hard links.
 *
 * The upper directory must be complete on its own: a mount with `redirect_dir=on` (a
 * renamed lower directory is a redirect to the old name) or `metacopy=on` (a chmod copies
 * up metadata only, the data stays below) leaves xattrs saying so, and such an upper
 * directory is refused rather than turned into a layer with empty files in it.
 *
 * The archive is what Docker and BuildKit write: PAX format as Go's archive/tar writes it
 * (one header encoder here, see TarHeader), names relative without `./`, directories with a
 * trailing `/`, whole-second mtimes, no atime or ctime, no user or group names. Each
 * directory's entries come in byte order of their names, depth first, whiteouts of the
 * directory first (the OCI spec asks for whiteouts before their siblings); an opaque
 * directory's `.wh..wh..opq` comes right after its own entry. So the same tree always gives
 * the same bytes. The root directory itself has no entry: a layer cannot change it.
 *
 * Extended attributes go into `SCHILY.xattr.NAME` PAX records as raw bytes
 * (`security.capability` is binary). overlayfs's own (`trusted.overlay.*`, and
 * `user.overlay.*` of unprivileged mounts) are left out, as is `security.selinux`, the host's
 * label (Docker and containerd record no xattr but `security.capability`).
 *
 * tar-stream's pack streams the entries (ordering, content, padding, the end of the
 * archive); the header blocks are encoded here, because its encoder turns mode 0 into 0644,
 * writes uids above 2097151 and mtimes after 2038 wrongly, and writes PAX values as text
 * under an entry named `PaxHeader`.
 */
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import tar from "tar-stream";
import * as libc from "../../ffi/libc.ts";
import { type Digest, digestFromBytes } from "../../lib/digest.ts";
import { describeError, FlokaError } from "../../lib/errors.ts";
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX, xattrAllowed } from "../../lib/tar_safety.ts";
import { concatBytes } from "../../lib/bytes.ts";

/** The blob written by writeLayerBlob: the gzip blob's digest and size, and the layer's diff_id. */
export interface LayerBlob {
  digest: Digest;
  size: number;
  diffId: Digest;
}

/** True when `upper` holds no change at all (a step that changed nothing). */
export function isEmptyDiff(upper: string): boolean {
  const root = rootOf(upper);
  try {
    for (const entry of Deno.readDirSync(root)) {
      // Sockets have no place in a layer (Docker skips them too), so they change nothing.
      if (!(Deno.lstatSync(`${root}/${entry.name}`).isSocket ?? false)) return false;
    }
  } catch (err) {
    throw new FlokaError(`cannot read the upper directory ${JSON.stringify(root)}: ${oneLine(err)}`);
  }
  return true;
}

/**
 * The uncompressed OCI layer tar of `upper`, streamed: file contents are read as the stream
 * is consumed, never the whole archive at once. Deterministic (see the module doc). The
 * stream fails with a FlokaError naming the entry when something in `upper` cannot be
 * stored; cancelling it stops the reading.
 */
export function diffTar(upper: string): ReadableStream<Uint8Array> {
  const root = rootOf(upper);
  const pack = tar.pack();
  encodeOurHeaders(pack);
  const produce = async () => {
    try {
      for (const entry of walk(root)) {
        if (pack.destroying) return;
        await addEntry(pack, entry);
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err instanceof FlokaError ? err : new FlokaError(oneLine(err)));
    }
  };
  produce();
  const chunks = (pack as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel() {
      pack.destroy();
    },
  }, { highWaterMark: 0 });
}

/**
 * The default gzip level. Measured here on a 54 MB tree of 3,000 files (shared libraries
 * and small text files), writeLayerBlob took 0.58 s at level 1 (23.5 MB blob), 0.84 s at
 * level 2 (19.5 MB) and 1.16 s at zlib's default 6 (18.1 MB): a build step's layer is
 * written far more often than pushed, so the fast level wins; callers may ask for another.
 */
const GZIP_LEVEL = 1;

/**
 * Writes the layer of `upper` gzip-compressed to the file `out` (created or truncated) and
 * returns the blob's digest and size and the diff_id (sha256 of the uncompressed tar). On
 * failure `out` is removed. `gzipLevel` defaults to GZIP_LEVEL; the gzip header carries no
 * time, so the same tree and level give the same blob.
 */
export async function writeLayerBlob(
  upper: string,
  out: string,
  options: { gzipLevel?: number } = {},
): Promise<LayerBlob> {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(out, { write: true, create: true, truncate: true, mode: 0o644 });
  } catch (err) {
    throw new FlokaError(`cannot write the layer blob ${JSON.stringify(out)}: ${oneLine(err)}`);
  }
  const reader = diffTar(upper).getReader();
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  let size = 0;
  const gzip = zlib.createGzip({ level: options.gzipLevel ?? GZIP_LEVEL, chunkSize: 256 * 1024 });
  let failure: Error | null = null;
  let wake = () => {};
  const ended = new Promise<void>((resolve) => gzip.on("end", resolve));
  gzip.on("error", (err: Error) => {
    failure ??= new FlokaError(`gzip failed: ${oneLine(err)}`);
    wake();
  });
  gzip.on("data", (chunk: Uint8Array) => {
    if (failure) return;
    try {
      blobHash.update(chunk);
      for (let done = 0; done < chunk.length;) done += file.writeSync(chunk.subarray(done));
      size += chunk.length;
    } catch (err) {
      failure = new FlokaError(`cannot write the layer blob ${JSON.stringify(out)}: ${oneLine(err)}`);
      wake();
    }
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      diffHash.update(value);
      if (!gzip.write(value)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          gzip.once("drain", resolve);
        });
      }
      if (failure) throw failure;
    }
    gzip.end();
    await Promise.race([ended, new Promise<void>((resolve) => wake = resolve)]);
    if (failure) throw failure;
    file.syncDataSync(); // the caller renames it into the store next, as content_store does
  } catch (err) {
    reader.cancel().catch(() => {});
    gzip.destroy();
    file.close();
    try {
      Deno.removeSync(out);
    } catch {
      // The error below is the one that matters.
    }
    throw err instanceof FlokaError ? err : new FlokaError(oneLine(err));
  }
  file.close();
  return { digest: digestFromBytes(blobHash.digest()), size, diffId: digestFromBytes(diffHash.digest()) };
}

// ---------------------------------------------------------------------------------------
// Walking the upper directory.

/** One archive entry: its header, and for a regular file the path its content is read from. */
interface Entry {
  header: TarHeader;
  /** The file to read `header.size` bytes from, and its identity as the walk saw it. */
  content?: { path: string; dev: number; ino: number };
}

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

const OVERLAY_XATTR = "trusted.overlay.";
const OPAQUE_XATTR = "trusted.overlay.opaque";
const WHITEOUT_XATTR = "trusted.overlay.whiteout";
/** xattrs that mean the upper directory depends on the lower layers' data. */
const INCOMPLETE_XATTRS: Record<string, string> = {
  "trusted.overlay.redirect": "a directory renamed with redirect_dir=on",
  "trusted.overlay.metacopy": "a metadata-only copy-up (metacopy=on)",
};

/** A name in a directory, lstat'ed, with its xattrs. */
interface Found {
  name: string;
  path: string;
  st: Deno.FileInfo;
  xattrs: Map<string, Uint8Array>;
  whiteout: boolean;
}

/**
 * The entries of the archive of `root`, in archive order. Generated lazily, so that a
 * file's content is read only when the archive reaches it.
 */
function* walk(root: string): Generator<Entry> {
  // Every inode with several names seen so far, by dev:ino: its first name in the archive.
  const linked = new Map<string, string>();
  let rootXattrs: Map<string, Uint8Array>;
  try {
    rootXattrs = readXattrs(root);
  } catch (err) {
    throw new FlokaError(`cannot read the upper directory ${JSON.stringify(root)}: ${oneLine(err)}`);
  }
  yield* walkDir(root, "", hasXattrWhiteouts(rootXattrs), linked);
}

/**
 * The entries of directory `dir` (archive name `prefix`) and below. `xwhiteouts`: the
 * directory is marked as holding xattr whiteouts, the only place overlayfs looks for them.
 */
function* walkDir(
  dir: string,
  prefix: string,
  xwhiteouts: boolean,
  linked: Map<string, string>,
): Generator<Entry> {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch (err) {
    throw new FlokaError(`${shownName(prefix || ".")}: cannot read the directory: ${oneLine(err)}`);
  }
  const found: Found[] = [];
  for (const name of names) {
    const path = `${dir}/${name}`;
    const shown = prefix + name;
    if (name.startsWith(WHITEOUT_PREFIX)) {
      throw new FlokaError(`${shownName(shown)}: a name starting with ".wh." cannot be stored in a layer`);
    }
    let st: Deno.FileInfo;
    let xattrs: Map<string, Uint8Array>;
    try {
      st = Deno.lstatSync(path);
      xattrs = readXattrs(path);
    } catch (err) {
      throw new FlokaError(`${shownName(shown)}: ${oneLine(err)}`);
    }
    const type = st.mode! & S_IFMT;
    if (type === S_IFSOCK) continue;
    for (const [xattr, why] of Object.entries(INCOMPLETE_XATTRS)) {
      if (xattrs.has(xattr)) {
        throw new FlokaError(
          `${shownName(shown)}: the upper directory holds ${why}; mount with redirect_dir=off,metacopy=off`,
        );
      }
    }
    const whiteout = (type === S_IFCHR && st.rdev === 0) ||
      (xwhiteouts && type === S_IFREG && st.size === 0 && xattrs.has(WHITEOUT_XATTR));
    found.push({ name, path, st, xattrs, whiteout });
  }
  // Whiteouts first, then everything else, each in byte order of the name.
  found.sort((a, b) => a.whiteout !== b.whiteout ? (a.whiteout ? -1 : 1) : compareBytes(a.name, b.name));

  for (const f of found) {
    const name = prefix + f.name;
    const st = f.st;
    const base = {
      mode: st.mode! & 0o7777,
      uid: st.uid!,
      gid: st.gid!,
      mtime: Math.floor(st.mtime!.getTime() / 1000),
    };
    if (f.whiteout) {
      yield { header: { ...base, name: prefix + WHITEOUT_PREFIX + f.name, type: "file", mode: 0, size: 0 } };
      continue;
    }
    const xattrs = [...f.xattrs].filter(([key]) => keptXattr(key));
    const type = st.mode! & S_IFMT;
    if (type === S_IFDIR) {
      yield { header: { ...base, name: name + "/", type: "directory", size: 0, xattrs } };
      if (isOpaque(f.xattrs)) {
        yield { header: { ...base, name: `${name}/${WHITEOUT_OPAQUE}`, type: "file", mode: 0, size: 0 } };
      }
      yield* walkDir(f.path, name + "/", hasXattrWhiteouts(f.xattrs), linked);
      continue;
    }
    if (st.nlink! > 1) {
      // A second name of an inode already in the archive is a hard link to the first.
      const key = `${st.dev}:${st.ino}`;
      const first = linked.get(key);
      if (first !== undefined) {
        yield { header: { ...base, name, type: "link", size: 0, linkname: first } };
        continue;
      }
      linked.set(key, name);
    }
    switch (type) {
      case S_IFREG:
        yield {
          header: { ...base, name, type: "file", size: st.size, xattrs },
          content: { path: f.path, dev: st.dev, ino: st.ino! },
        };
        break;
      case S_IFLNK: {
        let target: string;
        try {
          target = Deno.readLinkSync(f.path);
        } catch (err) {
          throw new FlokaError(`${shownName(name)}: ${oneLine(err)}`);
        }
        yield { header: { ...base, name, type: "symlink", size: 0, linkname: target, xattrs } };
        break;
      }
      case S_IFCHR:
      case S_IFBLK: {
        const { major, minor } = splitDev(st.rdev!);
        const kind = type === S_IFCHR ? "character-device" : "block-device";
        yield { header: { ...base, name, type: kind, size: 0, devmajor: major, devminor: minor, xattrs } };
        break;
      }
      case S_IFIFO:
        yield { header: { ...base, name, type: "fifo", size: 0, xattrs } };
        break;
      default:
        throw new FlokaError(`${shownName(name)}: unknown file type ${(type >> 12).toString(8)}`);
    }
  }
}

/** All xattrs of `path` itself, by name. */
function readXattrs(path: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of libc.llistxattr(path)) {
    const value = libc.lgetxattr(path, name);
    if (value !== null) out.set(name, value); // null: removed since listed
  }
  return out;
}

/** `trusted.overlay.opaque=y`: the directory hides the lower layers' one. */
function isOpaque(xattrs: Map<string, Uint8Array>): boolean {
  const value = xattrs.get(OPAQUE_XATTR);
  return value !== undefined && value.length === 1 && value[0] === 0x79; // "y"
}

/** `trusted.overlay.opaque=x`: not opaque, but holding xattr whiteouts (Linux 6.7). */
function hasXattrWhiteouts(xattrs: Map<string, Uint8Array>): boolean {
  const value = xattrs.get(OPAQUE_XATTR);
  return value !== undefined && value.length === 1 && value[0] === 0x78; // "x"
}

/** Whether xattr `name` goes into the layer. */
function keptXattr(name: string): boolean {
  return xattrAllowed(name) && !name.startsWith(OVERLAY_XATTR) && name !== "security.selinux";
}

/** Linux's dev_t (glibc's encoding) as major and minor numbers. */
function splitDev(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  };
}

const encoder = new TextEncoder();

/** Byte order of the UTF-8 names (what Go's sort of Go strings gives). */
function compareBytes(a: string, b: string): number {
  const x = encoder.encode(a), y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

// ---------------------------------------------------------------------------------------
// Feeding tar-stream's pack.

type Pack = ReturnType<typeof tar.pack>;
type PackHeader = Parameters<Pack["entry"]>[0];

/** The header blocks of an entry, encoded here, travel to the pack on its header object. */
const ENCODED = Symbol("encoded header blocks");

/**
 * Makes `pack` write the header blocks encoded by encodeHeader instead of its own (see the
 * module doc). tar-stream 3.2.2 encodes every header in `_encode`; the version is pinned in
 * deno.json, and a tar-stream without it fails loudly.
 */
function encodeOurHeaders(pack: Pack): void {
  const internals = pack as unknown as {
    _encode(header: PackHeader & { [ENCODED]?: Uint8Array }): void;
    push(chunk: Uint8Array): boolean;
  };
  if (typeof internals._encode !== "function") {
    throw new Error("tar-stream has no _encode: update layer_diff.ts");
  }
  internals._encode = function (header) {
    const blocks = header[ENCODED];
    if (!blocks) throw new Error("tar entry without encoded header");
    this.push(blocks);
  };
}

/** Files are read in pieces of this size (and smaller ones whole, with one read). */
const READ_SIZE = 1024 * 1024;

/** Adds `entry` to `pack` and resolves once the pack has taken all of it. */
async function addEntry(pack: Pack, entry: Entry): Promise<void> {
  const { header } = entry;
  const packHeader = {
    name: header.name,
    type: header.type,
    size: header.size,
    linkname: header.linkname,
    [ENCODED]: encodeHeader(header),
  } as PackHeader;
  let sink!: ReturnType<Pack["entry"]>;
  // Resolves once the pack has taken the whole entry: at most one entry is in flight.
  const taken = new Promise<void>((resolve, reject) => {
    sink = pack.entry(packHeader, (err) => err ? reject(err) : resolve());
  });
  if (entry.content) {
    try {
      await writeContent(sink, entry.content, header.size, header.name);
    } catch (err) {
      taken.catch(() => {}); // the pack fails with err, which the caller reports
      sink.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  } else if (header.type === "file") {
    sink.end(undefined); // a whiteout: a regular file without content
  }
  await taken;
}

/** Streams `size` bytes of the file into `sink`, checking it is still the file the walk saw. */
async function writeContent(
  sink: ReturnType<Pack["entry"]>,
  content: NonNullable<Entry["content"]>,
  size: number,
  name: string,
): Promise<void> {
  const changed = () => new FlokaError(`${shownName(name)}: the file changed while the layer was written`);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(content.path, { read: true });
  } catch (err) {
    throw new FlokaError(`${shownName(name)}: ${oneLine(err)}`);
  }
  try {
    // The same inode as lstat saw: never a symlink swapped in since (it could point anywhere).
    const st = file.statSync();
    if (st.ino !== content.ino || st.dev !== content.dev) throw changed();
    let left = size;
    while (left > 0) {
      const chunk = new Uint8Array(Math.min(left, READ_SIZE));
      let filled = 0;
      while (filled < chunk.length) {
        const n = file.readSync(chunk.subarray(filled));
        if (n === null || n === 0) throw changed();
        filled += n;
      }
      left -= chunk.length;
      if (!sink.write(chunk)) await drainedOrClosed(sink);
      if (sink.destroyed) return; // the stream was cancelled or failed
    }
  } finally {
    file.close();
  }
  sink.end(undefined);
}

/** Resolves when `sink` wants more data or has been destroyed (a cancel never leaves us waiting). */
function drainedOrClosed(sink: ReturnType<Pack["entry"]>): Promise<void> {
  if (sink.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      sink.off("drain", done);
      sink.off("close", done);
      resolve();
    };
    sink.on("drain", done);
    sink.on("close", done);
  });
}

// ---------------------------------------------------------------------------------------
// Header encoding: USTAR blocks with PAX extended headers where USTAR cannot say it, laid
// out as Go's archive/tar writes them (what Docker, containerd and BuildKit use).

type EntryType = "file" | "link" | "symlink" | "character-device" | "block-device" | "directory" | "fifo";

/** One archive entry's header, as the walk found it. */
export interface TarHeader {
  /** Relative, no leading `./`; directories end in `/`. */
  name: string;
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  size: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes in the order to record them (they are sorted by name anyway). */
  xattrs?: [string, Uint8Array][];
}

const TYPEFLAGS: Record<EntryType, string> = {
  "file": "0",
  "link": "1",
  "symlink": "2",
  "character-device": "3",
  "block-device": "4",
  "directory": "5",
  "fifo": "6",
};

/** Largest values of the octal USTAR fields (7 and 11 digits). */
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** The header blocks of `h`: a PAX extended header first when USTAR fields cannot hold it. */
export function encodeHeader(h: TarHeader): Uint8Array {
  const pax: [string, Uint8Array][] = [];
  const text = (key: string, value: string) => pax.push([key, encoder.encode(value)]);

  let name = "", prefix = "";
  if (isAscii(h.name) && h.name.length <= 100) {
    name = h.name;
  } else {
    const split = splitUstarPath(h.name);
    if (split) [prefix, name] = split;
    else {
      text("path", h.name);
      name = toAscii(h.name).slice(0, 100);
    }
  }
  let linkname = h.linkname ?? "";
  if (!isAscii(linkname) || linkname.length > 100) {
    text("linkpath", linkname);
    linkname = toAscii(linkname).slice(0, 100);
  }
  const numeric = (key: string, value: number, max: number) => {
    if (Number.isSafeInteger(value) && value >= 0 && value <= max) return value;
    text(key, String(value));
    return 0;
  };
  const uid = numeric("uid", h.uid, MAX_OCTAL_7);
  const gid = numeric("gid", h.gid, MAX_OCTAL_7);
  const size = numeric("size", h.size, MAX_OCTAL_11);
  const mtime = numeric("mtime", h.mtime, MAX_OCTAL_11);
  for (const [key, value] of h.xattrs ?? []) {
    // A PAX record is split at its first "=": a name holding one could not be read back.
    if (key.includes("=")) {
      throw new FlokaError(`${shownName(h.name)}: xattr name ${JSON.stringify(key)} has "="`);
    }
    pax.push([`SCHILY.xattr.${key}`, value]);
  }

  const block = ustarBlock({
    name,
    prefix,
    mode: h.mode & 0o7777,
    uid,
    gid,
    size,
    mtime,
    typeflag: TYPEFLAGS[h.type],
    linkname,
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (pax.length === 0) return block;

  // Records sorted by key, as Go writes them, for one byte layout per tree.
  pax.sort(([a], [b]) => compareBytes(a, b));
  const records = concatBytes(pax.map(([key, value]) => paxRecord(key, value)));
  const slash = h.name.replace(/\/+$/, "").lastIndexOf("/");
  const dir = slash === -1 ? "" : h.name.slice(0, slash + 1);
  const base = h.name.replace(/\/+$/, "").slice(slash + 1);
  const paxName = toAscii(`${dir}PaxHeaders.0/${base}`).slice(0, 100).replace(/\/+$/, "");
  const paxBlock = ustarBlock({
    name: paxName,
    prefix: "",
    mode: 0,
    uid: 0,
    gid: 0,
    size: records.length,
    mtime: 0,
    typeflag: "x",
    linkname: "",
    devmajor: 0,
    devminor: 0,
  });
  const out = new Uint8Array(512 + Math.ceil(records.length / 512) * 512 + 512);
  out.set(paxBlock, 0);
  out.set(records, 512);
  out.set(block, out.length - 512);
  return out;
}

/** One PAX record, "LEN KEY=VALUE\n", LEN counting the whole record including itself. */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const body = concatBytes([encoder.encode(` ${key}=`), value, new Uint8Array([0x0a])]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return concatBytes([encoder.encode(String(length)), body]);
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}

/** A 512-byte USTAR header block; string fields are ASCII and fit by now. */
function ustarBlock(f: UstarFields): Uint8Array {
  const block = new Uint8Array(512);
  const put = (offset: number, s: string) => block.set(encoder.encode(s), offset);
  // Zero-padded octal then NUL, filling the field: Go's formatOctal.
  const octal = (offset: number, width: number, value: number) =>
    put(offset, value.toString(8).padStart(width - 1, "0") + "\0");
  put(0, f.name);
  octal(100, 8, f.mode);
  octal(108, 8, f.uid);
  octal(116, 8, f.gid);
  octal(124, 12, f.size);
  octal(136, 12, f.mtime);
  put(148, "        "); // the checksum counts its own field as spaces
  put(156, f.typeflag);
  put(157, f.linkname);
  put(257, "ustar\x0000");
  octal(329, 8, f.devmajor);
  octal(337, 8, f.devminor);
  put(345, f.prefix);
  let sum = 0;
  for (const byte of block) sum += byte;
  put(148, sum.toString(8).padStart(6, "0") + "\0");
  return block;
}

/** Go's splitUSTARPath: a long ASCII name as USTAR prefix (155) and name (100), or null. */
function splitUstarPath(name: string): [string, string] | null {
  let length = name.length;
  if (length <= 100 || !isAscii(name)) return null;
  if (length > 156) length = 156;
  else if (name[length - 1] === "/") length--;
  const i = name.lastIndexOf("/", length - 1);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > 100 || nlen === 0 || i > 155) return null;
  return [name.slice(0, i), name.slice(i + 1)];
}

function isAscii(s: string): boolean {
  // deno-lint-ignore no-control-regex
  return /^[\x01-\x7f]*$/.test(s);
}

/** Go's toASCII: the string without its non-ASCII characters (only for best-effort USTAR names). */
function toAscii(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[^\x01-\x7f]/g, "");
}

// ---------------------------------------------------------------------------------------
// Errors.

function rootOf(upper: string): string {
  const root = upper.replace(/\/+$/, "");
  if (root === "") throw new FlokaError("the upper directory cannot be /");
  return root;
}

/** An entry name as errors show it. */
function shownName(name: string): string {
  return `layer entry ${JSON.stringify(name)}`;
}

function oneLine(err: unknown): string {
  return describeError(err).replace(/\s*\n\s*/g, "; ");
}
