/**
 * Property-based tests of what Floka makes of a registry's JSON documents: indexes
 * (manifest lists), image manifests and image configs. A fake registry (the RegistryClient's
 * `fetch` option) serves valid documents with random structural mutations (fields deleted,
 * of the wrong type, huge numbers, bad digests, wrong media types) or random JSON values
 * altogether, and `floka pull`'s own code (pullImage, into a fresh content store) reads
 * them: it must pull the image or fail with a FlokaError, never crash.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { sha256 } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import {
  checkImageConfig,
  checkImageIndex,
  checkImageManifest,
  type Descriptor,
  layerCompression,
  MediaType,
} from "../../lib/oci.ts";
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from "../../lib/platform.ts";
import { loadArchive } from "../../src/images/archive.ts";
import { ContentStore } from "../../src/images/content_store.ts";
import type { PullProgress } from "../../src/images/progress.ts";
import { pullImage } from "../../src/images/pull.ts";
import { RegistryClient } from "../../src/registry/client.ts";
import { assertClearMessage, checkProperty, flokaOutcome, flokaOutcomeAsync } from "./fuzz.ts";
import { type TarEntrySpec, tarOf } from "./tar.ts";

const encoder = new TextEncoder();
const REFERENCE = "localhost:5000/fuzz/app:latest";

// ---------------------------------------------------------------------------------------
// Structural mutations of a JSON document.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

type Mutation =
  | { kind: "delete"; at: number }
  | { kind: "replace"; at: number; value: Json }
  | { kind: "addKey"; at: number; key: string; value: Json };

const HEX64 = "0123456789abcdef".repeat(4);

/** Values that are wrong in interesting ways wherever they land. */
const nastyValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 53 + 1,
    1e308,
    -1e308,
    "",
    "sha256:",
    "sha256:zz",
    `sha256:${HEX64.slice(1)}`,
    `sha256:${HEX64.toUpperCase()}`,
    `sha512:${HEX64}${HEX64}`,
    `sha256:${"0".repeat(64)}`,
    "../../etc/passwd",
    MediaType.OciIndex,
    MediaType.OciManifest,
    MediaType.DockerManifestList,
    MediaType.DockerManifest,
    MediaType.OciConfig,
    MediaType.OciLayer,
    MediaType.OciLayerZstd,
    "application/json",
    [],
    {},
    [null],
    [1, 2],
    ["a"],
    { os: "linux" },
    { architecture: 1, os: null },
    { mediaType: MediaType.OciLayer, digest: 5, size: "1" },
    { type: "layers", diff_ids: [null] },
    "linux",
    "amd64",
    "arm64",
    "unknown",
  ),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), value: nastyValue }),
  fc.record({
    kind: fc.constant("addKey" as const),
    at: fc.nat(),
    key: fc.constantFrom(
      "mediaType",
      "digest",
      "size",
      "platform",
      "manifests",
      "layers",
      "config",
      "rootfs",
    ),
    value: nastyValue,
  }),
);

/** Every [container, key] inside `doc`, root first as [null, null]. */
function slots(doc: Json): [Json[] | { [key: string]: Json } | null, string | number | null][] {
  const out: [Json[] | { [key: string]: Json } | null, string | number | null][] = [[null, null]];
  const walk = (node: Json) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        out.push([node, i]);
        walk(child);
      });
    } else if (node !== null && typeof node === "object") {
      for (const [key, child] of Object.entries(node)) {
        out.push([node, key]);
        walk(child);
      }
    }
  };
  walk(doc);
  return out;
}

function mutate(doc: Json, mutations: Mutation[]): Json {
  let root: Json = structuredClone(doc);
  for (const m of mutations) {
    const all = slots(root);
    const [container, key] = all[m.at % all.length];
    if (container === null || key === null) {
      if (m.kind === "replace") root = structuredClone(m.value);
      else if (m.kind === "addKey" && root !== null && typeof root === "object" && !Array.isArray(root)) {
        root[m.key] = structuredClone(m.value);
      }
      continue;
    }
    const target = (container as Record<string | number, Json>)[key];
    if (m.kind === "delete") {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key as string];
    } else if (m.kind === "replace") {
      (container as Record<string | number, Json>)[key] = structuredClone(m.value);
    } else if (target !== null && typeof target === "object" && !Array.isArray(target)) {
      target[m.key] = structuredClone(m.value);
    }
  }
  return root;
}

// ---------------------------------------------------------------------------------------
// A scenario: what the fake registry serves.

/** A document as served: mutations of the valid one, or something else entirely. */
type DocPlan =
  | { kind: "valid" }
  | { kind: "mutated"; mutations: Mutation[] }
  | { kind: "json"; value: Json }
  | { kind: "bytes"; text: string };

const docPlan: fc.Arbitrary<DocPlan> = fc.oneof(
  { arbitrary: fc.constant({ kind: "valid" as const }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("mutated" as const),
      mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("json" as const), value: fc.jsonValue() as fc.Arbitrary<Json> }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("bytes" as const),
      text: fc.string({ unit: "binary", maxLength: 40 }),
    }),
    weight: 1,
  },
);

interface Scenario {
  /** Layers in the image; 0 keeps most runs away from the unpack workers. */
  layers: number;
  docker: boolean;
  index: DocPlan | null;
  manifest: DocPlan;
  config: DocPlan;
  /** The Content-Type the registry sends with manifests: the document's own, generic, none. */
  contentType: "own" | "json" | "none";
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  layers: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, 0, 1, 2),
  docker: fc.boolean(),
  index: fc.option(docPlan, { nil: null }),
  manifest: docPlan,
  config: docPlan,
  contentType: fc.constantFrom("own" as const, "own" as const, "json" as const, "none" as const),
});

/** An empty tar stream: the layer every scenario uses. */
const LAYER = new Uint8Array(1024);

function bytesOf(plan: DocPlan, valid: Json): Uint8Array<ArrayBuffer> {
  switch (plan.kind) {
    case "valid":
      return encoder.encode(JSON.stringify(valid));
    case "mutated":
      return encoder.encode(JSON.stringify(mutate(valid, plan.mutations)));
    case "json":
      return encoder.encode(JSON.stringify(plan.value));
    case "bytes":
      return encoder.encode(plan.text);
  }
}

interface Served {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string | null;
}

/** The fake registry's content for `s`: path under /v2/fuzz/app/ -> response. */
async function registryContent(s: Scenario): Promise<Map<string, Served>> {
  const served = new Map<string, Served>();
  const layerDigest = await sha256(LAYER);
  const layerType = s.docker ? MediaType.DockerLayerGzip.replace(".gzip", "") : MediaType.OciLayer;
  served.set(`blobs/${layerDigest}`, { bytes: LAYER, contentType: "application/octet-stream" });

  const config: Json = {
    architecture: hostPlatform().architecture,
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: ["sh"], Labels: { a: "b" }, ExposedPorts: { "80/tcp": {} } },
    rootfs: { type: "layers", diff_ids: Array(s.layers).fill(layerDigest) },
    history: [{ created_by: "fuzz" }],
  };
  const configBytes = bytesOf(s.config, config);
  const configDigest = await sha256(configBytes);
  served.set(`blobs/${configDigest}`, { bytes: configBytes, contentType: "application/octet-stream" });

  const manifestType = s.docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest: Json = {
    schemaVersion: 2,
    mediaType: manifestType,
    config: {
      mediaType: s.docker ? MediaType.DockerConfig : MediaType.OciConfig,
      digest: configDigest,
      size: configBytes.length,
    },
    layers: Array(s.layers).fill({ mediaType: layerType, digest: layerDigest, size: LAYER.length }),
  };
  const manifestBytes = bytesOf(s.manifest, manifest);
  const manifestDigest = await sha256(manifestBytes);
  const typeHeader = (own: string) =>
    s.contentType === "own" ? own : s.contentType === "json" ? "application/json" : null;
  const manifestServed = { bytes: manifestBytes, contentType: typeHeader(manifestType) };
  served.set(`manifests/${manifestDigest}`, manifestServed);
  if (s.index === null) {
    served.set("manifests/latest", manifestServed);
    return served;
  }
  const platform = hostPlatform();
  const indexType = s.docker ? MediaType.DockerManifestList : MediaType.OciIndex;
  const index: Json = {
    schemaVersion: 2,
    mediaType: indexType,
    manifests: [
      {
        mediaType: manifestType,
        digest: manifestDigest,
        size: manifestBytes.length,
        platform: { ...platform, "os.features": ["x"] },
      },
      {
        mediaType: manifestType,
        digest: `sha256:${"1".repeat(64)}`,
        size: 10,
        platform: { os: "unknown", architecture: "unknown" },
        annotations: { "vnd.docker.reference.type": "attestation-manifest" },
      },
    ],
  };
  const indexBytes = bytesOf(s.index, index);
  const indexServed = { bytes: indexBytes, contentType: typeHeader(indexType) };
  served.set(`manifests/${await sha256(indexBytes)}`, indexServed);
  served.set("manifests/latest", indexServed);
  return served;
}

function fakeFetch(served: Map<string, Served>): typeof fetch {
  return (input: string | URL | Request) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const m = /^\/v2\/fuzz\/app\/((?:manifests|blobs)\/.+)$/.exec(url.pathname);
    const item = m ? served.get(decodeURIComponent(m[1])) : undefined;
    if (!item) {
      const body = JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "not here" }] });
      return Promise.resolve(
        new Response(body, { status: 404, headers: { "Content-Type": "application/json" } }),
      );
    }
    const headers: Record<string, string> = {};
    if (item.contentType) headers["Content-Type"] = item.contentType;
    return Promise.resolve(new Response(item.bytes, { status: 200, headers }));
  };
}

const quiet: PullProgress = { start() {}, layer() {}, note() {}, done() {} };

async function pullScenario(s: Scenario): Promise<void> {
  const served = await registryContent(s);
  const client = new RegistryClient({ fetch: fakeFetch(served), retries: 0, backoffMs: 0, timeoutMs: 5000 });
  const root = Deno.makeTempDirSync({ prefix: "floka-fuzz-store-" });
  try {
    const store = new ContentStore(root);
    const outcome = await flokaOutcomeAsync(() => pullImage(client, store, REFERENCE, { progress: quiet }));
    if (outcome.ok) {
      const pulled = outcome.value;
      assert.equal(pulled.name, REFERENCE.replace(":latest", "") + ":latest");
      assert.ok(pulled.config !== null && typeof pulled.config === "object" && !Array.isArray(pulled.config));
      assert.match(pulled.manifest.digest, /^sha256:[0-9a-f]{64}$/);
    }
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
}

Deno.test("fuzz: pulling mutated or random registry documents gives an image or a FlokaError", async () => {
  await checkProperty("manifest pull", fc.asyncProperty(scenarioArb, pullScenario), 50);
});

Deno.test("fuzz: the unmutated scenario pulls (the harness serves a valid image)", async () => {
  for (const docker of [false, true]) {
    for (const index of [null, { kind: "valid" as const }]) {
      for (const layers of [0, 1]) {
        const s: Scenario = {
          layers,
          docker,
          index,
          manifest: { kind: "valid" },
          config: { kind: "valid" },
          contentType: "own",
        };
        const served = await registryContent(s);
        const client = new RegistryClient({ fetch: fakeFetch(served), retries: 0, backoffMs: 0 });
        const root = Deno.makeTempDirSync({ prefix: "floka-fuzz-store-" });
        try {
          const pulled = await pullImage(client, new ContentStore(root), REFERENCE, { progress: quiet });
          assert.equal(pulled.config.rootfs?.diff_ids.length, layers);
        } finally {
          Deno.removeSync(root, { recursive: true });
        }
      }
    }
  }
});

// ---------------------------------------------------------------------------------------
// The document checks themselves, many more runs: what they return has the declared type
// (checked here independently), and what reads it next does not crash on it.

const D = (c: string) => `sha256:${c.repeat(64)}`;

const VALID_INDEX: Json = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [
    {
      mediaType: MediaType.OciManifest,
      digest: D("a"),
      size: 500,
      platform: { os: "linux", architecture: "amd64" },
    },
    {
      mediaType: MediaType.OciManifest,
      digest: D("b"),
      size: 501,
      platform: { os: "linux", architecture: "arm", variant: "v7", "os.features": ["f"] },
      annotations: { "org.opencontainers.image.ref.name": "x" },
    },
    { mediaType: MediaType.OciManifest, digest: D("c"), size: 502 },
  ],
  annotations: { a: "b" },
};

const VALID_MANIFEST: Json = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: { mediaType: MediaType.DockerConfig, digest: D("1"), size: 1000 },
  layers: [
    { mediaType: MediaType.DockerLayerGzip, digest: D("2"), size: 2000 },
    { mediaType: MediaType.OciLayerZstd, digest: D("3"), size: 3000, urls: ["https://x/y"] },
  ],
};

const VALID_CONFIG: Json = {
  created: "2024-01-01T00:00:00Z",
  architecture: "amd64",
  os: "linux",
  config: {
    User: "app",
    Env: ["A=1"],
    Cmd: ["sh"],
    Entrypoint: null,
    Labels: null,
    ExposedPorts: { "80/tcp": {} },
    Volumes: { "/data": {} },
    WorkingDir: "/",
    Healthcheck: { Test: ["CMD", "true"], Interval: 30e9, Retries: 3 },
    OnBuild: null,
  },
  rootfs: { type: "layers", diff_ids: [D("4"), D("5")] },
  history: [{ created_by: "x", empty_layer: true }, { comment: "y" }],
};

const documentArb = (valid: Json) =>
  fc.oneof(
    {
      arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }).map((m) => mutate(valid, m)),
      weight: 6,
    },
    { arbitrary: fc.jsonValue() as fc.Arbitrary<Json>, weight: 1 },
    { arbitrary: fc.constant(valid), weight: 1 },
  );

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function assertDescriptor(d: Descriptor): void {
  assert.ok(isRecord(d));
  assert.equal(typeof d.mediaType, "string");
  assert.match(d.digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(Number.isSafeInteger(d.size) && d.size >= 0);
  if (d.platform !== undefined) {
    assert.ok(isRecord(d.platform));
    assert.equal(typeof d.platform.os, "string");
    assert.equal(typeof d.platform.architecture, "string");
    assert.ok(d.platform.variant === undefined || typeof d.platform.variant === "string");
  }
  if (d.annotations !== undefined) {
    assert.ok(isRecord(d.annotations) && Object.values(d.annotations).every((v) => typeof v === "string"));
  }
}

/** Platforms to select for: the host's, and whatever the index names (aliases included). */
const platformArb = fc.constantFrom(
  "linux/amd64",
  "linux/arm64",
  "linux/arm/v7",
  "linux/arm/v5",
  "windows/amd64",
  "linux/x86_64/v3",
);

Deno.test("fuzz: checkImageIndex gives an index whose entries are all descriptors, or a FlokaError", async () => {
  await checkProperty(
    "manifest checkImageIndex",
    fc.property(documentArb(VALID_INDEX), platformArb, (doc, platform) => {
      const outcome = flokaOutcome(() => checkImageIndex(doc, "the index of x"));
      if (!outcome.ok) {
        assert.match(outcome.error.message, /^the index of x is invalid: /);
        return;
      }
      const index = outcome.value;
      assert.equal(index.schemaVersion, 2);
      assert.ok(Array.isArray(index.manifests));
      index.manifests.forEach(assertDescriptor);
      for (const want of [hostPlatform(), parsePlatform(platform)]) {
        const chosen = flokaOutcome(() => selectManifest(index, want));
        if (chosen.ok) assert.ok(index.manifests.includes(chosen.value));
      }
      for (const entry of index.manifests) if (entry.platform) formatPlatform(entry.platform);
    }),
    1000,
  );
});

Deno.test("fuzz: checkImageManifest gives a manifest with a config and layer descriptors, or a FlokaError", async () => {
  await checkProperty(
    "manifest checkImageManifest",
    fc.property(documentArb(VALID_MANIFEST), (doc) => {
      const outcome = flokaOutcome(() => checkImageManifest(doc, "the manifest of x"));
      if (!outcome.ok) {
        assert.match(outcome.error.message, /^the manifest of x is invalid: /);
        return;
      }
      const manifest = outcome.value;
      assert.equal(manifest.schemaVersion, 2);
      assertDescriptor(manifest.config);
      assert.ok(Array.isArray(manifest.layers));
      for (const layer of manifest.layers) {
        assertDescriptor(layer);
        layerCompression(layer.mediaType);
      }
    }),
    1000,
  );
});

Deno.test("fuzz: checkImageConfig gives a config whose fields have their types, or a FlokaError", async () => {
  const strings = (v: unknown) =>
    v === undefined || v === null || (Array.isArray(v) && v.every((s) => typeof s === "string"));
  await checkProperty(
    "manifest checkImageConfig",
    fc.property(documentArb(VALID_CONFIG), (doc) => {
      const outcome = flokaOutcome(() => checkImageConfig(doc, "config x"));
      if (!outcome.ok) {
        assert.match(outcome.error.message, /^config x is invalid: /);
        return;
      }
      const config = outcome.value;
      assert.equal(isRecord(config), true);
      for (const key of ["created", "author", "architecture", "os", "variant"] as const) {
        assert.ok(config[key] === undefined || config[key] === null || typeof config[key] === "string", key);
      }
      const c = config.config;
      if (c !== undefined && c !== null) {
        assert.ok(isRecord(c));
        for (const key of ["Env", "Cmd", "Entrypoint", "OnBuild", "Shell"] as const) {
          assert.ok(strings(c[key]), key);
        }
        for (const key of ["User", "WorkingDir", "StopSignal"] as const) {
          assert.ok(c[key] === undefined || c[key] === null || typeof c[key] === "string", key);
        }
        if (c.Labels) assert.ok(Object.values(c.Labels).every((v) => typeof v === "string"));
      }
      const diffIds = config.rootfs?.diff_ids ?? [];
      assert.ok(Array.isArray(diffIds));
      for (const id of diffIds) assert.match(id, /^sha256:[0-9a-f]{64}$/);
      if (config.history !== undefined && config.history !== null) assert.ok(config.history.every(isRecord));
    }),
    1000,
  );
});

Deno.test("manifest regression: index entries with a platform that is null or lacks os are no crash", () => {
  for (const platform of [null, {}, { architecture: "amd64" }, { os: 1, architecture: "amd64" }]) {
    const doc = {
      schemaVersion: 2,
      manifests: [{ mediaType: MediaType.OciManifest, digest: D("a"), size: 1, platform }],
    };
    const outcome = flokaOutcome(() =>
      selectManifest(checkImageIndex(doc, "the index of x"), hostPlatform())
    );
    if (platform === null) {
      assert.ok(outcome.ok, "a null platform is no platform, as in Go");
    } else {
      assert.ok(!outcome.ok && outcome.error instanceof FlokaError);
      assert.match(outcome.error.message, /^the index of x is invalid: manifests\[0\]\.platform/);
    }
  }
});

// ---------------------------------------------------------------------------------------
// The same documents from an archive (`floka load`): an OCI layout (index.json and blobs)
// or a Docker archive (manifest.json), each document mutated or replaced.

interface LoadScenario {
  oci: boolean;
  top: DocPlan;
  manifest: DocPlan;
  config: DocPlan;
  nested: boolean;
}

const loadScenarioArb: fc.Arbitrary<LoadScenario> = fc.record({
  oci: fc.boolean(),
  top: docPlan,
  manifest: docPlan,
  config: docPlan,
  nested: fc.boolean(),
});

function fileEntry(name: string, data: Uint8Array): TarEntrySpec {
  return {
    name,
    typeflag: "0",
    linkname: "",
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    data,
    devmajor: 0,
    devminor: 0,
    long: "pax",
    pax: [],
  };
}

async function archiveOf(s: LoadScenario): Promise<Uint8Array<ArrayBuffer>> {
  const files: TarEntrySpec[] = [];
  const blob = async (bytes: Uint8Array<ArrayBuffer>) => {
    const digest = await sha256(bytes);
    files.push(fileEntry(s.oci ? `blobs/sha256/${digest.slice(7)}` : `${digest.slice(7)}.json`, bytes));
    return { digest, size: bytes.length };
  };
  const layerDigest = await sha256(LAYER);
  files.push(fileEntry(s.oci ? `blobs/sha256/${layerDigest.slice(7)}` : "layer/layer.tar", LAYER));
  const config = await blob(bytesOf(s.config, {
    architecture: hostPlatform().architecture,
    os: "linux",
    config: { Cmd: ["sh"], Labels: null },
    rootfs: { type: "layers", diff_ids: [layerDigest] },
  }));
  if (!s.oci) {
    files.push(fileEntry(
      "manifest.json",
      bytesOf(s.top, [{
        Config: `${config.digest.slice(7)}.json`,
        RepoTags: ["fuzz/app:1"],
        Layers: ["layer/layer.tar"],
      }]),
    ));
    return tarOf(files, { kind: "none" });
  }
  const manifest = await blob(bytesOf(s.manifest, {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, ...config },
    layers: [{ mediaType: MediaType.OciLayer, digest: layerDigest, size: LAYER.length }],
  }));
  let entry: Json = {
    mediaType: MediaType.OciManifest,
    ...manifest,
    platform: { os: "linux", architecture: hostPlatform().architecture },
    annotations: { "io.containerd.image.name": "docker.io/fuzz/app:1" },
  };
  if (s.nested) {
    const nested = await blob(bytesOf({ kind: "valid" }, { schemaVersion: 2, manifests: [entry] }));
    entry = {
      mediaType: MediaType.OciIndex,
      ...nested,
      annotations: { "org.opencontainers.image.ref.name": "1" },
    };
  }
  files.push(fileEntry("oci-layout", encoder.encode('{"imageLayoutVersion":"1.0.0"}')));
  files.push(fileEntry("index.json", bytesOf(s.top, { schemaVersion: 2, manifests: [entry] })));
  return tarOf(files, { kind: "none" });
}

Deno.test("fuzz: loading an archive of mutated or random documents gives images or a FlokaError", async () => {
  await checkProperty(
    "manifest load",
    fc.asyncProperty(loadScenarioArb, async (s) => {
      const bytes = await archiveOf(s);
      const root = Deno.makeTempDirSync({ prefix: "floka-fuzz-store-" });
      try {
        const outcome = await flokaOutcomeAsync(() =>
          loadArchive(new ContentStore(root), new Blob([bytes]).stream())
        );
        if (outcome.ok) {
          for (const image of outcome.value) assert.match(image.id, /^sha256:[0-9a-f]{64}$/);
        } else {
          assertClearMessage(outcome.error);
        }
      } finally {
        Deno.removeSync(root, { recursive: true });
      }
    }),
    50,
  );
});

Deno.test("fuzz: the unmutated archives load (the harness builds valid ones)", async () => {
  for (const [oci, nested] of [[true, false], [true, true], [false, false]]) {
    const valid = { kind: "valid" as const };
    const bytes = await archiveOf({ oci, nested, top: valid, manifest: valid, config: valid });
    const root = Deno.makeTempDirSync({ prefix: "floka-fuzz-store-" });
    try {
      const loaded = await loadArchive(new ContentStore(root), new Blob([bytes]).stream());
      assert.deepEqual(loaded.map((image) => image.names), [["docker.io/fuzz/app:1"]]);
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  }
});

Deno.test("manifest regression: archives with documents of the wrong shape are refused, not crashed on", async () => {
  const cases: [LoadScenario, RegExp][] = [
    // Docker archive (slots: 3 is RepoTags, 6 is Layers[0]): RepoTags not a list, a null layer name.
    [
      {
        oci: false,
        nested: false,
        top: { kind: "mutated", mutations: [{ kind: "replace", at: 3, value: "x" }] },
        manifest: { kind: "valid" },
        config: { kind: "valid" },
      },
      /^invalid archive: image 1 of manifest\.json has Layers or RepoTags that are not lists of names$/,
    ],
    [
      {
        oci: false,
        nested: false,
        top: { kind: "mutated", mutations: [{ kind: "replace", at: 6, value: null }] },
        manifest: { kind: "valid" },
        config: { kind: "valid" },
      },
      /^invalid archive: image 1 of manifest\.json has Layers or RepoTags that are not lists of names$/,
    ],
    // OCI layout (slot 8 is layers[0]): a layer descriptor that is null, a config that is a list.
    [
      {
        oci: true,
        nested: false,
        top: { kind: "valid" },
        manifest: { kind: "mutated", mutations: [{ kind: "replace", at: 8, value: null }] },
        config: { kind: "valid" },
      },
      /^invalid archive: the manifest sha256:[0-9a-f]{64} is invalid: layers\[0\] must be an object$/,
    ],
    [
      {
        oci: true,
        nested: false,
        top: { kind: "valid" },
        manifest: { kind: "valid" },
        config: { kind: "json", value: [] },
      },
      /^invalid archive: the config of image sha256:[0-9a-f]{64} is invalid: the document must be an object$/,
    ],
  ];
  for (const [scenario, expected] of cases) {
    const bytes = await archiveOf(scenario);
    const root = Deno.makeTempDirSync({ prefix: "floka-fuzz-store-" });
    try {
      await assert.rejects(loadArchive(new ContentStore(root), new Blob([bytes]).stream()), (err) => {
        assert.ok(err instanceof FlokaError, String(err));
        assert.match(err.message, expected);
        return true;
      });
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  }
});
