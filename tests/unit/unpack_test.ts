/**
 * unpackLayer against archives built here with tar-stream (and, where tar-stream cannot
 * write what a test needs, a few raw ustar blocks): every entry kind and its metadata,
 * whiteouts, the diff_id, and a corpus of malicious layers. Each malicious layer is
 * unpacked next to a sentinel `outside` directory whose tree is compared before and after.
 *
 * Ownership, device nodes and trusted.* xattrs need root; those tests are skipped otherwise.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import zlib from "node:zlib";
import tar from "tar-stream";
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { unpackLayer, type UnpackOptions, UnpackWorkers } from "../../src/images/unpack.ts";
import { pathExists } from "../../src/store/files.ts";
import { concatBytes } from "../../lib/bytes.ts";

const isRoot = libc.geteuid() === 0;
const needsRoot = { ignore: !isRoot };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------------------
// Building archives.

type PackHeader = Parameters<ReturnType<typeof tar.pack>["entry"]>[0];

/** One entry for tar-stream's pack, or raw 512-byte blocks written as they are. */
type Entry = { header: PackHeader; data?: string | Uint8Array } | { raw: Uint8Array };

/** A tar stream of `entries`, ending with the two zero blocks. */
async function tarOf(entries: Entry[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const entry of entries) {
    if ("raw" in entry) {
      parts.push(entry.raw);
      continue;
    }
    const pack = tar.pack();
    const out = collect(pack as unknown as AsyncIterable<Uint8Array>);
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => err ? reject(err) : resolve();
      const type = entry.header.type ?? "file";
      // Entries without content (directories, links, devices) end by themselves.
      if (type !== "file" && type !== "contiguous-file") pack.entry(entry.header, done);
      else pack.entry(entry.header, entry.data ?? "", done);
    });
    pack.finalize();
    const bytes = await out;
    parts.push(bytes.subarray(0, bytes.length - 1024)); // without pack's end-of-archive blocks
  }
  parts.push(new Uint8Array(1024));
  return concatBytes(parts);
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return concatBytes(parts);
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function zstd(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(zlib.zstdCompressSync(bytes));
}

function sha256(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

/** A ustar header block, for what tar-stream's pack will not write (typeflags, binary PAX). */
function ustar(fields: {
  name: string;
  typeflag: string;
  size?: number;
  mode?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}): Uint8Array {
  const block = new Uint8Array(512);
  const put = (offset: number, text: string) => block.set(encoder.encode(text), offset);
  const octal = (offset: number, width: number, value: number) =>
    put(offset, value.toString(8).padStart(width - 1, "0") + "\0");
  put(0, fields.name);
  octal(100, 8, fields.mode ?? 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, fields.size ?? 0);
  octal(136, 12, 1_600_000_000);
  put(148, "        ");
  put(156, fields.typeflag);
  put(157, fields.linkname ?? "");
  put(257, "ustar\x0000");
  octal(329, 8, fields.devmajor ?? 0);
  octal(337, 8, fields.devminor ?? 0);
  const sum = block.reduce((s, b) => s + b, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** `data` padded to whole blocks. */
function blocks(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** One PAX record, "LEN KEY=VALUE\n", LEN counting itself. */
function paxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const body = [
    ...encoder.encode(` ${key}=`),
    ...(typeof value === "string" ? encoder.encode(value) : value),
    0x0a,
  ];
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return new Uint8Array([...encoder.encode(String(length)), ...body]);
}

/** A PAX extended header (typeflag x) carrying `records`, as raw blocks. */
function paxHeader(records: Uint8Array[]): Uint8Array {
  const data = concatBytes(records);
  return concatBytes([ustar({ name: "PaxHeader", typeflag: "x", size: data.length }), blocks(data)]);
}

/** A regular file as raw blocks. */
function rawFile(name: string, content: string, mode = 0o644): Uint8Array {
  const data = encoder.encode(content);
  return concatBytes([ustar({ name, typeflag: "0", size: data.length, mode }), blocks(data)]);
}

// ---------------------------------------------------------------------------------------
// A sandbox: `outside` (the sentinel) and `target` side by side in a temporary directory.

interface Sandbox {
  base: string;
  outside: string;
  target: string;
  [Symbol.dispose](): void;
}

function sandbox(): Sandbox {
  const base = Deno.makeTempDirSync({ prefix: "floka-unpack-" });
  const outside = `${base}/outside`;
  Deno.mkdirSync(`${outside}/etc`, { recursive: true });
  Deno.writeTextFileSync(`${outside}/victim`, "original");
  Deno.writeTextFileSync(`${outside}/etc/passwd`, "root:x:0:0::/root:/bin/sh\n");
  Deno.chmodSync(`${outside}/etc`, 0o755);
  Deno.symlinkSync("victim", `${outside}/link`);
  return {
    base,
    outside,
    target: `${base}/target`,
    [Symbol.dispose]() {
      // Without root, directories unpacked read-only (0555) must be opened up to be removed.
      if (!isRoot) {
        const open = (dir: string) => {
          Deno.chmodSync(dir, 0o755);
          for (const e of Deno.readDirSync(dir)) if (e.isDirectory) open(`${dir}/${e.name}`);
        };
        open(base);
      }
      Deno.removeSync(base, { recursive: true });
    },
  };
}

/** Everything about the tree at `dir` an escape could change, one line per name. */
function snapshot(dir: string): string[] {
  const lines: string[] = [];
  const walk = (path: string, shown: string) => {
    const st = Deno.lstatSync(path);
    const opaque = libc.lgetxattr(path, "trusted.overlay.opaque");
    let what = `${shown} mode=${st.mode?.toString(8)} uid=${st.uid} gid=${st.gid} nlink=${st.nlink} ` +
      `mtime=${st.mtime?.getTime()} size=${st.size} opaque=${opaque ? decoder.decode(opaque) : "-"}`;
    if (st.isSymlink) what += ` -> ${Deno.readLinkSync(path)}`;
    if (st.isFile) what += ` sha=${sha256(Deno.readFileSync(path))}`;
    lines.push(what);
    if (st.isDirectory) {
      for (const e of [...Deno.readDirSync(path)].sort((a, b) => a.name < b.name ? -1 : 1)) {
        walk(`${path}/${e.name}`, `${shown}/${e.name}`);
      }
    }
  };
  walk(dir, ".");
  return lines;
}

/** The sandbox apart from the target: outside's tree and the names next to it. */
function surroundings(box: Sandbox): string[] {
  return [
    ...[...Deno.readDirSync(box.base)].map((e) => e.name).filter((n) => n !== "target").sort(),
    ...snapshot(box.outside),
  ];
}

async function unpack(
  bytes: Uint8Array,
  target: string,
  compression: "gzip" | "zstd" | "none" = "none",
  options: UnpackOptions = {},
): Promise<{ diffId: string; size: number }> {
  return await unpackLayer(
    new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(),
    compression,
    target,
    options,
  );
}

function xattr(path: string, name: string): string | null {
  const value = libc.lgetxattr(path, name);
  return value === null ? null : decoder.decode(value);
}

// ---------------------------------------------------------------------------------------
// What a layer holds comes out as it went in.

Deno.test("unpackLayer: files, directories, symlinks and hardlinks with modes and times", async () => {
  using box = sandbox();
  const t = (s: number) => new Date(s * 1000);
  const layer = await tarOf([
    { header: { name: "./", type: "directory", mode: 0o755, mtime: t(1_000_000_000) } },
    { header: { name: "etc/", type: "directory", mode: 0o755, mtime: t(1_100_000_000) } },
    { header: { name: "etc/hostname", mode: 0o644, mtime: t(1_200_000_000) }, data: "box\n" },
    { header: { name: "etc/shadow", mode: 0o600, mtime: t(1_200_000_001) }, data: "root:*:1::::::\n" },
    { header: { name: "bin/busybox", mode: 0o755, mtime: t(1_300_000_000) }, data: "\x7fELF..." },
    { header: { name: "bin/sh", type: "symlink", linkname: "busybox", mtime: t(1_400_000_000) } },
    { header: { name: "bin/ls", type: "symlink", linkname: "/bin/busybox", mtime: t(1_400_000_001) } },
    { header: { name: "bin/busybox-hard", type: "link", linkname: "bin/busybox" } },
    { header: { name: "tmp/", type: "directory", mode: 0o1777, mtime: t(1_500_000_000) } },
    { header: { name: "srv/ro/", type: "directory", mode: 0o555, mtime: t(1_600_000_000) } },
    // Written after its directory's entry: the directory's mtime must still be the archive's.
    { header: { name: "srv/ro/file", mode: 0o444, mtime: t(1_600_000_001) }, data: "x" },
    { header: { name: "empty", mode: 0o640, mtime: t(1_700_000_000) }, data: "" },
  ]);
  await unpack(layer, box.target);
  const at = (p: string) => Deno.lstatSync(`${box.target}/${p}`);
  const perm = (p: string) => at(p).mode! & 0o7777;
  assert.equal(Deno.readTextFileSync(`${box.target}/etc/hostname`), "box\n");
  assert.equal(perm("etc/shadow"), 0o600);
  assert.equal(perm("bin/busybox"), 0o755);
  assert.equal(perm("tmp"), 0o1777);
  assert.equal(perm("srv/ro"), 0o555);
  assert.equal(perm("srv/ro/file"), 0o444);
  assert.equal(perm("empty"), 0o640);
  assert.equal(at("empty").size, 0);
  assert.equal(at("etc/hostname").mtime!.getTime(), 1_200_000_000_000);
  assert.equal(at("etc").mtime!.getTime(), 1_100_000_000_000);
  assert.equal(at("srv/ro").mtime!.getTime(), 1_600_000_000_000);
  assert.equal(at("tmp").mtime!.getTime(), 1_500_000_000_000);
  assert.equal(at(".").mtime!.getTime(), 1_000_000_000_000);
  assert.ok(at("bin/sh").isSymlink);
  assert.equal(Deno.readLinkSync(`${box.target}/bin/sh`), "busybox");
  assert.equal(Deno.readLinkSync(`${box.target}/bin/ls`), "/bin/busybox");
  assert.equal(at("bin/sh").mtime!.getTime(), 1_400_000_000_000, "a symlink gets its own mtime");
  assert.equal(at("bin/busybox-hard").ino, at("bin/busybox").ino);
  assert.equal(at("bin/busybox").nlink, 2);
  // A directory with no entry of its own (bin/) is created 0755.
  assert.equal(perm("bin"), 0o755);
});

Deno.test("unpackLayer: owners, setuid/setgid and sticky bits survive chown (root)", needsRoot, async () => {
  using box = sandbox();
  const layer = await tarOf([
    { header: { name: "usr/bin/", type: "directory", mode: 0o2775, uid: 0, gid: 50 } },
    { header: { name: "usr/bin/passwd", mode: 0o4755, uid: 0, gid: 0 }, data: "suid" },
    { header: { name: "usr/bin/wall", mode: 0o2755, uid: 1000, gid: 5 }, data: "sgid" },
    { header: { name: "home/user/", type: "directory", mode: 0o700, uid: 1000, gid: 1000 } },
    { header: { name: "home/user/.profile", mode: 0o644, uid: 1000, gid: 1000 }, data: "PS1=$\n" },
    { header: { name: "home/user/link", type: "symlink", linkname: "/nonexistent", uid: 1000, gid: 1001 } },
    // Ids beyond the ustar field's range travel in PAX records, as Go's archive/tar writes them.
    { header: { name: "big-ids", mode: 0o640, pax: { uid: "1000000000", gid: "2000000" } }, data: "" },
  ]);
  await unpack(layer, box.target);
  const at = (p: string) => Deno.lstatSync(`${box.target}/${p}`);
  assert.equal(at("usr/bin/passwd").mode! & 0o7777, 0o4755);
  assert.equal(at("usr/bin/wall").mode! & 0o7777, 0o2755);
  assert.deepEqual([at("usr/bin/wall").uid, at("usr/bin/wall").gid], [1000, 5]);
  assert.equal(at("usr/bin").mode! & 0o7777, 0o2775);
  assert.equal(at("usr/bin").gid, 50);
  assert.deepEqual([at("home/user").uid, at("home/user/.profile").uid], [1000, 1000]);
  assert.deepEqual([at("home/user/link").uid, at("home/user/link").gid], [1000, 1001], "lchown, not chown");
  assert.deepEqual([at("big-ids").uid, at("big-ids").gid], [1_000_000_000, 2_000_000]);
});

Deno.test("unpackLayer: character and block devices and FIFOs (root)", needsRoot, async () => {
  using box = sandbox();
  const layer = await tarOf([
    { header: { name: "dev/null", type: "character-device", mode: 0o666, devmajor: 1, devminor: 3 } },
    { header: { name: "dev/loop0", type: "block-device", mode: 0o660, devmajor: 7, devminor: 0, gid: 6 } },
    { raw: ustar({ name: "dev/big", typeflag: "3", mode: 0o600, devmajor: 4095, devminor: 1048575 }) },
    { header: { name: "run/fifo", type: "fifo", mode: 0o620 } },
  ]);
  await unpack(layer, box.target);
  const at = (p: string) => Deno.lstatSync(`${box.target}/${p}`);
  assert.equal(at("dev/null").mode!, 0o020666);
  assert.equal(at("dev/null").rdev, 0x103);
  assert.equal(at("dev/loop0").mode!, 0o060660);
  assert.equal(at("dev/loop0").rdev, 0x700);
  assert.equal(at("dev/loop0").gid, 6);
  assert.equal(at("dev/big").rdev, Number(libc.makedev(4095, 1048575)));
  assert.equal(at("run/fifo").mode!, 0o010620);
});

Deno.test(
  "unpackLayer: xattrs from PAX records, binary security.capability included (root)",
  needsRoot,
  async () => {
    using box = sandbox();
    // VFS_CAP_REVISION_2 with CAP_SETUID (bit 7, so byte 0x80: not valid UTF-8) and CAP_NET_RAW.
    const cap = new Uint8Array([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const layer = await tarOf([
      {
        raw: paxHeader([
          paxRecord("SCHILY.xattr.security.capability", cap),
          paxRecord("SCHILY.xattr.user.origin", "floka"),
          paxRecord("SCHILY.xattr.trusted.overlay.redirect", "/elsewhere"),
        ]),
      },
      { raw: rawFile("usr/bin/ping", "ping", 0o755) },
      { header: { name: "data/", type: "directory", pax: { "SCHILY.xattr.user.dir": "yes" } } },
      { header: { name: "data/note", pax: { "SCHILY.xattr.user.note": "héllo" } }, data: "n" },
    ]);
    await unpack(layer, box.target);
    assert.deepEqual(libc.lgetxattr(`${box.target}/usr/bin/ping`, "security.capability"), cap);
    assert.equal(xattr(`${box.target}/usr/bin/ping`, "user.origin"), "floka");
    assert.equal(
      xattr(`${box.target}/usr/bin/ping`, "trusted.overlay.redirect"),
      null,
      "overlay xattrs are dropped",
    );
    assert.equal(Deno.lstatSync(`${box.target}/usr/bin/ping`).mode! & 0o7777, 0o755);
    assert.equal(xattr(`${box.target}/data`, "user.dir"), "yes");
    assert.equal(xattr(`${box.target}/data/note`, "user.note"), "héllo");
  },
);

Deno.test(
  "unpackLayer: whiteouts become 0:0 character devices, opaque markers an xattr (root)",
  needsRoot,
  async () => {
    using box = sandbox();
    const layer = await tarOf([
      { header: { name: "etc/", type: "directory" } },
      { header: { name: "etc/.wh.motd" }, data: "" },
      { header: { name: "var/cache/", type: "directory", mode: 0o755 } },
      { header: { name: "var/cache/.wh..wh..opq" }, data: "" },
      { header: { name: "var/cache/fresh" }, data: "new" },
      { header: { name: "opt/.wh..wh..opq" }, data: "" }, // its directory has no entry of its own
      { header: { name: ".wh.gone-at-root" }, data: "" },
      { header: { name: "usr/", type: "directory" } },
      { header: { name: "usr/.wh..wh.plnk" }, data: "" }, // AUFS bookkeeping: ignored
    ]);
    await unpack(layer, box.target);
    for (const p of ["etc/motd", "gone-at-root"]) {
      const st = Deno.lstatSync(`${box.target}/${p}`);
      assert.equal(st.mode! & 0o170000, 0o020000, `${p} is a character device`);
      assert.equal(st.rdev, 0, `${p} is device 0:0`);
    }
    assert.ok(!pathExists(`${box.target}/etc/.wh.motd`));
    assert.equal(xattr(`${box.target}/var/cache`, "trusted.overlay.opaque"), "y");
    assert.equal(xattr(`${box.target}/opt`, "trusted.overlay.opaque"), "y");
    assert.equal(Deno.readTextFileSync(`${box.target}/var/cache/fresh`), "new");
    assert.deepEqual([...Deno.readDirSync(`${box.target}/usr`)], []);
    assert.ok(!pathExists(`${box.target}/var/cache/.wh..wh..opq`));
  },
);

Deno.test("unpackLayer: later entries replace earlier ones, directory entries update metadata", async () => {
  using box = sandbox();
  const layer = await tarOf([
    { header: { name: "a", mode: 0o644 }, data: "first" },
    { header: { name: "a", mode: 0o600 }, data: "second" },
    { header: { name: "b", type: "symlink", linkname: "a" } },
    { header: { name: "b", mode: 0o644 }, data: "file now" }, // not written through the old symlink
    { header: { name: "c", mode: 0o644 }, data: "file" },
    { header: { name: "c", type: "symlink", linkname: "/etc/passwd" } },
    { header: { name: "d/", type: "directory", mode: 0o700 } },
    { header: { name: "d/inner" }, data: "kept" },
    { header: { name: "d/", type: "directory", mode: 0o750, mtime: new Date(1_234_567_890_000) } },
    { header: { name: "e/", type: "directory" } },
    { header: { name: "e/inner" }, data: "gone" },
    { header: { name: "e" }, data: "a file replaces the directory" },
    { header: { name: "orig" }, data: "v1" },
    { header: { name: "hard", type: "link", linkname: "orig" } },
    { header: { name: "orig" }, data: "v2" }, // replaces the name, not the hardlinked file
    { header: { name: "orig", type: "link", linkname: "./orig" } }, // a link to itself: nothing to do
  ]);
  await unpack(layer, box.target);
  const text = (p: string) => Deno.readTextFileSync(`${box.target}/${p}`);
  assert.equal(text("a"), "second");
  assert.equal(Deno.lstatSync(`${box.target}/a`).mode! & 0o777, 0o600);
  assert.ok(Deno.lstatSync(`${box.target}/b`).isFile);
  assert.equal(text("b"), "file now");
  assert.equal(text("a"), "second");
  assert.equal(Deno.readLinkSync(`${box.target}/c`), "/etc/passwd");
  assert.equal(text("d/inner"), "kept");
  assert.equal(Deno.lstatSync(`${box.target}/d`).mode! & 0o777, 0o750);
  assert.equal(Deno.lstatSync(`${box.target}/d`).mtime!.getTime(), 1_234_567_890_000);
  assert.equal(text("e"), "a file replaces the directory");
  assert.equal(text("hard"), "v1");
  assert.equal(text("orig"), "v2");
});

Deno.test("unpackLayer: long names and link targets (GNU and PAX)", async () => {
  using box = sandbox();
  const deep = Array.from({ length: 12 }, (_, i) => `directory-number-${i}`).join("/");
  const longName = `${deep}/${"f".repeat(150)}`;
  const layer = await tarOf([
    { header: { name: longName }, data: "deep" },
    { header: { name: "l", type: "symlink", linkname: `/${longName}` } },
    { header: { name: "h", type: "link", linkname: longName } },
    { header: { name: "ünïcødé/файл" }, data: "utf-8" },
  ]);
  await unpack(layer, box.target);
  assert.equal(Deno.readTextFileSync(`${box.target}/${longName}`), "deep");
  assert.equal(Deno.readLinkSync(`${box.target}/l`), `/${longName}`);
  assert.equal(Deno.readTextFileSync(`${box.target}/h`), "deep");
  assert.equal(Deno.readTextFileSync(`${box.target}/ünïcødé/файл`), "utf-8");
});

Deno.test("unpackLayer: diff_id and size are those of the uncompressed tar, for every compression", async () => {
  const layer = await tarOf([
    { header: { name: "etc/os-release" }, data: "NAME=floka\n".repeat(100) },
    { header: { name: "bin/tool", mode: 0o755 }, data: new Uint8Array(70_000).map((_, i) => i * 7) },
  ]);
  for (
    const [compression, blob] of [
      ["none", layer],
      ["gzip", await gzip(layer)],
      ["zstd", zstd(layer)],
    ] as const
  ) {
    using box = sandbox();
    const result = await unpack(blob, box.target, compression);
    assert.deepEqual(result, { diffId: sha256(layer), size: layer.length }, compression);
    assert.equal(Deno.readFileSync(`${box.target}/bin/tool`).length, 70_000);
  }
});

Deno.test("unpackLayer: multi-member gzip (as eStargz writes) and bytes after the end of the archive", async () => {
  using box = sandbox();
  const layer = await tarOf([
    { header: { name: "a" }, data: "A".repeat(3000) },
    { header: { name: "b" }, data: "B".repeat(3000) },
  ]);
  const padded = concatBytes([layer, new Uint8Array(4096)]); // tar pads to a record with zero blocks
  const members = concatBytes([await gzip(padded.subarray(0, 2048)), await gzip(padded.subarray(2048))]);
  const result = await unpack(members, box.target, "gzip");
  assert.deepEqual(result, { diffId: sha256(padded), size: padded.length });
  assert.equal(Deno.readTextFileSync(`${box.target}/b`), "B".repeat(3000));
});

Deno.test("unpackLayer: large layers are unpacked in a worker thread, gzip, zstd and uncompressed", async () => {
  // Random bytes do not compress, so the blob passes the worker threshold (a few MiB).
  const big = new Uint8Array(6 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  const layer = await tarOf([
    { header: { name: "small" }, data: "s" },
    { header: { name: "big.bin", mode: 0o600 }, data: big },
    { header: { name: "after" }, data: "a" },
  ]);
  const blobs = [["gzip", await gzip(layer)], ["zstd", zstd(layer)], ["none", layer]] as const;
  for (const [compression, blob] of blobs) {
    using box = sandbox();
    const result = await unpack(blob, box.target, compression);
    assert.deepEqual(result, { diffId: sha256(layer), size: layer.length }, compression);
    assert.equal(sha256(Deno.readFileSync(`${box.target}/big.bin`)), sha256(big));
    assert.equal(Deno.readTextFileSync(`${box.target}/after`), "a");
  }
});

Deno.test("unpackLayer: a broken large layer fails cleanly through the worker", async () => {
  const big = new Uint8Array(6 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  const layer = await tarOf([
    { header: { name: "big.bin" }, data: big },
    { header: { name: "../escape" }, data: "x" },
  ]);
  const gz = await gzip(layer);
  const cases: [string, Uint8Array, "gzip" | "zstd", RegExp][] = [
    ["unsafe entry after the data", gz, "gzip", /^entry "\.\.\/escape": path leaves the layer$/],
    [
      "truncated gzip",
      gz.subarray(0, gz.length - 100_000),
      "gzip",
      /^gzip data is corrupt: unexpected end of file$/,
    ],
    ["truncated zstd", zstd(layer).subarray(0, 5_000_000), "zstd", /^zstd data is truncated$/],
  ];
  for (const [what, blob, compression, message] of cases) {
    using box = sandbox();
    await assert.rejects(unpack(blob, box.target, compression), (err) => {
      assert.ok(err instanceof FlokaError, what);
      assert.match(err.message, message, what);
      return true;
    });
    assert.ok(!pathExists(box.target), `${what}: the target is removed`);
  }
});

/** A stream of `bytes` in chunks of 64 KiB that fails with `error` after `failAfter` bytes. */
function failingStream(bytes: Uint8Array, failAfter: number, error: Error): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, 0)); // as a download: in turns
      if (at >= failAfter) return controller.error(error);
      const end = Math.min(at + 65536, failAfter);
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  });
}

Deno.test("unpackLayer: a stream that fails midway fails the worker's layer, and the target is gone first", async () => {
  // Many small files, then more: the worker is busy writing when the stream fails.
  const entries: Entry[] = [];
  for (let i = 0; i < 300; i++) entries.push({ header: { name: `d/f${i}` }, data: "x".repeat(20_000) });
  const layer = await tarOf(entries);
  const failure = new FlokaError("the registry went away");
  using workers = new UnpackWorkers(1);
  for (const options of [{ thread: "worker" }, { workers }] as const) {
    for (const compression of ["none", "gzip"] as const) {
      using box = sandbox();
      const blob = compression === "gzip" ? await gzip(layer) : layer;
      const stream = failingStream(blob, Math.floor(blob.length * 0.6), failure);
      await assert.rejects(unpackLayer(stream, compression, box.target, options), (err) => {
        assert.equal(err, failure, "the stream's own error");
        return true;
      });
      assert.ok(!pathExists(box.target), `${compression}: the target is removed before the promise settles`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(!pathExists(box.target), `${compression}: and nothing writes there afterwards`);
    }
  }
  // The pool's worker is still good.
  using box = sandbox();
  const result = await unpack(layer, box.target, "none", { workers });
  assert.deepEqual(result, { diffId: sha256(layer), size: layer.length });
  assert.equal(Deno.readTextFileSync(`${box.target}/d/f299`), "x".repeat(20_000));
});

Deno.test("unpackLayer: a pool of one worker serves layers that wait for it, in turn", async () => {
  const layers = await Promise.all(
    [0, 1, 2].map((n) => tarOf([{ header: { name: `layer${n}/f` }, data: `content ${n}` }])),
  );
  using workers = new UnpackWorkers(1, 0); // none started in advance: the first is started on demand
  const boxes = layers.map(() => sandbox());
  try {
    const results = await Promise.all(
      layers.map((layer, n) =>
        n === 1
          ? unpack(zstd(layer), boxes[n].target, "zstd", { workers })
          : unpack(layer, boxes[n].target, "none", { workers })
      ),
    );
    for (const [n, layer] of layers.entries()) {
      assert.deepEqual(results[n], { diffId: sha256(layer), size: layer.length });
      assert.equal(Deno.readTextFileSync(`${boxes[n].target}/layer${n}/f`), `content ${n}`);
    }
  } finally {
    for (const box of boxes) box[Symbol.dispose]();
  }
});

Deno.test("unpackLayer: the target must be new or an empty directory", async () => {
  using box = sandbox();
  const layer = await tarOf([{ header: { name: "f" }, data: "x" }]);
  Deno.mkdirSync(box.target);
  await unpack(layer, box.target); // empty: fine
  await assert.rejects(unpack(layer, box.target), /is not empty/);
  assert.equal(Deno.readTextFileSync(`${box.target}/f`), "x", "a non-empty target is left alone");
  Deno.writeTextFileSync(`${box.base}/file`, "");
  await assert.rejects(unpack(layer, `${box.base}/file`), /exists and is not a directory/);
  Deno.symlinkSync(box.outside, `${box.base}/symlink`);
  await assert.rejects(unpack(layer, `${box.base}/symlink`), /exists and is not a directory/);
  assert.ok(!pathExists(`${box.outside}/f`));
});

Deno.test("libc: lutimens and lchown act on a symlink itself, lgetxattr reads back raw bytes", () => {
  using box = sandbox();
  const before = Deno.lstatSync(`${box.outside}/victim`);
  libc.lutimens(`${box.outside}/link`, { sec: 1, nsec: 5 }, { sec: -100, nsec: 500_000_000 });
  assert.equal(Deno.lstatSync(`${box.outside}/link`).mtime!.getTime(), -99_500);
  assert.equal(Deno.lstatSync(`${box.outside}/victim`).mtime!.getTime(), before.mtime!.getTime());
  if (isRoot) {
    libc.lchown(`${box.outside}/link`, 4321, 4321);
    assert.equal(Deno.lstatSync(`${box.outside}/link`).uid, 4321);
    assert.equal(Deno.lstatSync(`${box.outside}/victim`).uid, before.uid);
  }
  const value = new Uint8Array([0, 0x80, 0xff, 0x0a]);
  libc.lsetxattr(`${box.outside}/victim`, "user.floka-test", value);
  assert.deepEqual(libc.lgetxattr(`${box.outside}/victim`, "user.floka-test"), value);
  assert.equal(libc.lgetxattr(`${box.outside}/victim`, "user.absent"), null);
  assert.throws(() => libc.lgetxattr(`${box.outside}/nonexistent`, "user.x"), /lgetxattr.*ENOENT/);
});

// ---------------------------------------------------------------------------------------
// The malicious corpus. Each layer either is refused (the message names the entry, the
// target is gone) or is confined (the result stays inside the target); either way nothing
// next to the target changes.

interface Attack {
  name: string;
  layer: (box: Sandbox) => Promise<Uint8Array> | Uint8Array;
  compression?: "gzip" | "zstd" | "none";
  /** The error expected; absent when the layer is confined rather than refused. */
  refused?: RegExp;
  /** For a confined layer: checks on what it produced inside the target. */
  confined?: (box: Sandbox) => void;
  root?: boolean;
}

/** A path that must never appear on the host. */
const hostCanary = `/etc/floka-unpack-canary-${crypto.randomUUID()}`;

const attacks: Attack[] = [
  {
    name: "a name climbing out with ../..",
    layer: () => tarOf([{ header: { name: "../../etc/x" }, data: "pwned" }]),
    refused: /^entry "\.\.\/\.\.\/etc\/x": path leaves the layer$/,
  },
  {
    name: "a name that climbs out through a directory (a/../../x)",
    layer: () => tarOf([{ header: { name: "a/../../outside/victim" }, data: "pwned" }]),
    refused: /^entry "a\/\.\.\/\.\.\/outside\/victim": path leaves the layer$/,
  },
  {
    name: "a directory entry named ../",
    layer: () => tarOf([{ header: { name: "../", type: "directory", mode: 0o777 } }]),
    refused: /^entry "\.\.\/": path leaves the layer$/,
  },
  {
    name: "an absolute name is confined to the target",
    layer: () => tarOf([{ header: { name: hostCanary }, data: "confined" }]),
    confined: (box) => {
      assert.ok(!pathExists(hostCanary));
      assert.equal(Deno.readTextFileSync(`${box.target}${hostCanary}`), "confined");
    },
  },
  {
    name: "a symlink to / and a file written through it",
    layer: (box) =>
      tarOf([
        { header: { name: "evil", type: "symlink", linkname: "/" } },
        { header: { name: `evil${box.outside}/victim` }, data: "pwned" },
      ]),
    refused: /^entry "evil\/.*\/outside\/victim": parent "evil" is a symlink$/,
  },
  {
    name: "a symlink climbing with ../.. and a file through it",
    // ../.. from the target is the sandbox's parent: back down into the sentinel, so that a
    // broken unpacker would be caught by the snapshot rather than write on the host.
    layer: (box) =>
      tarOf([
        { header: { name: "up", type: "symlink", linkname: `../../${box.base.split("/").pop()}/outside` } },
        { header: { name: "up/victim" }, data: "pwned" },
      ]),
    refused: /^entry "up\/victim": parent "up" is a symlink$/,
  },
  {
    name: "a chain of symlinks escaping, then a file through its head",
    layer: () =>
      tarOf([
        { header: { name: "a", type: "symlink", linkname: "b" } },
        { header: { name: "b", type: "symlink", linkname: "c" } },
        { header: { name: "c", type: "symlink", linkname: "../outside" } },
        { header: { name: "a/victim" }, data: "pwned" },
      ]),
    refused: /^entry "a\/victim": parent "a" is a symlink$/,
  },
  {
    name: "a symlink deep in a real directory, then a directory through it",
    layer: () =>
      tarOf([
        { header: { name: "d/", type: "directory" } },
        { header: { name: "d/l", type: "symlink", linkname: "../../outside" } },
        { header: { name: "d/l/etc/", type: "directory", mode: 0o777 } },
      ]),
    refused: /^entry "d\/l\/etc\/": parent "d\/l" is a symlink$/,
  },
  {
    name: "a symlink named .",
    layer: () => tarOf([{ header: { name: ".", type: "symlink", linkname: "../outside" } }]),
    refused: /^entry "\.": a symlink cannot replace the layer's root directory$/,
  },
  {
    name: "a symlink named /",
    layer: () => tarOf([{ raw: ustar({ name: "/", typeflag: "2", linkname: "/" }) }]),
    refused: /^entry "\/": a symlink cannot replace the layer's root directory$/,
  },
  {
    name: "a file named ./ replacing the root",
    layer: () => tarOf([{ raw: rawFile("./", "x") }]),
    refused: /^entry "\.\/": /,
  },
  {
    name: "a hardlink to /etc/passwd",
    layer: () => tarOf([{ header: { name: "passwd", type: "link", linkname: "/etc/passwd" } }]),
    refused: /^entry "passwd": hardlink target "\/etc\/passwd" is not in the layer$/,
  },
  {
    name: "a hardlink to ../outside",
    layer: () => tarOf([{ header: { name: "victim", type: "link", linkname: "../outside/victim" } }]),
    refused: /^entry "victim": hardlink target "\.\.\/outside\/victim": path leaves the layer$/,
  },
  {
    name: "a hardlink through a symlinked directory",
    layer: (box) =>
      tarOf([
        { header: { name: "l", type: "symlink", linkname: box.outside } },
        { header: { name: "stolen", type: "link", linkname: "l/victim" } },
      ]),
    refused: /^entry "stolen": hardlink target "l\/victim" goes through the symlink "l"$/,
  },
  {
    name: "a hardlink to a directory",
    layer: () =>
      tarOf([
        { header: { name: "d/", type: "directory" } },
        { header: { name: "x", type: "link", linkname: "d" } },
      ]),
    refused: /^entry "x": hardlink target "d" is a directory$/,
  },
  {
    name: "a hardlink to a symlink pointing out links the symlink itself",
    layer: (box) =>
      tarOf([
        { header: { name: "s", type: "symlink", linkname: `${box.outside}/victim` } },
        { header: { name: "h", type: "link", linkname: "s" } },
      ]),
    confined: (box) => {
      assert.ok(Deno.lstatSync(`${box.target}/h`).isSymlink);
      assert.equal(Deno.readLinkSync(`${box.target}/h`), `${box.outside}/victim`);
    },
  },
  {
    name: "a whiteout .wh..",
    layer: () => tarOf([{ header: { name: "etc/.wh.." }, data: "" }]),
    refused: /^entry "etc\/\.wh\.\.": invalid whiteout "\.wh\.\."$/,
  },
  {
    name: "a whiteout .wh...",
    layer: () => tarOf([{ header: { name: ".wh..." }, data: "" }]),
    refused: /^entry "\.wh\.\.\.": invalid whiteout "\.wh\.\.\."$/,
  },
  {
    name: "a whiteout through a symlinked directory pointing out",
    layer: () =>
      tarOf([
        { header: { name: "l", type: "symlink", linkname: "../outside" } },
        { header: { name: "l/.wh.victim" }, data: "" },
      ]),
    refused: /^entry "l\/\.wh\.victim": parent "l" is a symlink$/,
  },
  {
    name: "an opaque marker through a symlinked directory pointing out",
    layer: () =>
      tarOf([
        { header: { name: "l", type: "symlink", linkname: "../outside/etc" } },
        { header: { name: "l/.wh..wh..opq" }, data: "" },
      ]),
    refused: /^entry "l\/\.wh\.\.wh\.\.opq": parent "l" is a symlink$/,
  },
  {
    name: "a whiteout climbing out",
    layer: () => tarOf([{ header: { name: "../outside/.wh.victim" }, data: "" }]),
    refused: /^entry "\.\.\/outside\/\.wh\.victim": path leaves the layer$/,
  },
  {
    name: "a device with a huge major number",
    layer: () =>
      tarOf([{ header: { name: "dev/x", type: "character-device", devmajor: 4096, devminor: 1 } }]),
    refused: /^entry "dev\/x": device major number 4096 is out of range \(0-4095\)$/,
  },
  {
    name: "a device with a huge minor number",
    layer: () => tarOf([{ raw: ustar({ name: "dev/y", typeflag: "4", devmajor: 8, devminor: 2097151 }) }]),
    refused: /^entry "dev\/y": device minor number 2097151 is out of range/,
  },
  {
    name: "an entry type Linux cannot hold (GNU sparse)",
    layer: () => tarOf([{ raw: ustar({ name: "sparse", typeflag: "S" }) }]),
    refused: /^entry "sparse": unsupported entry type \(unknown typeflag\)$/,
  },
  {
    name: "a uid of (uid_t)-1 from PAX",
    layer: () => tarOf([{ raw: paxHeader([paxRecord("uid", "4294967295")]) }, { raw: rawFile("f", "x") }]),
    refused: /^entry "f": uid 4294967295 is out of range$/,
  },
  {
    name: "a NUL byte in a PAX path",
    layer: () => tarOf([{ raw: paxHeader([paxRecord("path", "a\0/../../x")]) }, { raw: rawFile("f", "x") }]),
    refused: /path contains a NUL byte$/,
  },
  {
    name: "a truncated tar",
    layer: async () =>
      (await tarOf([{ header: { name: "big" }, data: "x".repeat(100_000) }])).subarray(0, 50_000),
    refused: /^entry "big": the tar stream is truncated$/,
  },
  {
    name: "a tar cut between entries",
    layer: async () =>
      (await tarOf([{ header: { name: "a" }, data: "1" }, { header: { name: "b" }, data: "2" }])).subarray(
        0,
        1300,
      ),
    refused: /^the tar stream is truncated after entry "a"$/,
  },
  {
    name: "a truncated gzip",
    layer: async () => {
      const gz = await gzip(await tarOf([{ header: { name: "f" }, data: "x".repeat(50_000) }]));
      return gz.subarray(0, gz.length - 20);
    },
    compression: "gzip",
    refused: /^gzip data is corrupt: unexpected end of file$/,
  },
  {
    name: "a corrupt zstd frame",
    layer: async () => {
      const zs = zstd(await tarOf([{ header: { name: "f" }, data: "x".repeat(50_000) }]));
      zs[4] |= 0x08; // the reserved bit of the frame header descriptor
      return zs;
    },
    compression: "zstd",
    refused: /^zstd data is corrupt: reserved frame header bit set$/,
  },
  {
    name: "a truncated zstd",
    layer: async () => {
      const zs = zstd(await tarOf([{ header: { name: "f" }, data: "y".repeat(50_000) }]));
      return zs.subarray(0, zs.length - 3);
    },
    compression: "zstd",
    refused: /^zstd data is truncated$/,
  },
  {
    name: "garbage after a zstd frame",
    layer: async () =>
      concatBytes([zstd(await tarOf([{ header: { name: "f" }, data: "z" }])), encoder.encode("garbage!!")]),
    compression: "zstd",
    refused: /^zstd data is corrupt: not a zstd frame$/,
  },
  {
    name: "garbage bytes as a tar",
    layer: () => crypto.getRandomValues(new Uint8Array(4096)),
    refused: /^invalid tar header: the layer is corrupt or not a tar stream$/,
  },
  {
    name: "garbage bytes as gzip",
    layer: () => crypto.getRandomValues(new Uint8Array(4096)),
    compression: "gzip",
    refused: /^gzip data is corrupt: /,
  },
  {
    name: "an empty gzip blob",
    layer: () => new Uint8Array(),
    compression: "gzip",
    refused: /^gzip data is empty$/,
  },
  {
    name: "a file replacing a directory that holds symlinks out",
    layer: (box) =>
      tarOf([
        { header: { name: "d/", type: "directory" } },
        { header: { name: "d/out", type: "symlink", linkname: box.outside } },
        { header: { name: "d/root", type: "symlink", linkname: "/" } },
        { header: { name: "d/victim", type: "link", linkname: "d/out" } },
        { header: { name: "d" }, data: "now a file" },
      ]),
    confined: (box) => assert.equal(Deno.readTextFileSync(`${box.target}/d`), "now a file"),
  },
  {
    name: "a later directory entry over a symlink out (chmod and chown are confined)",
    layer: (box) =>
      tarOf([
        { header: { name: "link", type: "symlink", linkname: `${box.outside}/etc` } },
        { header: { name: "link/", type: "directory", mode: 0o777, uid: 1234, gid: 1234 } },
      ]),
    confined: (box) => {
      const st = Deno.lstatSync(`${box.target}/link`);
      assert.ok(st.isDirectory);
      assert.equal(st.mode! & 0o777, 0o777);
    },
  },
  {
    name: "a file over a symlink out is written in place of the symlink",
    layer: () =>
      tarOf([
        { header: { name: "x", type: "symlink", linkname: "../outside/victim" } },
        { header: { name: "x", mode: 0o4777, uid: 0 }, data: "pwned" },
      ]),
    confined: (box) => {
      assert.ok(Deno.lstatSync(`${box.target}/x`).isFile);
      assert.equal(Deno.readTextFileSync(`${box.target}/x`), "pwned");
    },
  },
  {
    name: "a device node over a symlink out",
    root: true,
    layer: () =>
      tarOf([
        { header: { name: "n", type: "symlink", linkname: "../outside/victim" } },
        { header: { name: "n", type: "fifo", mode: 0o666 } },
      ]),
    confined: (box) => assert.equal(Deno.lstatSync(`${box.target}/n`).mode! & 0o170000, 0o010000),
  },
  {
    name: "a whiteout over a symlink out removes the symlink only",
    root: true,
    layer: () =>
      tarOf([
        { header: { name: "w", type: "symlink", linkname: "../outside/victim" } },
        { header: { name: ".wh.w" }, data: "" },
      ]),
    confined: (box) => assert.equal(Deno.lstatSync(`${box.target}/w`).rdev, 0),
  },
];

/** Unpacks `attack`'s layer next to the sentinel and checks that it is refused or confined. */
async function withstand(attack: Attack, options: UnpackOptions): Promise<void> {
  using box = sandbox();
  const before = surroundings(box);
  const passwdBefore = Deno.lstatSync("/etc/passwd");
  const layer = await attack.layer(box);
  if (attack.refused) {
    await assert.rejects(unpack(layer, box.target, attack.compression, options), (err) => {
      assert.ok(err instanceof FlokaError, `a FlokaError, not ${err}`);
      assert.match(err.message, attack.refused!);
      assert.ok(!err.message.includes("\n"), "one line");
      return true;
    });
    assert.ok(!pathExists(box.target), "the target is removed");
  } else {
    await unpack(layer, box.target, attack.compression, options);
    attack.confined!(box);
  }
  assert.deepEqual(surroundings(box), before, "nothing outside the target changed");
  const passwdAfter = Deno.lstatSync("/etc/passwd");
  assert.deepEqual([passwdAfter.nlink, passwdAfter.mtime], [passwdBefore.nlink, passwdBefore.mtime]);
  assert.ok(!pathExists(hostCanary));
}

for (const attack of attacks) {
  Deno.test({
    name: `unpackLayer refuses or confines: ${attack.name}`,
    ignore: attack.root === true && !isRoot,
    fn: () => withstand(attack, { thread: "current" }),
  });
}

Deno.test("unpackLayer in a pool's worker refuses or confines the whole corpus, one layer after another", async () => {
  // One worker for all: after each refused layer it must be as good as new.
  using workers = new UnpackWorkers(1);
  for (const attack of attacks) {
    if (attack.root === true && !isRoot) continue;
    try {
      await withstand(attack, { workers });
    } catch (err) {
      throw new Error(`${attack.name}: ${(err as Error).message}`, { cause: err });
    }
  }
});
