/**
 * `floka pull` of images that are more than one busybox layer, end to end against Debian's
 * docker-registry on 127.0.0.1: whiteouts and opaque directories across layers, what a
 * layer says about owners, modes and hard links, multi-platform indexes, very many layers,
 * and a config that lies about its layers. Images are built by umoci (and GNU tar, or by
 * hand where no tool writes what is wanted; see `image_builder.ts`) and pushed by skopeo;
 * every test then looks at the result the way a user does, through `floka run`.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { IS_ROOT, lines, show, type Store, withStore } from "./helpers.ts";
import {
  addBusybox,
  type Descriptor,
  type Digest,
  gnuTar,
  OciLayout,
  sha256,
  skopeoPush,
  tarListing,
  tarNames,
  umociAddLayer,
  umociLayer,
  umociNew,
  umociTag,
} from "./image_builder.ts";
import { registryToolsMissing, startRegistry, type TestRegistry } from "./registry_harness.ts";

const missing = registryToolsMissing();
const skip = !IS_ROOT
  ? "image pull tests skipped: they need root"
  : missing
  ? `image pull tests skipped: ${missing}`
  : null;
if (skip) console.error(skip);

/** A test with a registry, a store, and a work directory for building images. */
function pullTest(
  name: string,
  fn: (registry: TestRegistry, store: Store, work: string) => Promise<void>,
  ignoreBecause: string | null = null,
): void {
  if (skip === null && ignoreBecause !== null) console.error(`${name}: skipped: ${ignoreBecause}`);
  Deno.test({
    name,
    ignore: skip !== null || ignoreBecause !== null,
    fn: async () => {
      const registry = await startRegistry();
      const work = await Deno.makeTempDir({ prefix: "floka-images-" });
      try {
        await withStore((store) => fn(registry, store, work));
      } finally {
        await registry.stop();
        await Deno.remove(work, { recursive: true });
      }
    },
  });
}

/** `floka run --rm IMAGE sh -c SCRIPT`, which must succeed; its stdout lines. */
async function runScript(store: Store, image: string, script: string): Promise<string[]> {
  const r = await store.run(["--rm", image, "sh", "-c", script]);
  assert.equal(r.code, 0, show(r));
  return lines(r.stdout);
}

async function pull(store: Store, args: string[]): Promise<string> {
  const r = await store.floka(["pull", ...args]);
  assert.equal(r.code, 0, show(r));
  return r.stderr;
}

function tmpLeftovers(store: Store): string[] {
  try {
    return [...Deno.readDirSync(`${store.root}/images/tmp`)].map((e) => e.name);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

function storedLayers(store: Store): string[] {
  try {
    return [...Deno.readDirSync(`${store.root}/images/layers/sha256`)].map((e) => `sha256:${e.name}`).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

interface StoredEntry {
  digest: Digest;
  platform?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The entry of the store's `index.json` that tags `name` (a full reference). */
function storedTag(store: Store, name: string): StoredEntry | undefined {
  const index = JSON.parse(Deno.readTextFileSync(`${store.root}/images/index.json`));
  return (index.manifests as StoredEntry[]).find((m) => m.annotations?.["io.containerd.image.name"] === name);
}

/**
 * Everything a container could change about the files under `dir`: per path, its type and
 * mode, owner, link count, inode, device number, size, mtime, contents or link target.
 */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (path: string, rel: string) => {
    const st = Deno.lstatSync(path);
    let what = "";
    if (st.isFile) what = createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
    else if (st.isSymlink) what = Deno.readLinkSync(path);
    out.set(
      rel,
      [st.mode, st.uid, st.gid, st.nlink, st.ino, st.rdev, st.size, st.mtime?.getTime(), what].join(" "),
    );
    if (st.isDirectory) {
      for (const entry of Deno.readDirSync(path)) walk(`${path}/${entry.name}`, `${rel}/${entry.name}`);
    }
  };
  walk(dir, ".");
  return out;
}

// --- 1 ---------------------------------------------------------------------------------

/** What a container of the whiteout image shows of the paths the layers change. */
const VIEW_SCRIPT = [
  "for d in /data /keep /old /opq; do echo \"$d: $(ls -A $d | tr '\\n' ' ')\"; done",
  "if [ -e /gone ]; then echo '/gone: present'; else echo '/gone: absent'; fi",
  'for f in /data/b /data/c /keep/x; do echo "$f = $(cat $f)"; done',
].join("\n");

pullTest(
  "pull: whiteouts and opaque directories hide lower files, and containers never change the layers",
  async (registry, store, work) => {
    const layout = await OciLayout.init(`${work}/layout`);
    // Layer 1 (umoci): busybox and the files later layers delete or replace.
    await umociNew(layout, "base");
    await umociLayer(layout, "base", async (rootfs) => {
      await addBusybox(rootfs);
      for (const dir of ["data", "keep", "old/sub", "opq/sub", "gone"]) {
        Deno.mkdirSync(`${rootfs}/${dir}`, { recursive: true });
      }
      for (const file of ["data/a", "data/b", "data/c", "keep/x", "old/f1", "old/sub/f3", "opq/f1"]) {
        Deno.writeTextFileSync(`${rootfs}/${file}`, file.split("/").pop()!);
      }
      Deno.writeTextFileSync(`${rootfs}/opq/sub/f3`, "f3");
      Deno.writeTextFileSync(`${rootfs}/opq/.hidden`, "hidden");
      Deno.writeTextFileSync(`${rootfs}/gone/y`, "y");
    });
    await umociTag(layout, "base", "top");
    // Layer 2 (umoci): deletions. umoci writes `.wh.a`, `.wh.c`, `.wh.gone`, and for the
    // directory made anew, a whiteout per old entry (`old/.wh.f1`, `old/.wh.sub`).
    await umociLayer(layout, "top", (rootfs) => {
      Deno.removeSync(`${rootfs}/data/a`);
      Deno.removeSync(`${rootfs}/data/c`);
      Deno.removeSync(`${rootfs}/gone`, { recursive: true });
      Deno.removeSync(`${rootfs}/old`, { recursive: true });
      Deno.mkdirSync(`${rootfs}/old`);
      Deno.writeTextFileSync(`${rootfs}/old/new`, "new");
    });
    // Layer 3 (GNU tar, added verbatim): /opq replaced by an opaque directory, which umoci
    // cannot write, and /data/c, deleted by layer 2, back with new contents.
    const stage = `${work}/layer3`;
    Deno.mkdirSync(`${stage}/opq`, { recursive: true });
    Deno.mkdirSync(`${stage}/data`);
    Deno.writeTextFileSync(`${stage}/opq/.wh..wh..opq`, "");
    Deno.writeTextFileSync(`${stage}/opq/new`, "new");
    Deno.writeTextFileSync(`${stage}/data/c`, "c again");
    await gnuTar(stage, ["data/c", "opq"], `${work}/layer3.tar`);
    await umociAddLayer(layout, "top", `${work}/layer3.tar`);
    // The layers hold what the test is about, in the forms umoci and GNU tar write.
    const layers = layout.image("top").layers;
    assert.equal(layers.length, 3);
    const whiteouts = (await tarNames(layout, layers[1])).filter((n) => n.includes(".wh."));
    assert.deepEqual(whiteouts.sort(), [
      ".wh.gone",
      "data/.wh.a",
      "data/.wh.c",
      "old/.wh.f1",
      "old/.wh.sub",
    ]);
    assert.deepEqual(await tarNames(layout, layers[2]), ["data/c", "opq/", "opq/.wh..wh..opq", "opq/new"]);

    const top = `${registry.host}/whiteouts:top`;
    const base = `${registry.host}/whiteouts:base`;
    await skopeoPush(layout, "top", top);
    await skopeoPush(layout, "base", base);

    await pull(store, [top]);
    const expected = [
      "/data: b c ",
      "/keep: x ",
      "/old: new ",
      "/opq: new ",
      "/gone: absent",
      "/data/b = b",
      "/data/c = c again",
      "/keep/x = x",
    ];
    assert.deepEqual(await runScript(store, top, VIEW_SCRIPT), expected);

    // A container that deletes, rewrites, re-creates, chmods and links lower files changes
    // its own upper layer only: not a byte, mode or inode of the store's images.
    const before = snapshot(`${store.root}/images`);
    await runScript(
      store,
      top,
      [
        "set -e",
        "rm /data/b",
        "echo changed > /keep/x",
        "chmod 600 /keep/x",
        "chown 1:1 /keep",
        "ln /keep/x /keep/x2",
        "mv /data/c /data/moved",
        "rm -rf /old /opq",
        "mkdir /old",
        "echo mine > /old/mine",
        "echo added > /data/added",
        "touch /data /keep",
      ].join("\n"),
    );
    assert.deepEqual(snapshot(`${store.root}/images`), before, "a container changed the image store");
    // The next container starts from the image as pulled.
    assert.deepEqual(await runScript(store, top, VIEW_SCRIPT), expected);

    // Another image with the bottom layer alone shares its unpacked directory, which the
    // whiteouts of the layers above must not have touched.
    const again = await pull(store, [base]);
    assert.match(again, /Already exists/);
    assert.doesNotMatch(again, /Pull complete/);
    assert.deepEqual(await runScript(store, base, VIEW_SCRIPT), [
      "/data: a b c ",
      "/keep: x ",
      "/old: f1 sub ",
      "/opq: .hidden f1 sub ",
      "/gone: present",
      "/data/b = b",
      "/data/c = c",
      "/keep/x = x",
    ]);
    assert.deepEqual(tmpLeftovers(store), []);
  },
);

// --- 2 ---------------------------------------------------------------------------------

pullTest(
  "pull: a layer's setuid and setgid modes, owners and hard links survive (Docker schema 2)",
  async (registry, store, work) => {
    const layout = await OciLayout.init(`${work}/layout`);
    await umociNew(layout, "latest");
    await umociLayer(layout, "latest", addBusybox);
    await umociLayer(layout, "latest", (rootfs) => {
      Deno.mkdirSync(`${rootfs}/data/owned`, { recursive: true });
      // A su-like binary: setuid root, and hard-linked under a second name.
      Deno.copyFileSync(`${rootfs}/bin/busybox`, `${rootfs}/bin/su-like`);
      Deno.chmodSync(`${rootfs}/bin/su-like`, 0o4755);
      Deno.linkSync(`${rootfs}/bin/su-like`, `${rootfs}/usr/bin/su-link`);
      Deno.writeTextFileSync(`${rootfs}/bin/sg-like`, "#!/bin/sh\n");
      Deno.chownSync(`${rootfs}/bin/sg-like`, 0, 50);
      Deno.chmodSync(`${rootfs}/bin/sg-like`, 0o2755);
      // A file of another user, hard-linked, and that user's private directory.
      Deno.writeTextFileSync(`${rootfs}/data/h1`, "shared\n");
      Deno.chownSync(`${rootfs}/data/h1`, 1234, 1234);
      Deno.chmodSync(`${rootfs}/data/h1`, 0o640);
      Deno.linkSync(`${rootfs}/data/h1`, `${rootfs}/data/h2`);
      Deno.chownSync(`${rootfs}/data/owned`, 1234, 1234);
      Deno.chmodSync(`${rootfs}/data/owned`, 0o750);
    });
    // What the test is about must really be in the layer, as hard links and modes.
    const tarList = await tarListing(layout, layout.image("latest").layers[1]);
    assert.match(tarList, /^hrwsr-xr-x 0\/0 .* usr\/bin\/su-link link to bin\/su-like$/m);
    assert.match(tarList, /^hrw-r----- 1234\/1234 .* data\/h2 link to data\/h1$/m);

    const ref = `${registry.host}/modes:latest`;
    await skopeoPush(layout, "latest", ref, { format: "v2s2" });
    await pull(store, [ref]);
    const out = await runScript(
      store,
      ref,
      "stat -c '%n %a %u:%g %h %i' /bin/su-like /usr/bin/su-link /bin/sg-like /data/h1 /data/h2 /data/owned" +
        "; cat /data/h2",
    );
    const stat = new Map(
      out.slice(0, 6).map((line) => {
        const [name, mode, owner, links, inode] = line.split(" ");
        return [name, { shown: `${mode} ${owner} ${links}`, inode }];
      }),
    );
    assert.equal(stat.get("/bin/su-like")?.shown, "4755 0:0 2", out.join("\n"));
    assert.equal(stat.get("/usr/bin/su-link")?.shown, "4755 0:0 2", out.join("\n"));
    assert.equal(stat.get("/bin/sg-like")?.shown, "2755 0:50 1", out.join("\n"));
    assert.equal(stat.get("/data/h1")?.shown, "640 1234:1234 2", out.join("\n"));
    assert.equal(stat.get("/data/h2")?.shown, "640 1234:1234 2", out.join("\n"));
    assert.equal(stat.get("/data/owned")?.shown.split(" ").slice(0, 2).join(" "), "750 1234:1234");
    assert.equal(stat.get("/bin/su-like")?.inode, stat.get("/usr/bin/su-link")?.inode, "not one file");
    assert.equal(stat.get("/data/h1")?.inode, stat.get("/data/h2")?.inode, "not one file");
    assert.notEqual(stat.get("/data/h1")?.inode, stat.get("/bin/su-like")?.inode);
    assert.equal(out[6], "shared");
  },
);

// --- 3 ---------------------------------------------------------------------------------

pullTest(
  "pull: a multi-platform index gives the host's image, --platform another, attestations are never images",
  async (registry, store, work) => {
    const layout = await OciLayout.init(`${work}/layout`);
    // linux/amd64 (umoci): busybox, and /etc/platform to tell the images apart.
    await umociNew(layout, "amd64", "amd64");
    await umociLayer(layout, "amd64", async (rootfs) => {
      await addBusybox(rootfs);
      Deno.writeTextFileSync(`${rootfs}/etc/platform`, "amd64\n");
    });
    // linux/arm64 (umoci): only a text file, nothing here could run it anyway.
    await umociNew(layout, "arm64", "arm64");
    await umociLayer(layout, "arm64", (rootfs) => {
      Deno.mkdirSync(`${rootfs}/etc`);
      Deno.writeTextFileSync(`${rootfs}/etc/platform`, "arm64\n");
    });
    const amd64 = layout.image("amd64");
    const arm64 = layout.image("arm64");
    assert.equal(arm64.config.architecture, "arm64");
    // A BuildKit-style provenance attestation for the amd64 image (by hand).
    const statement = await layout.writeJson("application/vnd.in-toto+json", {
      _type: "https://in-toto.io/Statement/v0.1",
      predicateType: "https://slsa.dev/provenance/v0.2",
      subject: [{ name: "floka-test", digest: { sha256: amd64.manifest.digest.slice(7) } }],
      predicate: {},
    }, { annotations: { "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2" } });
    const attestation = await layout.writeImage([statement], {
      architecture: "unknown",
      os: "unknown",
      config: {},
      rootfs: { type: "layers", diff_ids: [statement.digest] },
    }, {
      platform: { os: "unknown", architecture: "unknown" },
      annotations: {
        "vnd.docker.reference.digest": amd64.manifest.digest,
        "vnd.docker.reference.type": "attestation-manifest",
      },
    });
    // The host's image last, so that neither "the first entry" nor "the first non-host
    // entry" would pick it by accident.
    const index = await layout.writeIndex([
      {
        ...arm64.manifest,
        annotations: undefined,
        platform: { os: "linux", architecture: "arm64", variant: "v8" },
      },
      attestation,
      { ...amd64.manifest, annotations: undefined, platform: { os: "linux", architecture: "amd64" } },
    ]);
    layout.tag("multi", index);
    const name = `${registry.host}/multi:latest`;
    const pushed = await skopeoPush(layout, "multi", name, { all: true });
    assert.equal(pushed, index.digest, "skopeo changed the index");

    // Host platform (this is an amd64 host, as the manifest says).
    const stderr = await pull(store, [name]);
    assert.match(stderr, new RegExp(`Digest: ${index.digest}`));
    assert.doesNotMatch(stderr, /WARNING/);
    assert.equal(storedTag(store, name)?.digest, amd64.manifest.digest);
    assert.deepEqual(await runScript(store, name, "cat /etc/platform"), ["amd64"]);
    assert.deepEqual(storedLayers(store), [...amd64.config.rootfs.diff_ids].sort(), "more than amd64 pulled");

    // --platform: the same reference now names the arm64 image, under the same repo digest.
    await pull(store, ["--platform", "linux/arm64/v8", name]);
    const tagged = storedTag(store, name);
    assert.equal(tagged?.digest, arm64.manifest.digest);
    assert.equal(tagged?.annotations?.["io.floka.image.repo-digest"], index.digest);
    const images = await store.floka(["images", "--digests", "--no-trunc"]);
    assert.equal(images.code, 0, show(images));
    const row = lines(images.stdout).find((l) => l.startsWith(`${registry.host}/multi `));
    assert.ok(row, show(images));
    assert.deepEqual(row.split(/\s+/).slice(0, 4), [
      `${registry.host}/multi`,
      "latest",
      index.digest,
      arm64.configDescriptor.digest,
    ]);
    const arm64DiffId = arm64.config.rootfs.diff_ids.at(-1)!;
    assert.equal(
      Deno.readTextFileSync(`${store.root}/images/layers/sha256/${arm64DiffId.slice(7)}/etc/platform`),
      "arm64\n",
    );

    // A platform the index does not have: exit 125, the platforms it has (not the
    // attestation's unknown/unknown), and the tag left as it was.
    const s390x = await store.floka(["pull", "--platform", "linux/s390x", name]);
    assert.equal(s390x.code, 125, show(s390x));
    const error = lines(s390x.stderr).filter((l) => l.startsWith("floka:"));
    assert.equal(error.length, 1, show(s390x));
    assert.match(error[0], /linux\/s390x/);
    assert.match(error[0], /linux\/amd64/);
    assert.match(error[0], /linux\/arm64\/v8/);
    assert.doesNotMatch(error[0], /unknown/);
    assert.equal(storedTag(store, name)?.digest, arm64.manifest.digest);
    assert.deepEqual(tmpLeftovers(store), []);
  },
  // The host's image is the amd64 one, which must run here.
  Deno.build.arch === "x86_64" ? null : "the index's host image is linux/amd64",
);

// --- 4 ---------------------------------------------------------------------------------

const LAYER_COUNT = 120;

pullTest(
  `pull: an image of ${LAYER_COUNT} layers runs with every layer, in order`,
  async (registry, store, work) => {
    const layout = await OciLayout.init(`${work}/layout`);
    await umociNew(layout, "latest");
    // Layer 1 (umoci) is busybox; every layer N adds /layers/N and rewrites /top.
    await umociLayer(layout, "latest", async (rootfs) => {
      await addBusybox(rootfs);
      Deno.mkdirSync(`${rootfs}/layers`);
      Deno.writeTextFileSync(`${rootfs}/layers/1`, "1\n");
      Deno.writeTextFileSync(`${rootfs}/top`, "1\n");
    });
    const stage = `${work}/stage`;
    Deno.mkdirSync(`${stage}/layers`, { recursive: true });
    for (let n = 2; n <= LAYER_COUNT; n++) {
      Deno.writeTextFileSync(`${stage}/layers/${n}`, `${n}\n`);
      Deno.writeTextFileSync(`${stage}/top`, `${n}\n`);
      await gnuTar(stage, [`layers/${n}`, "top"], `${work}/layer.tar`);
      await umociAddLayer(layout, "latest", `${work}/layer.tar`);
    }
    const { layers } = layout.image("latest");
    assert.equal(layers.length, LAYER_COUNT);
    const ref = `${registry.host}/many:latest`;
    await skopeoPush(layout, "latest", ref);

    await pull(store, ["-q", ref]);
    assert.equal(storedLayers(store).length, LAYER_COUNT);
    const out = await runScript(store, ref, "ls /layers | wc -l; cat /top; cat /layers/1 /layers/120");
    assert.deepEqual(out.map((l) => l.trim()), [String(LAYER_COUNT), String(LAYER_COUNT), "1", "120"]);
  },
);

// --- 5 ---------------------------------------------------------------------------------

pullTest(
  "pull: a config whose diff_ids disagree with the layers fails, tags nothing, leaves nothing in tmp",
  async (registry, store, work) => {
    const layout = await OciLayout.init(`${work}/layout`);
    await umociNew(layout, "base");
    await umociLayer(layout, "base", addBusybox);
    const busybox = layout.image("base");
    const busyboxLayer = busybox.layers[0];
    const busyboxDiffId = busybox.config.rootfs.diff_ids[0];
    // A small layer by GNU tar, its diff_id computed here from the very tar bytes.
    const stage = `${work}/stage`;
    Deno.mkdirSync(`${stage}/etc`, { recursive: true });
    Deno.writeTextFileSync(`${stage}/etc/marker`, "marker\n");
    await gnuTar(stage, ["etc/marker"], `${work}/marker.tar`);
    const marker = await layout.addLayer(Deno.readFileSync(`${work}/marker.tar`));
    const bogus = await sha256(new TextEncoder().encode("not the layer"));

    const config = (diffIds: Digest[]) => ({
      ...busybox.config,
      rootfs: { type: "layers" as const, diff_ids: diffIds },
    });
    // The small layer first: it fails while the busybox layer is still being unpacked.
    const cases: { repo: string; diffIds: Digest[]; message: RegExp }[] = [
      {
        repo: "wrong-diffid",
        diffIds: [bogus, busyboxDiffId],
        message: new RegExp(
          `(${bogus}|${marker.layer.digest}).*diff_id|diff_id.*(${bogus}|${marker.layer.digest})`,
        ),
      },
      {
        repo: "swapped-diffids",
        diffIds: [busyboxDiffId, marker.diffId],
        message: /diff_id/,
      },
      {
        repo: "missing-diffid",
        diffIds: [busyboxDiffId],
        message: /diff_id/,
      },
    ];
    for (const { repo, diffIds, message } of cases) {
      const manifest: Descriptor = await layout.writeImage([marker.layer, busyboxLayer], config(diffIds));
      layout.tag(repo, manifest);
      await skopeoPush(layout, repo, `${registry.host}/${repo}:latest`);
      const r = await store.floka(["pull", `${registry.host}/${repo}`]);
      assert.equal(r.code, 125, `${repo}: ${show(r)}`);
      const error = lines(r.stderr).filter((l) => l.startsWith("floka:"));
      assert.equal(error.length, 1, `${repo}: ${show(r)}`);
      assert.match(error[0], message, `${repo}: ${show(r)}`);
      assert.deepEqual(tmpLeftovers(store), [], `${repo}: leftovers in images/tmp`);
      const images = await store.floka(["images"]);
      assert.equal(images.code, 0, show(images));
      assert.ok(!images.stdout.includes(repo), `${repo} is listed: ${show(images)}`);
      // Neither the claimed diff_id nor the small layer's real one is stored as a layer.
      for (const diffId of [bogus, marker.diffId]) {
        assert.ok(!storedLayers(store).includes(diffId), `${repo}: layer ${diffId} was stored`);
      }
      // `floka run` pulls it again, and fails the same way without making a container.
      const run = await store.run(["--rm", `${registry.host}/${repo}`, "true"]);
      assert.equal(run.code, 125, `${repo}: ${show(run)}`);
      assert.deepEqual(await store.ids(), []);
    }
    assert.deepEqual(tmpLeftovers(store), []);
  },
);
