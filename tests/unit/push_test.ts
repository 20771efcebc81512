/**
 * The push side without a registry: upload Location resolution, the digest parameter, Range
 * answers, the output lines, and a whole push against a recording fake registry (chunked and
 * monolithic uploads, mounts, and the errors a registry sends).
 */
import assert from "node:assert/strict";
import { sha256 } from "../../lib/digest.ts";
import { MediaType } from "../../lib/oci.ts";
import { ContentStore } from "../../src/images/content_store.ts";
import {
  chunkSizeFromEnv,
  DEFAULT_CHUNK_SIZE,
  digestLine,
  isFinalStatus,
  outcomeStatus,
  plainPushProgress,
  pushImage,
} from "../../src/images/push.ts";
import { layerLine, type PullProgress } from "../../src/images/progress.ts";
import {
  rangeEnd,
  RegistryClient,
  RegistryError,
  resolveLocation,
  withDigestParam,
} from "../../src/registry/client.ts";

Deno.test("push: a relative upload Location resolves against the request, an absolute one stands", () => {
  const base = new URL("http://127.0.0.1:5000/v2/app/blobs/uploads/");
  assert.equal(
    resolveLocation("/v2/app/blobs/uploads/1f2e?_state=abc%3D", base).href,
    "http://127.0.0.1:5000/v2/app/blobs/uploads/1f2e?_state=abc%3D",
  );
  assert.equal(resolveLocation("1f2e", base).href, "http://127.0.0.1:5000/v2/app/blobs/uploads/1f2e");
  assert.equal(
    resolveLocation("https://uploads.example/put/xyz?sig=1", base).href,
    "https://uploads.example/put/xyz?sig=1",
  );
  assert.throws(() => resolveLocation(null, base), RegistryError);
  assert.throws(() => resolveLocation("  ", base), /sent no Location/);
  assert.throws(() => resolveLocation("file:///etc/passwd", base), /scheme file:/);
});

Deno.test("push: the digest parameter is added to the upload URL, keeping its query as it is", () => {
  const d = `sha256:${"ab".repeat(32)}`;
  assert.equal(
    withDigestParam(new URL("http://r/v2/a/blobs/uploads/u?_state=x%2By%3D%3D"), d).href,
    `http://r/v2/a/blobs/uploads/u?_state=x%2By%3D%3D&digest=sha256%3A${"ab".repeat(32)}`,
  );
  assert.equal(
    withDigestParam(new URL("http://r/v2/a/blobs/uploads/u"), d).href,
    `http://r/v2/a/blobs/uploads/u?digest=sha256%3A${"ab".repeat(32)}`,
  );
});

Deno.test("push: Range answers", () => {
  assert.equal(rangeEnd("0-1023"), 1023);
  assert.equal(rangeEnd("bytes=0-9"), 9);
  assert.equal(rangeEnd(null), null);
  assert.equal(rangeEnd("5-9"), null);
});

Deno.test("push: output lines as Docker's", () => {
  assert.equal(outcomeStatus({ kind: "pushed" }), "Pushed");
  assert.equal(outcomeStatus({ kind: "exists" }), "Layer already exists");
  assert.equal(outcomeStatus({ kind: "mounted", from: "library/busybox" }), "Mounted from library/busybox");
  for (const s of ["Pushed", "Layer already exists", "Mounted from a/b"]) assert.ok(isFinalStatus(s));
  for (const s of ["Preparing", "Waiting", "Pushing"]) assert.ok(!isFinalStatus(s));
  const d = `sha256:${"0".repeat(64)}` as const;
  assert.equal(digestLine("v1", d, 528), `v1: digest: ${d} size: 528`);
  assert.equal(chunkSizeFromEnv(undefined), DEFAULT_CHUNK_SIZE);
  assert.equal(chunkSizeFromEnv("1000"), 1000);
  assert.throws(() => chunkSizeFromEnv("0"), /positive number/);
  assert.throws(() => chunkSizeFromEnv("1k"), /positive number/);
});

Deno.test("push: layer lines: short digest, status, and a bar with byte counts while pushing", () => {
  const d = `sha256:4277f79f82f8${"0".repeat(52)}`;
  assert.equal(layerLine(d, "Waiting"), "4277f79f82f8: Waiting");
  assert.equal(layerLine(d, "Pushed"), "4277f79f82f8: Pushed");
  assert.equal(
    layerLine(d, "Pushing", 500_000, 1_000_000),
    `4277f79f82f8: Pushing [${"=".repeat(24)}>${" ".repeat(25)}] 500kB/1MB`,
  );
  assert.equal(layerLine(d, "Pushing", 0, 10), `4277f79f82f8: Pushing [${" ".repeat(50)}] 0B/10B`);
  const written: string[] = [];
  const plain = plainPushProgress((line) => written.push(line));
  plain.start([d]);
  for (const status of ["Waiting", "Pushing", "Pushed"]) plain.layer(d, status, 1, 2);
  plain.layer(d, "Mounted from library/busybox");
  plain.done();
  assert.deepEqual(written, ["4277f79f82f8: Pushed", "4277f79f82f8: Mounted from library/busybox"]);
});

// --- a whole push against a fake registry -----------------------------------------------

interface Seen {
  method: string;
  url: URL;
  headers: Headers;
  body: Uint8Array;
}

const HOST = "127.0.0.1:5999";

/** A store holding one image `HOST/app:1` (and optionally another name for its blobs). */
async function fakeStore(layerSize: number, alsoNamed?: string) {
  const root = Deno.makeTempDirSync({ prefix: "floka-push-unit-" });
  const store = new ContentStore(root);
  store.init();
  const layerBytes = new Uint8Array(layerSize).map((_, i) => (i * 7) % 251);
  const layer = { mediaType: MediaType.OciLayerGzip, digest: await sha256(layerBytes), size: layerSize };
  await store.writeBlob(layer, ReadableStream.from([layerBytes]));
  const config = await store.writeJson(MediaType.OciConfig, {
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [layer.digest] },
  });
  const manifest = await store.writeJson(MediaType.OciManifest, {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config,
    layers: [layer],
  });
  store.tag(`${HOST}/app:1`, "1", manifest);
  if (alsoNamed) store.tag(alsoNamed, "latest", manifest);
  return {
    store,
    layerBytes,
    layer,
    config,
    manifest,
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

const silent: PullProgress = { start() {}, layer() {}, note() {}, done() {} };

function recordingProgress(): { progress: PullProgress; finals: Map<string, string> } {
  const finals = new Map<string, string>();
  return {
    finals,
    progress: {
      start() {},
      layer(d, s) {
        if (isFinalStatus(s)) finals.set(d, s);
      },
      note() {},
      done() {},
    },
  };
}

Deno.test("push: chunked upload follows relative and absolute Locations and reassembles the blob", async () => {
  using s = await fakeStore(2500);
  const seen: Seen[] = [];
  const uploaded = new Map<string, Uint8Array>();
  let received: number[] = [];
  let manifestBody: Uint8Array | null = null;
  let manifestType: string | null = null;
  const fake = (async (input: URL | Request | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const body = init?.body ? new Uint8Array(init.body as Uint8Array) : new Uint8Array();
    const method = init?.method ?? "GET";
    seen.push({ method, url, headers: new Headers(init?.headers), body });
    if (method === "HEAD") return new Response(null, { status: 404 });
    if (method === "POST") {
      // The layer's upload names itself only by its UUID; the config's by a Location.
      const posts = seen.filter((r) => r.method === "POST").length;
      return new Response(null, {
        status: 202,
        headers: posts === 1
          ? { "Docker-Upload-UUID": "u1" }
          : { Location: "/v2/app/blobs/uploads/u2?_state=c", "Docker-Upload-UUID": "u2" },
      });
    }
    if (method === "PATCH") {
      received = [...received, ...body];
      const n = seen.filter((r) => r.method === "PATCH").length;
      return new Response(null, {
        status: 202,
        headers: {
          // Every other answer absolute: both forms must work.
          Location: n % 2 ? `http://${HOST}/v2/app/blobs/uploads/u1?_state=s${n}` : `u1?_state=s${n}`,
          Range: `0-${received.length - 1}`,
        },
      });
    }
    if (method === "PUT" && url.pathname.includes("/blobs/uploads/")) {
      const digest = url.searchParams.get("digest")!;
      uploaded.set(digest, body.length ? body : new Uint8Array(received));
      received = [];
      return new Response(null, { status: 201, headers: { "Docker-Content-Digest": digest } });
    }
    if (method === "PUT" && url.pathname === "/v2/app/manifests/1") {
      manifestBody = body;
      manifestType = new Headers(init?.headers).get("Content-Type");
      return new Response(null, { status: 201, headers: { "Docker-Content-Digest": await sha256(body) } });
    }
    return new Response("unexpected", { status: 500 });
  }) as typeof fetch;
  const client = new RegistryClient({ fetch: fake, retries: 0 });
  const { progress, finals } = recordingProgress();
  const pushed = await pushImage(client, s.store, `${HOST}/app:1`, { progress, chunkSize: 1000 });

  assert.equal(pushed.digest, s.manifest.digest);
  assert.equal(pushed.size, s.manifest.size);
  assert.deepEqual([...finals], [[s.layer.digest, "Pushed"]]);
  const patches = seen.filter((r) => r.method === "PATCH");
  assert.deepEqual(patches.map((r) => r.headers.get("Content-Range")), ["0-999", "1000-1999", "2000-2499"]);
  assert.ok(patches.every((r) => r.headers.get("Content-Type") === "application/octet-stream"));
  assert.deepEqual(patches.map((r) => r.url.pathname + r.url.search), [
    "/v2/app/blobs/uploads/u1",
    "/v2/app/blobs/uploads/u1?_state=s1",
    "/v2/app/blobs/uploads/u1?_state=s2",
  ]);
  const finish = seen.find((r) => r.method === "PUT" && r.url.searchParams.get("digest") === s.layer.digest)!;
  assert.equal(finish.url.searchParams.get("_state"), "s3");
  assert.equal(finish.body.length, 0);
  assert.deepEqual(uploaded.get(s.layer.digest), s.layerBytes);
  // The config is small: one monolithic PUT with its bytes.
  assert.deepEqual(uploaded.get(s.config.digest), s.store.readBlob(s.config.digest));
  assert.deepEqual(manifestBody, s.store.readBlob(s.manifest.digest));
  assert.equal(manifestType, MediaType.OciManifest);
  // Layers before the config, the config before the manifest.
  const order = seen.filter((r) => r.method === "PUT").map((r) =>
    r.url.searchParams.get("digest") ?? "manifest"
  );
  assert.deepEqual(order, [s.layer.digest, s.config.digest, "manifest"]);
});

Deno.test("push: blobs present are skipped; another repository's blobs are mounted", async () => {
  using s = await fakeStore(100, `${HOST}/library/base:latest`);
  const seen: Seen[] = [];
  const fake = ((input: URL | Request | string, init?: RequestInit) => {
    const url = new URL(String(input));
    const method = init?.method ?? "GET";
    seen.push({ method, url, headers: new Headers(init?.headers), body: new Uint8Array() });
    if (method === "HEAD") {
      return Promise.resolve(
        new Response(null, { status: url.pathname.endsWith(s.config.digest) ? 200 : 404 }),
      );
    }
    if (method === "POST") return Promise.resolve(new Response(null, { status: 201 }));
    return Promise.resolve(new Response(null, { status: 201 }));
  }) as typeof fetch;
  const { progress, finals } = recordingProgress();
  await pushImage(new RegistryClient({ fetch: fake, retries: 0 }), s.store, `${HOST}/app:1`, { progress });
  assert.deepEqual([...finals], [[s.layer.digest, "Mounted from library/base"]]);
  const post = seen.find((r) => r.method === "POST")!;
  assert.equal(post.url.searchParams.get("mount"), s.layer.digest);
  assert.equal(post.url.searchParams.get("from"), "library/base");
  assert.equal(seen.filter((r) => r.method === "POST").length, 1, "the config was present: no upload");
});

Deno.test("push: registry refusals become one-line errors", async () => {
  using s = await fakeStore(10);
  const answer = (status: number, body: unknown, where: "blob" | "manifest") =>
    ((input: URL | Request | string, init?: RequestInit) => {
      const url = new URL(String(input));
      const method = init?.method ?? "GET";
      if (method === "HEAD") return Promise.resolve(new Response(null, { status: 200 }));
      const failing = where === "manifest" ? url.pathname.includes("/manifests/") : method === "POST";
      if (failing) return Promise.resolve(Response.json(body, { status }));
      return Promise.resolve(new Response(null, { status: 201 }));
    }) as typeof fetch;
  const tryPush = (f: typeof fetch) =>
    pushImage(new RegistryClient({ fetch: f, retries: 0 }), s.store, `${HOST}/app:1`, { progress: silent });

  const unsupported = {
    errors: [{ code: "MANIFEST_INVALID", message: "manifest invalid: unsupported media type" }],
  };
  await assert.rejects(tryPush(answer(400, unsupported, "manifest")), (err: Error) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(
      err.message,
      `${HOST} rejected manifest ${HOST}/app:1: manifest invalid: unsupported media type`,
    );
    return true;
  });
  await assert.rejects(
    tryPush(answer(415, unsupported, "manifest")),
    /rejected manifest .*unsupported media type/,
  );
  await assert.rejects(
    tryPush(
      answer(
        403,
        { errors: [{ code: "DENIED", message: "requested access to the resource is denied" }] },
        "manifest",
      ),
    ),
    /^RegistryError: denied: .* refused to let you push to .*app: requested access/,
  );
  await assert.rejects(
    tryPush(
      answer(
        404,
        { errors: [{ code: "NAME_UNKNOWN", message: "repository name not known to registry" }] },
        "manifest",
      ),
    ),
    /name unknown: .*app.*repository name not known/,
  );
  // A registry that stores other bytes than it was sent.
  const lying = ((input: URL | Request | string, init?: RequestInit) => {
    const url = new URL(String(input));
    if ((init?.method ?? "GET") === "HEAD") return Promise.resolve(new Response(null, { status: 200 }));
    const headers = url.pathname.includes("/manifests/")
      ? { "Docker-Content-Digest": `sha256:${"f".repeat(64)}` }
      : undefined;
    return Promise.resolve(new Response(null, { status: 201, headers }));
  }) as typeof fetch;
  await assert.rejects(tryPush(lying), /stored the manifest of .* as sha256:f+, not sha256:/);
  // 401 with no credentials to offer: denied, and what to do.
  const locked = (() =>
    Promise.resolve(
      new Response(null, { status: 401, headers: { "WWW-Authenticate": 'Basic realm="x"' } }),
    )) as typeof fetch;
  await assert.rejects(
    tryPush(locked),
    /^RegistryError: denied: authentication required to push to .*floka login/,
  );
});
