import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { CgroupManager, sharesToWeight } from "../../src/runtime/cgroups.ts";

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A fake cgroup v2 root: `cgroup.controllers` at the top marks the unified hierarchy. */
function fakeV2(controllers = "cpuset cpu io memory pids"): string {
  const root = Deno.makeTempDirSync({ prefix: "floka-cgv2-" });
  Deno.writeTextFileSync(`${root}/cgroup.controllers`, controllers + "\n");
  Deno.writeTextFileSync(`${root}/cgroup.subtree_control`, "");
  return root;
}

/** A fake cgroup v1 root: one directory per controller hierarchy, no `cgroup.controllers`. */
function fakeV1(controllers = ["memory", "cpu", "pids"]): string {
  const root = Deno.makeTempDirSync({ prefix: "floka-cgv1-" });
  for (const c of controllers) Deno.mkdirSync(`${root}/${c}`);
  return root;
}

function cleanup(root: string): void {
  Deno.removeSync(root, { recursive: true });
}

Deno.test("sharesToWeight: Docker's cpu.shares -> cpu.weight mapping", () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(512), 20);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(0), 0);
});

Deno.test("version(): 2 when cgroup.controllers exists at the root, 1 otherwise", () => {
  const v2 = fakeV2();
  const v1 = fakeV1();
  try {
    assert.equal(new CgroupManager(v2).version(), 2);
    assert.equal(new CgroupManager(v1).version(), 1);
  } finally {
    cleanup(v2);
    cleanup(v1);
  }
});

Deno.test("v2 create: enables memory, cpu and pids for children at the root and the parent", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cg, { version: 2, dirs: [`${root}/floka/${ID}`] });
    assert.equal(Deno.readTextFileSync(`${root}/cgroup.subtree_control`), "+memory +cpu +pids");
    assert.equal(Deno.readTextFileSync(`${root}/floka/cgroup.subtree_control`), "+memory +cpu +pids");
    assert.ok(Deno.statSync(`${root}/floka/${ID}`).isDirectory);
    // No limits asked: no limit files written.
    assert.equal(exists(`${root}/floka/${ID}/memory.max`), false);
    assert.equal(exists(`${root}/floka/${ID}/cpu.weight`), false);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create: writes memory.max in bytes and cpu.weight mapped from shares", () => {
  const root = fakeV2();
  try {
    const cg = new CgroupManager(root).create(ID, { memory: 64 * 1024 * 1024, cpuShares: 1024 });
    const dir = cg.dirs[0];
    assert.equal(Deno.readTextFileSync(`${dir}/memory.max`), "67108864");
    assert.equal(Deno.readTextFileSync(`${dir}/cpu.weight`), "39");
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create: only the controllers the kernel offers are enabled", () => {
  const root = fakeV2("cpuset cpu io");
  try {
    new CgroupManager(root).create(ID, { memory: 0, cpuShares: 512 });
    assert.equal(Deno.readTextFileSync(`${root}/cgroup.subtree_control`), "+cpu");
    assert.equal(Deno.readTextFileSync(`${root}/floka/cgroup.subtree_control`), "+cpu");
    assert.equal(Deno.readTextFileSync(`${root}/floka/${ID}/cpu.weight`), "20");
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create honours a custom parent name", () => {
  const root = fakeV2();
  try {
    const cg = new CgroupManager(root, "floka-test").create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cg.dirs, [`${root}/floka-test/${ID}`]);
    assert.ok(exists(`${root}/floka-test/${ID}`));
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 locate() names the directory without creating it; procsFiles lists cgroup.procs", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.locate(ID);
    assert.deepEqual(cg, { version: 2, dirs: [`${root}/floka/${ID}`] });
    assert.equal(exists(`${root}/floka`), false);
    assert.deepEqual(cgroups.procsFiles(cg), [`${root}/floka/${ID}/cgroup.procs`]);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2: the host joins the process by writing its pid to cgroup.procs; the process writes nothing", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cgroups.selfJoinFiles(cg), []);
    cgroups.hostJoin(cg, 4321);
    assert.equal(Deno.readTextFileSync(`${cg.dirs[0]}/cgroup.procs`), "4321");
  } finally {
    cleanup(root);
  }
});

Deno.test("join into a cgroup that does not exist is a FlokaError", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root);
    assert.throws(
      () => cgroups.hostJoin(cgroups.locate(ID), 4321),
      (err) =>
        err instanceof FlokaError && /cannot move the container's process into its cgroup/.test(err.message),
    );
    assert.throws(() => Deno.statSync(cgroups.locate(ID).dirs[0]), Deno.errors.NotFound);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 remove deletes the container's directory", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cgroups.remove(cg, 0), []);
    assert.equal(exists(cg.dirs[0]), false);
    assert.ok(exists(`${root}/floka`), "the shared parent stays");
    // Removing again is not an error.
    assert.deepEqual(cgroups.remove(cg, 0), []);
  } finally {
    cleanup(root);
  }
});

Deno.test("remove reports the directories it could not delete", () => {
  // On a fake cgroupfs the limit files are real files, so rmdir fails with ENOTEMPTY, as
  // rmdir of a real cgroup that still has processes fails with EBUSY.
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.create(ID, { memory: 1 << 20, cpuShares: 0 });
    assert.deepEqual(cgroups.remove(cg, 0), cg.dirs);
    assert.ok(exists(cg.dirs[0]));
    Deno.removeSync(`${cg.dirs[0]}/memory.max`);
    assert.deepEqual(cgroups.remove(cg, 0), []);
    assert.equal(exists(cg.dirs[0]), false);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create failure is a FlokaError and leaves no container directory", () => {
  const root = fakeV2();
  try {
    // The parent cannot be made: a file is in its place.
    Deno.writeTextFileSync(`${root}/floka`, "not a directory");
    const cgroups = new CgroupManager(root);
    assert.throws(
      () => cgroups.create(ID, { memory: 0, cpuShares: 0 }),
      (err) => err instanceof FlokaError && err.message.startsWith("cannot set up the container's cgroup: "),
    );
    assert.equal(Deno.readTextFileSync(`${root}/floka`), "not a directory");
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 create: a directory in each hierarchy, memory.limit_in_bytes and cpu.shares", () => {
  const root = fakeV1();
  try {
    const cgroups = new CgroupManager(root);
    assert.equal(cgroups.version(), 1);
    const cg = cgroups.create(ID, { memory: 128 * 1024 * 1024, cpuShares: 512 });
    assert.equal(cg.version, 1);
    assert.deepEqual(cg.dirs.toSorted(), [
      `${root}/cpu/floka/${ID}`,
      `${root}/memory/floka/${ID}`,
      `${root}/pids/floka/${ID}`,
    ]);
    for (const dir of cg.dirs) assert.ok(Deno.statSync(dir).isDirectory, dir);
    assert.equal(Deno.readTextFileSync(`${root}/memory/floka/${ID}/memory.limit_in_bytes`), "134217728");
    assert.equal(Deno.readTextFileSync(`${root}/cpu/floka/${ID}/cpu.shares`), "512");
    // Each limit only in its own hierarchy.
    assert.equal(exists(`${root}/memory/floka/${ID}/cpu.shares`), false);
    assert.equal(exists(`${root}/cpu/floka/${ID}/memory.limit_in_bytes`), false);
    assert.equal(exists(`${root}/pids/floka/${ID}/memory.limit_in_bytes`), false);
    assert.equal(exists(`${root}/cgroup.subtree_control`), false, "v1 has no subtree_control");
    assert.deepEqual(cgroups.procsFiles(cg).toSorted(), cg.dirs.map((d) => `${d}/cgroup.procs`).toSorted());
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 create without limits writes no limit files", () => {
  const root = fakeV1();
  try {
    const cg = new CgroupManager(root).create(ID, { memory: 0, cpuShares: 0 });
    assert.equal(exists(`${root}/memory/floka/${ID}/memory.limit_in_bytes`), false);
    assert.equal(exists(`${root}/cpu/floka/${ID}/cpu.shares`), false);
    assert.equal(cg.dirs.length, 3);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 uses only the hierarchies that are mounted", () => {
  const root = fakeV1(["memory", "pids"]);
  try {
    const cg = new CgroupManager(root).locate(ID);
    assert.deepEqual(cg.dirs.toSorted(), [`${root}/memory/floka/${ID}`, `${root}/pids/floka/${ID}`]);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 follows the usual cpu -> cpu,cpuacct symlink", () => {
  const root = fakeV1(["memory", "cpu,cpuacct", "pids"]);
  try {
    Deno.symlinkSync("cpu,cpuacct", `${root}/cpu`);
    const cg = new CgroupManager(root).create(ID, { memory: 0, cpuShares: 256 });
    assert.ok(cg.dirs.includes(`${root}/cpu/floka/${ID}`));
    assert.equal(Deno.readTextFileSync(`${root}/cpu,cpuacct/floka/${ID}/cpu.shares`), "256");
  } finally {
    cleanup(root);
  }
});

Deno.test("v1: the process joins itself through each hierarchy's tasks file; the host writes nothing", () => {
  const root = fakeV1();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cgroups.selfJoinFiles(cg), cg.dirs.map((d) => `${d}/tasks`));
    assert.equal(cg.dirs.length, 3);
    cgroups.hostJoin(cg, 777);
    for (const file of cgroups.procsFiles(cg)) assert.throws(() => Deno.readTextFileSync(file), file);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 remove deletes every hierarchy's directory once empty", () => {
  const root = fakeV1();
  try {
    const cgroups = new CgroupManager(root);
    const cg = cgroups.create(ID, { memory: 1 << 20, cpuShares: 100 });
    const memoryDir = `${root}/memory/floka/${ID}`;
    const cpuDir = `${root}/cpu/floka/${ID}`;
    // The pids directory is empty and goes; the two with limit files stay and are reported.
    assert.deepEqual(cgroups.remove(cg, 0).toSorted(), [cpuDir, memoryDir]);
    assert.equal(exists(`${root}/pids/floka/${ID}`), false);
    Deno.removeSync(`${memoryDir}/memory.limit_in_bytes`);
    Deno.removeSync(`${cpuDir}/cpu.shares`);
    assert.deepEqual(cgroups.remove(cg, 0), []);
    for (const dir of cg.dirs) assert.equal(exists(dir), false, dir);
  } finally {
    cleanup(root);
  }
});

Deno.test("oomKilled reads the kernel's oom_kill counter: v1 memory.oom_control, v2 memory.events", () => {
  for (const [make, file] of [[fakeV1, "memory.oom_control"], [fakeV2, "memory.events"]] as const) {
    const root = make();
    try {
      const cgroups = new CgroupManager(root);
      const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
      const dir = cg.dirs.find((d) => d.includes("/memory/")) ?? cg.dirs[0];
      assert.equal(cgroups.oomKilled(cg), false, `${file} missing`);
      Deno.writeTextFileSync(`${dir}/${file}`, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
      assert.equal(cgroups.oomKilled(cg), false, `${file} with no kill`);
      Deno.writeTextFileSync(`${dir}/${file}`, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
      assert.equal(cgroups.oomKilled(cg), true, `${file} after a kill`);
    } finally {
      cleanup(root);
    }
  }
});
