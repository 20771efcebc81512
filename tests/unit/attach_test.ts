import assert from "node:assert/strict";
import { DetachKeys, parseDetachKeys } from "../../src/runtime/attach.ts";

Deno.test("parseDetachKeys: Docker's syntax, ctrl-p,ctrl-q by default; bad keys are an error", () => {
  assert.deepEqual([...parseDetachKeys("ctrl-p,ctrl-q")], [0x10, 0x11]);
  assert.deepEqual([...parseDetachKeys("ctrl-a,x")], [0x01, 0x78]);
  assert.deepEqual([...parseDetachKeys("ctrl-[")], [27]);
  assert.throws(() => parseDetachKeys("ctrl-pq"), /invalid detach keys/);
  assert.throws(() => parseDetachKeys("ab"), /invalid detach keys/);
});

Deno.test("DetachKeys: the sequence is found across reads and held back; a broken one is sent on", () => {
  const keys = new DetachKeys(new Uint8Array([0x10, 0x11]));
  assert.deepEqual(keys.push(new Uint8Array([0x61, 0x10])), { send: new Uint8Array([0x61]), detach: false });
  assert.deepEqual(keys.push(new Uint8Array([0x62])), { send: new Uint8Array([0x10, 0x62]), detach: false });
  assert.deepEqual(keys.push(new Uint8Array([0x10, 0x10])), { send: new Uint8Array([0x10]), detach: false });
  assert.deepEqual(keys.push(new Uint8Array([0x11, 0x63])), { send: new Uint8Array([]), detach: true });
});
