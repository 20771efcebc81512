/**
 * `floka build`, end to end: Flokafiles (Dockerfile syntax) built by the CLI into a
 * temporary store that holds the hand-placed busybox image, the results run with `floka
 * run`, inspected with `floka inspect`, read back from the store's OCI layout (and by
 * skopeo and umoci), and failures checked for what they leave behind: no container, no
 * mount, nothing in `images/tmp`, no tag.
 *
 * A build costs a few hundred milliseconds, so each test groups what a few builds can show.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  cgroupDirsOf,
  hostMountsMentioning,
  integrationTest,
  lines,
  type Result,
  show,
  type Store,
  waitUntil,
  which,
  withStore,
} from "./helpers.ts";

// --- helpers -------------------------------------------------------------------------------

type FileSpec = string | Uint8Array | { data: string | Uint8Array; mode: number };

/** Writes a build context `contexts/<name>` in the store's directory; returns its path. */
function makeContext(s: Store, name: string, files: Record<string, FileSpec>): string {
  const dir = `${s.root}/contexts/${name}`;
  Deno.mkdirSync(dir, { recursive: true });
  for (const [path, spec] of Object.entries(files)) writeContextFile(dir, path, spec);
  return dir;
}

function writeContextFile(dir: string, path: string, spec: FileSpec): void {
  const file = `${dir}/${path}`;
  Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  const { data, mode } = typeof spec === "string" || spec instanceof Uint8Array
    ? { data: spec, mode: 0o644 }
    : spec;
  if (typeof data === "string") Deno.writeTextFileSync(file, data);
  else Deno.writeFileSync(file, data);
  Deno.chmodSync(file, mode);
}

function build(s: Store, args: string[]): Promise<Result> {
  return s.floka(["build", ...args]);
}

/** `floka inspect` of an image. */
// deno-lint-ignore no-explicit-any
function inspectImage(s: Store, ref: string): Promise<any> {
  return s.inspect(ref);
}

/** One step of the build output: its header, the lines under it, and how it ended. */
interface Step {
  /** `[1/2] ` in a multi-stage build, else empty. */
  stage: string;
  n: number;
  total: number;
  /** The instruction as written. */
  text: string;
  /** `--> CACHED`, `--> done in ...`, or neither (FROM). */
  status: "cached" | "done" | null;
  /** The other lines under the header (a RUN's output, indented). */
  output: string[];
}

const STEP_LINE = /^(\[\d+\/\d+\] )?STEP (\d+)\/(\d+): (.*)$/;

function steps(stdout: string): Step[] {
  const found: Step[] = [];
  for (const line of lines(stdout)) {
    const m = STEP_LINE.exec(line);
    if (m) {
      found.push({
        stage: m[1] ?? "",
        n: Number(m[2]),
        total: Number(m[3]),
        text: m[4],
        status: null,
        output: [],
      });
      continue;
    }
    const step = found.at(-1);
    if (!step || line.startsWith("Successfully ")) continue;
    if (line === "--> CACHED") step.status = "cached";
    else if (/^--> done in \d+\.\d\ds$/.test(line)) step.status = "done";
    else step.output.push(line);
  }
  return found;
}

/** The step header lines, as printed. */
function stepTexts(stdout: string): string[] {
  return lines(stdout).filter((l) => STEP_LINE.test(l));
}

interface StoredImage {
  /** The manifest's digest (what index.json points at). */
  digest: string;
  manifest: { config: { digest: string }; layers: { digest: string; mediaType: string }[] };
  config: { rootfs: { diff_ids: string[] } };
}

/** The image with config digest `id`, read from the store's OCI layout (index.json, blobs). */
function imageLayout(s: Store, id: string): StoredImage {
  const dir = `${s.root}/images`;
  const blob = (digest: string) =>
    JSON.parse(Deno.readTextFileSync(`${dir}/blobs/sha256/${digest.slice(7)}`));
  const index = JSON.parse(Deno.readTextFileSync(`${dir}/index.json`));
  for (const entry of index.manifests as { digest: string }[]) {
    const manifest = blob(entry.digest);
    if (manifest.config?.digest === id) return { digest: entry.digest, manifest, config: blob(id) };
  }
  throw new Error(`no manifest in ${dir}/index.json has the config ${id}`);
}

/** The entry names of a gzip layer blob (`tar -tzf`), without `./` or a trailing slash. */
async function layerNames(s: Store, digest: string): Promise<string[]> {
  const out = await tool("tar", ["-tzf", `${s.root}/images/blobs/sha256/${digest.slice(7)}`]);
  return lines(new TextDecoder().decode(out))
    .map((n) => n.replace(/^\.\//, "").replace(/\/$/, ""))
    .filter((n) => n !== "" && n !== ".");
}

/** Asserts that a failed build left nothing: no tag, container, mount or temporary file. */
async function assertNothingLeft(s: Store, tag: string, r: Result): Promise<void> {
  assert.deepEqual(await s.ids(), [], `floka ps -a lists a container after: ${show(r)}`);
  assert.deepEqual(s.containerEntries(), [], `containers/ is not empty after: ${show(r)}`);
  assert.deepEqual(hostMountsMentioning(s.root), [], `a mount is left after: ${show(r)}`);
  assert.deepEqual(tmpEntries(s), [], `images/tmp is not empty after: ${show(r)}`);
  const inspect = await s.floka(["inspect", tag]);
  assert.notEqual(inspect.code, 0, `${tag} was tagged: ${show(inspect)}`);
  const images = await s.floka(["images"]);
  assert.equal(images.code, 0, show(images));
  assert.doesNotMatch(images.stdout, new RegExp(`^${tag}\\s`, "m"), `floka images lists ${tag}`);
}

function tmpEntries(s: Store): string[] {
  try {
    return [...Deno.readDirSync(`${s.root}/images/tmp`)].map((e) => e.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/** The `floka:` lines of stderr (Floka's own messages, not a RUN step's output). */
function errorLines(r: Result): string[] {
  return lines(r.stderr).filter((l) => l.startsWith("floka:"));
}

async function tool(cmd: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assert.ok(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

integrationTest(
  "build: RUN adds and deletes files; the RUN layer holds whiteouts; the image lists, runs and is read by skopeo and umoci",
  async () => {
    await withStore(async (s) => {
      const runA = "RUN mkdir /data && echo a > /data/a && echo b > /data/b && echo made-files";
      // /home is an empty directory of the busybox fixture: a deletion from the base layer.
      const runB = "RUN rm /data/a && rmdir /home && echo removed";
      const ctx = makeContext(s, "files", { Flokafile: `FROM busybox\n${runA}\n${runB}\n` });
      const r = await build(s, ["-t", "bt-files", "-t", "bt-files:v2", ctx]);
      assert.equal(r.code, 0, show(r));
      // The whole output: a line per step, RUN output indented, then the summary.
      const normalized = lines(r.stdout).map((l) =>
        l.replace(/^--> done in \d+\.\d\ds$/, "--> done").replace(
          /^(Successfully built) [0-9a-f]{12}$/,
          "$1 ID",
        )
      );
      assert.deepEqual(normalized, [
        "STEP 1/3: FROM busybox",
        `STEP 2/3: ${runA}`,
        "  made-files",
        "--> done",
        `STEP 3/3: ${runB}`,
        "  removed",
        "--> done",
        "Successfully built ID",
        "Successfully tagged bt-files:latest",
        "Successfully tagged bt-files:v2",
      ], show(r));

      const image = await inspectImage(s, "bt-files");
      const id: string = image.Id;
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
      assert.ok(r.stdout.includes(`Successfully built ${id.slice(7, 19)}\n`), show(r));
      assert.equal((await inspectImage(s, "bt-files:v2")).Id, id, "both tags name the image");
      // The base's config is inherited; the base is one layer, each RUN adds one.
      assert.deepEqual(image.Config.Cmd, ["sh"]);
      assert.ok(image.Config.Env.some((e: string) => e.startsWith("PATH=")), JSON.stringify(image.Config));
      assert.equal(image.RootFS.Layers.length, 3, JSON.stringify(image.RootFS));
      const images = await s.floka(["images"]);
      assert.equal(images.code, 0, show(images));
      assert.match(images.stdout, new RegExp(`^bt-files\\s+latest\\s+${id.slice(7, 19)}\\s`, "m"));
      assert.match(images.stdout, new RegExp(`^bt-files\\s+v2\\s+${id.slice(7, 19)}\\s`, "m"));

      const run = await s.run([
        "--rm",
        "bt-files",
        "sh",
        "-c",
        "ls /data; test -e /data/a || echo a-gone; test -e /home || echo home-gone; cat /data/b",
      ]);
      assert.equal(run.code, 0, show(run));
      assert.deepEqual(lines(run.stdout), ["b", "a-gone", "home-gone", "b"]);

      // The layers as stored: the first RUN's has the files, the second's the whiteouts.
      const layout = imageLayout(s, id);
      assert.equal(layout.manifest.layers.length, 3);
      assert.deepEqual(layout.config.rootfs.diff_ids, image.RootFS.Layers);
      const added = await layerNames(s, layout.manifest.layers[1].digest);
      assert.ok(added.includes("data/a") && added.includes("data/b"), `first RUN layer: ${added}`);
      assert.ok(!added.some((n) => n.includes(".wh.")), `first RUN layer: ${added}`);
      const removed = await layerNames(s, layout.manifest.layers[2].digest);
      assert.ok(removed.includes("data/.wh.a"), `second RUN layer has no whiteout for /data/a: ${removed}`);
      assert.ok(removed.includes(".wh.home"), `second RUN layer has no whiteout for /home: ${removed}`);
      assert.ok(!removed.includes("data/b"), `second RUN layer holds the unchanged /data/b: ${removed}`);
      // Every blob hashes to its name, and every layer is unpacked once in layers/.
      for (const entry of Deno.readDirSync(`${s.root}/images/blobs/sha256`)) {
        const bytes = Deno.readFileSync(`${s.root}/images/blobs/sha256/${entry.name}`);
        assert.equal(createHash("sha256").update(bytes).digest("hex"), entry.name, "a blob does not match");
      }
      for (const diffId of image.RootFS.Layers as string[]) {
        assert.ok(Deno.statSync(`${s.root}/images/layers/sha256/${diffId.slice(7)}`).isDirectory);
      }

      // -q prints the full image ID only; the same Flokafile gives the same image.
      const quiet = await build(s, ["-q", "-t", "bt-files:quiet", ctx]);
      assert.equal(quiet.code, 0, show(quiet));
      assert.equal(quiet.stdout, `${id}\n`, show(quiet));

      // No build container, mount or temporary directory is left after a good build either.
      assert.deepEqual(await s.ids(), []);
      assert.deepEqual(s.containerEntries(), []);
      assert.deepEqual(hostMountsMentioning(s.root), []);
      assert.deepEqual(tmpEntries(s), []);

      // Independent tools read the built image from the store's OCI layout.
      if (!which("skopeo") || !which("umoci")) {
        console.error("build: skopeo/umoci interoperability not checked: apt-get install skopeo umoci");
        return;
      }
      const dir = `${s.root}/images`;
      const raw = await tool("skopeo", ["inspect", "--raw", `oci:${dir}:v2`]);
      assert.equal(`sha256:${createHash("sha256").update(raw).digest("hex")}`, layout.digest);
      assert.equal(JSON.parse(new TextDecoder().decode(raw)).config.digest, id);
      await tool("skopeo", ["copy", `oci:${dir}:v2`, `dir:${s.root}/copied`]); // verifies every blob
      const tags = lines(new TextDecoder().decode(await tool("umoci", ["ls", "--layout", dir]))).sort();
      assert.deepEqual(tags, ["latest", "quiet", "v2"]);
      // umoci applies the whiteouts as the runtime does.
      await tool("umoci", ["unpack", "--image", `${dir}:v2`, `${s.root}/bundle`]);
      const rootfs = `${s.root}/bundle/rootfs`;
      assert.equal(Deno.readTextFileSync(`${rootfs}/data/b`), "b\n");
      assert.throws(() => Deno.lstatSync(`${rootfs}/data/a`), Deno.errors.NotFound);
      assert.throws(() => Deno.lstatSync(`${rootfs}/home`), Deno.errors.NotFound);
      assert.ok(Deno.statSync(`${rootfs}/bin/busybox`).isFile);
    });
  },
);

integrationTest(
  "build: COPY follows .dockerignore (with a ! exception), --chown, --chmod, directory contents, WORKDIR",
  async () => {
    await withStore(async (s) => {
      const ctx = makeContext(s, "copy", {
        Flokafile: [
          "FROM busybox",
          "WORKDIR /srv",
          "COPY app ./app-copy/",
          "COPY *.log notes.txt logs/",
          "COPY --chown=1000:1000 --chmod=0755 tool.sh /usr/local/bin/tool",
          "COPY --chown=1000:1000 app /owned",
          "COPY . /ctx/",
          "",
        ].join("\n"),
        ".dockerignore": "# build context rules\n*.log\n!keep.log\nsecret\n**/*.tmp\n",
        "app/main.txt": "main\n",
        "app/sub/inner.txt": "inner\n",
        "app/cache.tmp": "cache\n",
        "debug.log": "debug\n",
        "keep.log": "keep\n",
        "notes.txt": "notes\n",
        "secret/key": "hunter2\n",
        "tool.sh": { data: "#!/bin/sh\necho tool ran\n", mode: 0o644 },
      });
      const r = await build(s, ["-t", "bt-copy", ctx]);
      assert.equal(r.code, 0, show(r));
      const script = [
        // Unquoted substitutions: each list on one line.
        "echo app-copy: $(ls -A /srv/app-copy) / $(ls -A /srv/app-copy/sub)",
        "echo logs: $(ls -A /srv/logs) $(stat -c '%u:%g %a' /srv/logs/keep.log)",
        "echo tool: $(stat -c '%u:%g %a' /usr/local/bin/tool) $(tool)",
        "echo owned: $(stat -c %u:%g /owned/main.txt /owned/sub /owned/sub/inner.txt)",
        "echo ctx: $(cd /ctx && find . -mindepth 1)",
      ].join("\n");
      const run = await s.run(["--rm", "bt-copy", "sh", "-c", script]);
      assert.equal(run.code, 0, show(run));
      const got = new Map(
        lines(run.stdout).map((l) => {
          const colon = l.indexOf(": ");
          return [l.slice(0, colon), l.slice(colon + 2).split(/\s+/).filter(Boolean)];
        }),
      );
      // A directory source copies its contents; `./app-copy/` is relative to WORKDIR /srv.
      assert.deepEqual(got.get("app-copy"), ["main.txt", "sub", "/", "inner.txt"], run.stdout);
      // *.log is ignored except keep.log; files keep their mode and belong to root.
      assert.deepEqual(got.get("logs"), ["keep.log", "notes.txt", "0:0", "644"], run.stdout);
      assert.deepEqual(got.get("tool"), ["1000:1000", "755", "tool", "ran"], run.stdout);
      assert.deepEqual(got.get("owned"), ["1000:1000", "1000:1000", "1000:1000"], run.stdout);
      // The whole context minus what .dockerignore excludes (the ignore file itself stays).
      assert.deepEqual(
        got.get("ctx")?.sort(),
        [
          "./.dockerignore",
          "./Flokafile",
          "./app",
          "./app/main.txt",
          "./app/sub",
          "./app/sub/inner.txt",
          "./keep.log",
          "./notes.txt",
          "./tool.sh",
        ],
        run.stdout,
      );
    });
  },
);

integrationTest("build: ENV, WORKDIR, USER, ENTRYPOINT and CMD apply to RUN and to the image", async () => {
  await withStore(async (s) => {
    const entrypoint =
      `["/bin/sh", "-c", "echo \\"$GREETING from $(pwd) as $(id -u):$(id -g) with $* path=$PATH\\"", "entry"]`;
    const ctx = makeContext(s, "config", {
      Flokafile: [
        "FROM busybox",
        "ENV GREETING=hello PATH=/opt/bin:$PATH",
        "WORKDIR /work",
        'RUN echo "run sees $GREETING in $(pwd) as $(id -u)"',
        "WORKDIR sub",
        "USER 1000:1000",
        `ENTRYPOINT ${entrypoint}`,
        'CMD ["one", "two"]',
        "",
      ].join("\n"),
    });
    const r = await build(s, ["-t", "bt-config", ctx]);
    assert.equal(r.code, 0, show(r));
    const run = steps(r.stdout).find((st) => st.text.startsWith("RUN "));
    assert.deepEqual(run?.output, ["  run sees hello in /work as 0"], show(r));
    const path = "/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    const image = await inspectImage(s, "bt-config");
    assert.ok(image.Config.Env.includes("GREETING=hello"), JSON.stringify(image.Config));
    assert.ok(image.Config.Env.includes(`PATH=${path}`), JSON.stringify(image.Config));
    assert.equal(image.Config.WorkingDir, "/work/sub");
    assert.equal(image.Config.User, "1000:1000");
    assert.deepEqual(image.Config.Entrypoint, JSON.parse(entrypoint));
    assert.deepEqual(image.Config.Cmd, ["one", "two"]);

    const byDefault = await s.run(["--rm", "bt-config"]);
    assert.equal(byDefault.code, 0, show(byDefault));
    assert.equal(byDefault.stdout, `hello from /work/sub as 1000:1000 with one two path=${path}\n`);
    const withArgs = await s.run(["--rm", "bt-config", "three"]);
    assert.equal(withArgs.code, 0, show(withArgs));
    assert.equal(withArgs.stdout, `hello from /work/sub as 1000:1000 with three path=${path}\n`);
  });
});

integrationTest(
  "build: RUN steps get the host's network by default, a network of their own with --network none",
  async () => {
    await withStore(async (s) => {
      const ctx = makeContext(s, "network", { Flokafile: "FROM busybox\nRUN ls /sys/class/net\n" });
      const host = [...Deno.readDirSync("/sys/class/net")].map((e) => e.name).filter((n) => n !== "lo");
      const byDefault = await build(s, [ctx]);
      assert.equal(byDefault.code, 0, show(byDefault));
      // The host's interfaces, not a loopback alone (others may come and go meanwhile).
      const seen = steps(byDefault.stdout)[1].output.map((l) => l.trim());
      assert.ok(
        seen.includes("lo") && seen.some((n) => host.includes(n)),
        `host: ${host}; ${show(byDefault)}`,
      );
      // Another network is another step: not taken from the cache of the first build.
      const none = await build(s, ["--network", "none", ctx]);
      assert.equal(none.code, 0, show(none));
      assert.equal(steps(none.stdout)[1].status, "done", show(none));
      assert.deepEqual(steps(none.stdout)[1].output, ["  lo"], show(none));
    });
  },
);

integrationTest(
  "build: multi-stage COPY --from takes one file from the builder; --target stops there; layers are shared",
  async () => {
    await withStore(async (s) => {
      const ctx = makeContext(s, "multi", {
        Flokafile: [
          "FROM busybox AS builder",
          "RUN mkdir /out && echo built > /out/x && echo junk > /junk",
          "FROM busybox",
          "COPY --from=builder /out/x /x",
          'CMD ["cat", "/x"]',
          "",
        ].join("\n"),
      });
      const r = await build(s, ["-t", "bt-multi", ctx]);
      assert.equal(r.code, 0, show(r));
      const run = await s.run([
        "--rm",
        "bt-multi",
        "sh",
        "-c",
        "cat /x; test -e /junk || echo no-junk; test -e /out || echo no-out",
      ]);
      assert.equal(run.code, 0, show(run));
      assert.deepEqual(lines(run.stdout), ["built", "no-junk", "no-out"]);
      const byCmd = await s.run(["--rm", "bt-multi"]);
      assert.equal(byCmd.stdout, "built\n", show(byCmd));

      // --target builds the builder stage alone (from the cache) and nothing after it.
      const target = await build(s, ["--target", "builder", "-t", "bt-builder", ctx]);
      assert.equal(target.code, 0, show(target));
      assert.ok(!target.stdout.includes("COPY --from"), show(target));
      const targetSteps = steps(target.stdout);
      assert.deepEqual(targetSteps.map((st) => st.text), [
        "FROM busybox AS builder",
        "RUN mkdir /out && echo built > /out/x && echo junk > /junk",
      ], show(target));
      assert.equal(targetSteps[1].status, "cached", show(target));
      const builderRun = await s.run([
        "--rm",
        "bt-builder",
        "sh",
        "-c",
        "cat /out/x /junk; test -e /x || echo no-x",
      ]);
      assert.deepEqual(lines(builderRun.stdout), ["built", "junk", "no-x"], show(builderRun));

      // Both images sit on the same busybox layer, stored and unpacked once.
      const multi = (await inspectImage(s, "bt-multi")).RootFS.Layers as string[];
      const builder = (await inspectImage(s, "bt-builder")).RootFS.Layers as string[];
      assert.equal(multi.length, 2, JSON.stringify(multi));
      assert.equal(builder.length, 2, JSON.stringify(builder));
      assert.equal(multi[0], builder[0], "the two images do not share the base layer");
      const unpacked = [...Deno.readDirSync(`${s.root}/images/layers/sha256`)].map((e) => `sha256:${e.name}`);
      assert.deepEqual(unpacked.sort(), [...new Set([...multi, ...builder])].sort());

      // The log reads as the file does: each stage's steps together, in stage order
      // (checked last, so that a wrong order does not hide the checks above).
      assert.deepEqual(stepTexts(r.stdout), [
        "[1/2] STEP 1/2: FROM busybox AS builder",
        "[1/2] STEP 2/2: RUN mkdir /out && echo built > /out/x && echo junk > /junk",
        "[2/2] STEP 1/3: FROM busybox",
        "[2/2] STEP 2/3: COPY --from=builder /out/x /x",
        '[2/2] STEP 3/3: CMD ["cat", "/x"]',
      ], show(r));
    });
  },
);

integrationTest(
  "build: FROM scratch with a static busybox COPYed in runs its CMD (Dockerfile found)",
  async () => {
    await withStore(async (s) => {
      const ctx = makeContext(s, "scratch", {
        // No Flokafile: the Dockerfile is used.
        Dockerfile: 'FROM scratch\nCOPY busybox /busybox\nCMD ["/busybox", "echo", "hi"]\n',
        busybox: { data: Deno.readFileSync("/bin/busybox"), mode: 0o755 },
      });
      const r = await build(s, ["-t", "bt-scratch", ctx]);
      assert.equal(r.code, 0, show(r));
      const image = await inspectImage(s, "bt-scratch");
      assert.equal(image.RootFS.Layers.length, 1, JSON.stringify(image.RootFS));
      const run = await s.run(["--rm", "bt-scratch"]);
      assert.equal(run.code, 0, show(run));
      assert.equal(run.stdout, "hi\n");
      const ls = await s.run(["--rm", "bt-scratch", "/busybox", "ls", "/"]);
      assert.equal(ls.code, 0, show(ls));
      assert.ok(lines(ls.stdout).includes("busybox"), show(ls));
      assert.ok(!lines(ls.stdout).includes("bin"), `scratch has no /bin: ${show(ls)}`);
    });
  },
);

integrationTest(
  "build: a failing RUN exits with its code, tags nothing and leaves no container, mount or temp dir",
  async () => {
    await withStore(async (s) => {
      const ctx = makeContext(s, "fail", {
        Flokafile: "FROM busybox\nRUN echo before-fail && exit 3\nRUN echo never\n",
      });
      const r = await build(s, ["-t", "bt-fail", ctx]);
      assert.equal(r.code, 3, show(r));
      assert.deepEqual(
        errorLines(r),
        ['floka: process "/bin/sh -c echo before-fail && exit 3" did not complete successfully: exit code: 3'],
        show(r),
      );
      assert.ok(r.stdout.includes("\n  before-fail\n"), show(r));
      assert.ok(!r.stdout.includes("never") && !r.stdout.includes("Successfully"), show(r));
      await assertNothingLeft(s, "bt-fail", r);
    });
  },
);

integrationTest("build: Flokafile errors exit 125 naming file and line before any step runs", async () => {
  await withStore(async (s) => {
    const expectParseError = (r: Result, prefix: string, mentions: string) => {
      assert.equal(r.code, 125, show(r));
      assert.equal(r.stdout, "", `a step ran before the Flokafile was rejected: ${show(r)}`);
      const errors = errorLines(r);
      assert.equal(errors.length, 1, show(r));
      assert.ok(errors[0].startsWith(`floka: ${prefix}`), show(r));
      assert.ok(errors[0].includes(mentions), show(r));
    };
    // An unknown instruction, after one that would run.
    const unknown = makeContext(s, "unknown", { Flokafile: "FROM busybox\nRUN echo ran\nFORM busybox\n" });
    expectParseError(await build(s, ["-t", "bt-bad", unknown]), "Flokafile:3: ", "FORM");
    // COPY with one argument, in a file named by -f (named in the message as given).
    const other = `${s.root}/contexts/bad.Dockerfile`;
    Deno.writeTextFileSync(other, "FROM busybox\n\nCOPY onlyone\n");
    expectParseError(await build(s, ["-f", other, "-t", "bt-bad", unknown]), `${other}:3: `, "COPY");
    // The Flokafile wins over a Dockerfile in the same context.
    const both = makeContext(s, "both", {
      Flokafile: "FROM busybox\nBOGUS1 x\n",
      Dockerfile: "BOGUS2 x\n",
    });
    expectParseError(await build(s, ["-t", "bt-bad", both]), "Flokafile:2: ", "BOGUS1");
    await assertNothingLeft(s, "bt-bad", { code: 0, stdout: "", stderr: "" });
  });
});

/**
 * Builds `FROM busybox` + `copy` and expects it to fail with one `floka:` line that says
 * `message`, leaving nothing behind.
 */
async function expectCopyFailure(s: Store, name: string, copy: string, message: string): Promise<void> {
  const ctx = makeContext(s, name, { Flokafile: `FROM busybox\n${copy}\n`, "present.txt": "here\n" });
  const r = await build(s, ["-t", "bt-copyfail", ctx]);
  assert.notEqual(r.code, 0, show(r));
  const errors = errorLines(r);
  assert.equal(errors.length, 1, show(r));
  assert.ok(errors[0].includes(message), `expected ${JSON.stringify(message)} in the error line: ${show(r)}`);
  assert.ok(!r.stdout.includes("Successfully"), show(r));
  await assertNothingLeft(s, "bt-copyfail", r);
}

integrationTest(
  "build: COPY of a missing file or to an unknown --chown user fails and leaves nothing",
  async () => {
    await withStore(async (s) => {
      await expectCopyFailure(s, "missing", "COPY nothere /x", "nothere");
      await expectCopyFailure(
        s,
        "chown",
        "COPY --chown=nosuchuser:nosuchuser present.txt /present.txt",
        "unable to find user nosuchuser",
      );
    });
  },
);

integrationTest(
  "build: COPY --from an undefined stage fails with an error naming it, and leaves nothing",
  async () => {
    await withStore(async (s) => {
      // Not a stage, so (as in Docker) an image; Docker Hub is unreachable here, and the
      // one error line must still say which name could not be resolved.
      await expectCopyFailure(s, "from", "COPY --from=nosuchstage /x /y", "nosuchstage");
    });
  },
);

integrationTest("build: --dry-run prints the parsed instructions as JSON and builds nothing", async () => {
  await withStore(async (s) => {
    const ctx = makeContext(s, "dry", {
      Flokafile: [
        "ARG BASE=busybox",
        "FROM $BASE AS first",
        "RUN echo one \\",
        "  two",
        "COPY --chown=1:1 a b /dest/",
        "CMD ['echo', 'not json']",
        "FROM first",
        "RUN <<EOF",
        "echo from heredoc",
        "EOF",
        'ENTRYPOINT ["/bin/sh", "-c"]',
        "",
      ].join("\n"),
    });
    // deno-lint-ignore no-explicit-any
    const dryRun = async (args: string[]): Promise<any[]> => {
      const r = await build(s, ["--dry-run", ...args, "-t", "bt-dry", ctx]);
      assert.equal(r.code, 0, show(r));
      const parsed = JSON.parse(r.stdout);
      assert.ok(Array.isArray(parsed), r.stdout);
      return parsed;
    };
    const parsed = await dryRun([]);
    const all = JSON.stringify(parsed);
    for (const p of parsed) {
      for (const field of ["stage", "instruction", "flags", "args", "heredocs", "line"]) {
        assert.ok(field in p, `no ${field} in ${JSON.stringify(p)}`);
      }
    }
    // One object per instruction in file order; the ARG before FROM belongs to no stage (-1).
    assert.deepEqual(parsed.map((p) => [p.line, p.stage, p.instruction]), [
      [1, -1, "ARG"],
      [2, 0, "FROM"],
      [3, 0, "RUN"],
      [5, 0, "COPY"],
      [6, 0, "CMD"],
      [7, 1, "FROM"],
      [8, 1, "RUN"],
      [11, 1, "ENTRYPOINT"],
    ], all);
    const byLine = new Map(parsed.map((p) => [p.line, p]));
    assert.deepEqual(byLine.get(1).args, ["BASE=busybox"], all);
    assert.deepEqual(byLine.get(2).args, ["busybox", "AS", "first"], all);
    assert.equal(byLine.get(2).stageName, "first", all);
    assert.equal(byLine.get(3).form, "shell", all);
    assert.match(byLine.get(3).args, /^echo one\s+two$/, all);
    assert.deepEqual(byLine.get(5).flags, { chown: "1:1" }, all);
    assert.deepEqual(byLine.get(5).args, ["a", "b", "/dest/"], all);
    // Bad JSON (single quotes) is the shell form: the whole text, as Docker reads it.
    assert.equal(byLine.get(6).form, "shell", all);
    assert.equal(byLine.get(6).args, "['echo', 'not json']", all);
    assert.deepEqual(byLine.get(7).args, ["first"], all);
    assert.equal(byLine.get(11).form, "exec", all);
    assert.deepEqual(byLine.get(11).args, ["/bin/sh", "-c"], all);
    const heredocs = byLine.get(8).heredocs;
    assert.equal(heredocs.length, 1, all);
    assert.equal(heredocs[0].name, "EOF", all);
    assert.equal(heredocs[0].content, "echo from heredoc\n", all);
    // A build arg reaches the FROM line; --target stops after its stage.
    const withArg = await dryRun(["--build-arg", "BASE=busybox:other", "--target", "first"]);
    assert.deepEqual(withArg.map((p) => p.line), [1, 2, 3, 5, 6], JSON.stringify(withArg));
    assert.deepEqual(withArg[1].args, ["busybox:other", "AS", "first"], JSON.stringify(withArg));
    // Nothing was built or stored.
    assert.deepEqual(await s.ids(), []);
    const index = JSON.parse(readOr(`${s.root}/images/index.json`, '{"manifests":[]}'));
    assert.deepEqual(index.manifests, []);
    assert.deepEqual(tmpEntries(s), []);
  });
});

function readOr(path: string, fallback: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return fallback;
  }
}

integrationTest(
  "build: SIGINT during a long RUN exits 130 and leaves no tag, container, mount, cgroup or temp dir",
  async () => {
    await withStore(async (s) => {
      const ctx = makeContext(s, "sigint", { Flokafile: "FROM busybox\nRUN echo started && sleep 600\n" });
      const bg = s.spawn(["build", "-t", "bt-sigint", ctx]);
      await bg.waitForOutput("  started\n");
      const during = await s.ids();
      bg.child.kill("SIGINT");
      // The RUN would take ten minutes: Ctrl-C must stop it, not wait for it.
      await waitUntil(
        () =>
          `floka build to end after SIGINT (stdout ${JSON.stringify(bg.stdout)}, stderr ${
            JSON.stringify(bg.stderr)
          })`,
        () => bg.exited,
        20_000,
      );
      const r = await bg.finish();
      assert.equal(r.code, 130, show(r));
      assert.ok(!r.stdout.includes("Successfully"), show(r));
      for (const id of during) assert.deepEqual(cgroupDirsOf(id), [], `cgroup of build container ${id} left`);
      await assertNothingLeft(s, "bt-sigint", r);
    });
  },
);

integrationTest(
  "build: the cache reuses unchanged steps, a changed COPY source or build arg reruns from there, --no-cache all",
  async () => {
    await withStore(async (s) => {
      // .flokaignore wins over .dockerignore, which would exclude data.txt and fail the COPY.
      const ctx = makeContext(s, "cache", {
        Flokafile: [
          "FROM busybox",
          "RUN cat /proc/sys/kernel/random/uuid > /stamp1 && echo ran-1",
          "COPY data.txt /data.txt",
          "ARG V=default",
          'RUN echo "$V" > /v && cat /proc/sys/kernel/random/uuid > /stamp2 && echo ran-2',
          "COPY . /all/",
          "CMD cat /stamp1 /stamp2 /data.txt /v && ls -A /all",
          "",
        ].join("\n"),
        "data.txt": "data v1\n",
        "ignored.txt": "ignored v1\n",
        ".flokaignore": "ignored.txt\n",
        ".dockerignore": "data.txt\n",
      });
      const built = async (args: string[]) => {
        const r = await build(s, [...args, "-t", "bt-cache", ctx]);
        assert.equal(r.code, 0, show(r));
        const all = steps(r.stdout);
        assert.equal(all.length, 7, show(r));
        const id = (await inspectImage(s, "bt-cache")).Id as string;
        assert.ok(r.stdout.includes(`Successfully built ${id.slice(7, 19)}\n`), show(r));
        const ran = all.flatMap((st) => st.output.map((l) => l.trim()));
        return { r, id, statuses: all.slice(1).map((st) => st.status), ran };
      };
      const runImage = async () => {
        const run = await s.run(["--rm", "bt-cache"]);
        assert.equal(run.code, 0, show(run));
        const [stamp1, stamp2, data, v, ...all] = lines(run.stdout);
        assert.match(stamp1, /^[0-9a-f-]{36}$/, show(run));
        assert.match(stamp2, /^[0-9a-f-]{36}$/, show(run));
        return { stamp1, stamp2, data, v, all: all.sort() };
      };
      const done = (n: number) => Array(n).fill("done");
      const cached = (n: number) => Array(n).fill("cached");

      // 1. Cold: every step runs.
      const first = await built([]);
      assert.deepEqual(first.statuses, done(6), show(first.r));
      assert.deepEqual(first.ran, ["ran-1", "ran-2"], show(first.r));
      const image1 = await runImage();
      assert.equal(image1.data, "data v1");
      assert.equal(image1.v, "default");
      assert.deepEqual(image1.all, [".dockerignore", ".flokaignore", "Flokafile", "data.txt"]);

      // 2. Nothing changed: every step after FROM is CACHED, nothing runs, same image.
      const second = await built([]);
      assert.deepEqual(second.statuses, cached(6), show(second.r));
      assert.deepEqual(second.ran, [], show(second.r));
      assert.equal(second.id, first.id);

      // 3. A file the ignore file excludes changed: still all CACHED.
      Deno.writeTextFileSync(`${ctx}/ignored.txt`, "ignored v2\n");
      const ignored = await built([]);
      assert.deepEqual(ignored.statuses, cached(6), show(ignored.r));
      assert.equal(ignored.id, first.id);

      // 4. data.txt changed: the RUN before its COPY is CACHED, the COPY and all after rerun.
      Deno.writeTextFileSync(`${ctx}/data.txt`, "data v2\n");
      const changed = await built([]);
      assert.deepEqual(changed.statuses, ["cached", ...done(5)], show(changed.r));
      assert.deepEqual(changed.ran, ["ran-2"], show(changed.r));
      assert.notEqual(changed.id, first.id);
      const image2 = await runImage();
      assert.equal(image2.stamp1, image1.stamp1, "the first RUN ran again");
      assert.notEqual(image2.stamp2, image1.stamp2, "the RUN after the changed COPY was reused");
      assert.equal(image2.data, "data v2");

      // 5. A build arg the second RUN sees changed: steps before it stay CACHED, the RUN reruns.
      const arg = await built(["--build-arg", "V=x"]);
      assert.deepEqual(arg.statuses.slice(0, 2), ["cached", "cached"], show(arg.r));
      assert.equal(arg.statuses[3], "done", show(arg.r));
      assert.deepEqual(arg.ran, ["ran-2"], show(arg.r));
      const image3 = await runImage();
      assert.equal(image3.v, "x");
      assert.equal(image3.stamp1, image1.stamp1);

      // 6. --no-cache: everything runs again, a new image.
      const noCache = await built(["--no-cache", "--build-arg", "V=x"]);
      assert.deepEqual(noCache.statuses, done(6), show(noCache.r));
      assert.deepEqual(noCache.ran, ["ran-1", "ran-2"], show(noCache.r));
      assert.notEqual(noCache.id, arg.id);
    });
  },
);

integrationTest(
  "build: ADD unpacks a local tar archive and downloads a URL; ONBUILD triggers and HEALTHCHECK reach the image",
  async () => {
    await withStore(async (s) => {
      // A gzip tarball in the context: ADD unpacks it into the destination directory.
      const staging = `${s.root}/staging`;
      Deno.mkdirSync(`${staging}/sub`, { recursive: true });
      Deno.writeTextFileSync(`${staging}/sub/inner.txt`, "from the archive\n");
      const ctx = makeContext(s, "add", {});
      const tar = await new Deno.Command("tar", { args: ["-czf", `${ctx}/files.tar.gz`, "-C", staging, "."] })
        .output();
      assert.ok(tar.success);
      // A local HTTP server: ADD of a URL stores the body under the URL's last name, mode 0600.
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
        const path = new URL(req.url).pathname;
        return path === "/dl/remote.txt" ? new Response("downloaded\n") : new Response("no", { status: 404 });
      });
      try {
        const url = `http://127.0.0.1:${server.addr.port}/dl/remote.txt`;
        writeContextFile(
          ctx,
          "Flokafile",
          [
            "FROM busybox",
            "ADD files.tar.gz /unpacked/",
            `ADD ${url} /fetched/`,
            "ONBUILD RUN echo triggered > /trigger",
            'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
            "",
          ].join("\n"),
        );
        const parent = await build(s, ["-t", "bt-parent", ctx]);
        assert.equal(parent.code, 0, show(parent));
        const run = await s.run([
          "--rm",
          "bt-parent",
          "sh",
          "-c",
          "cat /unpacked/sub/inner.txt /fetched/remote.txt; stat -c %a /fetched/remote.txt; ls /trigger 2>&1 || true",
        ]);
        assert.equal(run.code, 0, show(run));
        assert.deepEqual(lines(run.stdout).slice(0, 3), ["from the archive", "downloaded", "600"]);
        assert.match(run.stdout, /No such file/); // the trigger runs in the child, not here
        const inspected = await inspectImage(s, "bt-parent");
        assert.deepEqual(inspected.Config.OnBuild, ["RUN echo triggered > /trigger"]);
        assert.deepEqual(inspected.Config.Healthcheck, {
          Test: ["CMD", "true"],
          Interval: 5e9,
          Retries: 2,
        });

        const missing = makeContext(s, "add-404", {
          Flokafile: `FROM busybox\nADD http://127.0.0.1:${server.addr.port}/nothere /x\n`,
        });
        const failed = await build(s, ["-t", "bt-404", missing]);
        assert.equal(failed.code, 125, show(failed));
        assert.match(failed.stderr, /404/);
        await assertNothingLeft(s, "bt-404", failed);
      } finally {
        await server.shutdown();
      }

      const child = makeContext(s, "child", { Flokafile: "FROM bt-parent\nRUN cat /trigger\n" });
      const built = await build(s, ["-t", "bt-child", child]);
      assert.equal(built.code, 0, show(built));
      assert.match(built.stdout, /^ {2}triggered$/m);
      const inspected = await inspectImage(s, "bt-child");
      assert.equal(inspected.Config.OnBuild ?? null, null, "triggers run once and are not inherited");
    });
  },
);

integrationTest("build: rmi of the built images prunes their cache entries with their layers", async () => {
  await withStore(async (s) => {
    const ctx = makeContext(s, "prune", {
      Flokafile: "FROM busybox\nRUN echo one > /one\nCOPY f /f\n",
      f: "content\n",
    });
    const built = await build(s, ["-t", "bt-prune", ctx]);
    assert.equal(built.code, 0, show(built));
    const cacheDir = `${s.root}/images/build-cache`;
    assert.ok([...Deno.readDirSync(cacheDir)].length >= 3);
    const rmi = await s.floka(["rmi", "bt-prune"]);
    assert.equal(rmi.code, 0, show(rmi));
    // The base (hand-placed busybox) layer is not used by any image any more either.
    assert.deepEqual([...Deno.readDirSync(`${s.root}/images/layers/sha256`)], []);
    assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
    const again = await build(s, ["-t", "bt-prune", ctx]);
    assert.equal(again.code, 0, show(again));
    assert.doesNotMatch(again.stdout, /CACHED/);
  });
});
