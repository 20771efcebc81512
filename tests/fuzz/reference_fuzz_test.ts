/**
 * Property-based tests of the image reference parser (lib/reference.ts): whatever the text,
 * parseReference returns a reference or throws a FlokaError "invalid reference format...",
 * and what it returns prints and parses back to itself.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  familiarReference,
  formatReference,
  isInsecureRegistry,
  parseReference,
  type Reference,
  registryEndpoint,
} from "../../lib/reference.ts";
import { anyText, checkProperty, flokaOutcome, mutated, runsOf, stringOf } from "./fuzz.ts";

const HEX = "0123456789abcdef";
const digestArb = fc.string({ unit: fc.constantFrom(...HEX), minLength: 64, maxLength: 64 })
  .map((hex) => `sha256:${hex}`);

const VALID = [
  "ubuntu",
  "ubuntu:22.04",
  "docker.io/library/ubuntu:22.04",
  "index.docker.io/library/busybox:latest",
  "user/app",
  "ghcr.io/o/r:v1.2.3",
  "localhost/a",
  "localhost:5000/a/b",
  `localhost:5000/a/b@sha256:${"ab".repeat(32)}`,
  `busybox:1.36@sha256:${"0".repeat(64)}`,
  "[::1]:5000/x/y:tag_1",
  "127.0.0.1:5000/team/app-x__y.z",
  "MyRegistry/app",
  "a.b.c.d/e/f/g/h:t-t.t_t",
];

/** Characters that matter to the grammar, and some that never should. */
// deno-fmt-ignore
const PIECES = [
  "a", "z", "A", "Z", "0", "9", ".", "_", "__", "-", "--", ":", "/", "//", "@", "[", "]", "::", "sha256:",
  "localhost", "docker.io", "index.docker.io", "library/", ":5000", "\0", " ", "\n", "é", "\u{1F600}",
  "\uD800", "%", "..", "x".repeat(130), "a/".repeat(70),
];

const referenceText = fc.oneof(
  anyText(80),
  stringOf(PIECES, 30),
  mutated(fc.constantFrom(...VALID), fc.oneof(stringOf(PIECES, 3), anyText(4))),
  fc.tuple(fc.constantFrom(...VALID), digestArb).map(([name, digest]) => `${name.split("@")[0]}@${digest}`),
);

/** What every parsed reference must satisfy, checked independently of the parser. */
function assertWellFormed(ref: Reference): void {
  assert.equal(typeof ref.registry, "string");
  assert.ok(ref.registry.length > 0, "a registry");
  assert.ok(ref.repository.length > 0, "a repository");
  for (const component of ref.repository.split("/")) {
    assert.match(component, /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/);
  }
  assert.ok(ref.tag !== undefined || ref.digest !== undefined, "a tag or a digest");
  if (ref.tag !== undefined) assert.match(ref.tag, /^\w[\w.-]{0,127}$/);
  if (ref.digest !== undefined) assert.match(ref.digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(!ref.registry.includes("/") && !ref.registry.includes("@"));
}

Deno.test("fuzz: parseReference returns a well-formed reference or throws a FlokaError", async () => {
  await checkProperty(
    "reference parse",
    fc.property(referenceText, (text) => {
      const outcome = flokaOutcome(() => parseReference(text));
      if (!outcome.ok) {
        assert.match(outcome.error.message, /^invalid reference format/);
        assert.ok(!outcome.error.message.includes("\n") || text.includes("\n"), "one line");
        return;
      }
      assertWellFormed(outcome.value);
      // Nothing else the module offers may fail on a parsed reference.
      registryEndpoint(outcome.value.registry);
      isInsecureRegistry(outcome.value.registry, []);
    }),
    1000,
  );
});

Deno.test("fuzz: a parsed reference, formatted (long and familiar form), parses back to itself", async () => {
  let parsed = 0;
  await checkProperty(
    "reference round trip",
    fc.property(referenceText, (text) => {
      const outcome = flokaOutcome(() => parseReference(text));
      if (!outcome.ok) return;
      const ref = outcome.value;
      parsed++;
      const long = formatReference(ref);
      assert.deepEqual(parseReference(long), ref, `via ${long}`);
      assert.equal(formatReference(parseReference(long)), long);
      const familiar = familiarReference(ref);
      assert.deepEqual(parseReference(familiar), ref, `via ${familiar}`);
    }),
    1000,
  );
  assert.ok(parsed >= runsOf(1000) / 10, `only ${parsed} references parsed`);
});

Deno.test("fuzz: isInsecureRegistry never throws, whatever the registry text", async () => {
  await checkProperty(
    "reference isInsecureRegistry",
    fc.property(
      fc.oneof(anyText(40), stringOf(PIECES, 10)),
      fc.array(anyText(10), { maxLength: 3 }),
      (r, l) => {
        assert.equal(typeof isInsecureRegistry(r, l), "boolean");
      },
    ),
    300,
  );
});

Deno.test("reference regression: a Docker Hub repository whose first component looks like a host keeps docker.io", () => {
  // Docker's familiar form of docker.io/er.io/library/ubuntu is er.io/library/ubuntu: an
  // image of the registry er.io. Floka keeps the domain where leaving it out changes the image.
  for (
    const text of ["docker.io/er.io/library/ubuntu:22.04", "docker.io/localhost/app:1", "docker.io/a.b/c"]
  ) {
    const ref = parseReference(text);
    assert.equal(ref.registry, "docker.io");
    assert.ok(familiarReference(ref).startsWith("docker.io/"), familiarReference(ref));
    assert.deepEqual(parseReference(familiarReference(ref)), ref);
  }
  assert.equal(familiarReference(parseReference("docker.io/library/er.io")), "er.io:latest");
  assert.equal(familiarReference(parseReference("user/app")), "user/app:latest");
});
