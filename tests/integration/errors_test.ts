/**
 * Bad input: Docker's exit codes, one line on stderr, and nothing left behind in the store,
 * the mount table or the cgroup tree.
 */
import assert from "node:assert/strict";
import {
  hostMountsMentioning,
  integrationTest,
  lines,
  type Result,
  show,
  Store,
  which,
  withStore,
} from "./helpers.ts";
import { freePort } from "./registry_harness.ts";

/** Asserts that a failed run left no container directory and no mount. */
function assertNothingLeft(s: Store, r: Result): void {
  assert.deepEqual(s.containerEntries(), [], `containers/ is not empty after: ${show(r)}`);
  assert.deepEqual(hostMountsMentioning(s.root), []);
}

integrationTest("errors: an unknown image exits 125 with one error line and leaves nothing", async () => {
  await withStore(async (s) => {
    // Not here, so run tries to pull it, from a registry that refuses connections.
    const host = `127.0.0.1:${freePort()}`;
    const r = await s.run(["--rm", `${host}/no-such-image`, "true"]);
    assert.equal(r.code, 125, show(r));
    assert.equal(r.stdout, "");
    assert.ok(r.stderr.includes(`Unable to find image '${host}/no-such-image:latest' locally`), show(r));
    const errors = lines(r.stderr).filter((l) => l.startsWith("floka:"));
    assert.equal(errors.length, 1, show(r));
    assert.ok(errors[0].includes(host), show(r));
    assertNothingLeft(s, r);
    const tag = await s.run(["busybox:no-such-tag", "true"]);
    assert.equal(tag.code, 125, show(tag));
    assertNothingLeft(s, tag);
  });
});

integrationTest("errors: a bad option or option value exits 125 and leaves nothing", async () => {
  await withStore(async (s) => {
    const cases: [string[], RegExp][] = [
      [["--bogus-option", "busybox", "true"], /bogus-option/],
      [["--network", "no-such-network", "busybox", "true"], /no-such-network/],
      [["-m", "1k", "busybox", "true"], /memory/i],
      [["-m", "lots", "busybox", "true"], /lots/],
      [["--cpu-shares", "many", "busybox", "true"], /many/],
      [["-w", "relative/dir", "busybox", "true"], /relative\/dir/],
      [["-e", "=nokey", "busybox", "true"], /nokey/],
      [["--env-file", `${s.root}/no-such-file`, "busybox", "true"], /no-such-file/],
    ];
    for (const [args, reason] of cases) {
      const r = await s.run(args);
      assert.equal(r.code, 125, `floka run ${args.join(" ")}: ${show(r)}`);
      assert.equal(r.stdout, "", args.join(" "));
      assert.match(lines(r.stderr)[0] ?? "", reason, `floka run ${args.join(" ")}: ${show(r)}`);
      assertNothingLeft(s, r);
    }
    const global = await s.floka(["--bogus-global", "ps"]);
    assert.equal(global.code, 125, show(global));
    const command = await s.floka(["no-such-command"]);
    assert.equal(command.code, 125, show(command));
  });
});

integrationTest("errors: a command that cannot be found (127) leaves nothing", async () => {
  await withStore(async (s) => {
    const missing = await s.run(["busybox", "no-such-command"]);
    assert.equal(missing.code, 127, show(missing));
    assert.equal(lines(missing.stderr).length, 1, show(missing));
    assertNothingLeft(s, missing);
    const named = await s.run(["--name", "named", "busybox", "no-such-command"]);
    assert.equal(named.code, 127, show(named));
    assertNothingLeft(s, named);
    // The name is free again.
    const ok = await s.run(["--rm", "--name", "named", "busybox", "true"]);
    assert.equal(ok.code, 0, show(ok));
  });
});

integrationTest("errors: an image whose /proc is a symlink is refused with 125", async () => {
  await withStore(async (s) => {
    const proc = `${s.imageDir()}/rootfs/proc`;
    Deno.removeSync(proc);
    Deno.symlinkSync("/tmp", proc);
    const r = await s.run(["--rm", "busybox", "echo", "should not run"]);
    assert.equal(r.code, 125, show(r));
    assert.equal(r.stdout, "");
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /\/proc/);
    assertNothingLeft(s, r);
    // The image is left as it was.
    assert.equal(Deno.readLinkSync(proc), "/tmp");
  });
});

integrationTest("errors: floka run without root exits 125 and says root is needed", async () => {
  const setpriv = which("setpriv");
  const su = which("su");
  assert.ok(setpriv || su, "neither setpriv nor su is installed: cannot run Floka as another user");
  await withStore(async (s) => {
    // Let nobody reach the store, so that the only thing missing is root itself.
    Deno.chmodSync(s.root, 0o755);
    const wrapper = setpriv
      ? [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
      : [su!, "-s", "/bin/sh", "-c", '"$0" "$@"', "--", "nobody"];
    const r = await s.run(["--rm", "busybox", "true"], { wrapper });
    assert.equal(r.code, 125, show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /root/);
    assertNothingLeft(s, r);
  });
});

integrationTest("errors: a store root that cannot be written exits 125 with one line", async () => {
  const r = await new Store("/proc/floka-nope").run(["--rm", "busybox", "true"]);
  assert.equal(r.code, 125, show(r));
  assert.equal(r.stdout, "");
  assert.equal(lines(r.stderr).length, 1, show(r));
  assert.match(r.stderr, /\/proc\/floka-nope/);
  assert.throws(() => Deno.statSync("/proc/floka-nope"), Deno.errors.NotFound);
});
