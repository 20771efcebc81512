/**
 * Bind mounts, named volumes, tmpfs mounts and a read-only root, as `docker run -v`,
 * `--mount`, `--tmpfs` and `--read-only` make them, and `floka volume`.
 */
import assert from "node:assert/strict";
import { hostMountsMentioning, integrationTest, lines, show, type Store, withStore } from "./helpers.ts";

/** Runs `fn` with the store, then checks nothing of it is left mounted on the host. */
function volumeTest(name: string, fn: (s: Store) => Promise<void>): void {
  integrationTest(`volumes: ${name}`, async () => {
    await withStore(async (s) => {
      await fn(s);
      assert.deepEqual(hostMountsMentioning(s.root), [], "a mount of the store is left on the host");
    });
  });
}

volumeTest("a bind mount shows the host's files and writes reach the host", async (s) => {
  const host = `${s.root}/host`;
  Deno.mkdirSync(host);
  Deno.writeTextFileSync(`${host}/in`, "from the host\n");
  const r = await s.run([
    "--rm",
    "-v",
    `${host}:/mnt`,
    "busybox",
    "sh",
    "-c",
    "cat /mnt/in; echo back > /mnt/out",
  ]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, "from the host\n");
  assert.equal(Deno.readTextFileSync(`${host}/out`), "back\n");
  // -v makes a missing host directory, as Docker does.
  const made = await s.run(["--rm", "-v", `${s.root}/new/dir:/x`, "busybox", "true"]);
  assert.equal(made.code, 0, show(made));
  assert.ok(Deno.statSync(`${s.root}/new/dir`).isDirectory);
});

volumeTest("a :ro bind (and --mount readonly) cannot be written", async (s) => {
  const host = `${s.root}/host`;
  Deno.mkdirSync(host);
  for (
    const flag of [["-v", `${host}:/mnt:ro`], ["--mount", `type=bind,source=${host},target=/mnt,readonly`]]
  ) {
    const r = await s.run([
      "--rm",
      ...flag,
      "busybox",
      "sh",
      "-c",
      "touch /mnt/f; grep ' /mnt ' /proc/mounts",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /Read-only file system/);
    assert.match(r.stdout, / ro[, ]/);
  }
  assert.deepEqual([...Deno.readDirSync(host)], []);
});

volumeTest(
  "a named volume is filled from the image, keeps data across containers, shows in inspect",
  async (s) => {
    const first = await s.run([
      "--name",
      "one",
      "-v",
      "v1:/etc",
      "busybox",
      "sh",
      "-c",
      "ls /etc; echo kept > /etc/mine",
    ]);
    assert.equal(first.code, 0, show(first));
    assert.ok(lines(first.stdout).includes("passwd"), first.stdout);
    assert.ok(lines(first.stdout).includes("hostname"), "the generated /etc files go over the volume");
    const second = await s.run([
      "--rm",
      "--mount",
      "type=volume,source=v1,target=/data",
      "busybox",
      "cat",
      "/data/mine",
    ]);
    assert.equal(second.code, 0, show(second));
    assert.equal(second.stdout, "kept\n");
    const mounts = (await s.inspect("one")).Mounts;
    assert.deepEqual(mounts, [{
      Type: "volume",
      Name: "v1",
      Driver: "local",
      Source: `${s.root}/volumes/v1/_data`,
      Destination: "/etc",
      Mode: "",
      RW: true,
      Propagation: "",
    }]);
    const ls = await s.floka(["volume", "ls"]);
    assert.equal(ls.stdout, "DRIVER    VOLUME NAME\nlocal     v1\n");
    const inspect = JSON.parse((await s.floka(["volume", "inspect", "v1"])).stdout);
    assert.equal(inspect[0].Mountpoint, `${s.root}/volumes/v1/_data`);
    assert.equal(inspect[0].Driver, "local");
    // In use by a stopped container: refused, even with -f.
    for (const args of [["v1"], ["-f", "v1"]]) {
      const rm = await s.floka(["volume", "rm", ...args]);
      assert.equal(rm.code, 1, show(rm));
      assert.match(rm.stderr, /volume is in use/);
    }
    const pruned = await s.floka(["volume", "prune", "-f"]);
    assert.equal(pruned.code, 0, show(pruned));
    assert.doesNotMatch(pruned.stdout, /v1/);
    assert.equal((await s.floka(["rm", "one"])).code, 0);
    const rm = await s.floka(["volume", "rm", "v1"]);
    assert.equal(rm.code, 0, show(rm));
    assert.equal(rm.stdout, "v1\n");
    assert.equal((await s.floka(["volume", "ls", "-q"])).stdout, "");
  },
);

volumeTest("volume create, ls -q / --format json, prune", async (s) => {
  const made = await s.floka(["volume", "create", "--label", "a=b", "named"]);
  assert.equal(made.stdout, "named\n", show(made));
  const anon = await s.floka(["volume", "create"]);
  assert.match(anon.stdout, /^[0-9a-f]{64}\n$/);
  const json = lines((await s.floka(["volume", "ls", "--format", "json"])).stdout).map((l) => JSON.parse(l));
  assert.deepEqual(json.map((v) => v.Name).sort(), [anon.stdout.trim(), "named"].sort());
  assert.deepEqual(json.find((v) => v.Name === "named").Labels, { a: "b" });
  const bad = await s.floka(["volume", "create", "no/slash"]);
  assert.equal(bad.code, 125, show(bad));
  const pruned = await s.floka(["volume", "prune", "-f"]);
  assert.equal(pruned.code, 0, show(pruned));
  assert.match(pruned.stdout, /Deleted Volumes:\n/);
  assert.match(pruned.stdout, /named/);
  assert.equal((await s.floka(["volume", "ls", "-q"])).stdout, "");
});

volumeTest(
  "--tmpfs is an empty tmpfs; --read-only makes the root read-only, mounts stay writable",
  async (s) => {
    const tmpfs = await s.run([
      "--rm",
      "--tmpfs",
      "/scratch:size=1m",
      "busybox",
      "sh",
      "-c",
      "ls -A /scratch; grep ' /scratch ' /proc/mounts",
    ]);
    assert.equal(tmpfs.code, 0, show(tmpfs));
    assert.match(tmpfs.stdout, /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,.*size=1024k/);
    const host = `${s.root}/host`;
    Deno.mkdirSync(host);
    const ro = await s.run([
      "--rm",
      "--read-only",
      "--tmpfs",
      "/tmp",
      "-v",
      `${host}:/mnt`,
      "busybox",
      "sh",
      "-c",
      "touch /root-file || echo root refused; touch /tmp/a /mnt/b /dev/shm/c && echo mounts ok",
    ]);
    assert.equal(ro.code, 0, show(ro));
    assert.equal(ro.stdout, "root refused\nmounts ok\n");
    assert.match(ro.stderr, /Read-only file system/);
    assert.ok(Deno.statSync(`${host}/b`).isFile);
  },
);

volumeTest("a destination that is a symlink in the image lands inside the container's root", async (s) => {
  const rootfs = `${s.imageDir()}/rootfs`;
  const escape = `${s.root}/escape-target`;
  // CVE-2021-30465's setting: relative and absolute links pointing out of the rootfs.
  Deno.symlinkSync(`../../../../../../../..${escape}`, `${rootfs}/data`);
  Deno.symlinkSync(`${escape}-abs`, `${rootfs}/abs`);
  const r = await s.run([
    "--rm",
    "-v",
    "esc:/data",
    "-v",
    `${s.root}:/abs`,
    "busybox",
    "sh",
    "-c",
    "echo inside > /data/f; ls /abs > /dev/null && echo abs ok",
  ]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, "abs ok\n");
  for (const path of [escape, `${escape}-abs`]) {
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound, `Floka made ${path} on the host`);
  }
  // The volume got the write: its mount was inside the rootfs (at the link's target there).
  assert.equal(Deno.readTextFileSync(`${s.root}/volumes/esc/_data/f`), "inside\n");
});

volumeTest(
  "a missing --mount bind source and a mount over /proc fail with 125, leaving no container",
  async (s) => {
    const cases = [
      [["--mount", `type=bind,source=${s.root}/nope,target=/x`], /bind source path does not exist/],
      [["-v", `${s.root}:/proc`], /cannot mount over \/proc/],
      [["--tmpfs", "/sys/fs"], /cannot mount over \/sys\/fs/],
      [["-v", "ok_vol:/a", "-v", "ok_vol:/a"], /Duplicate mount point/],
    ] as const;
    for (const [flags, message] of cases) {
      const r = await s.run(["--rm", ...flags, "busybox", "true"]);
      assert.equal(r.code, 125, show(r));
      assert.match(r.stderr, message);
    }
    assert.deepEqual(await s.ids(), []);
    assert.deepEqual(s.containerEntries(), []);
    assert.equal((await s.floka(["volume", "ls", "-q"])).stdout, "", "a refused run made a volume");
  },
);

volumeTest("anonymous volumes: -v /path and the image's VOLUME; rm -v and --rm remove them", async (s) => {
  const volumeNames = async () => lines((await s.floka(["volume", "ls", "-q"])).stdout);
  // -v /path: a fresh volume of its own, kept after the container unless rm -v.
  const made = await s.run([
    "--name",
    "anon",
    "-v",
    "/scratch",
    "busybox",
    "sh",
    "-c",
    "echo kept > /scratch/f",
  ]);
  assert.equal(made.code, 0, show(made));
  const [name] = await volumeNames();
  assert.match(name ?? "", /^[0-9a-f]{64}$/);
  assert.equal(Deno.readTextFileSync(`${s.root}/volumes/${name}/_data/f`), "kept\n");
  assert.equal((await s.floka(["rm", "-v", "anon"])).code, 0);
  assert.deepEqual(await volumeNames(), []);

  // An image with VOLUME /data: each container gets the image's /data content in a new volume.
  const ctx = `${s.root}/ctx`;
  Deno.mkdirSync(ctx);
  Deno.writeTextFileSync(
    `${ctx}/Flokafile`,
    "FROM busybox\nRUN mkdir /data && echo seeded > /data/seed\nVOLUME /data\n",
  );
  const built = await s.floka(["build", "-q", "-t", "withvol", ctx]);
  assert.equal(built.code, 0, show(built));
  const run = await s.run([
    "--rm",
    "withvol",
    "sh",
    "-c",
    "cat /data/seed; grep ' /data ' /proc/mounts | wc -l",
  ]);
  assert.equal(run.code, 0, show(run));
  assert.deepEqual(lines(run.stdout), ["seeded", "1"]);
  assert.deepEqual(await volumeNames(), [], "--rm removes the container's anonymous volumes");
  // A named volume at the same path replaces the image's anonymous one.
  const named = await s.run(["--rm", "-v", "mine:/data", "withvol", "cat", "/data/seed"]);
  assert.equal(named.stdout, "seeded\n");
  assert.deepEqual(await volumeNames(), ["mine"]);
});
