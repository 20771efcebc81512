/**
 * `floka pull` and `floka run` of pulled images, end to end against Debian's docker-registry
 * on 127.0.0.1, with images made by umoci and pushed by skopeo.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { IS_ROOT, lines, show, type Store, waitUntil, withStore } from "./helpers.ts";
import { pushImage, registryToolsMissing, startRegistry, type TestRegistry } from "./registry_harness.ts";

const missing = registryToolsMissing();
const skip = !IS_ROOT
  ? "pull tests skipped: they need root"
  : missing
  ? `pull tests skipped: ${missing}`
  : null;
if (skip) console.error(skip);

function pullTest(name: string, fn: (registry: TestRegistry, store: Store) => Promise<void>): void {
  Deno.test({
    name,
    ignore: skip !== null,
    fn: async () => {
      const registry = await startRegistry();
      try {
        await withStore((store) => fn(registry, store));
      } finally {
        await registry.stop();
      }
    },
  });
}

/** Every stored blob hashes to its name; nothing half-written is left in tmp/. */
function assertStoreConsistent(store: Store): void {
  const images = `${store.root}/images`;
  for (const entry of Deno.readDirSync(`${images}/blobs/sha256`)) {
    const hash = createHash("sha256").update(Deno.readFileSync(`${images}/blobs/sha256/${entry.name}`))
      .digest("hex");
    assert.equal(hash, entry.name, `blob ${entry.name} does not match its name`);
  }
  assert.deepEqual([...Deno.readDirSync(`${images}/tmp`)].map((e) => e.name), [], "leftovers in images/tmp");
}

function layerDirs(store: Store): string[] {
  try {
    return [...Deno.readDirSync(`${store.root}/images/layers/sha256`)].map((e) => e.name).sort();
  } catch {
    return [];
  }
}

for (const format of ["oci", "v2s2"] as const) {
  pullTest(
    `pull: a ${format} image pulls, lists, and runs as PID 1 from its layers`,
    async (registry, store) => {
      const pushed = await pushImage(registry.host, "busybox", { format });
      const pull = await store.floka(["pull", `${registry.host}/busybox`]);
      assert.equal(pull.code, 0, show(pull));
      assert.equal(pull.stdout.trim(), `${registry.host}/busybox:latest`);
      assert.match(pull.stderr, new RegExp(`Digest: ${pushed.digest}`));
      const images = await store.floka(["images", "--digests"]);
      assert.match(images.stdout, new RegExp(`${registry.host}/busybox\\s+latest\\s+${pushed.digest}`));
      const [inspected] = JSON.parse((await store.floka(["inspect", `${registry.host}/busybox`])).stdout);
      assert.deepEqual(inspected.RepoDigests, [`${registry.host}/busybox@${pushed.digest}`]);
      const manifest = JSON.parse(new TextDecoder().decode(pushed.manifest));
      assert.equal(inspected.Id, manifest.config.digest);
      assert.deepEqual(inspected.RepoTags, [`${registry.host}/busybox:latest`]);
      const run = await store.run([
        "--rm",
        `${registry.host}/busybox`,
        "sh",
        "-c",
        "echo $$; cat /etc/floka-image-id",
      ]);
      assert.equal(run.code, 0, show(run));
      assert.equal(lines(run.stdout)[0], "1");
      assert.equal(layerDirs(store).length, 1);
      assertStoreConsistent(store);
    },
  );
}

pullTest("pull: zstd layers unpack like gzip ones", async (registry, store) => {
  await pushImage(registry.host, "busybox-zstd", { compress: "zstd" });
  const pull = await store.floka(["pull", "-q", `${registry.host}/busybox-zstd:latest`]);
  assert.equal(pull.code, 0, show(pull));
  const run = await store.run(["--rm", `${registry.host}/busybox-zstd`, "cat", "/etc/floka-image-id"]);
  assert.equal(run.code, 0, show(run));
  assertStoreConsistent(store);
});

pullTest("run: an image that is not here is pulled first, as docker run does", async (registry, store) => {
  await pushImage(registry.host, "auto");
  const run = await store.run(["--rm", `${registry.host}/auto`, "echo", "pulled and ran"]);
  assert.equal(run.code, 0, show(run));
  assert.match(run.stderr, /Unable to find image '.*auto:latest' locally/);
  assert.equal(run.stdout.trim(), "pulled and ran");
});

pullTest("pull: by digest, and the same image twice at once stores one copy", async (registry, store) => {
  const pushed = await pushImage(registry.host, "twice");
  const byDigest = `${registry.host}/twice@${pushed.digest}`;
  const [a, b] = await Promise.all([
    store.floka(["pull", byDigest]),
    store.floka(["pull", `${registry.host}/twice`]),
  ]);
  assert.equal(a.code, 0, show(a));
  assert.equal(b.code, 0, show(b));
  assert.equal(layerDirs(store).length, 1);
  assertStoreConsistent(store);
  const run = await store.run(["--rm", byDigest, "true"]);
  assert.equal(run.code, 0, show(run));
});

pullTest("pull: an unknown image is one line, exit 125, and stores nothing", async (registry, store) => {
  const pull = await store.floka(["pull", `${registry.host}/nope:missing`]);
  assert.equal(pull.code, 125, show(pull));
  assert.match(pull.stderr, /floka: .*(not found|unknown)/i);
  assert.equal(pull.stderr.trim().split("\n").filter((l) => l.startsWith("floka:")).length, 1, show(pull));
  assert.deepEqual(layerDirs(store), []);
});

pullTest(
  "pull: a layer that does not match its digest fails the pull and is not stored",
  async (registry, store) => {
    const pushed = await pushImage(registry.host, "tampered");
    const manifest = JSON.parse(new TextDecoder().decode(pushed.manifest));
    const layer: string = manifest.layers[0].digest;
    // A registry in front of the real one that flips one byte of the layer blob.
    const upstream = `http://${registry.host}`;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      const headers = new Headers([...req.headers].filter(([k]) => k !== "host"));
      const res = await fetch(`${upstream}${url.pathname}`, { headers, redirect: "follow" });
      if (!url.pathname.endsWith(`/blobs/${layer}`)) return res;
      const body = new Uint8Array(await res.arrayBuffer());
      body[body.length - 1] ^= 0xff;
      return new Response(body, { status: res.status, headers: res.headers });
    });
    try {
      const host = `127.0.0.1:${server.addr.port}`;
      const pull = await store.floka(["pull", `${host}/tampered`]);
      assert.equal(pull.code, 125, show(pull));
      assert.match(pull.stderr, /does not match its digest/);
      assert.throws(() => Deno.statSync(`${store.root}/images/blobs/sha256/${layer.slice(7)}`));
      assert.deepEqual(layerDirs(store), []);
      const images = await store.floka(["images"]);
      assert.ok(!images.stdout.includes("tampered"), show(images));
      assertStoreConsistent(store);
    } finally {
      await server.shutdown();
    }
  },
);

pullTest(
  "pull: what a killed pull left in images/tmp is removed by the next pull",
  async (registry, store) => {
    await pushImage(registry.host, "again");
    const tmp = `${store.root}/images/tmp`;
    Deno.mkdirSync(`${tmp}/layer-999999-dead/usr`, { recursive: true });
    Deno.writeTextFileSync(`${tmp}/blob-999999-dead`, "half a blob");
    const pull = await store.floka(["pull", "-q", `${registry.host}/again`]);
    assert.equal(pull.code, 0, show(pull));
    assertStoreConsistent(store);
  },
);

function blobCount(store: Store): number {
  try {
    return [...Deno.readDirSync(`${store.root}/images/blobs/sha256`)].length;
  } catch {
    return 0;
  }
}

pullTest(
  "rmi: untags, keeps what another tag needs, then deletes every blob and layer",
  async (registry, store) => {
    await pushImage(registry.host, "gone");
    const name = `${registry.host}/gone`;
    assert.equal((await store.floka(["pull", "-q", name])).code, 0);
    const tag = await store.floka(["tag", name, "other:1"]);
    assert.equal(tag.code, 0, show(tag));
    const images = await store.floka(["images"]);
    assert.match(images.stdout, /other\s+1/);
    const first = await store.floka(["rmi", name]);
    assert.equal(first.code, 0, show(first));
    assert.match(first.stdout, /Untagged: /);
    assert.ok(!first.stdout.includes("Deleted"), show(first));
    assert.equal(layerDirs(store).length, 1);
    const run = await store.run(["--rm", "other:1", "true"]);
    assert.equal(run.code, 0, show(run));
    const last = await store.floka(["rmi", "other:1"]);
    assert.equal(last.code, 0, show(last));
    assert.match(last.stdout, /Deleted: sha256:/);
    assert.deepEqual(layerDirs(store), []);
    assert.equal(blobCount(store), 0);
    const none = await store.floka(["rmi", "other:1"]);
    assert.equal(none.code, 1, show(none));
    assert.match(none.stderr, /No such image: other:1/);
  },
);

pullTest(
  "rmi: refuses an image a container uses unless -f, and the container keeps its layers",
  async (registry, store) => {
    await pushImage(registry.host, "used");
    const name = `${registry.host}/used`;
    assert.equal((await store.run(["--name", "user", name, "true"])).code, 0);
    const refused = await store.floka(["rmi", name]);
    assert.equal(refused.code, 1, show(refused));
    assert.match(refused.stderr, /container .* is using its referenced image/);
    const forced = await store.floka(["rmi", "-f", name]);
    assert.equal(forced.code, 0, show(forced));
    assert.equal(layerDirs(store).length, 1, "the container's layer was deleted");
    const rm = await store.floka(["rm", "user"]);
    assert.equal(rm.code, 0, show(rm));
  },
);

pullTest("pull: the store is an OCI image layout that skopeo and umoci read", async (registry, store) => {
  const pushed = await pushImage(registry.host, "interop");
  assert.equal((await store.floka(["pull", "-q", `${registry.host}/interop`])).code, 0);
  const layout = `${store.root}/images`;
  const tools = async (cmd: string, args: string[]) => {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    assert.ok(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    return out.stdout;
  };
  const raw = await tools("skopeo", ["inspect", "--raw", `oci:${layout}:latest`]);
  assert.equal(`sha256:${createHash("sha256").update(raw).digest("hex")}`, pushed.digest);
  // skopeo copy reads and verifies every blob of the image.
  await tools("skopeo", ["copy", `oci:${layout}:latest`, `dir:${store.root}/copied`]);
  assert.match(new TextDecoder().decode(await tools("umoci", ["ls", "--layout", layout])), /^latest$/m);
});

pullTest(
  "pull: Ctrl-C in the middle of a layer leaves nothing a later pull would trust",
  async (registry, store) => {
    const pushed = await pushImage(registry.host, "slow");
    const layer: string = JSON.parse(new TextDecoder().decode(pushed.manifest)).layers[0].digest;
    // In front of the real registry: the layer blob comes in one small piece, then stalls.
    const upstream = `http://${registry.host}`;
    let stalled = false;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const url = new URL(req.url);
      const headers = new Headers([...req.headers].filter(([k]) => k !== "host"));
      const res = await fetch(`${upstream}${url.pathname}`, { headers });
      if (!url.pathname.endsWith(`/blobs/${layer}`)) return res;
      const body = new Uint8Array(await res.arrayBuffer());
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(body.subarray(0, 4096));
          stalled = true; // and never more
        },
      });
      return new Response(stream, { headers: res.headers });
    });
    try {
      const host = `127.0.0.1:${server.addr.port}`;
      const bg = store.spawn(["pull", `${host}/slow`]);
      await waitUntil("the layer download to stall", () => stalled);
      await waitUntil("a partial blob in images/tmp", () => {
        try {
          return [...Deno.readDirSync(`${store.root}/images/tmp`)].length > 0;
        } catch {
          return false;
        }
      });
      bg.child.kill("SIGINT");
      const interrupted = await bg.finish();
      assert.notEqual(interrupted.code, 0, show(interrupted));
      assert.throws(
        () => Deno.statSync(`${store.root}/images/blobs/sha256/${layer.slice(7)}`),
        "a partial blob was kept",
      );
      assert.deepEqual(layerDirs(store), []);
      // The next pull (straight from the registry) downloads the layer afresh and works.
      const again = await store.floka(["pull", "-q", `${registry.host}/slow`]);
      assert.equal(again.code, 0, show(again));
      assertStoreConsistent(store);
      const run = await store.run(["--rm", `${registry.host}/slow`, "true"]);
      assert.equal(run.code, 0, show(run));
    } finally {
      await server.shutdown();
    }
  },
);
