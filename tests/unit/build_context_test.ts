/**
 * The build context of COPY/ADD in temp directories: finding sources (wildcards,
 * directories, ignore rules, symlinks, refusals), the cache checksum, and copying with
 * Docker's semantics. The malicious cases copy into a root whose symlinks point out of
 * it, next to a sentinel `outside` directory that must stay untouched.
 *
 * Copies are owned by the current user unless a test is about --chown (root only).
 */
import assert from "node:assert/strict";
import * as libc from "../../ffi/libc.ts";
import { parseIgnore } from "../../lib/dockerignore.ts";
import { FlokaError } from "../../lib/errors.ts";
import {
  checksumSources,
  type CopyOptions,
  copySources,
  loadIgnoreRules,
  resolveSources,
  type SourceEntry,
} from "../../src/build/context.ts";

const isRoot = libc.geteuid() === 0;
const me: CopyOptions = { uid: Deno.uid() ?? 0, gid: Deno.gid() ?? 0 };

/** Runs `fn` with a fresh temp directory holding `ctx/`, `root/` and `outside/`. */
function withDirs(
  fn: (d: { base: string; ctx: string; root: string; outside: string }) => void | Promise<void>,
) {
  return async () => {
    const base = Deno.makeTempDirSync({ prefix: "floka-ctx-test-" });
    const dirs = { base, ctx: `${base}/ctx`, root: `${base}/root`, outside: `${base}/outside` };
    for (const dir of [dirs.ctx, dirs.root, dirs.outside]) Deno.mkdirSync(dir);
    Deno.writeTextFileSync(`${dirs.outside}/passwd`, "host secret\n");
    try {
      await fn(dirs);
    } finally {
      Deno.removeSync(base, { recursive: true });
    }
  };
}

/** Writes files (text, or [text, mode]), symlinks (`-> target`) and directories (trailing /). */
function make(root: string, tree: Record<string, string | [string, number]>): void {
  for (const [path, spec] of Object.entries(tree)) {
    const full = `${root}/${path}`;
    const parent = full.slice(0, full.lastIndexOf("/"));
    Deno.mkdirSync(parent, { recursive: true });
    if (path.endsWith("/")) {
      Deno.mkdirSync(full, { recursive: true });
    } else if (typeof spec === "string" && spec.startsWith("-> ")) {
      Deno.symlinkSync(spec.slice(3), full);
    } else {
      const [text, mode] = typeof spec === "string" ? [spec, 0o644] : spec;
      Deno.writeTextFileSync(full, text);
      Deno.chmodSync(full, mode);
    }
  }
}

/** Every path under `dir`, sorted, directories with a trailing `/`, symlinks as `-> target`. */
function listTree(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1)) {
    const rel = prefix + entry.name;
    const full = `${dir}/${entry.name}`;
    if (entry.isSymlink) out.push(`${rel} -> ${Deno.readLinkSync(full)}`);
    else if (entry.isDirectory) out.push(`${rel}/`, ...listTree(full, `${rel}/`));
    else out.push(rel);
  }
  return out;
}

/** The rel paths of an entry's items. */
function rels(entry: SourceEntry): string[] {
  return entry.items.map((item) => item.rel);
}

const read = (path: string) => Deno.readTextFileSync(path);
const exists = (path: string) => {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
};
const modeOf = (path: string) => Deno.lstatSync(path).mode! & 0o7777;

function assertFlokaError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err) => err instanceof FlokaError && pattern.test(err.message));
}

// ---------------------------------------------------------------------------------------
// loadIgnoreRules

Deno.test(
  "loadIgnoreRules: .flokaignore wins over .dockerignore; none gives undefined",
  withDirs(({ ctx }) => {
    assert.equal(loadIgnoreRules(ctx), undefined);
    make(ctx, { ".dockerignore": "*.log\n" });
    assert.deepEqual(loadIgnoreRules(ctx)?.patterns.map((p) => p.pattern), ["*.log"]);
    make(ctx, { ".flokaignore": "build\n" });
    assert.deepEqual(loadIgnoreRules(ctx)?.patterns.map((p) => p.pattern), ["build"]);
    make(ctx, { ".flokaignore": "[\n" });
    assertFlokaError(() => loadIgnoreRules(ctx), /^\.flokaignore: syntax error in pattern/);
  }),
);

// ---------------------------------------------------------------------------------------
// resolveSources

Deno.test(
  "resolveSources: files, directories, the root, a leading / and a trailing /",
  withDirs(({ ctx }) => {
    make(ctx, { "a.txt": "a", "src/b/c.ts": "c", "src/d.ts": "d", "src/e/": "" });
    const [file, dir, abs, slash] = resolveSources(ctx, ["a.txt", "src", "/src/d.ts", "src/"]);
    assert.equal(file.name, "a.txt");
    assert.equal(file.items[0].kind, "file");
    assert.deepEqual(rels(file), [""]);
    assert.deepEqual(rels(dir), ["", "b", "b/c.ts", "d.ts", "e"]);
    assert.equal(dir.items[0].kind, "dir");
    assert.equal(abs.items[0].hostPath, `${ctx}/src/d.ts`);
    assert.deepEqual(rels(slash), rels(dir));
    const [root] = resolveSources(ctx, ["."]);
    assert.deepEqual(rels(root), ["", "a.txt", "src", "src/b", "src/b/c.ts", "src/d.ts", "src/e"]);
    assert.deepEqual(rels(resolveSources(ctx, ["/"])[0]), rels(root));
  }),
);

Deno.test(
  "resolveSources: wildcards match per path component, sorted, dirs and files",
  withDirs(({ ctx }) => {
    make(ctx, {
      "b.txt": "",
      "a.txt": "",
      "c.md": "",
      "x.txt/": "",
      "x.txt/in": "",
      "pkg/one/go.mod": "",
      "pkg/two/go.mod": "",
      "pkg/two/sub/go.mod": "",
      "arr[0].txt": "",
    });
    const txt = resolveSources(ctx, ["*.txt"]);
    assert.deepEqual(txt.map((e) => e.name), ["a.txt", "arr[0].txt", "b.txt", "x.txt"]);
    assert.ok(txt.every((e) => e.wildcard));
    assert.deepEqual(rels(txt[3]), ["", "in"]);
    const mods = resolveSources(ctx, ["pkg/*/go.mod"]);
    assert.deepEqual(mods.map((e) => e.items[0].hostPath), [
      `${ctx}/pkg/one/go.mod`,
      `${ctx}/pkg/two/go.mod`,
    ]);
    assert.deepEqual(resolveSources(ctx, ["?.md"]).map((e) => e.name), ["c.md"]);
    assert.deepEqual(resolveSources(ctx, ["arr[[]0].txt"]).map((e) => e.name), ["arr[0].txt"]);
  }),
);

Deno.test(
  "resolveSources: a missing source is an error, an empty wildcard only when nothing matched",
  withDirs(({ ctx }) => {
    make(ctx, { "a.txt": "", "file": "" });
    assertFlokaError(
      () => resolveSources(ctx, ["nope.txt"]),
      /^COPY failed: file not found in build context or excluded by \.dockerignore: stat nope\.txt: file does not exist$/,
    );
    assertFlokaError(() => resolveSources(ctx, ["file/x"]), /stat file\/x: file does not exist/);
    assertFlokaError(() => resolveSources(ctx, ["missing/*.txt"]), /no source files were specified/);
    assertFlokaError(() => resolveSources(ctx, ["*.none"]), /no source files were specified/);
    // The `COPY package.json yarn.lock* ./` idiom: an optional file.
    assert.deepEqual(resolveSources(ctx, ["a.txt", "*.lock"]).map((e) => e.name), ["a.txt"]);
  }),
);

Deno.test(
  "resolveSources: a path outside the context is refused",
  withDirs(({ ctx }) => {
    make(ctx, { "a.txt": "" });
    for (const source of ["../x", "..", "a/../../x", "./../x"]) {
      assertFlokaError(
        () => resolveSources(ctx, [source]),
        new RegExp(`^forbidden path outside the build context: ${source.replaceAll(".", "\\.")}$`),
      );
    }
    // An absolute path is the context's root, however many `..` it has.
    assert.equal(resolveSources(ctx, ["/../a.txt"])[0].items[0].hostPath, `${ctx}/a.txt`);
  }),
);

Deno.test(
  "resolveSources: ignored paths do not exist; an ignored dir keeps its exceptions",
  withDirs(({ ctx }) => {
    make(ctx, {
      "app.js": "",
      "debug.log": "",
      "secret.env": "",
      "docs/README.md": "",
      "docs/internal.md": "",
      "docs/img/a.png": "",
      "node_modules/x/index.js": "",
      "src/main.ts": "",
      "src/main.log": "",
    });
    const ignore = parseIgnore("*.log\nsecret.env\nnode_modules\ndocs\n!docs/README.md\n**/*.log\n");
    assertFlokaError(() => resolveSources(ctx, ["secret.env"], { ignore }), /excluded by \.dockerignore/);
    assertFlokaError(() => resolveSources(ctx, ["node_modules/x"], { ignore }), /stat node_modules\/x/);
    const [root] = resolveSources(ctx, ["."], { ignore });
    assert.deepEqual(rels(root), ["", "app.js", "docs", "docs/README.md", "src", "src/main.ts"]);
    const [docs] = resolveSources(ctx, ["docs"], { ignore });
    assert.deepEqual(rels(docs), ["", "README.md"]);
    assert.deepEqual(rels(resolveSources(ctx, ["docs/README.md"], { ignore })[0]), [""]);
    assertFlokaError(() => resolveSources(ctx, ["docs/img"], { ignore }), /stat docs\/img/);
    assert.deepEqual(resolveSources(ctx, ["*.js", "*.log", "*.env"], { ignore }).map((e) => e.name), [
      "app.js",
    ]);
  }),
);

Deno.test(
  "resolveSources: a symlink named as a source is followed inside the context",
  withDirs(({ ctx, outside }) => {
    make(ctx, {
      "real/file": "content",
      "link-dir": "-> real",
      "link-file": "-> real/file",
      "abs-link": `-> ${outside}`, // means <ctx>/<outside's path>, which does not exist
      "up-link": "-> ../../../real",
      "dangling": "-> nowhere",
      "real/inner-link": "-> /etc",
    });
    const [dir] = resolveSources(ctx, ["link-dir"]);
    assert.equal(dir.name, "link-dir");
    assert.equal(dir.items[0].hostPath, `${ctx}/real`);
    assert.deepEqual(
      dir.items.map((i) => [i.rel, i.kind, i.linkTarget]),
      [["", "dir", undefined], ["file", "file", undefined], ["inner-link", "symlink", "/etc"]],
    );
    const [file] = resolveSources(ctx, ["link-file"]);
    assert.equal(file.name, "link-file");
    assert.equal(file.items[0].hostPath, `${ctx}/real/file`);
    assert.equal(resolveSources(ctx, ["up-link/file"])[0].items[0].hostPath, `${ctx}/real/file`);
    assertFlokaError(() => resolveSources(ctx, ["abs-link/passwd"]), /file not found/);
    assertFlokaError(() => resolveSources(ctx, ["dangling"]), /file not found/);
    // A symlink the rules ignore is not in the context, nor is what it leads to.
    const ignore = parseIgnore("link-file\n");
    assertFlokaError(() => resolveSources(ctx, ["link-file"], { ignore }), /file not found/);
  }),
);

Deno.test(
  "resolveSources: in a --from root, a symlink to / stays in that root",
  withDirs(({ root, outside }) => {
    make(root, { "etc/passwd": "stage passwd", "lnk": "-> /", "abs": `-> ${outside}` });
    const [whole] = resolveSources(root, ["lnk"]);
    assert.equal(whole.items[0].hostPath, root);
    assert.ok(whole.items.every((i) => i.hostPath.startsWith(root + "/") || i.hostPath === root));
    const [passwd] = resolveSources(root, ["lnk/etc/passwd"]);
    assert.equal(passwd.items[0].hostPath, `${root}/etc/passwd`);
    assert.equal(read(passwd.items[0].hostPath), "stage passwd");
    assertFlokaError(() => resolveSources(root, ["abs/passwd"]), /file not found/);
    assertFlokaError(() => resolveSources(root, ["/lnk/../../../outside"]), /file not found/);
  }),
);

// ---------------------------------------------------------------------------------------
// checksumSources

Deno.test(
  "checksumSources: changes with content, mode, name and symlink target, not with mtime",
  withDirs(async ({ ctx }) => {
    make(ctx, { "dir/a.txt": "hello", "dir/b/c.txt": "world", "dir/link": "-> a.txt", "one.txt": "1" });
    const sum = () => checksumSources(resolveSources(ctx, ["dir", "one.txt"]));
    const base = await sum();
    assert.match(base, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await sum(), base);

    Deno.utimeSync(`${ctx}/dir/a.txt`, 1, 1);
    Deno.utimeSync(`${ctx}/dir/b`, 2, 2);
    assert.equal(await sum(), base, "mtime is not part of it");

    const changes: [string, () => void, () => void][] = [
      ["content", () => make(ctx, { "dir/b/c.txt": "World" }), () => make(ctx, { "dir/b/c.txt": "world" })],
      ["mode", () => Deno.chmodSync(`${ctx}/one.txt`, 0o755), () => Deno.chmodSync(`${ctx}/one.txt`, 0o644)],
      ["dir mode", () => Deno.chmodSync(`${ctx}/dir/b`, 0o700), () => Deno.chmodSync(`${ctx}/dir/b`, 0o755)],
      [
        "name",
        () => Deno.renameSync(`${ctx}/dir/a.txt`, `${ctx}/dir/a2.txt`),
        () => Deno.renameSync(`${ctx}/dir/a2.txt`, `${ctx}/dir/a.txt`),
      ],
      [
        "symlink target",
        () => (Deno.removeSync(`${ctx}/dir/link`), Deno.symlinkSync("b", `${ctx}/dir/link`)),
        () => (Deno.removeSync(`${ctx}/dir/link`), Deno.symlinkSync("a.txt", `${ctx}/dir/link`)),
      ],
      ["new file", () => make(ctx, { "dir/b/new": "" }), () => Deno.removeSync(`${ctx}/dir/b/new`)],
    ];
    for (const [what, change, undo] of changes) {
      change();
      assert.notEqual(await sum(), base, what);
      undo();
      assert.equal(await sum(), base, `${what} undone`);
    }
    // The name a file gets in a destination directory is part of it, too.
    make(ctx, { "two.txt": "1" });
    assert.notEqual(
      await checksumSources(resolveSources(ctx, ["two.txt"])),
      await checksumSources(resolveSources(ctx, ["one.txt"])),
    );
  }),
);

Deno.test(
  "checksumSources: a large file is streamed",
  withDirs(async ({ ctx }) => {
    const big = new Uint8Array(3 * 1024 * 1024).fill(7);
    Deno.writeFileSync(`${ctx}/big`, big);
    const before = await checksumSources(resolveSources(ctx, ["big"]));
    big[big.length - 1] = 8;
    Deno.writeFileSync(`${ctx}/big`, big);
    assert.notEqual(await checksumSources(resolveSources(ctx, ["big"])), before);
  }),
);

// ---------------------------------------------------------------------------------------
// copySources

Deno.test(
  "copySources: a file to a file path, creating parents; overwriting a file",
  withDirs(({ ctx, root }) => {
    make(ctx, { "a.txt": ["new", 0o640] });
    Deno.utimeSync(`${ctx}/a.txt`, 1_000_000, 1_000_000);
    copySources(resolveSources(ctx, ["a.txt"]), root, "/app/conf/b.txt", me);
    assert.deepEqual(listTree(root), ["app/", "app/conf/", "app/conf/b.txt"]);
    assert.equal(read(`${root}/app/conf/b.txt`), "new");
    assert.equal(modeOf(`${root}/app/conf/b.txt`), 0o640);
    assert.equal(Deno.statSync(`${root}/app/conf/b.txt`).mtime!.getTime(), 1_000_000_000);
    assert.equal(modeOf(`${root}/app`), 0o755);
    make(root, { "etc/x.conf": ["old old old", 0o600] });
    copySources(resolveSources(ctx, ["a.txt"]), root, "/etc/x.conf", me);
    assert.equal(read(`${root}/etc/x.conf`), "new");
    assert.equal(modeOf(`${root}/etc/x.conf`), 0o640);
  }),
);

Deno.test(
  "copySources: a file into a directory: dest ending in /, an existing dir, several sources, a wildcard",
  withDirs(({ ctx, root }) => {
    make(ctx, { "a.txt": "a", "b.txt": "b", "c.md": "c" });
    copySources(resolveSources(ctx, ["a.txt"]), root, "/new/", me);
    assert.deepEqual(listTree(`${root}/new`), ["a.txt"]);
    make(root, { "existing/": "" });
    copySources(resolveSources(ctx, ["a.txt"]), root, "/existing", me);
    assert.deepEqual(listTree(`${root}/existing`), ["a.txt"]);
    copySources(resolveSources(ctx, ["a.txt", "c.md"]), root, "/multi", me);
    assert.deepEqual(listTree(`${root}/multi`), ["a.txt", "c.md"]);
    copySources(resolveSources(ctx, ["a*"]), root, "/wild", me);
    assert.deepEqual(listTree(`${root}/wild`), ["a.txt"]);
    copySources(resolveSources(ctx, ["*.txt"]), root, "/", me);
    assert.deepEqual(listTree(root).filter((p) => !p.includes("/")), ["a.txt", "b.txt"]);
  }),
);

Deno.test(
  "copySources: a directory copies its contents, merged into an existing directory",
  withDirs(({ ctx, root }) => {
    make(ctx, {
      "src/main.ts": "m",
      "src/lib/util.ts": ["u", 0o600],
      "src/bin/": "",
      "src/link": "-> main.ts",
    });
    Deno.chmodSync(`${ctx}/src/lib`, 0o750);
    Deno.utimeSync(`${ctx}/src/lib`, 5_000, 5_000);
    make(root, { "app/keep.txt": "kept", "app/lib/old.ts": "o" });
    copySources(resolveSources(ctx, ["src"]), root, "/app", me);
    assert.deepEqual(listTree(`${root}/app`), [
      "bin/",
      "keep.txt",
      "lib/",
      "lib/old.ts",
      "lib/util.ts",
      "link -> main.ts",
      "main.ts",
    ]);
    assert.equal(modeOf(`${root}/app/lib`), 0o750);
    assert.equal(modeOf(`${root}/app/lib/util.ts`), 0o600);
    assert.equal(Deno.statSync(`${root}/app/lib`).mtime!.getTime(), 5_000_000);
    // Into a directory that does not exist yet, and two directories merged into one.
    make(ctx, { "more/extra.ts": "x" });
    copySources(resolveSources(ctx, ["src", "more"]), root, "/srv/www", me);
    assert.deepEqual(listTree(`${root}/srv/www`), [
      "bin/",
      "extra.ts",
      "lib/",
      "lib/util.ts",
      "link -> main.ts",
      "main.ts",
    ]);
    assert.equal(modeOf(`${root}/srv/www`), 0o755);
  }),
);

Deno.test(
  "copySources: a relative dest is relative to the workdir",
  withDirs(({ ctx, root }) => {
    make(ctx, { "a.txt": "a", "dir/b.txt": "b" });
    copySources(resolveSources(ctx, ["a.txt"]), root, "sub/", { ...me, workdir: "/work" });
    copySources(resolveSources(ctx, ["a.txt"]), root, "renamed.txt", { ...me, workdir: "/work" });
    copySources(resolveSources(ctx, ["dir"]), root, ".", { ...me, workdir: "/work" });
    copySources(resolveSources(ctx, ["a.txt"]), root, ".", { ...me, workdir: "/w2" });
    assert.deepEqual(listTree(root), [
      "w2/",
      "w2/a.txt",
      "work/",
      "work/b.txt",
      "work/renamed.txt",
      "work/sub/",
      "work/sub/a.txt",
    ]);
  }),
);

Deno.test(
  "copySources: --chmod applies to files and directories, not symlinks; created parents are 0755",
  withDirs(({ ctx, root }) => {
    make(ctx, { "d/x.sh": ["x", 0o644], "d/sub/y": ["y", 0o600], "d/l": "-> x.sh" });
    copySources(resolveSources(ctx, ["d"]), root, "/opt/tool/", { ...me, chmod: 0o4750 });
    assert.equal(modeOf(`${root}/opt`), 0o755);
    assert.equal(modeOf(`${root}/opt/tool`), 0o755);
    assert.equal(modeOf(`${root}/opt/tool/x.sh`), 0o4750);
    assert.equal(modeOf(`${root}/opt/tool/sub`), 0o4750);
    assert.equal(modeOf(`${root}/opt/tool/sub/y`), 0o4750);
    assert.ok(Deno.lstatSync(`${root}/opt/tool/l`).isSymlink);
  }),
);

Deno.test({
  name: "copySources: --chown owns every copied item, symlinks included, and the directories created",
  ignore: !isRoot,
  fn: withDirs(({ ctx, root }) => {
    make(ctx, { "d/f": ["f", 0o4755], "d/sub/g": "g", "d/l": "-> f" });
    make(root, { "usr/": "" });
    copySources(resolveSources(ctx, ["d"]), root, "/usr/local/app", { uid: 1000, gid: 1001 });
    const owner = (p: string) => {
      const s = Deno.lstatSync(`${root}/${p}`);
      return `${s.uid}:${s.gid}`;
    };
    assert.equal(owner("usr"), "0:0");
    for (
      const path of [
        "usr/local",
        "usr/local/app",
        "usr/local/app/f",
        "usr/local/app/sub",
        "usr/local/app/sub/g",
      ]
    ) {
      assert.equal(owner(path), "1000:1001", path);
    }
    assert.equal(owner("usr/local/app/l"), "1000:1001");
    assert.equal(modeOf(`${root}/usr/local/app/f`), 0o4755, "setuid survives the chown");
    // Default owner is root.
    copySources(resolveSources(ctx, ["d/f"]), root, "/f", {});
    assert.equal(owner("f"), "0:0");
  }),
});

Deno.test(
  "copySources: type conflicts are errors",
  withDirs(({ ctx, root }) => {
    make(ctx, { "dir/a": "a", "file": "f", "other/a/": "" });
    make(root, { "etc/hosts": "h", "data/file/": "" });
    assertFlokaError(
      () => copySources(resolveSources(ctx, ["dir"]), root, "/etc/hosts", me),
      /^COPY failed: cannot copy to non-directory: \/etc\/hosts$/,
    );
    assertFlokaError(
      () => copySources(resolveSources(ctx, ["file"]), root, "/data/", me),
      /^COPY failed: cannot replace directory \/data\/file with a file$/,
    );
    assertFlokaError(
      () => copySources(resolveSources(ctx, ["file"]), root, "/etc/hosts/x", me),
      /cannot copy to non-directory: \/etc\/hosts$/,
    );
    copySources(resolveSources(ctx, ["dir"]), root, "/m", me);
    assertFlokaError(
      () => copySources(resolveSources(ctx, ["other"]), root, "/m", me),
      /non-directory: \/m\/a$/,
    );
  }),
);

Deno.test(
  "copySources: a fifo is made anew (never read), in the checksum by kind and mode",
  withDirs(async ({ ctx, root }) => {
    make(ctx, { "d/f": "" });
    libc.mknod(`${ctx}/d/pipe`, 0o010000 | 0o640, 0, 0);
    Deno.chmodSync(`${ctx}/d/pipe`, 0o640);
    const entries = resolveSources(ctx, ["d"]);
    assert.deepEqual(entries[0].items.map((i) => i.kind), ["dir", "file", "fifo"]);
    const before = await checksumSources(entries);
    copySources(entries, root, "/d", me);
    assert.ok(Deno.lstatSync(`${root}/d/pipe`).isFifo);
    assert.equal(modeOf(`${root}/d/pipe`), 0o640);
    Deno.chmodSync(`${ctx}/d/pipe`, 0o600);
    assert.notEqual(await checksumSources(resolveSources(ctx, ["d"])), before);
  }),
);

// ---------------------------------------------------------------------------------------
// copySources: malicious images. Nothing outside `root` may change.

/** Runs `fn` and checks that `outside` still holds exactly its passwd file. */
function assertOutsideUntouched(outside: string, fn: () => void): void {
  fn();
  assert.deepEqual(listTree(outside), ["passwd"]);
  assert.equal(read(`${outside}/passwd`), "host secret\n");
}

Deno.test(
  "copySources: an image symlink /etc -> / cannot take COPY out of the root",
  withDirs(({ ctx, root, outside }) => {
    make(ctx, { "passwd": "evil" });
    make(root, { "etc": "-> /" });
    const hostHadPasswd = exists("/passwd"); // where a bug following /etc -> / on the host would write
    copySources(resolveSources(ctx, ["passwd"]), root, "/etc/passwd", me);
    assert.equal(read(`${root}/passwd`), "evil");
    assert.equal(exists("/passwd"), hostHadPasswd);
    // An absolute link naming the host's sentinel directory means that path inside the root.
    make(root, { "host": `-> ${outside}` });
    assertOutsideUntouched(
      outside,
      () => copySources(resolveSources(ctx, ["passwd"]), root, "/host/passwd", me),
    );
    assert.equal(read(`${root}${outside}/passwd`), "evil");
  }),
);

Deno.test(
  "copySources: relative symlinks and .. in dest stay in the root",
  withDirs(({ ctx, root, outside }) => {
    make(ctx, { "passwd": "evil", "tree/passwd": "evil2" });
    make(root, { "app": "-> ../../../..", "deep/er/": "" });
    assertOutsideUntouched(outside, () => {
      copySources(resolveSources(ctx, ["passwd"]), root, "/app/outside/passwd", me);
      copySources(resolveSources(ctx, ["passwd"]), root, "../../outside/passwd", {
        ...me,
        workdir: "/deep/er",
      });
      copySources(resolveSources(ctx, ["tree"]), root, "/app/../../outside/", me);
    });
    assert.equal(read(`${root}/outside/passwd`), "evil2");
  }),
);

Deno.test(
  "copySources: a symlink planted at the target name is replaced, never written through",
  withDirs(({ ctx, root, outside }) => {
    make(ctx, { "passwd": "evil", "d/passwd": "evil", "d/sub/x": "x" });
    make(root, { "dst/passwd": `-> ${outside}/passwd` });
    assertOutsideUntouched(outside, () => copySources(resolveSources(ctx, ["passwd"]), root, "/dst/", me));
    assert.ok(Deno.lstatSync(`${root}/dst/passwd`).isFile);
    // Inside a copied tree: a link at a file's name is replaced; at a directory's name, refused.
    make(root, { "t/passwd": `-> ${outside}/passwd`, "t/sub": `-> ${outside}` });
    assertOutsideUntouched(outside, () => {
      assertFlokaError(
        () => copySources(resolveSources(ctx, ["d"]), root, "/t", me),
        /non-directory: \/t\/sub$/,
      );
    });
    assert.ok(Deno.lstatSync(`${root}/t/passwd`).isFile);
  }),
);

Deno.test(
  "copySources: a --from source linking to / copies that root, not the host",
  withDirs(({ base, root, outside }) => {
    const stage = `${base}/stage`;
    make(stage, { "etc/passwd": "stage", "lnk": "-> /", "up": "-> ../../../../" });
    assertOutsideUntouched(outside, () => {
      copySources(resolveSources(stage, ["lnk/etc/passwd"]), root, "/from-lnk", me);
      copySources(resolveSources(stage, ["up"]), root, "/whole/", me);
    });
    assert.equal(read(`${root}/from-lnk`), "stage");
    assert.deepEqual(listTree(`${root}/whole`), ["etc/", "etc/passwd", "lnk -> /", "up -> ../../../../"]);
  }),
);

Deno.test(
  "copySources: a symlink copied from the context is a link in the image, not followed",
  withDirs(({ ctx, root, outside }) => {
    make(ctx, { "d/escape": `-> ${outside}`, "d/escape2": "-> ../../../outside" });
    assertOutsideUntouched(outside, () => copySources(resolveSources(ctx, ["d"]), root, "/d", me));
    assert.deepEqual(listTree(`${root}/d`), [`escape -> ${outside}`, "escape2 -> ../../../outside"]);
  }),
);
