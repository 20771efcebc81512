import assert from "node:assert/strict";
import { hostLookup, type PathLookup, secureJoin } from "../../lib/secure_join.ts";

/** A fake filesystem: full host path -> symlink target; everything else is not a symlink. */
function links(entries: Record<string, string>): PathLookup & { asked: string[] } {
  const map = new Map(Object.entries(entries));
  const asked: string[] = [];
  return {
    asked,
    readlinkIfSymlink(path) {
      asked.push(path);
      return map.get(path) ?? null;
    },
  };
}

const ROOT = "/var/lib/floka/containers/abc/rootfs";

Deno.test("secureJoin: a plain path is joined under the root", () => {
  const fs = links({});
  assert.equal(secureJoin(ROOT, "/etc/hosts", fs), `${ROOT}/etc/hosts`);
  assert.equal(secureJoin(ROOT, "etc/hosts", fs), `${ROOT}/etc/hosts`);
  assert.equal(secureJoin(ROOT, "//etc/./hosts/", fs), `${ROOT}/etc/hosts`);
  assert.equal(secureJoin(ROOT, "/", fs), ROOT);
  assert.equal(secureJoin(ROOT, "", fs), ROOT);
  assert.equal(secureJoin(`${ROOT}/`, "/etc", fs), `${ROOT}/etc`);
});

Deno.test("secureJoin: '..' is clamped at the root", () => {
  const fs = links({});
  assert.equal(secureJoin(ROOT, "/../../../etc/passwd", fs), `${ROOT}/etc/passwd`);
  assert.equal(secureJoin(ROOT, "/a/b/../../../..", fs), ROOT);
  assert.equal(secureJoin(ROOT, "/a/../b", fs), `${ROOT}/b`);
});

Deno.test("secureJoin: an absolute symlink is resolved inside the root, not on the host", () => {
  const fs = links({ [`${ROOT}/etc`]: "/private/etc" });
  assert.equal(secureJoin(ROOT, "/etc/hosts", fs), `${ROOT}/private/etc/hosts`);
});

Deno.test("secureJoin: an absolute symlink deep in the tree restarts from the root", () => {
  const fs = links({ [`${ROOT}/usr/lib/libfoo.so`]: "/opt/foo/lib/libfoo.so.1" });
  assert.equal(secureJoin(ROOT, "/usr/lib/libfoo.so", fs), `${ROOT}/opt/foo/lib/libfoo.so.1`);
  const dir = links({ [`${ROOT}/var/run`]: "/run" });
  assert.equal(secureJoin(ROOT, "/var/run/lock", dir), `${ROOT}/run/lock`);
});

Deno.test("secureJoin: a symlink to / stays at the root", () => {
  const fs = links({ [`${ROOT}/etc`]: "/" });
  assert.equal(secureJoin(ROOT, "/etc/hosts", fs), `${ROOT}/hosts`);
});

Deno.test("secureJoin: a relative symlink is resolved from the link's directory", () => {
  const fs = links({ [`${ROOT}/usr/lib/os-release`]: "../share/os-release" });
  assert.equal(secureJoin(ROOT, "/usr/lib/os-release", fs), `${ROOT}/usr/share/os-release`);
  const sibling = links({ [`${ROOT}/bin/sh`]: "busybox" });
  assert.equal(secureJoin(ROOT, "/bin/sh", sibling), `${ROOT}/bin/busybox`);
});

Deno.test("secureJoin: a relative symlink climbing with '..' is clamped at the root", () => {
  const fs = links({ [`${ROOT}/etc`]: "../../../../../../../../tmp" });
  assert.equal(secureJoin(ROOT, "/etc/hosts", fs), `${ROOT}/tmp/hosts`);
});

Deno.test("secureJoin: '..' after a symlinked directory walks up from the link's target", () => {
  const fs = links({ [`${ROOT}/a`]: "/x/y" });
  assert.equal(secureJoin(ROOT, "/a/../z", fs), `${ROOT}/x/z`);
});

Deno.test("secureJoin: chained symlinks are all resolved inside the root", () => {
  const fs = links({
    [`${ROOT}/etc`]: "/one",
    [`${ROOT}/one`]: "two",
    [`${ROOT}/two`]: "/three/four",
    [`${ROOT}/three/four/resolv.conf`]: "../../run/resolv.conf",
  });
  assert.equal(secureJoin(ROOT, "/etc/resolv.conf", fs), `${ROOT}/run/resolv.conf`);
});

Deno.test("secureJoin: a symlink loop is an error, not a hang", () => {
  const fs = links({ [`${ROOT}/a`]: "/b", [`${ROOT}/b`]: "/a" });
  assert.throws(() => secureJoin(ROOT, "/a/file", fs), /too many levels of symbolic links/);
  const self = links({ [`${ROOT}/loop`]: "loop" });
  assert.throws(() => secureJoin(ROOT, "/loop", self), /too many levels of symbolic links/);
});

Deno.test("secureJoin: a chain of 40 links resolves (Linux's limit), one more does not", () => {
  const chain = (n: number) => {
    const entries: Record<string, string> = {};
    for (let i = 0; i < n; i++) entries[`${ROOT}/l${i}`] = `/l${i + 1}`;
    return links(entries);
  };
  assert.equal(secureJoin(ROOT, "/l0", chain(40)), `${ROOT}/l40`);
  assert.throws(() => secureJoin(ROOT, "/l0", chain(41)), /too many levels/);
});

Deno.test("secureJoin: only paths under the root are looked up", () => {
  const fs = links({ [`${ROOT}/etc`]: "/", [`${ROOT}/hosts`]: "../../../../var/hosts" });
  const result = secureJoin(ROOT, "/etc/hosts", fs);
  assert.equal(result, `${ROOT}/var/hosts`);
  for (const path of fs.asked) assert.ok(path.startsWith(`${ROOT}/`), path);
});

Deno.test("secureJoin on a real directory: etc -> / resolves etc/hosts to <root>/hosts, never the host's /etc", () => {
  const root = Deno.makeTempDirSync({ prefix: "floka-securejoin-" });
  try {
    Deno.symlinkSync("/", `${root}/etc`);
    Deno.mkdirSync(`${root}/real`);
    Deno.symlinkSync("/real", `${root}/abs`);
    Deno.symlinkSync("real", `${root}/rel`);
    Deno.symlinkSync("../../../../../../etc/passwd", `${root}/real/up`);
    assert.equal(secureJoin(root, "/etc/hosts"), `${root}/hosts`);
    assert.equal(secureJoin(root, "etc/hosts", hostLookup), `${root}/hosts`);
    assert.equal(secureJoin(root, "/abs/file"), `${root}/real/file`);
    Deno.symlinkSync("/etc/hosts", `${root}/real/hosts`);
    assert.equal(secureJoin(root, "/real/hosts"), `${root}/hosts`);
    assert.equal(secureJoin(root, "/rel/file"), `${root}/real/file`);
    // ../../etc/passwd from /real is /etc/passwd, and /etc is the root itself.
    assert.equal(secureJoin(root, "/real/up"), `${root}/passwd`);
    // Missing components and paths through a regular file are simply joined.
    Deno.writeTextFileSync(`${root}/real/file`, "x");
    assert.equal(secureJoin(root, "/real/file/below"), `${root}/real/file/below`);
    assert.equal(secureJoin(root, "/missing/deeper"), `${root}/missing/deeper`);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
