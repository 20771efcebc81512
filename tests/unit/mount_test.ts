import assert from "node:assert/strict";
import * as L from "../../lib/linux.ts";
import { type Mount, mountCall } from "../../lib/mount.ts";

const m = (type: string, options: string[], source = type, target = "/x"): Mount => ({
  type,
  source,
  target,
  options,
});

Deno.test("mountCall: proc options become flags, no data, no remount", () => {
  const call = mountCall(m("proc", ["nosuid", "noexec", "nodev"]));
  assert.deepEqual(call, {
    flags: L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV,
    data: null,
    propagation: 0,
    remount: false,
  });
});

Deno.test("mountCall: filesystem options such as mode= and size= go to the data string, in order", () => {
  const call = mountCall(m("tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]));
  assert.equal(call.flags, L.MS_NOSUID | L.MS_STRICTATIME);
  assert.equal(call.data, "mode=755,size=65536k");
  assert.equal(call.propagation, 0);
  assert.equal(call.remount, false);
});

Deno.test("mountCall: devpts keeps newinstance/ptmxmode/gid as data", () => {
  const call = mountCall(
    m("devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
  );
  assert.equal(call.flags, L.MS_NOSUID | L.MS_NOEXEC);
  assert.equal(call.data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
});

Deno.test("mountCall: ro on a plain filesystem is a flag of the mount itself", () => {
  const call = mountCall(m("sysfs", ["nosuid", "noexec", "nodev", "ro"]));
  assert.equal(call.flags, L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV | L.MS_RDONLY);
  assert.equal(call.remount, false);
});

Deno.test("mountCall: a bind mount with ro needs a remount (bind ignores ro)", () => {
  const call = mountCall(m("bind", ["bind", "ro"], "/host/data"));
  assert.equal(call.flags, L.MS_BIND | L.MS_RDONLY);
  assert.equal(call.remount, true);
  assert.equal(call.data, null);
});

Deno.test("mountCall: type bind implies MS_BIND even without a bind option; plain bind needs no remount", () => {
  const call = mountCall(m("bind", [], "/host/data"));
  assert.equal(call.flags, L.MS_BIND);
  assert.equal(call.remount, false);
});

Deno.test("mountCall: rbind sets MS_BIND|MS_REC; rprivate goes to propagation, not flags", () => {
  const call = mountCall(m("bind", ["rbind", "rprivate"], "/host/etc/hosts"));
  assert.equal(call.flags, L.MS_BIND | L.MS_REC);
  assert.equal(call.propagation, L.MS_PRIVATE | L.MS_REC);
  assert.equal(call.flags & L.MS_PRIVATE, 0);
  assert.equal(call.remount, false);
  assert.equal(call.data, null);
});

Deno.test("mountCall: rbind with nosuid,noexec,nodev,ro (host /sys) needs a remount with all of them", () => {
  const call = mountCall(m("bind", ["rbind", "nosuid", "noexec", "nodev", "ro"], "/sys"));
  assert.equal(call.flags, L.MS_BIND | L.MS_REC | L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV | L.MS_RDONLY);
  assert.equal(call.remount, true);
});

Deno.test("mountCall: each propagation option maps to its flag", () => {
  const cases: [string, number][] = [
    ["private", L.MS_PRIVATE],
    ["rprivate", L.MS_PRIVATE | L.MS_REC],
    ["slave", L.MS_SLAVE],
    ["rslave", L.MS_SLAVE | L.MS_REC],
    ["shared", L.MS_SHARED],
    ["rshared", L.MS_SHARED | L.MS_REC],
    ["unbindable", L.MS_UNBINDABLE],
    ["runbindable", L.MS_UNBINDABLE | L.MS_REC],
  ];
  for (const [opt, flag] of cases) {
    const call = mountCall(m("tmpfs", [opt]));
    assert.equal(call.propagation, flag, opt);
    assert.equal(call.flags, 0, opt);
    assert.equal(call.data, null, opt);
  }
});

Deno.test("mountCall: a later clearing option undoes an earlier one (ro then rw, nosuid then suid)", () => {
  const call = mountCall(m("tmpfs", ["ro", "nosuid", "rw", "suid", "noexec"]));
  assert.equal(call.flags, L.MS_NOEXEC);
  const bind = mountCall(m("bind", ["bind", "ro", "rw"], "/src"));
  assert.equal(bind.flags, L.MS_BIND);
  assert.equal(bind.remount, false);
});
