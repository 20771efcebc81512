import assert from "node:assert/strict";
import {
  base64Utf8,
  basicAuthorization,
  parseTokenResponse,
  parseWwwAuthenticate,
  pullScope,
  tokenRequestUrl,
} from "../../src/registry/auth.ts";
import {
  authKey,
  defaultAuthFile,
  DOCKER_HUB_AUTH_KEY,
  loadCredentials,
  normalizeRegistry,
  removeCredentials,
  saveCredentials,
} from "../../src/registry/credentials.ts";

// --- WWW-Authenticate ------------------------------------------------------------------

Deno.test("parseWwwAuthenticate: Docker Hub's Bearer challenge", () => {
  const header =
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"';
  assert.deepEqual(parseWwwAuthenticate(header), [{
    scheme: "bearer",
    params: {
      realm: "https://auth.docker.io/token",
      service: "registry.docker.io",
      scope: "repository:library/busybox:pull",
    },
  }]);
});

Deno.test("parseWwwAuthenticate: Basic with a realm", () => {
  assert.deepEqual(parseWwwAuthenticate('Basic realm="Registry Realm"'), [
    { scheme: "basic", params: { realm: "Registry Realm" } },
  ]);
});

Deno.test("parseWwwAuthenticate: scheme and parameter names are case-insensitive, values are not", () => {
  assert.deepEqual(parseWwwAuthenticate('BEARER Realm="https://A/Token",SERVICE=Reg'), [
    { scheme: "bearer", params: { realm: "https://A/Token", service: "Reg" } },
  ]);
});

Deno.test("parseWwwAuthenticate: commas inside quoted values do not split", () => {
  const [c] = parseWwwAuthenticate(
    'Bearer realm="https://auth.example/token",scope="repository:a:pull,push repository:b:pull",service="x"',
  );
  assert.equal(c.params.scope, "repository:a:pull,push repository:b:pull");
  assert.equal(c.params.service, "x");
});

Deno.test("parseWwwAuthenticate: backslash escapes in quoted strings", () => {
  const [c] = parseWwwAuthenticate('Basic realm="say \\"hi\\", then \\\\ leave"');
  assert.equal(c.params.realm, 'say "hi", then \\ leave');
});

Deno.test("parseWwwAuthenticate: unquoted token values and spaces around '='", () => {
  const [c] = parseWwwAuthenticate("Bearer realm = https://auth.example/token , service=reg.example");
  assert.deepEqual(c.params, { realm: "https://auth.example/token", service: "reg.example" });
});

Deno.test("parseWwwAuthenticate: several challenges in one header", () => {
  const challenges = parseWwwAuthenticate(
    'Bearer realm="https://a/token",service="svc", Basic realm="b, c", Negotiate',
  );
  assert.deepEqual(challenges.map((c) => c.scheme), ["bearer", "basic", "negotiate"]);
  assert.deepEqual(challenges[0].params, { realm: "https://a/token", service: "svc" });
  assert.deepEqual(challenges[1].params, { realm: "b, c" });
  assert.deepEqual(challenges[2].params, {});
});

Deno.test("parseWwwAuthenticate: headers joined by Headers.get (', ') parse as separate challenges", () => {
  const headers = new Headers();
  headers.append("WWW-Authenticate", 'Basic realm="r1"');
  headers.append("WWW-Authenticate", 'Bearer realm="https://t/token",service="s"');
  const challenges = parseWwwAuthenticate(headers.get("WWW-Authenticate")!);
  assert.deepEqual(challenges, [
    { scheme: "basic", params: { realm: "r1" } },
    { scheme: "bearer", params: { realm: "https://t/token", service: "s" } },
  ]);
});

Deno.test("parseWwwAuthenticate: token68 credentials, with and without padding", () => {
  assert.deepEqual(parseWwwAuthenticate("Negotiate YWJjZA=="), [
    { scheme: "negotiate", params: {}, token68: "YWJjZA==" },
  ]);
  assert.deepEqual(parseWwwAuthenticate("Negotiate YWI=, Basic realm=x"), [
    { scheme: "negotiate", params: {}, token68: "YWI=" },
    { scheme: "basic", params: { realm: "x" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate("Custom a+b/c"), [
    { scheme: "custom", params: {}, token68: "a+b/c" },
  ]);
});

Deno.test("parseWwwAuthenticate: empty quoted values and error parameters", () => {
  const [c] = parseWwwAuthenticate(
    'Bearer realm="",error="invalid_token",error_description="The token expired"',
  );
  assert.deepEqual(c.params, { realm: "", error: "invalid_token", error_description: "The token expired" });
});

Deno.test("parseWwwAuthenticate: the first of duplicated parameters wins", () => {
  const [c] = parseWwwAuthenticate('Bearer realm="https://good/token",realm="https://evil/token"');
  assert.equal(c.params.realm, "https://good/token");
});

Deno.test("parseWwwAuthenticate: garbage and truncation never throw", () => {
  assert.deepEqual(parseWwwAuthenticate(""), []);
  assert.deepEqual(parseWwwAuthenticate("   ,, ,"), []);
  assert.deepEqual(parseWwwAuthenticate('="x", realm="y"'), []); // parameters without a scheme
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="https://a/tok'), [
    { scheme: "bearer", params: { realm: "https://a/tok" } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="a\\'), [{
    scheme: "bearer",
    params: { realm: "a\\" },
  }]);
  for (const junk of ["(((", '"""', "Bearer ===", "Bearer realm=", "\u00e9\u00e8 x=y", 'Basic\trealm="t"']) {
    assert.ok(Array.isArray(parseWwwAuthenticate(junk)), junk);
  }
  assert.deepEqual(parseWwwAuthenticate('Basic\trealm="t"'), [{ scheme: "basic", params: { realm: "t" } }]);
});

// --- token helpers ---------------------------------------------------------------------

Deno.test("tokenRequestUrl: realm with service and scope as query parameters", () => {
  const [c] = parseWwwAuthenticate('Bearer realm="https://auth.example/token?x=1",service="reg example"');
  const url = tokenRequestUrl(c, pullScope("library/busybox"));
  assert.ok(url);
  assert.equal(url.origin, "https://auth.example");
  assert.equal(url.searchParams.get("x"), "1");
  assert.equal(url.searchParams.get("service"), "reg example");
  assert.equal(url.searchParams.get("scope"), "repository:library/busybox:pull");
});

Deno.test("tokenRequestUrl: no service parameter when the challenge has none", () => {
  const url = tokenRequestUrl({ scheme: "bearer", params: { realm: "http://127.0.0.1:9/t" } }, "s");
  assert.equal(url?.search, "?scope=s");
});

Deno.test("tokenRequestUrl: refuses missing, relative and non-http realms", () => {
  assert.equal(tokenRequestUrl({ scheme: "bearer", params: {} }, "s"), null);
  assert.equal(tokenRequestUrl({ scheme: "bearer", params: { realm: "/token" } }, "s"), null);
  assert.equal(tokenRequestUrl({ scheme: "bearer", params: { realm: "file:///etc/passwd" } }, "s"), null);
});

Deno.test("parseTokenResponse: token, access_token, expiry", () => {
  const now = 1_000_000;
  assert.deepEqual(parseTokenResponse({ token: "a", expires_in: 300 }, now), {
    token: "a",
    expiresAt: now + 290_000,
  });
  assert.deepEqual(parseTokenResponse({ access_token: "b" }, now), { token: "b", expiresAt: Infinity });
  assert.equal(parseTokenResponse({ token: "", access_token: "c" }, now)?.token, "c");
  assert.equal(parseTokenResponse({ token: "a", expires_in: 5 }, now)?.expiresAt, now + 1000);
  assert.equal(parseTokenResponse({}, now), null);
  assert.equal(parseTokenResponse(null, now), null);
  assert.equal(parseTokenResponse("token", now), null);
  assert.equal(parseTokenResponse({ token: 42 }, now), null);
});

Deno.test("basicAuthorization encodes user:password as UTF-8 base64", () => {
  assert.equal(basicAuthorization({ username: "user", password: "pass" }), "Basic dXNlcjpwYXNz");
  assert.equal(base64Utf8("é:ü"), btoa("\u00c3\u00a9:\u00c3\u00bc"));
});

// --- credentials file ------------------------------------------------------------------

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "floka-auth-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("normalizeRegistry and authKey: Docker Hub's names and scheme/path forms", () => {
  for (const name of ["docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_AUTH_KEY]) {
    assert.equal(normalizeRegistry(name), "docker.io", name);
    assert.equal(authKey(name), DOCKER_HUB_AUTH_KEY, name);
  }
  assert.equal(normalizeRegistry("https://Quay.io/v2/"), "quay.io");
  assert.equal(normalizeRegistry("localhost:5000"), "localhost:5000");
  assert.equal(authKey("localhost:5000"), "localhost:5000");
});

Deno.test("credentials: save, load, mode 0600 in a 0700 directory", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/floka/auth.json`;
    await saveCredentials("localhost:5000", "alice", "s3cr:et", path);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/floka`)).mode! & 0o777, 0o700);
    const file = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(file, { auths: { "localhost:5000": { auth: btoa("alice:s3cr:et") } } });
    const lookup = await loadCredentials(path);
    assert.deepEqual(lookup("localhost:5000"), { username: "alice", password: "s3cr:et" });
    assert.equal(lookup("localhost:5001"), null);
    // No temp files left behind.
    assert.deepEqual([...Deno.readDirSync(`${dir}/floka`)].map((e) => e.name), ["auth.json"]);
  });
});

Deno.test("credentials: Docker Hub is stored under https://index.docker.io/v1/ and found by any name", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/auth.json`;
    await saveCredentials("docker.io", "bob", "pw", path);
    const file = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(Object.keys(file.auths), [DOCKER_HUB_AUTH_KEY]);
    const lookup = await loadCredentials(path);
    for (const name of ["docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_AUTH_KEY]) {
      assert.deepEqual(lookup(name), { username: "bob", password: "pw" }, name);
    }
    // A file keyed by plain `docker.io` (as Podman writes it) works too.
    await Deno.writeTextFile(path, JSON.stringify({ auths: { "docker.io": { auth: btoa("carol:x") } } }));
    assert.deepEqual((await loadCredentials(path))("docker.io"), { username: "carol", password: "x" });
  });
});

Deno.test("credentials: saving keeps other entries and fields, replaces aliases of the same registry", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/auth.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        auths: {
          "quay.io": { auth: btoa("q:1") },
          "docker.io": { auth: btoa("old:old") },
        },
        credsStore: "desktop",
      }),
    );
    await saveCredentials("index.docker.io", "new", "new", path);
    const file = JSON.parse(await Deno.readTextFile(path));
    assert.equal(file.credsStore, "desktop");
    assert.deepEqual(Object.keys(file.auths).sort(), [DOCKER_HUB_AUTH_KEY, "quay.io"]);
    const lookup = await loadCredentials(path);
    assert.deepEqual(lookup("docker.io"), { username: "new", password: "new" });
    assert.deepEqual(lookup("quay.io"), { username: "q", password: "1" });
  });
});

Deno.test("credentials: remove", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/auth.json`;
    await saveCredentials("docker.io", "a", "b", path);
    await saveCredentials("ghcr.io", "c", "d", path);
    assert.equal(await removeCredentials("registry-1.docker.io", path), true);
    assert.equal(await removeCredentials("docker.io", path), false);
    const lookup = await loadCredentials(path);
    assert.equal(lookup("docker.io"), null);
    assert.deepEqual(lookup("ghcr.io"), { username: "c", password: "d" });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  });
});

Deno.test("credentials: missing file means none; broken file is a clear error", async () => {
  await withTempDir(async (dir) => {
    assert.equal((await loadCredentials(`${dir}/nope.json`))("docker.io"), null);
    await Deno.writeTextFile(`${dir}/bad.json`, "{not json");
    await assert.rejects(loadCredentials(`${dir}/bad.json`), /invalid credentials file .*bad\.json/);
    await Deno.writeTextFile(`${dir}/arr.json`, "[]");
    await assert.rejects(loadCredentials(`${dir}/arr.json`), /expected a JSON object/);
  });
});

Deno.test("credentials: entries with username/password fields or undecodable auth", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/auth.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        auths: {
          "a.example": { username: "u", password: "p" },
          "b.example": { auth: "!!!not base64" },
          "c.example": { auth: btoa("no-colon") },
          "d.example": { auth: base64Utf8("j\u00fcrgen:p\u00e4ss") },
        },
      }),
    );
    const lookup = await loadCredentials(path);
    assert.deepEqual(lookup("a.example"), { username: "u", password: "p" });
    assert.equal(lookup("b.example"), null);
    assert.equal(lookup("c.example"), null);
    assert.deepEqual(lookup("d.example"), { username: "j\u00fcrgen", password: "p\u00e4ss" });
  });
});

Deno.test("credentials: a username with ':' is refused", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      saveCredentials("x.example", "a:b", "p", `${dir}/auth.json`),
      /must not contain ':'/,
    );
  });
});

Deno.test("defaultAuthFile: FLOKA_AUTH_FILE, then XDG_CONFIG_HOME, then HOME", () => {
  const saved = ["FLOKA_AUTH_FILE", "XDG_CONFIG_HOME", "HOME"].map((k) => [k, Deno.env.get(k)] as const);
  try {
    Deno.env.set("FLOKA_AUTH_FILE", "/x/auth.json");
    Deno.env.set("XDG_CONFIG_HOME", "/xdg");
    Deno.env.set("HOME", "/home/u");
    assert.equal(defaultAuthFile(), "/x/auth.json");
    Deno.env.delete("FLOKA_AUTH_FILE");
    assert.equal(defaultAuthFile(), "/xdg/floka/auth.json");
    Deno.env.delete("XDG_CONFIG_HOME");
    assert.equal(defaultAuthFile(), "/home/u/.config/floka/auth.json");
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
});
