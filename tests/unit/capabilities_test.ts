import assert from "node:assert/strict";
import {
  CAPABILITIES,
  containerCapabilities,
  DEFAULT_CAPABILITIES,
  normalizeCapability,
} from "../../lib/capabilities.ts";
import { FlokaError } from "../../lib/errors.ts";

Deno.test("normalizeCapability takes names with or without CAP_, in any case, and ALL", () => {
  assert.equal(normalizeCapability("net_admin"), "CAP_NET_ADMIN");
  assert.equal(normalizeCapability("CAP_SYS_ADMIN"), "CAP_SYS_ADMIN");
  assert.equal(normalizeCapability("all"), "ALL");
  assert.throws(
    () => normalizeCapability("FOO"),
    (e: Error) => e instanceof FlokaError && /"FOO"/.test(e.message),
  );
});

Deno.test("containerCapabilities: the defaults, less the dropped, plus the added, in kernel order", () => {
  assert.deepEqual(
    containerCapabilities([], []),
    CAPABILITIES.filter((c) => DEFAULT_CAPABILITIES.includes(c)),
  );
  const caps = containerCapabilities(["NET_ADMIN"], ["chown"]);
  assert.ok(caps.includes("CAP_NET_ADMIN"));
  assert.ok(!caps.includes("CAP_CHOWN"));
  assert.equal(caps.length, DEFAULT_CAPABILITIES.length);
});

Deno.test("containerCapabilities: dropping ALL keeps only the added; adding ALL keeps all but the dropped", () => {
  assert.deepEqual(containerCapabilities([], ["ALL"]), []);
  assert.deepEqual(containerCapabilities(["CHOWN"], ["ALL"]), ["CAP_CHOWN"]);
  const all = containerCapabilities(["ALL"], ["SYS_ADMIN"]);
  assert.equal(all.length, CAPABILITIES.length - 1);
  assert.ok(!all.includes("CAP_SYS_ADMIN"));
  // As Docker: ALL added wins over ALL dropped.
  assert.equal(containerCapabilities(["ALL"], ["ALL"]).length, CAPABILITIES.length);
  assert.equal(containerCapabilities([], ["ALL"], true).length, CAPABILITIES.length);
});
