/**
 * The registry client against two kinds of registry:
 *
 * - the real CNCF distribution server (Debian's docker-registry), filled by umoci and
 *   skopeo, for the happy paths and both authentication modes: what works there works with
 *   the registries people use. These tests need root (the project's rule for integration
 *   tests) and the tools; otherwise they are ignored and one line says why.
 * - small fake registries (Deno.serve) for the failures a real registry will not produce
 *   on demand: rate limits, server errors, lying digests, garbage bodies, redirects to
 *   storage on another host. These need nothing but the network, so they always run.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type Digest, sha256 } from "../../lib/digest.ts";
import { MediaType } from "../../lib/oci.ts";
import { RegistryClient, RegistryError } from "../../src/registry/client.ts";
import type { CredentialLookup } from "../../src/registry/credentials.ts";
import { IS_ROOT } from "./helpers.ts";
import {
  freePort,
  pushImage,
  registryToolsMissing,
  selfSignedCert,
  startRegistry,
  type UserPassword,
} from "./registry_harness.ts";

const missing = registryToolsMissing();
const realSkip = !IS_ROOT
  ? "real-registry tests skipped: they need root"
  : missing
  ? `real-registry tests skipped: ${missing}`
  : null;
if (realSkip) console.error(realSkip);

/** A test against the real docker-registry; ignored with the reason above when it cannot run. */
function realTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: `real registry: ${name}`, ignore: realSkip !== null, fn });
}

/** Registries that retry quickly: the backoff is the code under test, not the clock. */
function client(opts: { credentials?: CredentialLookup; retries?: number; fetch?: typeof fetch } = {}) {
  return new RegistryClient({ backoffMs: 5, ...opts });
}

function credentialsFor(registry: string, up: UserPassword): CredentialLookup {
  return (r) => r === registry ? { username: up.user, password: up.password } : null;
}

function ref(host: string, repository: string, tag = "latest") {
  return { registry: host, repository, tag };
}

/** Reads a blob stream through a streaming sha256, as the image store will. */
async function hashStream(body: ReadableStream<Uint8Array>): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<RegistryError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${caught}`);
  assert.match(caught.message, pattern);
  assert.equal(caught.exitCode, 125);
  assert.ok(!caught.message.includes("\n"), `one line: ${caught.message}`);
  return caught;
}

// --- the real registry ---------------------------------------------------------------

realTest("manifest by tag and by digest (OCI), digests equal skopeo's", async () => {
  const registry = await startRegistry();
  try {
    const pushed = await pushImage(registry.host, "floka/busybox", { tag: "1.0" });
    const c = client();
    const byTag = await c.getManifest(ref(registry.host, "floka/busybox", "1.0"));
    assert.equal(byTag.mediaType, MediaType.OciManifest);
    assert.equal(byTag.digest, pushed.digest);
    assert.deepEqual(byTag.bytes, pushed.manifest);
    assert.equal(await sha256(new Uint8Array(byTag.bytes)), pushed.digest);

    const byDigest = await c.getManifest(ref(registry.host, "floka/busybox"), pushed.digest);
    assert.equal(byDigest.digest, pushed.digest);
    assert.deepEqual(byDigest.bytes, byTag.bytes);
    // A reference holding a digest is fetched by it without naming it again.
    const viaRef = await c.getManifest({
      registry: registry.host,
      repository: "floka/busybox",
      digest: pushed.digest,
    });
    assert.equal(viaRef.digest, pushed.digest);
  } finally {
    await registry.stop();
  }
});

realTest("Docker schema 2 manifest and blobs (config, gzip layer) stream with matching digests", async () => {
  const registry = await startRegistry();
  try {
    const pushed = await pushImage(registry.host, "busybox", { format: "v2s2" });
    const c = client();
    const m = await c.getManifest(ref(registry.host, "busybox"));
    assert.equal(m.mediaType, MediaType.DockerManifest);
    assert.equal(m.digest, pushed.digest);
    const manifest = JSON.parse(new TextDecoder().decode(m.bytes));
    const descriptors = [manifest.config, ...manifest.layers];
    assert.equal(manifest.layers[0].mediaType, MediaType.DockerLayerGzip);
    for (const d of descriptors) {
      const blob = await c.getBlob(ref(registry.host, "busybox"), d.digest);
      assert.equal(blob.size, d.size);
      assert.deepEqual(await hashStream(blob.body), { digest: d.digest, size: d.size });
    }
  } finally {
    await registry.stop();
  }
});

realTest("zstd layers in an OCI image stream with matching digests", async () => {
  const registry = await startRegistry();
  try {
    await pushImage(registry.host, "zbox", { compress: "zstd" });
    const c = client();
    const m = await c.getManifest(ref(registry.host, "zbox"));
    const manifest = JSON.parse(new TextDecoder().decode(m.bytes));
    assert.equal(manifest.layers[0].mediaType, MediaType.OciLayerZstd);
    const blob = await c.getBlob(ref(registry.host, "zbox"), manifest.layers[0].digest);
    assert.equal((await hashStream(blob.body)).digest, manifest.layers[0].digest);
  } finally {
    await registry.stop();
  }
});

realTest("unknown tag, repository and blob: 'not found' messages", async () => {
  const registry = await startRegistry();
  try {
    await pushImage(registry.host, "present");
    const c = client();
    await rejectsWith(
      c.getManifest(ref(registry.host, "present", "nope")),
      new RegExp(`^manifest unknown: ${registry.host}/present:nope not found in ${registry.host}$`),
    );
    await rejectsWith(
      c.getManifest(ref(registry.host, "absent/repo")),
      new RegExp(`^manifest unknown: ${registry.host}/absent/repo:latest not found in ${registry.host}$`),
    );
    const missingDigest = `sha256:${"0".repeat(64)}` as Digest;
    await rejectsWith(
      c.getManifest(ref(registry.host, "present"), missingDigest),
      /^manifest unknown: .*@sha256:0{64} /,
    );
    await rejectsWith(
      c.getBlob(ref(registry.host, "present"), missingDigest),
      new RegExp(`^blob unknown: sha256:0{64} not found in ${registry.host}/present$`),
    );
  } finally {
    await registry.stop();
  }
});

realTest("htpasswd (Basic): no credentials, wrong ones, right ones", async () => {
  const creds = { user: "floka", password: "pa:ss wörd" };
  const registry = await startRegistry({ htpasswd: creds });
  try {
    const pushed = await pushImage(registry.host, "private/box", { credentials: creds });
    const r = ref(registry.host, "private/box");
    await rejectsWith(
      client().getManifest(r),
      new RegExp(
        `^unauthorized: authentication required to pull ${registry.host}/private/box:latest; ` +
          `run 'floka login ${registry.host}'$`,
      ),
    );
    await rejectsWith(
      client({ credentials: credentialsFor(registry.host, { user: "floka", password: "wrong" }) })
        .getManifest(r),
      new RegExp(
        `^unauthorized: .*run 'floka login ${registry.host}' \\(the saved credentials were rejected`,
      ),
    );
    const c = client({ credentials: credentialsFor(registry.host, creds) });
    const m = await c.getManifest(r);
    assert.equal(m.digest, pushed.digest);
    const layer = JSON.parse(new TextDecoder().decode(m.bytes)).layers[0];
    const blob = await c.getBlob(r, layer.digest);
    assert.equal((await hashStream(blob.body)).digest, layer.digest);
  } finally {
    await registry.stop();
  }
});

realTest("Bearer tokens: anonymous token server, token cached per repository", async () => {
  const registry = await startRegistry({ tokenAuth: true });
  try {
    const pushed = await pushImage(registry.host, "team/app");
    registry.tokenRequests.length = 0; // forget skopeo's
    const c = client();
    const r = ref(registry.host, "team/app");
    const m = await c.getManifest(r);
    assert.equal(m.digest, pushed.digest);
    const config = JSON.parse(new TextDecoder().decode(m.bytes)).config;
    const blob = await c.getBlob(r, config.digest);
    assert.equal((await hashStream(blob.body)).digest, config.digest);
    await c.getManifest(r, m.digest);
    assert.equal(registry.tokenRequests.length, 1, "one token for the repository, reused");
    const [request] = registry.tokenRequests;
    assert.equal(request.authorization, null);
    assert.equal(request.service, "floka-test-registry");
    assert.deepEqual(request.scopes, ["repository:team/app:pull"]);
    // Another repository needs its own scope, hence its own token.
    await rejectsWith(c.getManifest(ref(registry.host, "team/other")), /^manifest unknown/);
    assert.deepEqual(registry.tokenRequests.map((t) => t.scopes[0]), [
      "repository:team/app:pull",
      "repository:team/other:pull",
    ]);
  } finally {
    await registry.stop();
  }
});

realTest("Bearer tokens: token server demanding credentials", async () => {
  const creds = { user: "tok", password: "secret" };
  const registry = await startRegistry({ tokenAuth: true, htpasswd: creds });
  try {
    const pushed = await pushImage(registry.host, "locked", { credentials: creds });
    const r = ref(registry.host, "locked");
    await rejectsWith(
      client().getManifest(r),
      new RegExp(
        `^unauthorized: authentication required to pull ${registry.host}/locked:latest; run 'floka login`,
      ),
    );
    await rejectsWith(
      client({ credentials: credentialsFor(registry.host, { user: "tok", password: "bad" }) }).getManifest(r),
      /^unauthorized: .*credentials were rejected: invalid username or password\)$/,
    );
    registry.tokenRequests.length = 0;
    const m = await client({ credentials: credentialsFor(registry.host, creds) }).getManifest(r);
    assert.equal(m.digest, pushed.digest);
    assert.equal(registry.tokenRequests.length, 1);
    assert.equal(registry.tokenRequests[0].authorization, `Basic ${btoa("tok:secret")}`);
    assert.ok(registry.tokenRequests[0].granted);
  } finally {
    await registry.stop();
  }
});

// --- fake registries -----------------------------------------------------------------

/** What a fake server saw of a request (a served Request's headers die with the response). */
interface Seen {
  url: string;
  headers: Headers;
}

function seen(req: Request): Seen {
  return { url: req.url, headers: new Headers(req.headers) };
}

interface Fake {
  host: string;
  requests: Seen[];
  stop(): Promise<void>;
}

function fakeServer(handler: (req: Request, fake: Fake) => Response | Promise<Response>): Fake {
  const fake: Fake = { host: "", requests: [], stop: () => Promise.resolve() };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    fake.requests.push(seen(req));
    return handler(req, fake);
  });
  fake.host = `127.0.0.1:${server.addr.port}`;
  fake.stop = () => server.shutdown();
  return fake;
}

async function withFake(
  handler: (req: Request, fake: Fake) => Response | Promise<Response>,
  fn: (fake: Fake) => Promise<void>,
): Promise<void> {
  const fake = fakeServer(handler);
  try {
    await fn(fake);
  } finally {
    await fake.stop();
  }
}

const encoder = new TextEncoder();

const OCI_MANIFEST = encoder.encode(JSON.stringify({
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: { mediaType: MediaType.OciConfig, digest: `sha256:${"a".repeat(64)}`, size: 2 },
  layers: [],
}));

function manifestResponse(bytes: Uint8Array, contentType: string, headers: Record<string, string> = {}) {
  return new Response(new Uint8Array(bytes), { headers: { "Content-Type": contentType, ...headers } });
}

Deno.test("fake registry: Accept header lists the four manifest types; digest computed when not claimed", async () => {
  await withFake(() => manifestResponse(OCI_MANIFEST, MediaType.OciManifest), async (fake) => {
    const m = await client().getManifest(ref(fake.host, "x"));
    assert.equal(m.mediaType, MediaType.OciManifest);
    assert.equal(m.digest, await sha256(OCI_MANIFEST));
    const accept = fake.requests[0].headers.get("Accept")!;
    for (
      const t of [
        MediaType.OciIndex,
        MediaType.OciManifest,
        MediaType.DockerManifestList,
        MediaType.DockerManifest,
      ]
    ) {
      assert.ok(accept.includes(t), t);
    }
    assert.equal(new URL(fake.requests[0].url).pathname, "/v2/x/manifests/latest");
  });
});

Deno.test("fake registry: media type from Content-Type when the body has none; charset ignored", async () => {
  const index = encoder.encode(JSON.stringify({ schemaVersion: 2, manifests: [] }));
  await withFake(() => manifestResponse(index, `${MediaType.OciIndex}; charset=utf-8`), async (fake) => {
    assert.equal((await client().getManifest(ref(fake.host, "x"))).mediaType, MediaType.OciIndex);
  });
});

Deno.test("fake registry: garbage body, mismatched and unknown media types are refused", async () => {
  let body = encoder.encode("<html>not a manifest</html>");
  let type: string = MediaType.OciManifest;
  await withFake(() => manifestResponse(body, type), async (fake) => {
    const r = ref(fake.host, "x");
    await rejectsWith(
      client().getManifest(r),
      /^invalid manifest for .*: the registry sent something that is not JSON$/,
    );

    body = OCI_MANIFEST;
    type = MediaType.DockerManifest;
    await rejectsWith(
      client().getManifest(r),
      /media type application\/vnd\.oci\.image\.manifest\.v1\+json in the body disagrees with Content-Type application\/vnd\.docker\.distribution\.manifest\.v2\+json/,
    );

    body = encoder.encode(JSON.stringify({ schemaVersion: 1, name: "x", fsLayers: [] }));
    type = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    await rejectsWith(client().getManifest(r), /no media type/);
    body = encoder.encode(JSON.stringify({ schemaVersion: 1, mediaType: type }));
    await rejectsWith(client().getManifest(r), /unsupported manifest media type .*v1\+prettyjws/);

    // An index served as a manifest: the shape gives it away.
    body = encoder.encode(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    type = MediaType.OciManifest;
    await rejectsWith(
      client().getManifest(r),
      /does not have the shape of application\/vnd\.oci\.image\.manifest/,
    );
  });
});

Deno.test("fake registry: by-digest manifest whose bytes do not match, and a lying Docker-Content-Digest", async () => {
  const real = await sha256(OCI_MANIFEST);
  const other = `sha256:${"b".repeat(64)}` as Digest;
  let claim = other;
  await withFake(
    () => manifestResponse(OCI_MANIFEST, MediaType.OciManifest, { "Docker-Content-Digest": claim }),
    async (fake) => {
      await rejectsWith(
        client().getManifest(ref(fake.host, "x"), other),
        new RegExp(
          `^manifest digest mismatch for ${fake.host}/x@${other}: the registry sent content with digest ${real}$`,
        ),
      );
      await rejectsWith(client().getManifest(ref(fake.host, "x")), /says sha256:b{64} but the content is/);
      claim = real;
      assert.equal((await client().getManifest(ref(fake.host, "x"), real)).digest, real);
      await rejectsWith(client().getManifest(ref(fake.host, "x"), "sha256:short"), /invalid manifest digest/);
    },
  );
});

Deno.test("fake registry: 429 reports Retry-After (seconds or date) and is not retried", async () => {
  let retryAfter: string | null = "30";
  await withFake(
    () =>
      Response.json({ errors: [{ code: "TOOMANYREQUESTS", message: "slow down" }] }, {
        status: 429,
        headers: retryAfter ? { "Retry-After": retryAfter } : {},
      }),
    async (fake) => {
      await rejectsWith(
        client().getManifest(ref(fake.host, "x")),
        new RegExp(`^toomanyrequests: rate limited by ${fake.host}; retry after 30 seconds$`),
      );
      assert.equal(fake.requests.length, 1);
      retryAfter = "Wed, 21 Oct 2026 07:28:00 GMT";
      await rejectsWith(
        client().getManifest(ref(fake.host, "x")),
        /; retry after Wed, 21 Oct 2026 07:28:00 GMT$/,
      );
      retryAfter = null;
      await rejectsWith(client().getManifest(ref(fake.host, "x")), /; retry after a while/);
    },
  );
});

Deno.test("fake registry: 5xx is retried with backoff, then reported with the registry's message", async () => {
  await withFake(
    () => Response.json({ errors: [{ code: "UNKNOWN", message: "disk on fire" }] }, { status: 500 }),
    async (fake) => {
      await rejectsWith(
        client({ retries: 2 }).getManifest(ref(fake.host, "x")),
        new RegExp(
          `^${fake.host} answered 500 Internal Server Error for ${fake.host}/x:latest after 3 attempts: disk on fire$`,
        ),
      );
      assert.equal(fake.requests.length, 3);
    },
  );
  // A registry that recovers is not an error.
  let failures = 2;
  await withFake(
    () =>
      failures-- > 0
        ? new Response("busy", { status: 503 })
        : manifestResponse(OCI_MANIFEST, MediaType.OciManifest),
    async (fake) => {
      assert.equal((await client().getManifest(ref(fake.host, "x"))).mediaType, MediaType.OciManifest);
      assert.equal(fake.requests.length, 3);
    },
  );
});

Deno.test("fake registry: 403 is 'denied' with the registry's message", async () => {
  await withFake(
    () =>
      Response.json({ errors: [{ code: "DENIED", message: "requested access to the resource is denied" }] }, {
        status: 403,
      }),
    async (fake) => {
      await rejectsWith(
        client().getManifest(ref(fake.host, "x")),
        new RegExp(
          `^denied: ${fake.host} refused access to ${fake.host}/x:latest: requested access to the resource is denied$`,
        ),
      );
    },
  );
});

/** A registry that demands Bearer tokens from its own /token endpoint. */
function bearerRegistry(blobHandler: (req: Request) => Response, tokenLog: Seen[]) {
  return (req: Request, fake: Fake): Response => {
    const url = new URL(req.url);
    if (url.pathname === "/token") {
      tokenLog.push(seen(req));
      return Response.json({ token: `tok${tokenLog.length}`, expires_in: 300 });
    }
    if (req.headers.get("Authorization") !== `Bearer tok${tokenLog.length}` || tokenLog.length === 0) {
      return Response.json({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }, {
        status: 401,
        headers: {
          "WWW-Authenticate":
            `Bearer realm="http://${fake.host}/token",service="fake",scope="repository:x:pull"`,
        },
      });
    }
    return blobHandler(req);
  };
}

Deno.test("fake registry: blob redirect to another host carries no Authorization", async () => {
  const payload = encoder.encode("layer bytes from the storage backend");
  const digest = await sha256(payload);
  const storage = fakeServer(() => new Response(payload));
  const tokens: Seen[] = [];
  const registry = fakeServer(bearerRegistry(
    () =>
      new Response(null, {
        status: 307,
        headers: { Location: `http://${storage.host}/bucket/blob?sig=abc` },
      }),
    tokens,
  ));
  try {
    const blob = await client().getBlob(ref(registry.host, "x"), digest);
    assert.deepEqual(await hashStream(blob.body), { digest, size: payload.length });
    assert.equal(tokens.length, 1);
    assert.equal(tokens[0].headers.get("Authorization"), null);
    assert.equal(new URL(tokens[0].url).searchParams.get("scope"), "repository:x:pull");
    assert.equal(new URL(tokens[0].url).searchParams.get("service"), "fake");
    const last = registry.requests.at(-1)!;
    assert.equal(last.headers.get("Authorization"), "Bearer tok1");
    assert.equal(storage.requests.length, 1);
    assert.equal(new URL(storage.requests[0].url).search, "?sig=abc");
    assert.equal(storage.requests[0].headers.get("Authorization"), null);
  } finally {
    await registry.stop();
    await storage.stop();
  }
});

Deno.test("fake registry: a redirect within the registry keeps the token; blob size from Content-Length", async () => {
  const payload = encoder.encode("same-host blob");
  const digest = await sha256(payload);
  const tokens: Seen[] = [];
  await withFake(
    bearerRegistry(
      (req) =>
        new URL(req.url).pathname.startsWith("/v2/")
          ? new Response(null, { status: 302, headers: { Location: "/storage/blob" } })
          : new Response(payload, { headers: { "Docker-Content-Digest": digest } }),
      tokens,
    ),
    async (fake) => {
      const blob = await client().getBlob(ref(fake.host, "x"), digest);
      assert.equal(blob.size, payload.length);
      assert.equal((await hashStream(blob.body)).digest, digest);
      assert.equal(fake.requests.at(-1)!.headers.get("Authorization"), "Bearer tok1");
    },
  );
});

Deno.test("fake registry: a rejected cached token is fetched again once, then unauthorized", async () => {
  const tokens: Seen[] = [];
  let accept = true;
  await withFake(
    (req, fake) => {
      const url = new URL(req.url);
      if (url.pathname === "/token") {
        tokens.push(seen(req));
        return Response.json({ access_token: `t${tokens.length}` });
      }
      if (accept && req.headers.get("Authorization") === `Bearer t${tokens.length}`) {
        return manifestResponse(OCI_MANIFEST, MediaType.OciManifest);
      }
      return new Response("", {
        status: 401,
        headers: {
          "WWW-Authenticate":
            `Bearer realm="http://${fake.host}/token",service="f",error="insufficient_scope"`,
        },
      });
    },
    async (fake) => {
      const c = client();
      await c.getManifest(ref(fake.host, "x"));
      await c.getManifest(ref(fake.host, "x"));
      assert.equal(tokens.length, 1, "token cached");
      accept = false;
      await rejectsWith(
        c.getManifest(ref(fake.host, "x")),
        /^unauthorized: authentication required to pull .*; run 'floka login .*' \(or the repository does not exist\)$/,
      );
      assert.equal(tokens.length, 2, "one fresh token, then give up");
    },
  );
});

Deno.test("fake registry: Basic challenge without credentials fails; with them, sent preemptively afterwards", async () => {
  await withFake(
    (req) =>
      req.headers.get("Authorization") === `Basic ${btoa("u:p")}`
        ? manifestResponse(OCI_MANIFEST, MediaType.OciManifest)
        : new Response("", { status: 401, headers: { "WWW-Authenticate": 'Basic realm="fake"' } }),
    async (fake) => {
      await rejectsWith(client().getManifest(ref(fake.host, "x")), /floka login/);
      const c = client({ credentials: credentialsFor(fake.host, { user: "u", password: "p" }) });
      await c.getManifest(ref(fake.host, "x"));
      const before = fake.requests.length;
      await c.getManifest(ref(fake.host, "x"));
      assert.equal(fake.requests.length - before, 1, "no second 401 round trip");
    },
  );
});

Deno.test("network failures: connection refused, unknown host, TLS handshake", async () => {
  const port = freePort();
  await rejectsWith(
    client().getManifest(ref(`127.0.0.1:${port}`, "x")),
    new RegExp(`^connection refused by 127\\.0\\.0\\.1:${port}`),
  );
  await rejectsWith(
    client().getManifest(ref("no-such-registry.invalid", "x")),
    /^unknown host no-such-registry\.invalid: /,
  );

  // A TLS server with a certificate nobody trusts; the client's fetch is pointed at it over
  // https because loopback registries are otherwise spoken to in plain HTTP.
  const dir = await Deno.makeTempDir();
  try {
    await selfSignedCert(`${dir}/k`, `${dir}/c`, "untrusted");
    const tls = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      cert: await Deno.readTextFile(`${dir}/c`),
      key: await Deno.readTextFile(`${dir}/k`),
      onListen() {},
    }, () => new Response("never"));
    try {
      const viaHttps: typeof fetch = (input, init) => fetch(String(input).replace(/^http:/, "https:"), init);
      await rejectsWith(
        client({ fetch: viaHttps }).getManifest(ref(`127.0.0.1:${tls.addr.port}`, "x")),
        new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${tls.addr.port} failed: `),
      );
    } finally {
      await tls.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fake registry: oversized manifests are refused", async () => {
  const big = new Uint8Array(4 * 1024 * 1024 + 1).fill(0x20);
  await withFake(() => manifestResponse(big, MediaType.OciManifest), async (fake) => {
    await rejectsWith(client().getManifest(ref(fake.host, "x")), /larger than 4194304 bytes/);
  });
});

Deno.test("fake registry: a registry that never answers times out after the retries", async () => {
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  await withFake(async () => {
    await released;
    return new Response("too late");
  }, async (fake) => {
    try {
      await rejectsWith(
        new RegistryClient({ backoffMs: 1, retries: 1, timeoutMs: 50 }).getManifest(ref(fake.host, "x")),
        new RegExp(`^${fake.host} did not answer within 50 ms \\(2 attempts\\)$`),
      );
      assert.equal(fake.requests.length, 2);
    } finally {
      release();
    }
  });
});

Deno.test("invalid tags, digests and repository names never reach the network", async () => {
  let calls = 0;
  const counting: typeof fetch = (input, init) => {
    calls++;
    return fetch(input, init);
  };
  const c = client({ fetch: counting });
  await rejectsWith(
    c.getManifest(ref("127.0.0.1:9", "x"), "../../v2/_catalog"),
    /^invalid tag "\.\.\/\.\.\/v2\/_catalog"/,
  );
  await rejectsWith(
    c.getManifest(ref("127.0.0.1:9", "Upper/Case")),
    /^invalid repository name "Upper\/Case"/,
  );
  await rejectsWith(c.getManifest(ref("127.0.0.1:9", "a/../b")), /^invalid repository name/);
  await rejectsWith(c.getBlob(ref("127.0.0.1:9", "x"), "sha512:abc" as Digest), /^invalid blob digest/);
  assert.equal(calls, 0);
});

Deno.test("fake registry: parallel downloads meeting the same 401 share one token request", async () => {
  const payload = encoder.encode("blob");
  const digest = await sha256(payload);
  const tokens: Seen[] = [];
  await withFake(bearerRegistry(() => new Response(payload), tokens), async (fake) => {
    const c = client();
    const blobs = await Promise.all(Array.from({ length: 5 }, () => c.getBlob(ref(fake.host, "x"), digest)));
    for (const blob of blobs) assert.equal((await hashStream(blob.body)).digest, digest);
    assert.equal(tokens.length, 1);
  });
});
