/**
 * `floka system check` (src/store/check.ts) on stores made by hand in a temporary directory:
 * what it finds, what --repair does about it, and what it leaves to a person. No root: the
 * cgroup manager points at an empty fake cgroupfs, and nothing here is mounted.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type ContainerRecord, ContainerStore } from "../../src/containers/store.ts";
import { ContentStore, NAME_ANNOTATION } from "../../src/images/content_store.ts";
import { CgroupManager } from "../../src/runtime/cgroups.ts";
import { type CheckResult, checkStore, formatFinding } from "../../src/store/check.ts";
import { ensureStoreDirs, storeRoot } from "../../src/store/root.ts";

/** A PID no process has: above the kernel's maximum (4194304). */
const DEAD_PID = 4194399;
const HOUR_AGO = new Date(Date.now() - 3600_000);

interface Fixture {
  root: string;
  store: ContainerStore;
  content: ContentStore;
  cgroups: CgroupManager;
  [Symbol.dispose](): void;
}

function fixture(): Fixture {
  const root = Deno.makeTempDirSync({ prefix: "floka-check-" });
  const sr = storeRoot(root);
  ensureStoreDirs(sr);
  const content = new ContentStore(sr.images);
  content.init();
  Deno.mkdirSync(`${root}/cgroupfs/memory`, { recursive: true });
  return {
    root,
    store: new ContainerStore(sr),
    content,
    cgroups: new CgroupManager(`${root}/cgroupfs`),
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

function sha(bytes: Uint8Array): `sha256:${string}` {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Stores `text` as a blob, as the content store does; returns its descriptor. */
function blob(f: Fixture, text: string, mediaType = "application/octet-stream") {
  const bytes = new TextEncoder().encode(text);
  const digest = sha(bytes);
  Deno.writeFileSync(f.content.blobPath(digest), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** A one-layer image tagged `name`, its layer unpacked; returns its digests. */
function image(f: Fixture, name: string) {
  const layer = blob(f, `layer of ${name}`, "application/vnd.oci.image.layer.v1.tar");
  const diffId = sha(new TextEncoder().encode(`diff of ${name}`));
  Deno.mkdirSync(f.content.layerPath(diffId), { recursive: true });
  Deno.writeTextFileSync(`${f.content.layerPath(diffId)}/file`, name);
  const config = blob(
    f,
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [diffId] } }),
    "application/vnd.oci.image.config.v1+json",
  );
  const manifest = blob(
    f,
    JSON.stringify({ schemaVersion: 2, config, layers: [layer] }),
    "application/vnd.oci.image.manifest.v1+json",
  );
  f.content.tag(name, "latest", manifest);
  return { layer, diffId, config, manifest };
}

function record(id: string, lowerDirs: string[], extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    name: `c-${id.slice(0, 6)}`,
    created: new Date().toISOString(),
    image: "busybox:latest",
    lowerDirs,
    path: "true",
    args: [],
    config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
    hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
    ...extra,
  };
}

function id(n: number): string {
  return String(n).repeat(64).slice(0, 64);
}

async function check(f: Fixture, repair: boolean): Promise<CheckResult> {
  return await checkStore(f.store, { repair, cgroups: f.cgroups, lockWaitMs: 1000 });
}

function kinds(r: CheckResult): string[] {
  return r.findings.map((x) => `${x.kind}:${x.status}`).sort();
}

Deno.test("check: a consistent store has no findings and exits ok", async () => {
  using f = fixture();
  image(f, "example.com/a:latest");
  f.store.create(record(id(1), [f.content.layerPath(image(f, "example.com/b:latest").diffId)]), () => {});
  const r = await check(f, false);
  assert.deepEqual(r.findings, []);
  assert.equal(r.ok, true);
  assert.equal(r.checked.images, 2);
  assert.equal(r.checked.blobs, 6);
  assert.equal(r.checked.layers, 2);
  assert.equal(r.checked.containers, 1);
});

Deno.test("check: leftovers of killed commands are found, then removed by --repair", async () => {
  using f = fixture();
  image(f, "example.com/a:latest");
  // A pull's half-downloaded blob and half-unpacked layer, a build's work directory.
  const tmp = `${f.content.root}/tmp`;
  Deno.writeTextFileSync(`${tmp}/blob-${DEAD_PID}-1111`, "half");
  Deno.mkdirSync(`${tmp}/layer-${DEAD_PID}-2222/usr`, { recursive: true });
  Deno.mkdirSync(`${tmp}/build-${DEAD_PID}-3333/init`, { recursive: true });
  // One of a live process (this one): never touched.
  Deno.writeTextFileSync(`${tmp}/blob-${Deno.pid}-4444`, "mine");
  // writeFileAtomic's temporary files.
  Deno.writeTextFileSync(`${f.content.root}/index.json.tmp-${DEAD_PID}-abcdef01`, "{");
  Deno.writeTextFileSync(`${f.root}/containers/.lock.tmp-${DEAD_PID}-abcdef02`, "");
  // An interrupted create (no config.json), an interrupted rm, a stale name reservation.
  Deno.mkdirSync(`${f.root}/containers/${id(2)}/upper`, { recursive: true });
  Deno.mkdirSync(`${f.root}/containers/.removing-${id(3)}/upper`, { recursive: true });
  Deno.mkdirSync(`${f.root}/containers/.names`, { recursive: true });
  Deno.writeTextFileSync(`${f.root}/containers/.names/ghost`, `${id(4)}\n`);
  for (
    const p of [...Deno.readDirSync(tmp)].map((e) => `${tmp}/${e.name}`).concat(
      `${f.root}/containers/${id(2)}`,
    )
  ) {
    Deno.utimeSync(p, HOUR_AGO, HOUR_AGO);
  }

  const found = await check(f, false);
  assert.equal(found.ok, false);
  assert.deepEqual(kinds(found), [
    "container:found",
    "container:found",
    "name:found",
    "tmp:found",
    "tmp:found",
    "tmp:found",
    "tmp:found",
    "tmp:found",
  ]);
  assert.ok(found.findings.every((x) => formatFinding(x).includes("repairable with --repair")));

  const repaired = await check(f, true);
  assert.equal(repaired.ok, true, JSON.stringify(repaired.findings));
  assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), [`blob-${Deno.pid}-4444`]);
  assert.deepEqual(
    [...Deno.readDirSync(`${f.root}/containers`)].map((e) => e.name).sort(),
    [".lock", ".names"],
  );
  assert.deepEqual([...Deno.readDirSync(`${f.root}/containers/.names`)], []);
  const again = await check(f, false);
  assert.deepEqual(again.findings, []);
});

Deno.test("check: a corrupt layer blob is removed and its image reported as needing a pull", async () => {
  using f = fixture();
  const a = image(f, "example.com/a:latest");
  Deno.writeTextFileSync(f.content.blobPath(a.layer.digest), "bit rot");
  const found = await check(f, false);
  assert.deepEqual(kinds(found), ["blob:found", "image:manual"]);
  assert.match(
    formatFinding(found.findings[0]),
    /does not match its digest.*needed by example.com\/a:latest/,
  );

  const repaired = await check(f, true);
  assert.equal(repaired.ok, false); // the image still lacks its layer blob
  assert.ok(!f.content.hasBlob(a.layer.digest));
  const after = await check(f, false);
  assert.deepEqual(kinds(after), ["image:manual"]);
  assert.match(
    formatFinding(after.findings[0]),
    /layer blob .* is missing .*pull \(or build\) example.com\/a:latest again/,
  );
});

Deno.test("check: an image whose manifest is corrupt is untagged, saying so", async () => {
  using f = fixture();
  const a = image(f, "example.com/a:latest");
  image(f, "example.com/b:latest");
  Deno.writeTextFileSync(f.content.blobPath(a.manifest.digest), "{}");
  const found = await check(f, false);
  assert.deepEqual(kinds(found), ["blob:found", "image:found"]);
  const untag = found.findings.find((x) => x.kind === "image")!;
  assert.equal(untag.where, "example.com/a:latest");
  assert.match(untag.action, /untag it .*pull \(or build\) example.com\/a:latest again/);

  const repaired = await check(f, true);
  assert.equal(repaired.ok, true, JSON.stringify(repaired.findings));
  assert.deepEqual(f.content.index().manifests.map((m) => m.annotations?.[NAME_ANNOTATION]), [
    "example.com/b:latest",
  ]);
  assert.deepEqual((await check(f, false)).findings, []);
});

Deno.test("check: a missing unpacked layer is unpacked again from its verified blob", async () => {
  using f = fixture();
  // A real (uncompressed) tar layer: one file.
  const dir = Deno.makeTempDirSync({ dir: f.root });
  Deno.writeTextFileSync(`${dir}/hello`, "hello\n");
  const tar = new Deno.Command("tar", { args: ["-C", dir, "-cf", "-", "hello"], stdout: "piped" })
    .outputSync();
  const bytes = tar.stdout;
  const digest = sha(bytes);
  Deno.writeFileSync(f.content.blobPath(digest), bytes);
  const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: bytes.length };
  const config = blob(
    f,
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [digest] } }),
  );
  const manifest = blob(f, JSON.stringify({ schemaVersion: 2, config, layers: [layer] }));
  f.content.tag("example.com/t:latest", "latest", manifest);

  const found = await check(f, false);
  assert.deepEqual(kinds(found), ["layer:found"]);
  const repaired = await check(f, true);
  assert.equal(repaired.ok, true, JSON.stringify(repaired.findings));
  assert.equal(Deno.readTextFileSync(`${f.content.layerPath(digest)}/hello`), "hello\n");
});

Deno.test("check: stray entries in layers/ go; unreadable records and lost images are left to a person", async () => {
  using f = fixture();
  Deno.writeTextFileSync(`${f.content.root}/layers/sha256/not-a-layer`, "");
  const ok = f.store.create(record(id(5), ["/nonexistent/layer"]), () => {});
  f.store.create(record(id(6), []), () => {});
  Deno.writeTextFileSync(`${f.root}/containers/${id(6)}/state.json`, "{");
  const found = await check(f, true);
  assert.deepEqual(kinds(found), ["container:manual", "container:manual", "layer:repaired"]);
  assert.equal(found.ok, false);
  assert.ok(
    found.findings.some((x) =>
      x.where.includes(ok.record.id.slice(0, 12)) && /image .* is gone/.test(x.problem)
    ),
  );
  assert.ok(found.findings.some((x) => /state.json is unreadable/.test(x.problem)));
});

Deno.test("check: a container whose process and supervisor are gone is recorded as exited; its cgroup goes", async () => {
  using f = fixture();
  const c = f.store.create(record(id(7), []), () => {});
  f.store.updateState(c.record.id, (s) => ({ ...s, status: "running", pid: DEAD_PID, pidStartTime: 1 }));
  const e = f.store.create(record(id(8), [], { name: "exited" }), () => {});
  f.store.updateState(e.record.id, (s) => ({ ...s, status: "exited", exitCode: 0 }));
  const cgroup = `${f.root}/cgroupfs/memory/floka/${e.record.id}`;
  Deno.mkdirSync(cgroup, { recursive: true });
  Deno.utimeSync(cgroup, HOUR_AGO, HOUR_AGO);

  const found = await check(f, false);
  assert.deepEqual(kinds(found), ["cgroup:found", "container:found"]);
  const repaired = await check(f, true);
  assert.equal(repaired.ok, true, JSON.stringify(repaired.findings));
  const state = JSON.parse(Deno.readTextFileSync(`${c.dir}/state.json`));
  assert.equal(state.status, "exited");
  assert.equal(state.exitCode, 255);
  assert.ok(!Deno.statSync(`${f.root}/cgroupfs/memory/floka`).isFile);
  assert.throws(() => Deno.statSync(cgroup));
});

Deno.test("check: a RUN step's container left by a killed build is removed", async () => {
  using f = fixture();
  const work = `${f.content.root}/tmp/build-${DEAD_PID}-5555`;
  Deno.mkdirSync(`${work}/init`, { recursive: true });
  const c = f.store.create(
    record(id(9), [`${work}/init`], { image: "(build step)", name: "floka-build-999999999999" }),
    () => {},
  );
  Deno.utimeSync(c.dir, HOUR_AGO, HOUR_AGO);
  Deno.utimeSync(work, HOUR_AGO, HOUR_AGO);
  const found = await check(f, false);
  assert.deepEqual(kinds(found), ["container:found", "tmp:found"]);
  const repaired = await check(f, true);
  assert.equal(repaired.ok, true, JSON.stringify(repaired.findings));
  assert.deepEqual(f.store.list(), []);
});

Deno.test("check: a lock held too long is reported, and what it guards is not repaired", async () => {
  using f = fixture();
  Deno.mkdirSync(`${f.root}/containers/.removing-${id(3)}`);
  using held = Deno.openSync(`${f.root}/containers/.lock`, { read: true, write: true, create: true });
  held.lockSync(true);
  const r = await checkStore(f.store, { repair: true, cgroups: f.cgroups, lockWaitMs: 100 });
  assert.deepEqual(kinds(r), ["container:found", "lock:manual"]);
  assert.match(r.findings.find((x) => x.kind === "lock")!.problem, new RegExp(`held by process ${Deno.pid}`));
  assert.equal(r.ok, false);
  held.unlockSync();
  assert.equal((await check(f, true)).ok, true);
});
