import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { formatImageName, parseImageName } from "../../lib/image_name.ts";

Deno.test("parseImageName: no tag means latest", () => {
  assert.deepEqual(parseImageName("busybox"), { name: "busybox", tag: "latest" });
  assert.equal(formatImageName(parseImageName("busybox")), "busybox:latest");
});

Deno.test("parseImageName: explicit tags", () => {
  assert.deepEqual(parseImageName("busybox:1.36"), { name: "busybox", tag: "1.36" });
  assert.deepEqual(parseImageName("alpine:3.19_rc-1"), { name: "alpine", tag: "3.19_rc-1" });
  assert.deepEqual(parseImageName("app:V2"), { name: "app", tag: "V2" });
});

Deno.test("parseImageName: repository paths and registry hosts", () => {
  assert.deepEqual(parseImageName("library/busybox"), { name: "library/busybox", tag: "latest" });
  assert.deepEqual(parseImageName("localhost:5000/app:1"), { name: "localhost:5000/app", tag: "1" });
  assert.deepEqual(parseImageName("localhost:5000/app"), { name: "localhost:5000/app", tag: "latest" });
  assert.deepEqual(parseImageName("localhost/app"), { name: "localhost/app", tag: "latest" });
  assert.deepEqual(parseImageName("registry.example.com/team/app:v1.2"), {
    name: "registry.example.com/team/app",
    tag: "v1.2",
  });
  assert.deepEqual(parseImageName("my-org/my_app.x"), { name: "my-org/my_app.x", tag: "latest" });
});

Deno.test("parseImageName: uppercase repository names are rejected", () => {
  for (const bad of ["Busybox", "library/BusyBox:1", "localhost:5000/App"]) {
    assert.throws(
      () => parseImageName(bad),
      (err) =>
        err instanceof FlokaError &&
        err.message ===
          `invalid reference format: ${JSON.stringify(bad)} (repository names must be lowercase)`,
      bad,
    );
  }
});

Deno.test("parseImageName: malformed repository names are rejected", () => {
  for (const bad of ["", ":tag", "a//b", "/busybox", "busybox/", "-app", "app-", "a b", "app!"]) {
    assert.throws(() => parseImageName(bad), /invalid reference format/, bad);
  }
});

Deno.test("parseImageName: bad tags are rejected", () => {
  for (const bad of ["busybox:", "busybox:-x", "busybox:.x", "busybox:a b", `busybox:${"x".repeat(129)}`]) {
    assert.throws(
      () => parseImageName(bad),
      (err) => err instanceof FlokaError && err.message.startsWith("invalid reference format"),
      bad,
    );
  }
  assert.equal(parseImageName(`busybox:${"x".repeat(128)}`).tag.length, 128);
});

Deno.test("parseImageName: a registry port must be numeric (busybox:a/b is not host busybox:a)", () => {
  // Docker: `docker pull busybox:a/b` -> invalid reference format; a domain's port is digits.
  assert.throws(() => parseImageName("busybox:a/b"), /invalid reference format/);
  assert.throws(() => parseImageName("localhost:port/app"), /invalid reference format/);
});

Deno.test("formatImageName joins name and tag", () => {
  assert.equal(formatImageName({ name: "localhost:5000/app", tag: "1" }), "localhost:5000/app:1");
  assert.equal(formatImageName(parseImageName("localhost:5000/app:1")), "localhost:5000/app:1");
});
