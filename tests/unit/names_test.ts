import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { newContainerId, randomName, validateContainerName } from "../../lib/names.ts";

Deno.test("newContainerId: 64 lowercase hex digits", () => {
  for (let i = 0; i < 20; i++) assert.match(newContainerId(), /^[0-9a-f]{64}$/);
});

Deno.test("newContainerId: IDs are unique, and their 12-character short forms too", () => {
  const ids = Array.from({ length: 1000 }, newContainerId);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(new Set(ids.map((id) => id.slice(0, 12))).size, ids.length);
});

Deno.test("randomName: adjective_surname that is itself a valid container name", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const name = randomName();
    assert.match(name, /^[a-z]+_[a-z]+$/);
    assert.equal(validateContainerName(name), name);
    seen.add(name);
  }
  assert.ok(seen.size > 50, `only ${seen.size} distinct names in 200`);
});

Deno.test("validateContainerName accepts Docker's names and drops a leading slash", () => {
  for (const ok of ["web", "Web1", "a", "9lives", "my-app_v1.2", "a.b-c_d"]) {
    assert.equal(validateContainerName(ok), ok);
  }
  assert.equal(validateContainerName("/web"), "web");
});

Deno.test("validateContainerName rejects names outside [a-zA-Z0-9][a-zA-Z0-9_.-]*", () => {
  for (const bad of ["", "/", "-web", "_web", ".web", "my app", "a/b", "wéb", "name!", "//web", "a:b"]) {
    assert.throws(
      () => validateContainerName(bad),
      (err) =>
        err instanceof FlokaError &&
        err.message.startsWith(`invalid container name ${JSON.stringify(bad)}`) &&
        err.exitCode === 125,
      bad,
    );
  }
});
