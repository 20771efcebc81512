/**
 * `floka push`, end to end against Debian's docker-registry on 127.0.0.1: images pulled with
 * Floka (pushed there first by skopeo) go to other registries and repositories, and are read
 * back by Floka and by skopeo.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { IS_ROOT, lines, show, type Store, withStore } from "./helpers.ts";
import {
  pushImage,
  registryToolsMissing,
  run,
  startRegistry,
  type TestRegistry,
} from "./registry_harness.ts";

const missing = registryToolsMissing();
const skip = !IS_ROOT
  ? "push tests skipped: they need root"
  : missing
  ? `push tests skipped: ${missing}`
  : null;
if (skip) console.error(skip);

const USER = { user: "bob", password: "push-s3cret" };

/** A Floka environment that never reads root's own saved credentials. */
async function authEnv(): Promise<{ env: Record<string, string>; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "floka-push-auth-" });
  return { env: { FLOKA_AUTH_FILE: `${dir}/auth.json` }, dir };
}

function pushTest(
  name: string,
  fn: (registries: TestRegistry[], store: Store, env: Record<string, string>) => Promise<void>,
  count = 2,
): void {
  Deno.test({
    name,
    ignore: skip !== null,
    fn: async () => {
      const registries: TestRegistry[] = [];
      const { env, dir } = await authEnv();
      try {
        for (let i = 0; i < count; i++) registries.push(await startRegistry());
        await withStore((store) => fn(registries, store, env));
      } finally {
        for (const r of registries) await r.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The manifest Floka stores for `name` (a full reference), parsed, with its digest. */
function storedManifest(store: Store, name: string): {
  digest: string;
  manifest: { config: { digest: string }; layers: { digest: string; size: number }[] };
} {
  const index = JSON.parse(Deno.readTextFileSync(`${store.root}/images/index.json`));
  const entry = index.manifests.find((m: { annotations?: Record<string, string> }) =>
    m.annotations?.["io.containerd.image.name"] === name
  );
  assert.ok(entry, `${name} not in index.json`);
  const hex = entry.digest.replace("sha256:", "");
  return {
    digest: entry.digest,
    manifest: JSON.parse(Deno.readTextFileSync(`${store.root}/images/blobs/sha256/${hex}`)),
  };
}

/** Layer lines (`<12 hex>: <status>`) of a push's output, as a map short digest -> status. */
function layerLines(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of lines(stdout)) {
    const m = /^([0-9a-f]{12}): (.+)$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

const short = (digest: string) => digest.replace("sha256:", "").slice(0, 12);

/**
 * `skopeo inspect` of `reference` names `digest`, and `skopeo copy` of it into an OCI
 * directory (digests preserved) holds the store's manifest, config and layers byte for byte.
 */
async function assertSkopeoReadsSame(store: Store, reference: string, digest: string): Promise<void> {
  const inspect = JSON.parse(
    await run("skopeo", ["inspect", "--tls-verify=false", "--no-creds", `docker://${reference}`]),
  );
  assert.equal(inspect.Digest, digest);
  const dir = await Deno.makeTempDir({ prefix: "floka-push-oci-" });
  try {
    await run("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--preserve-digests",
      "--src-tls-verify=false",
      "--src-no-creds",
      `docker://${reference}`,
      `oci:${dir}/layout:copy`,
    ]);
    const blob = (root: string, d: string) =>
      Deno.readFileSync(`${root}/blobs/sha256/${d.replace("sha256:", "")}`);
    const manifest = JSON.parse(new TextDecoder().decode(blob(`${store.root}/images`, digest)));
    for (
      const d of [
        digest,
        manifest.config.digest,
        ...manifest.layers.map((l: { digest: string }) => l.digest),
      ]
    ) {
      const copied = blob(`${dir}/layout`, d);
      assert.equal(`sha256:${sha(copied)}`, d);
      assert.equal(
        sha(copied),
        sha(blob(`${store.root}/images`, d)),
        `blob ${d} differs after the round trip`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

pushTest(
  "push: a pulled image goes to another registry byte-identical, then 'Layer already exists', then 'Mounted from' another repository",
  async ([a, b], store, env) => {
    for (const format of ["oci", "v2s2"] as const) {
      const pushed = await pushImage(a.host, `src/${format}`, { format });
      const pull = await store.floka(["pull", "-q", `${a.host}/src/${format}`], { env });
      assert.equal(pull.code, 0, show(pull));
      const target = `${b.host}/dst/${format}:v1`;
      assert.equal((await store.floka(["tag", `${a.host}/src/${format}`, target], { env })).code, 0);

      const first = await store.floka(["push", target], { env });
      assert.equal(first.code, 0, show(first));
      const out = lines(first.stdout);
      assert.equal(out[0], `The push refers to repository [${b.host}/dst/${format}]`);
      const { manifest } = storedManifest(store, `${a.host}/src/${format}:latest`);
      assert.deepEqual(
        layerLines(first.stdout),
        new Map(manifest.layers.map((l) => [short(l.digest), "Pushed"])),
      );
      assert.equal(out.at(-1), `v1: digest: ${pushed.digest} size: ${pushed.manifest.length}`);
      assert.equal(first.stderr, "", show(first));
      await assertSkopeoReadsSame(store, target, pushed.digest);

      // Pulled back into an empty store: the same manifest digest.
      await withStore(async (fresh) => {
        const back = await fresh.floka(["pull", target], { env });
        assert.equal(back.code, 0, show(back));
        assert.match(back.stderr, new RegExp(`Digest: ${pushed.digest}`));
        assert.equal(storedManifest(fresh, target).digest, pushed.digest);
      });

      const second = await store.floka(["push", target], { env });
      assert.equal(second.code, 0, show(second));
      const again = layerLines(second.stdout);
      assert.equal(again.size, manifest.layers.length);
      for (const status of again.values()) assert.equal(status, "Layer already exists");
      assert.equal(
        lines(second.stdout).at(-1),
        `v1: digest: ${pushed.digest} size: ${pushed.manifest.length}`,
      );

      // A third repository on b: the blobs are mounted from the one that has them.
      const third = `${b.host}/third/${format}:v2`;
      assert.equal((await store.floka(["tag", target, third], { env })).code, 0);
      const mounted = await store.floka(["push", third], { env });
      assert.equal(mounted.code, 0, show(mounted));
      for (const status of layerLines(mounted.stdout).values()) {
        assert.equal(status, `Mounted from dst/${format}`);
      }
      await assertSkopeoReadsSame(store, third, pushed.digest);

      const quiet = await store.floka(["push", "-q", third], { env });
      assert.equal(quiet.code, 0, show(quiet));
      assert.equal(quiet.stdout, `${third}\n`);
    }
  },
);

pushTest(
  "push: a built image whose base is in the registry uploads only its new layer",
  async ([a], store, env) => {
    await pushImage(a.host, "base");
    const base = `${a.host}/base`;
    assert.equal((await store.floka(["pull", "-q", base], { env })).code, 0);
    const ctx = `${store.root}/ctx`;
    Deno.mkdirSync(ctx);
    Deno.writeTextFileSync(`${ctx}/Flokafile`, `FROM ${base}\nRUN echo built > /built.txt\n`);
    const build = await store.floka(["build", "-q", "-t", `${base}:built`, ctx], { env });
    assert.equal(build.code, 0, show(build));

    const r = await store.floka(["push", `${base}:built`], { env });
    assert.equal(r.code, 0, show(r));
    const { manifest, digest } = storedManifest(store, `${base}:built`);
    assert.equal(manifest.layers.length, 2);
    // Lines come as layers finish, in any order.
    assert.deepEqual(
      layerLines(r.stdout),
      new Map([
        [short(manifest.layers[1].digest), "Pushed"],
        [short(manifest.layers[0].digest), "Layer already exists"],
      ]),
    );
    await assertSkopeoReadsSame(store, `${base}:built`, digest);
  },
  1,
);

pushTest(
  "push: chunked uploads (FLOKA_PUSH_CHUNK_SIZE) give byte-identical blobs",
  async ([a, b], store, env) => {
    const pushed = await pushImage(a.host, "src");
    assert.equal((await store.floka(["pull", "-q", `${a.host}/src`], { env })).code, 0);
    const target = `${b.host}/chunked:1`;
    assert.equal((await store.floka(["tag", `${a.host}/src`, target], { env })).code, 0);
    const { manifest } = storedManifest(store, target);
    const chunk = 64 * 1024;
    assert.ok(manifest.layers[0].size > 3 * chunk, "the layer is too small to need chunks");
    const r = await store.floka(["push", target], { env: { ...env, FLOKA_PUSH_CHUNK_SIZE: String(chunk) } });
    assert.equal(r.code, 0, show(r));
    assert.equal(layerLines(r.stdout).get(short(manifest.layers[0].digest)), "Pushed");
    assert.equal(lines(r.stdout).at(-1), `1: digest: ${pushed.digest} size: ${pushed.manifest.length}`);
    await assertSkopeoReadsSame(store, target, pushed.digest);

    const bad = await store.floka(["push", target], { env: { ...env, FLOKA_PUSH_CHUNK_SIZE: "lots" } });
    assert.equal(bad.code, 125, show(bad));
  },
);

for (const mode of ["basic", "bearer"] as const) {
  Deno.test({
    name: `push: ${mode} auth: refused without credentials (125, 'floka login'), works after floka login`,
    ignore: skip !== null,
    fn: async () => {
      const open = await startRegistry();
      const locked = await startRegistry({ htpasswd: USER, tokenAuth: mode === "bearer" });
      const { env, dir } = await authEnv();
      try {
        await withStore(async (store) => {
          await pushImage(open.host, "src");
          assert.equal((await store.floka(["pull", "-q", `${open.host}/src`], { env })).code, 0);
          const target = `${locked.host}/private/app:1`;
          assert.equal((await store.floka(["tag", `${open.host}/src`, target], { env })).code, 0);

          const anonymous = await store.floka(["push", target], { env });
          assert.equal(anonymous.code, 125, show(anonymous));
          const errLines = lines(anonymous.stderr);
          assert.equal(errLines.length, 1, show(anonymous));
          assert.match(errLines[0], /denied: .*floka login/);

          const login = await store.floka(["login", "-u", USER.user, "--password-stdin", locked.host], {
            env,
            stdin: USER.password,
          });
          assert.equal(login.code, 0, show(login));
          const r = await store.floka(["push", target], { env });
          assert.equal(r.code, 0, show(r));
          for (const status of layerLines(r.stdout).values()) assert.equal(status, "Pushed");
          // To another repository of the same registry: mounted, with a token for both.
          const other = `${locked.host}/private/copy:1`;
          assert.equal((await store.floka(["tag", target, other], { env })).code, 0);
          const mounted = await store.floka(["push", other], { env });
          assert.equal(mounted.code, 0, show(mounted));
          for (const status of layerLines(mounted.stdout).values()) {
            assert.equal(status, "Mounted from private/app");
          }
          if (mode === "bearer") {
            const granted = (scope: string) =>
              locked.tokenRequests.some((t) => t.granted && t.scopes.includes(scope));
            assert.ok(granted("repository:private/app:push,pull"), JSON.stringify(locked.tokenRequests));
            assert.ok(
              locked.tokenRequests.some((t) =>
                t.granted && t.scopes.includes("repository:private/copy:push,pull") &&
                t.scopes.includes("repository:private/app:pull")
              ),
              JSON.stringify(locked.tokenRequests),
            );
          }
          const { digest } = storedManifest(store, target);
          const inspect = await new Deno.Command("skopeo", {
            args: [
              "inspect",
              "--tls-verify=false",
              `--creds=${USER.user}:${USER.password}`,
              `docker://${target}`,
            ],
            stdout: "piped",
            stderr: "piped",
          }).output();
          assert.ok(inspect.success, new TextDecoder().decode(inspect.stderr));
          assert.equal(JSON.parse(new TextDecoder().decode(inspect.stdout)).Digest, digest);
        });
      } finally {
        await open.stop();
        await locked.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

pushTest(
  "push: errors are one line, exit 125: no such image, a hand-placed image, an unreachable registry",
  async ([a], store, env) => {
    const one = async (args: string[], pattern: RegExp) => {
      const r = await store.floka(args, { env });
      assert.equal(r.code, 125, show(r));
      assert.equal(lines(r.stderr).length, 1, show(r));
      assert.match(r.stderr, pattern);
    };
    await one(
      ["push", `${a.host}/nothing:here`],
      /An image does not exist locally with the tag: .*nothing:here/,
    );
    // withStore placed busybox:latest by hand.
    await one(["push", "busybox"], /placed by hand.*floka import.*floka build/);

    await pushImage(a.host, "src");
    assert.equal((await store.floka(["pull", "-q", `${a.host}/src`], { env })).code, 0);
    const before = Deno.readTextFileSync(`${store.root}/images/index.json`);
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    assert.equal((await store.floka(["tag", `${a.host}/src`, `127.0.0.1:${port}/app`], { env })).code, 0);
    await one(["push", `127.0.0.1:${port}/app`], /connection refused by 127\.0\.0\.1/);
    assert.equal(
      JSON.parse(Deno.readTextFileSync(`${store.root}/images/index.json`)).manifests.length,
      JSON.parse(before).manifests.length + 1,
    );
    assert.deepEqual([...Deno.readDirSync(`${store.root}/images/tmp`)], []);
  },
  1,
);
