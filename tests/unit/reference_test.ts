import assert from "node:assert/strict";
import type { Digest } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import {
  familiarReference,
  formatReference,
  isInsecureRegistry,
  parseReference,
  registryEndpoint,
} from "../../lib/reference.ts";

const DIGEST: Digest = `sha256:${"0123456789abcdef".repeat(4)}`;

function assertInvalid(text: string, message?: string): void {
  assert.throws(
    () => parseReference(text),
    (err: unknown) => {
      assert.ok(err instanceof FlokaError, `${JSON.stringify(text)} threw ${err}`);
      if (message !== undefined) assert.equal(err.message, message);
      else assert.match(err.message, /^invalid reference format: /);
      return true;
    },
    `${JSON.stringify(text)} should be rejected`,
  );
}

Deno.test("parseReference: an official image name gets docker.io, library/ and latest", () => {
  assert.deepEqual(parseReference("ubuntu"), {
    registry: "docker.io",
    repository: "library/ubuntu",
    tag: "latest",
  });
  assert.equal(formatReference(parseReference("ubuntu")), "docker.io/library/ubuntu:latest");
});

Deno.test("parseReference: a user namespace stays on Docker Hub without library/", () => {
  assert.deepEqual(parseReference("user/app"), {
    registry: "docker.io",
    repository: "user/app",
    tag: "latest",
  });
  assert.deepEqual(parseReference("user/team/app:2"), {
    registry: "docker.io",
    repository: "user/team/app",
    tag: "2",
  });
});

Deno.test("parseReference: the first component is a registry when it has '.', ':' or is localhost", () => {
  assert.deepEqual(parseReference("ghcr.io/o/r"), { registry: "ghcr.io", repository: "o/r", tag: "latest" });
  assert.deepEqual(parseReference("host:5000/ns/app:tag"), {
    registry: "host:5000",
    repository: "ns/app",
    tag: "tag",
  });
  assert.deepEqual(parseReference("localhost/app"), {
    registry: "localhost",
    repository: "app",
    tag: "latest",
  });
  assert.deepEqual(parseReference("localhost:5000/app:1"), {
    registry: "localhost:5000",
    repository: "app",
    tag: "1",
  });
  assert.deepEqual(parseReference("192.168.1.10:5000/app"), {
    registry: "192.168.1.10:5000",
    repository: "app",
    tag: "latest",
  });
  // A registry other than Docker Hub never gets the library/ prefix.
  assert.deepEqual(parseReference("quay.io/app"), { registry: "quay.io", repository: "app", tag: "latest" });
});

Deno.test("parseReference: a lowercase first component without '.' or ':' is a namespace", () => {
  assert.equal(parseReference("localhostx/app").registry, "docker.io");
  assert.equal(parseReference("localhostx/app").repository, "localhostx/app");
  assert.equal(parseReference("my-registry/app").registry, "docker.io");
});

Deno.test("parseReference: a bare host:port without a slash is an image name and a tag", () => {
  assert.deepEqual(parseReference("localhost:5000"), {
    registry: "docker.io",
    repository: "library/localhost",
    tag: "5000",
  });
});

Deno.test("parseReference: IPv6 registry literals in brackets", () => {
  assert.deepEqual(parseReference("[::1]:5000/app"), {
    registry: "[::1]:5000",
    repository: "app",
    tag: "latest",
  });
  assert.deepEqual(parseReference("[2001:db8::1]/ns/app:v1"), {
    registry: "[2001:db8::1]",
    repository: "ns/app",
    tag: "v1",
  });
  assertInvalid("::1/app");
  assertInvalid("[::1/app");
  assertInvalid("[::1]x/app");
  assertInvalid("[fe80::1%eth0]/app");
});

Deno.test("parseReference: Docker Hub spellings normalize to docker.io/library", () => {
  const want = { registry: "docker.io", repository: "library/ubuntu", tag: "latest" };
  assert.deepEqual(parseReference("docker.io/ubuntu"), want);
  assert.deepEqual(parseReference("docker.io/library/ubuntu"), want);
  assert.deepEqual(parseReference("index.docker.io/ubuntu"), want);
  assert.deepEqual(parseReference("index.docker.io/library/ubuntu:latest"), want);
  assert.deepEqual(parseReference("index.docker.io/user/app"), {
    registry: "docker.io",
    repository: "user/app",
    tag: "latest",
  });
});

Deno.test("parseReference: a digest alone gets no default tag", () => {
  assert.deepEqual(parseReference(`app@${DIGEST}`), {
    registry: "docker.io",
    repository: "library/app",
    digest: DIGEST,
  });
  assert.equal("tag" in parseReference(`app@${DIGEST}`), false);
  assert.deepEqual(parseReference(`ghcr.io/o/r@${DIGEST}`), {
    registry: "ghcr.io",
    repository: "o/r",
    digest: DIGEST,
  });
});

Deno.test("parseReference: a tag and a digest are both kept", () => {
  assert.deepEqual(parseReference(`app:tag@${DIGEST}`), {
    registry: "docker.io",
    repository: "library/app",
    tag: "tag",
    digest: DIGEST,
  });
  assert.deepEqual(parseReference(`localhost:5000/app:1@${DIGEST}`), {
    registry: "localhost:5000",
    repository: "app",
    tag: "1",
    digest: DIGEST,
  });
});

Deno.test("parseReference: path component separators follow Docker's grammar", () => {
  for (const ok of ["a.b", "a_b", "a__b", "a-b", "a---b", "a1.b2-c3_d4", "0", "x--y.z__w"]) {
    assert.equal(parseReference(`ns/${ok}`).repository, `ns/${ok}`, ok);
  }
  for (const bad of ["a..b", "a___b", "a._b", "-a", "a-", "_a", "a_", ".a", "a.", "a+b", "a b", "a$b"]) {
    assertInvalid(`ns/${bad}`);
  }
});

Deno.test("parseReference: tags are a word character then up to 127 of [\\w.-]", () => {
  assert.equal(parseReference("app:V1.2_rc-3").tag, "V1.2_rc-3");
  assert.equal(parseReference("app:_x").tag, "_x");
  assert.equal(parseReference(`app:${"a".repeat(128)}`).tag, "a".repeat(128));
  assertInvalid(`app:${"a".repeat(129)}`);
  assertInvalid("app:.x");
  assertInvalid("app:-x");
  assertInvalid("app:a+b");
  assertInvalid("app:a:b");
});

Deno.test("parseReference: an empty tag is rejected", () => {
  assertInvalid("ubuntu:", "invalid reference format: \"ubuntu:\": empty tag after ':'");
  assertInvalid(`ubuntu:@${DIGEST}`);
});

Deno.test("parseReference: uppercase repositories get Docker's lowercase message", () => {
  assertInvalid("Ubuntu", "invalid reference format: repository name (library/Ubuntu) must be lowercase");
  assertInvalid("user/App:1", "invalid reference format: repository name (user/App) must be lowercase");
  assertInvalid(
    "ghcr.io/Owner/repo",
    "invalid reference format: repository name (Owner/repo) must be lowercase",
  );
  assertInvalid(
    `Ubuntu@${DIGEST}`,
    "invalid reference format: repository name (library/Ubuntu) must be lowercase",
  );
  // Tags may have uppercase letters.
  assert.equal(parseReference("ubuntu:Focal").tag, "Focal");
});

Deno.test("parseReference: an uppercase first component is taken for a registry host, as in Docker", () => {
  assert.deepEqual(parseReference("Registry/app"), {
    registry: "Registry",
    repository: "app",
    tag: "latest",
  });
  assert.equal(parseReference("Registry.Example.com:443/app").registry, "Registry.Example.com:443");
});

Deno.test("parseReference: empty path components are rejected", () => {
  for (
    const bad of ["/app", "app/", "user//app", "ghcr.io/", "ghcr.io//app", "localhost:5000/", "docker.io/"]
  ) {
    assertInvalid(bad);
  }
  assertInvalid(
    "user//app",
    'invalid reference format: "user//app": repository name has an empty path component',
  );
});

Deno.test("parseReference: registry ports must be numeric and hosts well formed", () => {
  assertInvalid(
    "host:port/app",
    'invalid reference format: "host:port/app": registry port "port" is not a number',
  );
  assertInvalid("host:/app");
  assertInvalid("host:50a0/app");
  assertInvalid("-host.com/app");
  assertInvalid("host-.com/app");
  assertInvalid("my_host.com/app");
  assertInvalid("host..com/app");
  assertInvalid(".host/app");
});

Deno.test("parseReference: digests must be sha256 with 64 lowercase hex digits", () => {
  assertInvalid("app@sha256:abc");
  assertInvalid(`app@${DIGEST.toUpperCase()}`);
  assertInvalid(`app@sha256:${"a".repeat(63)}`);
  assertInvalid(`app@sha256:${"a".repeat(65)}`);
  assertInvalid(`app@sha512:${"a".repeat(128)}`);
  assertInvalid("app@");
  assertInvalid(`app@${DIGEST}@${DIGEST}`);
  assertInvalid(`app@${DIGEST}:tag`);
  assertInvalid(
    "app@md5:abc",
    'invalid reference format: "app@md5:abc": invalid digest "md5:abc" (expected sha256:<64 hex digits>)',
  );
});

Deno.test("parseReference: empty and malformed strings", () => {
  assertInvalid("", "invalid reference format: repository name must have at least one component");
  for (
    const bad of [
      ":",
      "@",
      ":tag",
      `@${DIGEST}`,
      " ubuntu",
      "ubuntu ",
      "ubu ntu",
      "ubuntu:latest:2",
      "a/b:c/d",
    ]
  ) {
    assertInvalid(bad);
  }
});

Deno.test("parseReference: a 64-hex string is an image ID, not a name", () => {
  const id = "a".repeat(64);
  assertInvalid(
    id,
    `invalid reference format: repository name (${id}) cannot be a 64-byte hexadecimal string`,
  );
  // With a namespace or of another length it is an ordinary name.
  assert.equal(parseReference(`user/${id}`).repository, `user/${id}`);
  assert.equal(parseReference("a".repeat(63)).repository, `library/${"a".repeat(63)}`);
});

Deno.test("parseReference: the full name, registry included, is limited to 255 characters", () => {
  const prefix = "docker.io/library/";
  const fits = "a".repeat(255 - prefix.length);
  assert.equal(formatReference(parseReference(fits)), `${prefix}${fits}:latest`);
  assertInvalid(`${fits}a`);
  // The tag does not count toward the limit.
  assert.equal(parseReference(`${fits}:${"t".repeat(128)}`).tag, "t".repeat(128));
  const host = "registry.example.com";
  assert.equal(parseReference(`${host}/${"b".repeat(255 - host.length - 1)}`).registry, host);
  assertInvalid(`${host}/${"b".repeat(255 - host.length)}`);
});

Deno.test("parseReference: errors are FlokaErrors with Floka's exit code", () => {
  try {
    parseReference("UPPER");
    assert.fail("expected an error");
  } catch (err) {
    assert.ok(err instanceof FlokaError);
    assert.equal(err.exitCode, 125);
  }
});

Deno.test("formatReference: canonical forms", () => {
  assert.equal(formatReference(parseReference("ubuntu")), "docker.io/library/ubuntu:latest");
  assert.equal(formatReference(parseReference("user/app:1")), "docker.io/user/app:1");
  assert.equal(
    formatReference(parseReference(`localhost:5000/app:1@${DIGEST}`)),
    `localhost:5000/app:1@${DIGEST}`,
  );
  assert.equal(formatReference(parseReference(`ubuntu@${DIGEST}`)), `docker.io/library/ubuntu@${DIGEST}`);
  assert.equal(formatReference(parseReference("[::1]:5000/app")), "[::1]:5000/app:latest");
  assert.equal(formatReference({ registry: "ghcr.io", repository: "o/r" }), "ghcr.io/o/r");
});

Deno.test("familiarReference: Docker Hub's domain and library/ are left out", () => {
  assert.equal(familiarReference(parseReference("ubuntu")), "ubuntu:latest");
  assert.equal(familiarReference(parseReference("docker.io/library/ubuntu:22.04")), "ubuntu:22.04");
  assert.equal(familiarReference(parseReference("user/app:1")), "user/app:1");
  assert.equal(familiarReference(parseReference("localhost:5000/app:1")), "localhost:5000/app:1");
  assert.equal(familiarReference(parseReference("ghcr.io/o/r")), "ghcr.io/o/r:latest");
  assert.equal(familiarReference(parseReference(`ubuntu@${DIGEST}`)), `ubuntu@${DIGEST}`);
  assert.equal(familiarReference(parseReference(`ubuntu:1@${DIGEST}`)), `ubuntu:1@${DIGEST}`);
  // Only direct children of library/ are official images.
  assert.equal(familiarReference(parseReference("library/distros/ubuntu")), "library/distros/ubuntu:latest");
  // library/ on another registry is an ordinary namespace.
  assert.equal(familiarReference(parseReference("ghcr.io/library/app")), "ghcr.io/library/app:latest");
});

Deno.test("round trips: canonical and familiar forms parse back to the same reference", () => {
  const inputs = [
    "ubuntu",
    "ubuntu:22.04",
    "user/app:1",
    "index.docker.io/user/app",
    "docker.io/ubuntu",
    "ghcr.io/o/r:v1.2.3",
    "localhost/app",
    "localhost:5000/ns/app:1",
    "[::1]:5000/app",
    "[2001:db8::1]/app:x",
    "registry.example.com:443/a/b/c/d",
    `ubuntu@${DIGEST}`,
    `app:tag@${DIGEST}`,
    `localhost:5000/app:1@${DIGEST}`,
    "library/distros/ubuntu",
  ];
  for (const input of inputs) {
    const ref = parseReference(input);
    assert.deepEqual(parseReference(formatReference(ref)), ref, `canonical ${input}`);
    assert.deepEqual(parseReference(familiarReference(ref)), ref, `familiar ${input}`);
    assert.equal(formatReference(parseReference(formatReference(ref))), formatReference(ref));
  }
});

Deno.test("registryEndpoint: Docker Hub's API lives at registry-1.docker.io", () => {
  assert.equal(registryEndpoint("docker.io"), "registry-1.docker.io");
  assert.equal(registryEndpoint("index.docker.io"), "registry-1.docker.io");
  assert.equal(registryEndpoint(parseReference("ubuntu").registry), "registry-1.docker.io");
  for (const other of ["ghcr.io", "localhost:5000", "[::1]:5000", "quay.io", "registry-1.docker.io"]) {
    assert.equal(registryEndpoint(other), other);
  }
});

Deno.test("isInsecureRegistry: localhost with or without a port", () => {
  assert.equal(isInsecureRegistry("localhost", []), true);
  assert.equal(isInsecureRegistry("localhost:5000", []), true);
  assert.equal(isInsecureRegistry("LocalHost:5000", []), true);
  assert.equal(isInsecureRegistry("localhost.example.com", []), false);
  assert.equal(isInsecureRegistry("localhost:abc", []), false);
});

Deno.test("isInsecureRegistry: all of 127.0.0.0/8, nothing outside it", () => {
  for (const yes of ["127.0.0.1", "127.0.0.1:5000", "127.1.2.3:5000", "127.255.255.255", "127.0.0.0"]) {
    assert.equal(isInsecureRegistry(yes, []), true, yes);
  }
  for (
    const no of [
      "128.0.0.1",
      "126.255.255.255",
      "10.0.0.1:5000",
      "127.0.0.256",
      "127.0.0",
      "127.0.0.1.nip.io",
      "127.0.0.01",
      "1127.0.0.1",
    ]
  ) {
    assert.equal(isInsecureRegistry(no, []), false, no);
  }
});

Deno.test("isInsecureRegistry: IPv6 loopback in brackets, in any spelling", () => {
  assert.equal(isInsecureRegistry("[::1]", []), true);
  assert.equal(isInsecureRegistry("[::1]:5000", []), true);
  assert.equal(isInsecureRegistry("[0:0:0:0:0:0:0:1]:5000", []), true);
  assert.equal(isInsecureRegistry("[::2]:5000", []), false);
  assert.equal(isInsecureRegistry("[2001:db8::1]", []), false);
  assert.equal(isInsecureRegistry("::1", []), false);
});

Deno.test("isInsecureRegistry: other hosts only when listed exactly", () => {
  assert.equal(isInsecureRegistry("myhost:5000", []), false);
  assert.equal(isInsecureRegistry("myhost:5000", ["myhost:5000"]), true);
  assert.equal(isInsecureRegistry("myhost:5001", ["myhost:5000"]), false);
  assert.equal(isInsecureRegistry("myhost", ["myhost:5000"]), false);
  assert.equal(isInsecureRegistry("myhost:5000", ["myhost"]), false);
  assert.equal(isInsecureRegistry("docker.io", []), false);
  assert.equal(isInsecureRegistry("ghcr.io", ["quay.io", "ghcr.io"]), true);
  assert.equal(isInsecureRegistry("[2001:db8::1]:5000", ["[2001:db8::1]:5000"]), true);
});
