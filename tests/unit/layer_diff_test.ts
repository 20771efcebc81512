/**
 * layer_diff against upper directories built here: a round trip through unpackLayer that
 * must give back the same tree (every entry kind, owners, modes, times, xattrs, hard links,
 * whiteouts, opaque directories), byte-identical archives from the same tree, the entry
 * order and names, a real overlayfs mount, and the upper directories that must be refused.
 *
 * Owners, device nodes, whiteouts and trusted.* xattrs need root; those tests are skipped
 * otherwise.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import tar from "tar-stream";
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { diffTar, encodeHeader, isEmptyDiff, writeLayerBlob } from "../../src/build/layer_diff.ts";
import { unpackLayer } from "../../src/images/unpack.ts";

const isRoot = libc.geteuid() === 0;
const needsRoot = { ignore: !isRoot };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const OPAQUE = encoder.encode("y");
// VFS_CAP_REVISION_2 with CAP_SETUID (bit 7: byte 0x80, not valid UTF-8) and CAP_NET_RAW.
const CAPABILITY = new Uint8Array([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

// ---------------------------------------------------------------------------------------
// Helpers.

/** A temporary directory removed at the end of the test. */
function tempDir(): { path: string; [Symbol.dispose](): void } {
  const path = Deno.makeTempDirSync({ prefix: "floka-layer-diff-" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

function sha256(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream as ReadableStream<Uint8Array<ArrayBuffer>>).arrayBuffer());
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The entries of a tar archive: name, type, mode, size, link target, and PAX records. */
async function entriesOf(archive: Uint8Array): Promise<
  { name: string; type: string | null; mode: number; size: number; linkname: string | null; pax: string[] }[]
> {
  const extract = tar.extract();
  const out = [];
  extract.end(archive);
  for await (const entry of extract) {
    const h = entry.header;
    out.push({
      name: h.name,
      type: h.type as string | null,
      mode: h.mode,
      size: h.size,
      linkname: h.linkname ?? null,
      pax: Object.keys(h.pax ?? {}).sort(),
    });
    entry.resume();
  }
  return out;
}

/** The names of the archive as `tar -t` lists them; null when GNU tar is not installed. */
async function gnuTarList(archive: Uint8Array): Promise<string[] | null> {
  let child: Deno.ChildProcess;
  try {
    // A UTF-8 locale, or GNU tar lists non-ASCII names as octal escapes.
    const env = { LC_ALL: "C.UTF-8" };
    child = new Deno.Command("tar", { args: ["-tf", "-"], env, stdin: "piped", stdout: "piped" }).spawn();
  } catch {
    return null;
  }
  const writer = child.stdin.getWriter();
  await writer.write(archive as Uint8Array<ArrayBuffer>);
  await writer.close();
  const { code, stdout } = await child.output();
  assert.equal(code, 0, "GNU tar reads the archive");
  return decoder.decode(stdout).split("\n").filter((line) => line !== "");
}

/**
 * Everything a layer carries about the tree at `dir`, one line per name (not the root), in
 * a form where an upper directory and its unpacked layer compare equal: a whiteout is a
 * whiteout whichever way overlayfs spells it, and overlayfs's own xattrs are left out.
 */
function describeTree(dir: string): string[] {
  const lines: string[] = [];
  const firstName = new Map<string, string>(); // dev:ino -> first path, for hard links
  // `holdsXattrWhiteouts`: the directory is marked opaque=x, where overlayfs honours xattr whiteouts.
  const walk = (path: string, shown: string, holdsXattrWhiteouts: boolean) => {
    const names = [...Deno.readDirSync(path)].map((e) => e.name).sort();
    for (const name of names) {
      const full = `${path}/${name}`;
      const rel = shown + name;
      const st = Deno.lstatSync(full);
      const xattrs = new Map(libc.llistxattr(full).map((n) => [n, libc.lgetxattr(full, n)!]));
      const type = st.mode! & 0o170000;
      const xattrWhiteout = holdsXattrWhiteouts && st.isFile && st.size === 0 &&
        xattrs.has("trusted.overlay.whiteout");
      if ((type === S_IFCHR && st.rdev === 0) || xattrWhiteout) {
        lines.push(`${rel} whiteout uid=${st.uid} gid=${st.gid}`);
        continue;
      }
      let line = `${rel} type=${(type >> 12).toString(8)} mode=${(st.mode! & 0o7777).toString(8)} ` +
        `uid=${st.uid} gid=${st.gid} mtime=${Math.floor(st.mtime!.getTime() / 1000)}`;
      if (st.isFile) line += ` size=${st.size} ${sha256(Deno.readFileSync(full))}`;
      if (st.isSymlink) line += ` -> ${Deno.readLinkSync(full)}`;
      if (st.isCharDevice || st.isBlockDevice) line += ` rdev=${st.rdev}`;
      const opaque = decoder.decode(xattrs.get("trusted.overlay.opaque") ?? new Uint8Array());
      if (opaque === "y") line += " opaque";
      const kept = [...xattrs].filter(([n]) => !n.startsWith("trusted.overlay.")).sort();
      for (const [n, v] of kept) line += ` ${n}=${hex(v)}`;
      if (!st.isDirectory && st.nlink! > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (!firstName.has(key)) firstName.set(key, rel);
        line += ` inode-of=${firstName.get(key)}`;
      }
      lines.push(line);
      if (st.isDirectory) walk(full, rel + "/", opaque === "x");
    }
  };
  walk(dir, "", false);
  return lines;
}

const time = (sec: number, nsec = 0) => ({ sec, nsec });

/** Owner, mode, xattrs and times of `path`, in the order that keeps them all (chown clears caps). */
function setMeta(
  path: string,
  meta: { uid?: number; gid?: number; mode?: number; xattrs?: Record<string, Uint8Array>; mtime: number },
): void {
  if (meta.uid !== undefined) libc.lchown(path, meta.uid, meta.gid ?? 0);
  if (meta.mode !== undefined) Deno.chmodSync(path, meta.mode);
  for (const [name, value] of Object.entries(meta.xattrs ?? {})) libc.lsetxattr(path, name, value);
  libc.lutimens(path, time(meta.mtime), time(meta.mtime, 500_000_000)); // sub-second parts are dropped
}

/**
 * An upper directory with every kind of entry the kernel or a build step can leave: the
 * tree of the round-trip test.
 */
function buildUpper(upper: string): void {
  const at = (p: string) => `${upper}/${p}`;
  const dirs = ["etc", "usr", "usr/bin", "tmp", "home", "home/user", "dev", "run", "var", "var/cache", "opt"];
  for (const d of dirs) Deno.mkdirSync(at(d));
  const write = (p: string, content: string | Uint8Array) =>
    Deno.writeFileSync(at(p), typeof content === "string" ? encoder.encode(content) : content);

  write("etc/hostname", "box\n");
  setMeta(at("etc/hostname"), {
    mode: 0o644,
    xattrs: { "user.note": encoder.encode("héllo") },
    mtime: 1_200_000_000,
  });
  write("etc/shadow", "root:*:1::::::\n");
  setMeta(at("etc/shadow"), { mode: 0, gid: 42, uid: 0, mtime: 1_200_000_001 }); // mode 0 must stay 0
  write("usr/bin/busybox", "\x7fELF busybox");
  setMeta(at("usr/bin/busybox"), { mode: 0o755, mtime: 1_300_000_000 });
  Deno.linkSync(at("usr/bin/busybox"), at("usr/bin/busybox-hard"));
  Deno.linkSync(at("usr/bin/busybox"), at("etc/busybox-too")); // sorts first: the others link to it
  write("usr/bin/ping", "ping");
  setMeta(at("usr/bin/ping"), {
    mode: 0o4755,
    xattrs: { "security.capability": CAPABILITY, "trusted.overlay.origin": new Uint8Array([0, 0xfb, 1]) },
    mtime: 1_300_000_001,
  });
  write("usr/bin/wall", "wall");
  setMeta(at("usr/bin/wall"), { mode: 0o2755, uid: 0, gid: 5, mtime: 1_300_000_002 });
  Deno.symlinkSync("busybox", at("usr/bin/sh"));
  setMeta(at("usr/bin/sh"), {
    uid: 1000,
    gid: 1001,
    xattrs: { "trusted.note": encoder.encode("t") },
    mtime: 5,
  });
  const longTarget = "/" + "very-long-directory-name/".repeat(8) + "target";
  Deno.symlinkSync(longTarget, at("usr/bin/long-link"));
  setMeta(at("usr/bin/long-link"), { mtime: 1_400_000_000 });

  write("home/user/.profile", "PS1=$\n");
  setMeta(at("home/user/.profile"), { uid: 1000, gid: 1000, mode: 0o644, mtime: 1_500_000_000 });
  write("home/user/big-ids", "");
  setMeta(at("home/user/big-ids"), { uid: 3_000_000, gid: 2_500_000, mode: 0o640, mtime: 1_500_000_001 });
  write("home/user/before-1970", "old");
  setMeta(at("home/user/before-1970"), { mtime: -86_400 * 365 });
  write("home/user/after-2038", "future");
  setMeta(at("home/user/after-2038"), { mtime: 4_102_444_800 });
  // 3 MiB and a bit: read in several pieces, and not a whole number of blocks.
  const big = new Uint8Array(3 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i += 65536) crypto.getRandomValues(big.subarray(i, i + 65536));
  write("home/user/big", big);
  setMeta(at("home/user/big"), { mode: 0o600, mtime: 1_500_000_002 });
  write("home/user/empty", "");
  setMeta(at("home/user/empty"), { mode: 0o444, mtime: 1_500_000_003 });
  // Names USTAR cannot hold: long (a prefix split and a PAX path) and not ASCII.
  const deep = "d".repeat(60) + "/" + "e".repeat(60);
  Deno.mkdirSync(at(`home/user/${deep}`), { recursive: true });
  write(`home/user/${deep}/${"f".repeat(90)}`, "deep");
  write(`home/user/${"g".repeat(150)}`, "long component");
  write("home/user/café naïve ✓", "unicode");

  libc.mknod(at("dev/null"), S_IFCHR | 0o666, 1, 3);
  libc.mknod(at("dev/loop0"), S_IFBLK | 0o660, 7, 0);
  libc.mknod(at("dev/big"), S_IFCHR | 0o600, 4095, 1048575);
  Deno.mkdirSync(at("run/fifo-dir"));
  new Deno.Command("mkfifo", { args: ["-m", "620", at("run/fifo-dir/fifo")] }).outputSync();

  // Whiteouts as the kernel makes them: 0:0 devices, here two names of one shared inode.
  libc.mknod(at("etc/motd"), S_IFCHR, 0, 0);
  Deno.linkSync(at("etc/motd"), at("var/old-log"));
  libc.mknod(at("gone-at-root"), S_IFCHR, 0, 0);
  libc.lchown(at("gone-at-root"), 7, 8);
  // An xattr whiteout (Linux 6.7), in a directory marked "x": holds such whiteouts, not opaque.
  write("opt/xattr-whiteout", "");
  libc.lsetxattr(at("opt/xattr-whiteout"), "trusted.overlay.whiteout", OPAQUE);
  libc.lsetxattr(at("opt"), "trusted.overlay.opaque", encoder.encode("x"));
  write("opt/kept", "kept");
  // An opaque directory: rm -rf var/cache; mkdir var/cache.
  libc.lsetxattr(at("var/cache"), "trusted.overlay.opaque", OPAQUE);
  write("var/cache/fresh", "new");
  // Only a directory marked "x" holds xattr whiteouts: elsewhere the xattr makes no whiteout.
  write("var/cache/not-a-whiteout", "");
  libc.lsetxattr(at("var/cache/not-a-whiteout"), "trusted.overlay.whiteout", OPAQUE);

  // Directory metadata last: writing inside a directory changes its mtime.
  setMeta(at("tmp"), { mode: 0o1777, mtime: 1_600_000_000 });
  setMeta(at("home/user"), { uid: 1000, gid: 1000, mode: 0o700, mtime: 1_600_000_001 });
  setMeta(at("etc"), { mode: 0o755, xattrs: { "user.dir": encoder.encode("yes") }, mtime: 1_600_000_002 });
  setMeta(at("usr/bin"), { mode: 0o2775, gid: 50, uid: 0, mtime: 1_600_000_003 });
  for (const d of ["usr", "home", "dev", "run", "var/cache", "var", "opt"]) {
    setMeta(at(d), { mtime: 1_600_000_010 });
  }
}

// ---------------------------------------------------------------------------------------
// Round trip.

Deno.test(
  "writeLayerBlob: an upper directory comes back the same through unpackLayer (root)",
  needsRoot,
  async () => {
    using tmp = tempDir();
    const upper = `${tmp.path}/upper`, target = `${tmp.path}/unpacked`, blob = `${tmp.path}/layer.tar.gz`;
    Deno.mkdirSync(upper);
    buildUpper(upper);
    const written = await writeLayerBlob(upper, blob);

    const bytes = Deno.readFileSync(blob);
    assert.equal(written.digest, sha256(bytes));
    assert.equal(written.size, bytes.length);
    const { diffId } = await unpackLayer((await Deno.open(blob)).readable, "gzip", target);
    assert.equal(written.diffId, diffId, "the diff_id is the one unpackLayer computes");

    const expected = describeTree(upper);
    assert.deepEqual(describeTree(target), expected);
    // The comparison really covered what matters.
    const line = (name: string) => expected.find((l) => l.startsWith(name + " "))!;
    assert.match(line("usr/bin/ping"), /mode=4755 .*security\.capability=0100000280200000/);
    assert.match(line("usr/bin/busybox"), /inode-of=etc\/busybox-too/);
    assert.match(line("var/cache"), / opaque/);
    assert.doesNotMatch(line("opt"), / opaque/);
    assert.match(line("var/old-log"), /whiteout/);
    assert.match(line("opt/xattr-whiteout"), /whiteout/);
    assert.match(line("var/cache/not-a-whiteout"), /type=10 mode=644 /);
    assert.match(line("etc/shadow"), /mode=0 /);
    assert.match(line("home/user/before-1970"), /mtime=-31536000/);
    assert.equal(libc.lgetxattr(`${target}/usr/bin/ping`, "trusted.overlay.origin"), null);
  },
);

Deno.test("diffTar: entries, whiteouts and PAX records as Docker writes them (root)", needsRoot, async () => {
  using tmp = tempDir();
  buildUpper(tmp.path);
  const archive = await bytesOf(diffTar(tmp.path));
  const entries = await entriesOf(archive);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const names = entries.map((e) => e.name);

  assert.ok(!names.some((n) => n.startsWith("/") || n.startsWith("./") || n === ""), "relative names");
  assert.equal(names[0], ".wh.gone-at-root", "whiteouts come first in their directory");
  for (const e of entries) {
    assert.equal(e.type === "directory", e.name.endsWith("/"), `${e.name}: only directories end in /`);
  }
  for (const name of [".wh.gone-at-root", "etc/.wh.motd", "var/.wh.old-log", "opt/.wh.xattr-whiteout"]) {
    const e = byName.get(name)!;
    assert.deepEqual([e.type, e.mode, e.size], ["file", 0, 0], `${name} is an empty regular file, mode 0`);
  }
  // The opaque marker follows its directory's own entry, before its contents.
  const cache = names.indexOf("var/cache/");
  assert.deepEqual(names.slice(cache, cache + 3), [
    "var/cache/",
    "var/cache/.wh..wh..opq",
    "var/cache/fresh",
  ]);
  assert.ok(!names.includes("opt/.wh..wh..opq"), 'opaque "x" is not opaque');
  assert.deepEqual(
    ["usr/bin/busybox", "usr/bin/busybox-hard"].map((n) => [byName.get(n)!.type, byName.get(n)!.linkname]),
    [["link", "etc/busybox-too"], ["link", "etc/busybox-too"]],
  );
  assert.equal(byName.get("etc/busybox-too")!.type, "file");
  assert.deepEqual(byName.get("usr/bin/ping")!.pax, ["SCHILY.xattr.security.capability"]);
  assert.deepEqual(byName.get("home/user/big-ids")!.pax, ["gid", "uid"]);
  assert.ok(!decoder.decode(archive).includes("trusted.overlay."), "no overlayfs xattr in the layer");
  const gnu = await gnuTarList(archive);
  if (gnu) assert.deepEqual(gnu, names, "GNU tar reads the same names");
});

// ---------------------------------------------------------------------------------------
// Determinism and order (no root needed).

/** A tree any user can make: directories, files, symlinks, hard links, long names. */
function buildPlainTree(dir: string): void {
  Deno.mkdirSync(`${dir}/a/deeper`, { recursive: true });
  Deno.writeTextFileSync(`${dir}/a/x`, "x");
  Deno.writeTextFileSync(`${dir}/a/deeper/y`, "y".repeat(5000));
  Deno.writeTextFileSync(`${dir}/a.txt`, "a");
  Deno.writeTextFileSync(`${dir}/b`, "b");
  Deno.writeTextFileSync(`${dir}/B`, "B");
  Deno.writeTextFileSync(`${dir}/é`, "e");
  Deno.linkSync(`${dir}/b`, `${dir}/a/hard-b`);
  Deno.symlinkSync("../b", `${dir}/a/sym-b`);
  Deno.writeTextFileSync(`${dir}/${"n".repeat(120)}`, "long");
  for (const p of ["a/x", "a/deeper/y", "a.txt", "b", "B", "é", "a/deeper", "a"]) {
    libc.lutimens(`${dir}/${p}`, time(1_700_000_000), time(1_700_000_000));
  }
}

Deno.test("diffTar: the same tree gives the same bytes, in per-directory byte order", async () => {
  using tmp = tempDir();
  buildPlainTree(tmp.path);
  const first = await bytesOf(diffTar(tmp.path));
  const second = await bytesOf(diffTar(tmp.path));
  assert.equal(sha256(first), sha256(second));
  assert.equal(first.length % 512, 0);

  const entries = await entriesOf(first);
  assert.deepEqual(entries.map((e) => e.name), [
    "B",
    "a/",
    "a/deeper/",
    "a/deeper/y",
    "a/hard-b", // the first name of b's inode in archive order; b links to it
    "a/sym-b",
    "a/x",
    "a.txt",
    "b",
    "n".repeat(120),
    "é",
  ]);
  const b = entries.find((e) => e.name === "b")!;
  assert.deepEqual([b.type, b.linkname], ["link", "a/hard-b"]);
  assert.deepEqual(entries.find((e) => e.name === "a/sym-b")!.linkname, "../b");
  const gnu = await gnuTarList(first);
  if (gnu) assert.deepEqual(gnu, entries.map((e) => e.name));

  using blobs = tempDir();
  const one = await writeLayerBlob(tmp.path, `${blobs.path}/1.gz`);
  const two = await writeLayerBlob(tmp.path, `${blobs.path}/2.gz`);
  assert.deepEqual(one, two);
  assert.equal(one.diffId, sha256(first));
});

Deno.test("encodeHeader: USTAR fields as Go writes them, PAX only where they cannot hold it", () => {
  const base = { type: "file" as const, mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000, size: 5 };
  const plain = encodeHeader({ ...base, name: "etc/hosts" });
  assert.equal(plain.length, 512);
  assert.equal(decoder.decode(plain.subarray(100, 108)), "0000644\0");
  assert.equal(decoder.decode(plain.subarray(257, 265)), "ustar\x0000");
  const sum = plain.reduce((s, b, i) => s + (i >= 148 && i < 156 ? 32 : b), 0);
  assert.equal(decoder.decode(plain.subarray(148, 156)), sum.toString(8).padStart(6, "0") + "\0 ");

  const split = encodeHeader({ ...base, name: "p".repeat(80) + "/" + "q".repeat(80) });
  assert.equal(split.length, 512, "a long name that splits needs no PAX header");
  assert.equal(decoder.decode(split.subarray(345, 425)), "p".repeat(80));

  const binary = encodeHeader({ ...base, name: "ping", xattrs: [["security.capability", CAPABILITY]] });
  assert.equal(binary[156], "x".charCodeAt(0));
  assert.equal(decoder.decode(binary.subarray(0, 18)), "PaxHeaders.0/ping\0");
  const record = binary.subarray(512, 512 + 57); // the length counts its own two digits
  assert.deepEqual([...record], [
    ...encoder.encode("57 SCHILY.xattr.security.capability="),
    ...CAPABILITY,
    0x0a,
  ]);
  assert.equal(binary[512 + 57], 0, "one record, then padding");
  assert.equal(decoder.decode(binary.subarray(1024, 1028)), "ping", "the entry keeps its own name");

  assert.throws(
    () => encodeHeader({ ...base, name: "f", xattrs: [["user.a=b", new Uint8Array()]] }),
    FlokaError,
  );
});

// ---------------------------------------------------------------------------------------
// A real overlayfs upper directory.

Deno.test("diffTar: the upper directory of a real overlayfs mount (root)", needsRoot, async () => {
  using tmp = tempDir();
  const [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map((d) => `${tmp.path}/${d}`);
  for (const d of [lower, upper, work, merged]) Deno.mkdirSync(d);
  Deno.mkdirSync(`${lower}/d/sub`, { recursive: true });
  Deno.mkdirSync(`${lower}/keep/inner`, { recursive: true });
  for (const f of ["a", "b", "c", "d/x", "d/sub/y", "keep/k", "keep/inner/z"]) {
    Deno.writeTextFileSync(`${lower}/${f}`, f);
  }
  const mount = new Deno.Command("mount", {
    args: ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged],
  }).outputSync();
  assert.equal(mount.code, 0, decoder.decode(mount.stderr));
  try {
    Deno.removeSync(`${merged}/a`);
    Deno.removeSync(`${merged}/b`); // the kernel may make both whiteouts one shared inode
    Deno.removeSync(`${merged}/d`, { recursive: true });
    Deno.mkdirSync(`${merged}/d`); // over a whiteout: an opaque directory
    Deno.writeTextFileSync(`${merged}/d/n`, "new");
    Deno.writeTextFileSync(`${merged}/c`, "changed");
    Deno.removeSync(`${merged}/keep/inner/z`); // copies up keep/ and keep/inner/ only
  } finally {
    const umount = new Deno.Command("umount", { args: [merged] }).outputSync();
    assert.equal(umount.code, 0, decoder.decode(umount.stderr));
  }

  assert.equal(isEmptyDiff(upper), false);
  const archive = await bytesOf(diffTar(upper));
  const entries = await entriesOf(archive);
  assert.deepEqual(entries.map((e) => `${e.name} ${e.type}`), [
    ".wh.a file",
    ".wh.b file",
    "c file",
    "d/ directory",
    "d/.wh..wh..opq file",
    "d/n file",
    "keep/ directory",
    "keep/inner/ directory",
    "keep/inner/.wh.z file",
  ]);
  assert.ok(!decoder.decode(archive).includes("trusted.overlay."), "origin, impure and uuid stay out");

  // Applied below the lower directory's content, the layer gives the merged view back.
  const unpacked = `${tmp.path}/unpacked`;
  await unpackLayer(new Blob([archive as Uint8Array<ArrayBuffer>]).stream(), "none", unpacked);
  assert.deepEqual(describeTree(unpacked), describeTree(upper));
});

// ---------------------------------------------------------------------------------------
// Empty diffs and refusals.

Deno.test("isEmptyDiff: nothing, or only sockets, is no change; anything else is", () => {
  using tmp = tempDir();
  assert.equal(isEmptyDiff(tmp.path), true);
  const listener = Deno.listen({ transport: "unix", path: `${tmp.path}/sock` });
  listener.close();
  assert.equal(isEmptyDiff(tmp.path), true);
  Deno.mkdirSync(`${tmp.path}/dir`);
  assert.equal(isEmptyDiff(tmp.path), false);
  assert.throws(() => isEmptyDiff(`${tmp.path}/missing`), FlokaError);
});

Deno.test("diffTar: an empty upper directory is an empty archive", async () => {
  using tmp = tempDir();
  const archive = await bytesOf(diffTar(tmp.path));
  assert.deepEqual(archive, new Uint8Array(1024));
});

Deno.test("writeLayerBlob: a name that would read as a whiteout is refused, and no blob is left", async () => {
  using tmp = tempDir();
  Deno.mkdirSync(`${tmp.path}/upper/etc`, { recursive: true });
  Deno.writeTextFileSync(`${tmp.path}/upper/etc/.wh.motd`, "");
  const out = `${tmp.path}/layer.tar.gz`;
  await assert.rejects(
    writeLayerBlob(`${tmp.path}/upper`, out),
    (err: Error) => err instanceof FlokaError && /"etc\/\.wh\.motd".*cannot be stored/.test(err.message),
  );
  assert.throws(() => Deno.lstatSync(out), Deno.errors.NotFound);
});

Deno.test("diffTar: redirect and metacopy upper directories are refused (root)", needsRoot, async () => {
  for (const xattr of ["trusted.overlay.redirect", "trusted.overlay.metacopy"]) {
    using tmp = tempDir();
    Deno.writeTextFileSync(`${tmp.path}/file`, "");
    libc.lsetxattr(`${tmp.path}/file`, xattr, encoder.encode("/elsewhere"));
    await assert.rejects(
      bytesOf(diffTar(tmp.path)),
      (err: Error) => err instanceof FlokaError && /redirect_dir=off,metacopy=off/.test(err.message),
    );
  }
});

Deno.test("diffTar: cancelling the stream stops reading and leaves nothing open", async () => {
  using tmp = tempDir();
  Deno.writeFileSync(`${tmp.path}/big`, new Uint8Array(8 * 1024 * 1024));
  Deno.writeTextFileSync(`${tmp.path}/small`, "s");
  const reader = diffTar(tmp.path).getReader();
  await reader.read();
  await reader.read();
  await reader.cancel();
  // The producer notices on its next step; give it that step before the leak checks run.
  await new Promise((resolve) => setTimeout(resolve, 50));
});
