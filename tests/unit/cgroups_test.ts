import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import {
  ALLOWED_DEVICES,
  blkioToIoWeight,
  cfsBandwidth,
  CgroupManager,
  type CgroupSupport,
  cpuPercent,
  memoryUsed,
  parseBlkioServiceBytes,
  parseCpuList,
  parseIoStat,
  resolveLimits,
  type ResourceFlags,
  sharesToWeight,
} from "../../src/runtime/cgroups.ts";
import {
  countCpus,
  memTotalBytes,
  netDevBytes,
  parseStatsFormat,
  renderStats,
  type Sample,
  statsEntry,
  systemCpuNs,
} from "../../src/cli/stats.ts";
import type { Container } from "../../src/containers/store.ts";
import { binarySize, parseNanoCpus } from "../../lib/units.ts";
import { setLogLevel } from "../../src/log.ts";
import { pathExists } from "../../src/store/files.ts";

/** Runs `fn` with Floka's warnings (expected ones) kept off the test output. */
function quietly<T>(fn: () => T): T {
  setLogLevel("error");
  try {
    return fn();
  } finally {
    setLogLevel("warn");
  }
}

/** Stands in for the v2 device filter, which needs a real cgroup2 directory. */
const noDevices = () => {};

const ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

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
    assert.equal(new CgroupManager(v2, "floka", noDevices).version(), 2);
    assert.equal(new CgroupManager(v1).version(), 1);
  } finally {
    cleanup(v2);
    cleanup(v1);
  }
});

Deno.test("v2 create: enables memory, cpu, pids, io and cpuset for children at the root and the parent", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cg, { version: 2, dirs: [`${root}/floka/${ID}`] });
    const all = "+memory +cpu +pids +io +cpuset";
    assert.equal(Deno.readTextFileSync(`${root}/cgroup.subtree_control`), all);
    assert.equal(Deno.readTextFileSync(`${root}/floka/cgroup.subtree_control`), all);
    assert.ok(Deno.statSync(`${root}/floka/${ID}`).isDirectory);
    // No limits asked: no limit files written.
    assert.equal(pathExists(`${root}/floka/${ID}/memory.max`), false);
    assert.equal(pathExists(`${root}/floka/${ID}/cpu.weight`), false);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create: writes memory.max in bytes and cpu.weight mapped from shares", () => {
  const root = fakeV2();
  try {
    const cg = new CgroupManager(root, "floka", noDevices).create(ID, {
      memory: 64 * 1024 * 1024,
      cpuShares: 1024,
    });
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
    new CgroupManager(root, "floka", noDevices).create(ID, { memory: 0, cpuShares: 512 });
    assert.equal(Deno.readTextFileSync(`${root}/cgroup.subtree_control`), "+cpu +io +cpuset");
    assert.equal(Deno.readTextFileSync(`${root}/floka/cgroup.subtree_control`), "+cpu +io +cpuset");
    assert.equal(Deno.readTextFileSync(`${root}/floka/${ID}/cpu.weight`), "20");
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create honours a custom parent name", () => {
  const root = fakeV2();
  try {
    const cg = new CgroupManager(root, "floka-test", noDevices).create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cg.dirs, [`${root}/floka-test/${ID}`]);
    assert.ok(pathExists(`${root}/floka-test/${ID}`));
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 locate() names the directory without creating it; procsFiles lists cgroup.procs", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.locate(ID);
    assert.deepEqual(cg, { version: 2, dirs: [`${root}/floka/${ID}`] });
    assert.equal(pathExists(`${root}/floka`), false);
    assert.deepEqual(cgroups.procsFiles(cg), [`${root}/floka/${ID}/cgroup.procs`]);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2: the host joins the process by writing its pid to cgroup.procs; the process writes nothing", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
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
    const cgroups = new CgroupManager(root, "floka", noDevices);
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
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(cgroups.remove(cg, 0), []);
    assert.equal(pathExists(cg.dirs[0]), false);
    assert.ok(pathExists(`${root}/floka`), "the shared parent stays");
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
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, { memory: 1 << 20, cpuShares: 0 });
    assert.deepEqual(cgroups.remove(cg, 0), cg.dirs);
    assert.ok(pathExists(cg.dirs[0]));
    Deno.removeSync(`${cg.dirs[0]}/memory.max`);
    assert.deepEqual(cgroups.remove(cg, 0), []);
    assert.equal(pathExists(cg.dirs[0]), false);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create failure is a FlokaError and leaves no container directory", () => {
  const root = fakeV2();
  try {
    // The parent cannot be made: a file is in its place.
    Deno.writeTextFileSync(`${root}/floka`, "not a directory");
    const cgroups = new CgroupManager(root, "floka", noDevices);
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
    const cgroups = new CgroupManager(root, "floka", noDevices);
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
    assert.equal(pathExists(`${root}/memory/floka/${ID}/cpu.shares`), false);
    assert.equal(pathExists(`${root}/cpu/floka/${ID}/memory.limit_in_bytes`), false);
    assert.equal(pathExists(`${root}/pids/floka/${ID}/memory.limit_in_bytes`), false);
    assert.equal(pathExists(`${root}/cgroup.subtree_control`), false, "v1 has no subtree_control");
    assert.deepEqual(cgroups.procsFiles(cg).toSorted(), cg.dirs.map((d) => `${d}/cgroup.procs`).toSorted());
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 create without limits writes no limit files", () => {
  const root = fakeV1();
  try {
    const cg = new CgroupManager(root, "floka", noDevices).create(ID, { memory: 0, cpuShares: 0 });
    assert.equal(pathExists(`${root}/memory/floka/${ID}/memory.limit_in_bytes`), false);
    assert.equal(pathExists(`${root}/cpu/floka/${ID}/cpu.shares`), false);
    assert.equal(cg.dirs.length, 3);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 uses only the hierarchies that are mounted", () => {
  const root = fakeV1(["memory", "pids"]);
  try {
    const cg = new CgroupManager(root, "floka", noDevices).locate(ID);
    assert.deepEqual(cg.dirs.toSorted(), [`${root}/memory/floka/${ID}`, `${root}/pids/floka/${ID}`]);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 follows the usual cpu -> cpu,cpuacct symlink", () => {
  const root = fakeV1(["memory", "cpu,cpuacct", "pids"]);
  try {
    Deno.symlinkSync("cpu,cpuacct", `${root}/cpu`);
    const cg = new CgroupManager(root, "floka", noDevices).create(ID, { memory: 0, cpuShares: 256 });
    assert.ok(cg.dirs.includes(`${root}/cpu/floka/${ID}`));
    assert.equal(Deno.readTextFileSync(`${root}/cpu,cpuacct/floka/${ID}/cpu.shares`), "256");
  } finally {
    cleanup(root);
  }
});

Deno.test("v1: the process joins itself through each hierarchy's tasks file; the host writes nothing", () => {
  const root = fakeV1();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
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
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, { memory: 1 << 20, cpuShares: 100 });
    const memoryDir = `${root}/memory/floka/${ID}`;
    const cpuDir = `${root}/cpu/floka/${ID}`;
    // The pids directory is empty and goes; the two with limit files stay and are reported.
    assert.deepEqual(cgroups.remove(cg, 0).toSorted(), [cpuDir, memoryDir]);
    assert.equal(pathExists(`${root}/pids/floka/${ID}`), false);
    Deno.removeSync(`${memoryDir}/memory.limit_in_bytes`);
    Deno.removeSync(`${cpuDir}/cpu.shares`);
    assert.deepEqual(cgroups.remove(cg, 0), []);
    for (const dir of cg.dirs) assert.equal(pathExists(dir), false, dir);
  } finally {
    cleanup(root);
  }
});

Deno.test("oomKilled reads the kernel's oom_kill counter: v1 memory.oom_control, v2 memory.events", () => {
  for (const [make, file] of [[fakeV1, "memory.oom_control"], [fakeV2, "memory.events"]] as const) {
    const root = make();
    try {
      const cgroups = new CgroupManager(root, "floka", noDevices);
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

// ---------------------------------------------------------------------------------------
// Resource flags: parsing and Docker's checks (resolveLimits)

/** A kernel that offers everything, on 2 CPUs. */
const FULL: CgroupSupport = {
  memory: true,
  swap: true,
  cpuShares: true,
  cpuCfs: true,
  cpuset: true,
  pids: true,
  blkioWeight: true,
  cpus: "0-1",
  cpuCount: 2,
};

function resolve(flags: ResourceFlags, support: Partial<CgroupSupport> = {}) {
  return resolveLimits(flags, () => ({ ...FULL, ...support }));
}

/** Asserts that `flags` are refused with a FlokaError (exit 125) whose message matches. */
function refused(flags: ResourceFlags, message: RegExp | string, support: Partial<CgroupSupport> = {}): void {
  assert.throws(
    () => resolve(flags, support),
    (err) => {
      assert.ok(err instanceof FlokaError, String(err));
      assert.equal(err.exitCode, 125);
      assert.equal(err.message.includes("\n"), false, "one line");
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

Deno.test("resolveLimits: no flags, no limits, and the kernel is not even asked", () => {
  const { limits, warnings } = resolveLimits({}, () => {
    throw new Error("support() asked without a flag that needs it");
  });
  assert.deepEqual(limits, {
    memory: 0,
    memorySwap: 0,
    cpuShares: 0,
    nanoCpus: 0,
    cpuPeriod: 0,
    cpuQuota: 0,
    cpusetCpus: "",
    pidsLimit: 0,
    blkioWeight: 0,
  });
  assert.deepEqual(warnings, []);
});

Deno.test("resolveLimits: -m alone lets the container swap as much again (MemorySwap = 2x)", () => {
  const { limits, warnings } = resolve({ memory: "64m" });
  assert.equal(limits.memory, 64 << 20);
  assert.equal(limits.memorySwap, 128 << 20);
  assert.deepEqual(warnings, []);
  assert.equal(resolve({ memory: "64m", memorySwap: "96m" }).limits.memorySwap, 96 << 20);
  assert.equal(resolve({ memory: "64m", memorySwap: "64m" }).limits.memorySwap, 64 << 20);
  assert.equal(resolve({ memory: "64m", memorySwap: "-1" }).limits.memorySwap, -1);
  assert.equal(resolve({ memory: "64m", memorySwap: "0" }).limits.memorySwap, 128 << 20, "0 is unset");
});

Deno.test("resolveLimits: --memory-swap errors and the warning without swap accounting", () => {
  refused(
    { memory: "64m", memorySwap: "32m" },
    "Minimum memoryswap limit should be larger than memory limit, see usage",
  );
  refused(
    { memorySwap: "64m" },
    "You should always set the Memory limit when using Memoryswap limit, see usage",
  );
  refused(
    { memory: "64m", memorySwap: "lots" },
    /^invalid argument "lots" for "--memory-swap" flag: invalid size/,
  );
  refused({ memory: "4m" }, "Minimum memory limit allowed is 6MB");
  const { limits, warnings } = resolve({ memory: "64m", memorySwap: "96m" }, { swap: false });
  assert.equal(limits.memory, 64 << 20);
  assert.equal(limits.memorySwap, -1);
  assert.deepEqual(warnings, [
    "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
  ]);
  const noMemory = resolve({ memory: "64m" }, { memory: false, swap: false });
  assert.equal(noMemory.limits.memory, 0);
  assert.match(noMemory.warnings[0], /does not support memory limit capabilities/);
});

Deno.test("resolveLimits: --cpus in billionths, bounded by the CPUs there are", () => {
  assert.equal(resolve({ cpus: "1.5" }).limits.nanoCpus, 1_500_000_000);
  assert.equal(resolve({ cpus: "0.5" }).limits.nanoCpus, 500_000_000);
  assert.equal(resolve({ cpus: "2" }).limits.nanoCpus, 2_000_000_000);
  assert.equal(resolve({ cpus: "0" }).limits.nanoCpus, 0);
  const range = "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
  refused({ cpus: "2.5" }, range);
  refused({ cpus: "-1" }, range);
  refused({ cpus: "0.001" }, range);
  refused({ cpus: "9" }, "Range of CPUs is from 0.01 to 8.00, as there are only 8 CPUs available", {
    cpuCount: 8,
  });
  refused(
    { cpus: "abc" },
    'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number',
  );
  refused(
    { cpus: "0.0000000001" },
    'invalid argument "0.0000000001" for "--cpus" flag: value is too precise',
  );
  refused({ cpus: "1" }, /^NanoCPUs can not be set/, { cpuCfs: false });
});

Deno.test("resolveLimits: --cpu-period/--cpu-quota, and their conflicts with --cpus", () => {
  const { limits } = resolve({ cpuPeriod: "50000", cpuQuota: "25000" });
  assert.equal(limits.cpuPeriod, 50000);
  assert.equal(limits.cpuQuota, 25000);
  assert.equal(resolve({ cpuQuota: "-1" }).limits.cpuQuota, -1);
  refused(
    { cpus: "1", cpuPeriod: "50000" },
    "Conflicting options: Nano CPUs and CPU Period cannot both be set",
  );
  refused(
    { cpus: "1", cpuQuota: "50000" },
    "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
  );
  refused(
    { cpuPeriod: "999" },
    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
  );
  refused(
    { cpuPeriod: "1000001" },
    "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
  );
  refused({ cpuQuota: "999" }, "CPU cfs quota can not be less than 1ms (i.e. 1000)");
  refused(
    { cpuQuota: "lots" },
    'invalid argument "lots" for "--cpu-quota" flag: strconv.ParseInt: parsing "lots": invalid syntax',
  );
  const off = resolve({ cpuPeriod: "50000" }, { cpuCfs: false });
  assert.equal(off.limits.cpuPeriod, 0);
  assert.deepEqual(off.warnings, [
    "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.",
  ]);
});

Deno.test("resolveLimits: --cpu-shares keeps its message; --cpuset-cpus is checked against the host's CPUs", () => {
  assert.equal(resolve({ cpuShares: "512" }).limits.cpuShares, 512);
  refused({ cpuShares: "many" }, 'invalid --cpu-shares "many": a whole number is expected');
  for (const list of ["0", "1", "0-1", "0,1", "1,0"]) {
    assert.equal(resolve({ cpusetCpus: list }).limits.cpusetCpus, list);
  }
  refused({ cpusetCpus: "0-a" }, "Invalid value 0-a for cpuset cpus: invalid format: 0-a");
  refused({ cpusetCpus: "1-0" }, "Invalid value 1-0 for cpuset cpus: invalid format: 1-0");
  refused({ cpusetCpus: "2" }, "Requested CPUs are not available - requested 2, available: 0-1");
  refused({ cpusetCpus: "0-1000000" }, /^Requested CPUs are not available/);
  const none = resolve({ cpusetCpus: "0" }, { cpuset: false });
  assert.equal(none.limits.cpusetCpus, "");
  assert.deepEqual(none.warnings, [
    "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.",
  ]);
});

Deno.test("resolveLimits: --pids-limit (<= 0 is unlimited) and --blkio-weight (10-1000)", () => {
  assert.equal(resolve({ pidsLimit: "10" }).limits.pidsLimit, 10);
  assert.equal(resolve({ pidsLimit: "-1" }).limits.pidsLimit, 0);
  assert.equal(resolve({ pidsLimit: "0" }).limits.pidsLimit, 0);
  refused(
    { pidsLimit: "ten" },
    'invalid argument "ten" for "--pids-limit" flag: strconv.ParseInt: parsing "ten": invalid syntax',
  );
  assert.match(resolve({ pidsLimit: "10" }, { pids: false }).warnings[0], /PIDs limit discarded/);

  assert.equal(resolve({ blkioWeight: "300" }).limits.blkioWeight, 300);
  assert.equal(resolve({ blkioWeight: "0" }).limits.blkioWeight, 0);
  refused({ blkioWeight: "5" }, "Range of blkio weight is from 10 to 1000");
  refused({ blkioWeight: "1001" }, "Range of blkio weight is from 10 to 1000");
  refused(
    { blkioWeight: "-5" },
    'invalid argument "-5" for "--blkio-weight" flag: strconv.ParseUint: parsing "-5": invalid syntax',
  );
  refused(
    { blkioWeight: "70000" },
    'invalid argument "70000" for "--blkio-weight" flag: strconv.ParseUint: parsing "70000": value out of range',
  );
  const none = resolve({ blkioWeight: "300" }, { blkioWeight: false });
  assert.equal(none.limits.blkioWeight, 0);
  assert.deepEqual(none.warnings, [
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
  ]);
});

Deno.test("parsers: Docker's ParseCPUs, CPU lists, BytesSize", () => {
  assert.equal(parseNanoCpus("1.5"), 1_500_000_000);
  assert.equal(parseNanoCpus(".25"), 250_000_000);
  assert.equal(parseNanoCpus("0.000000001"), 1);
  assert.equal(parseNanoCpus("1.500000000000"), 1_500_000_000, "trailing zeros are not precision");
  assert.throws(() => parseNanoCpus("1.2.3"), /failed to parse 1.2.3 as a rational number/);
  assert.throws(() => parseNanoCpus("."), /rational number/);
  assert.deepEqual(parseCpuList("0-2,4"), [[0, 2], [4, 4]]);
  assert.deepEqual(parseCpuList(""), []);
  assert.equal(parseCpuList("0,,1"), null);
  assert.equal(parseCpuList("-1"), null);
  assert.equal(binarySize(0), "0B");
  assert.equal(binarySize(1023), "1023B");
  assert.equal(binarySize(64 << 20), "64MiB");
  assert.equal(binarySize(2048000), "1.953MiB");
  assert.equal(binarySize(25325268992), "23.59GiB");
});

// ---------------------------------------------------------------------------------------
// Limits written on cgroup creation

Deno.test("cfsBandwidth: --cpus as quota over a 100 ms period; else --cpu-period/--cpu-quota", () => {
  assert.deepEqual(cfsBandwidth({ memory: 0, cpuShares: 0, nanoCpus: 1_500_000_000 }), {
    period: 100000,
    quota: 150000,
  });
  assert.deepEqual(cfsBandwidth({ memory: 0, cpuShares: 0, nanoCpus: 10_000_000 }), {
    period: 100000,
    quota: 1000,
  });
  assert.deepEqual(cfsBandwidth({ memory: 0, cpuShares: 0, cpuQuota: 50000 }), { period: 0, quota: 50000 });
  assert.equal(cfsBandwidth({ memory: 0, cpuShares: 0 }), null);
  assert.equal(blkioToIoWeight(10), 1);
  assert.equal(blkioToIoWeight(500), 4950);
  assert.equal(blkioToIoWeight(1000), 10000);
});

/** A fake v1 root with every hierarchy Floka uses, cpuset's top level filled in as the kernel does. */
function fullFakeV1(): string {
  const root = fakeV1(["memory", "cpu", "cpuacct", "pids", "blkio", "cpuset"]);
  Deno.writeTextFileSync(`${root}/cpuset/cpuset.cpus`, "0-3\n");
  Deno.writeTextFileSync(`${root}/cpuset/cpuset.mems`, "0\n");
  return root;
}

/** Stands for a file the kernel shows in a new cgroup (swap accounting, BFQ): made beforehand. */
function offer(path: string): void {
  Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  Deno.writeTextFileSync(path, "");
}

const read = (path: string) => Deno.readTextFileSync(path);

Deno.test("v1 create: every limit in its own hierarchy's files", () => {
  const root = fullFakeV1();
  try {
    offer(`${root}/memory/floka/${ID}/memory.memsw.limit_in_bytes`);
    offer(`${root}/blkio/floka/${ID}/blkio.bfq.weight`);
    offer(`${root}/blkio/floka/${ID}/blkio.weight`);
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, {
      memory: 64 << 20,
      memorySwap: 96 << 20,
      cpuShares: 512,
      nanoCpus: 1_500_000_000,
      cpusetCpus: "1-2",
      pidsLimit: 10,
      blkioWeight: 300,
    });
    assert.deepEqual(
      cg.dirs,
      ["memory", "cpu", "cpuacct", "pids", "blkio", "cpuset"].map((h) => `${root}/${h}/floka/${ID}`),
    );
    const dir = (h: string) => `${root}/${h}/floka/${ID}`;
    assert.equal(read(`${dir("memory")}/memory.limit_in_bytes`), String(64 << 20));
    assert.equal(read(`${dir("memory")}/memory.memsw.limit_in_bytes`), String(96 << 20));
    assert.equal(read(`${dir("cpu")}/cpu.shares`), "512");
    assert.equal(read(`${dir("cpu")}/cpu.cfs_period_us`), "100000");
    assert.equal(read(`${dir("cpu")}/cpu.cfs_quota_us`), "150000");
    assert.equal(read(`${dir("pids")}/pids.max`), "10");
    assert.equal(read(`${dir("blkio")}/blkio.bfq.weight`), "300", "BFQ's weight first");
    assert.equal(read(`${dir("blkio")}/blkio.weight`), "", "then no other");
    // The parent gets the top level's CPUs and nodes; the container its CPUs and the parent's nodes.
    assert.equal(read(`${root}/cpuset/floka/cpuset.cpus`), "0-3");
    assert.equal(read(`${root}/cpuset/floka/cpuset.mems`), "0");
    assert.equal(read(`${dir("cpuset")}/cpuset.cpus`), "1-2");
    assert.equal(read(`${dir("cpuset")}/cpuset.mems`), "0");
    assert.equal(pathExists(`${dir("cpuacct")}/cpuset.cpus`), false);
    // Joined through every hierarchy, cpuset included; locate() finds the cpuset directory too.
    assert.deepEqual(cgroups.selfJoinFiles(cg), cg.dirs.map((d) => `${d}/tasks`));
    assert.deepEqual(cgroups.locate(ID), cg);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 create: no cpuset hierarchy without --cpuset-cpus; a parent's own cpuset is kept", () => {
  const root = fullFakeV1();
  try {
    Deno.mkdirSync(`${root}/cpuset/floka`);
    Deno.writeTextFileSync(`${root}/cpuset/floka/cpuset.cpus`, "1\n");
    Deno.writeTextFileSync(`${root}/cpuset/floka/cpuset.mems`, "0\n");
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const plain = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(
      plain.dirs,
      ["memory", "cpu", "cpuacct", "pids", "blkio"].map((h) => `${root}/${h}/floka/${ID}`),
    );
    assert.deepEqual(cgroups.locate(ID), plain, "locate() adds cpuset only when it was made");
    assert.deepEqual(cgroups.remove(plain, 0), []);
    const other = ID.replace("0", "f");
    cgroups.create(other, { memory: 0, cpuShares: 0, cpusetCpus: "1" });
    assert.equal(read(`${root}/cpuset/floka/cpuset.cpus`), "1\n", "the parent's CPUs are not overwritten");
    assert.equal(read(`${root}/cpuset/floka/${other}/cpuset.mems`), "0");
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 create: --cpu-period/--cpu-quota; an unlimited quota is -1", () => {
  const root = fakeV1();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
    cgroups.create(ID, { memory: 0, cpuShares: 0, cpuPeriod: 50000, cpuQuota: 25000 });
    assert.equal(read(`${root}/cpu/floka/${ID}/cpu.cfs_period_us`), "50000");
    assert.equal(read(`${root}/cpu/floka/${ID}/cpu.cfs_quota_us`), "25000");
    const other = ID.replace("0", "f");
    cgroups.create(other, { memory: 0, cpuShares: 0, cpuQuota: -1 });
    assert.equal(pathExists(`${root}/cpu/floka/${other}/cpu.cfs_period_us`), false);
    assert.equal(read(`${root}/cpu/floka/${other}/cpu.cfs_quota_us`), "-1");
  } finally {
    cleanup(root);
  }
});

Deno.test("v1 create: without swap accounting or a weight file those limits are skipped, not fatal", () => {
  const root = fullFakeV1();
  try {
    quietly(() =>
      new CgroupManager(root, "floka", noDevices).create(ID, {
        memory: 64 << 20,
        memorySwap: 128 << 20,
        cpuShares: 0,
        blkioWeight: 300,
      })
    );
    assert.equal(read(`${root}/memory/floka/${ID}/memory.limit_in_bytes`), String(64 << 20));
    assert.equal(pathExists(`${root}/memory/floka/${ID}/memory.memsw.limit_in_bytes`), false);
    assert.deepEqual([...Deno.readDirSync(`${root}/blkio/floka/${ID}`)], []);
  } finally {
    cleanup(root);
  }
});

Deno.test("v1: cpu and cpuacct mounted together count as one hierarchy", () => {
  const root = fakeV1(["memory", "cpu,cpuacct", "pids"]);
  try {
    Deno.symlinkSync("cpu,cpuacct", `${root}/cpu`);
    Deno.symlinkSync("cpu,cpuacct", `${root}/cpuacct`);
    const cg = new CgroupManager(root, "floka", noDevices).locate(ID);
    assert.deepEqual(cg.dirs, [
      `${root}/memory/floka/${ID}`,
      `${root}/cpu/floka/${ID}`,
      `${root}/pids/floka/${ID}`,
    ]);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create: every limit in the container's one directory", () => {
  const root = fakeV2();
  try {
    offer(`${root}/floka/${ID}/memory.swap.max`);
    offer(`${root}/floka/${ID}/io.bfq.weight`);
    const cg = new CgroupManager(root, "floka", noDevices).create(ID, {
      memory: 64 << 20,
      memorySwap: 96 << 20,
      cpuShares: 1024,
      nanoCpus: 1_500_000_000,
      cpusetCpus: "0-1",
      pidsLimit: 10,
      blkioWeight: 300,
    });
    const dir = cg.dirs[0];
    assert.equal(read(`${dir}/memory.max`), String(64 << 20));
    assert.equal(read(`${dir}/memory.swap.max`), String(32 << 20), "v2 limits swap alone");
    assert.equal(read(`${dir}/cpu.weight`), "39");
    assert.equal(read(`${dir}/cpu.max`), "150000 100000");
    assert.equal(read(`${dir}/cpuset.cpus`), "0-1");
    assert.equal(read(`${dir}/pids.max`), "10");
    assert.equal(read(`${dir}/io.bfq.weight`), "300");
    assert.equal(pathExists(`${dir}/io.weight`), false);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create: cpu.max from --cpu-period/--cpu-quota; io.weight mapped; no swap file, no swap limit", () => {
  const cases: [Partial<{ cpuPeriod: number; cpuQuota: number }>, string][] = [
    [{ cpuQuota: 50000 }, "50000 100000"],
    [{ cpuPeriod: 200000 }, "max 200000"],
    [{ cpuPeriod: 200000, cpuQuota: -1 }, "max 200000"],
    [{ cpuPeriod: 50000, cpuQuota: 25000 }, "25000 50000"],
  ];
  for (const [cfs, expected] of cases) {
    const root = fakeV2();
    try {
      offer(`${root}/floka/${ID}/io.weight`);
      const cg = quietly(() =>
        new CgroupManager(root, "floka", noDevices).create(ID, {
          memory: 64 << 20,
          memorySwap: 128 << 20,
          cpuShares: 0,
          blkioWeight: 500,
          ...cfs,
        })
      );
      assert.equal(read(`${cg.dirs[0]}/cpu.max`), expected, JSON.stringify(cfs));
      assert.equal(read(`${cg.dirs[0]}/io.weight`), "4950");
      assert.equal(pathExists(`${cg.dirs[0]}/memory.swap.max`), false);
      assert.equal(pathExists(`${cg.dirs[0]}/cpuset.cpus`), false);
      assert.equal(pathExists(`${cg.dirs[0]}/pids.max`), false);
    } finally {
      cleanup(root);
    }
  }
});

Deno.test("support(): what a v1 tree and a v2 tree offer", () => {
  const v1 = fullFakeV1();
  const v2 = fakeV2("cpu memory pids");
  try {
    const one = new CgroupManager(v1).support();
    assert.equal(one.memory, true);
    assert.equal(one.swap, false, "no memory.memsw.limit_in_bytes");
    assert.equal(one.cpuCfs, false, "no cpu.cfs_quota_us");
    assert.equal(one.blkioWeight, false);
    assert.equal(one.cpus, "0-3");
    assert.ok(one.cpuCount >= 1);
    offer(`${v1}/memory/memory.memsw.limit_in_bytes`);
    offer(`${v1}/cpu/cpu.cfs_quota_us`);
    offer(`${v1}/blkio/blkio.bfq.io_service_bytes`);
    const again = new CgroupManager(v1).support();
    assert.deepEqual([again.swap, again.cpuCfs, again.blkioWeight, again.cpuset, again.pids], [
      true,
      true,
      true,
      true,
      true,
    ]);
    // What v2 children get shows in Floka's parent once it exists with the controller.
    const full = fakeV2();
    try {
      const cgroups = new CgroupManager(full, "floka", noDevices);
      assert.deepEqual(
        [cgroups.support().swap, cgroups.support().blkioWeight],
        [true, true],
        "nothing tells",
      );
      offer(`${full}/floka/memory.max`);
      offer(`${full}/floka/io.stat`);
      assert.deepEqual([cgroups.support().swap, cgroups.support().blkioWeight], [false, false]);
      offer(`${full}/floka/memory.swap.max`);
      offer(`${full}/floka/io.bfq.weight`);
      assert.deepEqual([cgroups.support().swap, cgroups.support().blkioWeight], [true, true]);
    } finally {
      cleanup(full);
    }
    const two = new CgroupManager(v2, "floka", noDevices).support();
    assert.deepEqual([two.memory, two.swap, two.cpuCfs, two.pids, two.cpuset, two.blkioWeight], [
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  } finally {
    cleanup(v1);
    cleanup(v2);
  }
});

// ---------------------------------------------------------------------------------------
// Stats: counters read from the cgroup, Docker's arithmetic

Deno.test("usage(): v1 counters from each hierarchy", () => {
  const root = fullFakeV1();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, { memory: 64 << 20, cpuShares: 0 });
    const dir = (h: string) => `${root}/${h}/floka/${ID}`;
    Deno.writeTextFileSync(`${dir("cpuacct")}/cpuacct.usage`, "2500000000\n");
    Deno.writeTextFileSync(`${dir("memory")}/memory.usage_in_bytes`, "10485760\n");
    Deno.writeTextFileSync(
      `${dir("memory")}/memory.stat`,
      "cache 4194304\ninactive_file 1\ntotal_cache 4194304\ntotal_inactive_file 2097152\n",
    );
    Deno.writeTextFileSync(`${dir("pids")}/pids.current`, "3\n");
    Deno.writeTextFileSync(
      `${dir("blkio")}/blkio.throttle.io_service_bytes_recursive`,
      "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Total 12288\n7:0 Read 1024\nTotal 13312\n",
    );
    assert.deepEqual(cgroups.usage(cg), {
      cpuNs: 2_500_000_000,
      memoryUsage: 10485760,
      inactiveFile: 2097152,
      memoryLimit: 64 << 20,
      pids: 3,
      blkioRead: 5120,
      blkioWrite: 8192,
    });
    // Nothing to read (a cgroup gone meanwhile): zeros, and no limit.
    assert.deepEqual(cgroups.usage(cgroups.locate("gone")), {
      cpuNs: 0,
      memoryUsage: 0,
      inactiveFile: 0,
      memoryLimit: Infinity,
      pids: 0,
      blkioRead: 0,
      blkioWrite: 0,
    });
  } finally {
    cleanup(root);
  }
});

Deno.test("usage(): v2 counters from the one directory", () => {
  const root = fakeV2();
  try {
    const cgroups = new CgroupManager(root, "floka", noDevices);
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    const dir = cg.dirs[0];
    Deno.writeTextFileSync(`${dir}/cpu.stat`, "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n");
    Deno.writeTextFileSync(`${dir}/memory.current`, "8388608\n");
    Deno.writeTextFileSync(`${dir}/memory.stat`, "anon 4194304\nfile 4194304\ninactive_file 1048576\n");
    Deno.writeTextFileSync(`${dir}/memory.max`, "max\n");
    Deno.writeTextFileSync(`${dir}/pids.current`, "2\n");
    Deno.writeTextFileSync(
      `${dir}/io.stat`,
      "8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=24 wbytes=0 rios=1 wios=0\n",
    );
    assert.deepEqual(cgroups.usage(cg), {
      cpuNs: 1_500_000_000,
      memoryUsage: 8388608,
      inactiveFile: 1048576,
      memoryLimit: Infinity,
      pids: 2,
      blkioRead: 1024,
      blkioWrite: 2000,
    });
  } finally {
    cleanup(root);
  }
});

Deno.test("stats math: CPU % over two samples, memory without inactive cache", () => {
  // Half a CPU's time over one second of a 2-CPU system (2 s of CPU time): 50%.
  assert.equal(cpuPercent({ cpuNs: 1e9, systemNs: 100e9 }, { cpuNs: 1.5e9, systemNs: 102e9 }, 2), 50);
  assert.equal(
    cpuPercent({ cpuNs: 0, systemNs: 0 }, { cpuNs: 2e9, systemNs: 2e9 }, 2),
    200,
    "both CPUs busy",
  );
  assert.equal(cpuPercent({ cpuNs: 5, systemNs: 10 }, { cpuNs: 5, systemNs: 20 }, 2), 0, "idle");
  assert.equal(
    cpuPercent({ cpuNs: 5, systemNs: 10 }, { cpuNs: 9, systemNs: 10 }, 2),
    0,
    "no system time passed",
  );
  assert.equal(memoryUsed({ memoryUsage: 10, inactiveFile: 4 }), 6);
  assert.equal(memoryUsed({ memoryUsage: 10, inactiveFile: 12 }), 10, "never negative");
  assert.deepEqual(parseBlkioServiceBytes("8:0 Read 10\n8:0 Write 5\nTotal 15\n"), { read: 10, write: 5 });
  assert.deepEqual(parseIoStat(""), { read: 0, write: 0 });
  // /proc/stat: the first seven fields (user..softirq) in 1/100 s; steal and guest are not counted.
  const procStat = "cpu  100 20 30 800 40 5 5 999 999 999\ncpu0 50 10 15 400 20 2 3 0 0 0\n";
  assert.equal(systemCpuNs(procStat), 1000 * 1e7);
  assert.equal(countCpus("0-3,6\n"), 5);
  assert.equal(countCpus("0"), 1);
  assert.equal(memTotalBytes("MemTotal:       24731708 kB\nMemFree: 1 kB\n"), 24731708 * 1024);
  const netDev = "Inter-|   Receive\n face |bytes packets\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n" +
    "  eth0: 1200 10 0 0 0 0 0 0 3400 20 0 0 0 0 0 0\n";
  assert.deepEqual(netDevBytes(netDev), { rx: 1200, tx: 3400 });
});

/** A container record as `floka stats` needs it. */
function fakeContainer(name: string, id = ID): Container {
  return {
    record: {
      id,
      name,
      created: "2024-01-01T00:00:00Z",
      image: "busybox:latest",
      lowerDirs: [],
      path: "sh",
      args: [],
      config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
      hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
    },
    state: { status: "running", pid: 1 },
    dir: "/nonexistent",
  };
}

Deno.test("statsEntry and renderStats: Docker's columns, numbers and JSON fields", () => {
  const usage = {
    cpuNs: 1.5e9,
    memoryUsage: 3 << 20,
    inactiveFile: 1 << 20,
    memoryLimit: 64 << 20,
    pids: 4,
    blkioRead: 1500,
    blkioWrite: 2_500_000,
  };
  const prev: Sample = { systemNs: 100e9, usage: { ...usage, cpuNs: 1e9 }, netRx: 0, netTx: 0 };
  const cur: Sample = { systemNs: 102e9, usage, netRx: 1050, netTx: 0 };
  const host = { onlineCpus: 2, memTotal: 8 * 2 ** 30 };
  const c = fakeContainer("web");
  const entry = statsEntry("web", c, prev, cur, host);
  assert.equal(entry.cpuPercent, 50);
  assert.equal(entry.memory, 2 << 20);
  assert.equal(entry.memoryLimit, 64 << 20);
  assert.equal(entry.memoryPercent, 3.125);
  // No limit: the host's RAM is the limit.
  const unlimited = statsEntry("web", c, prev, { ...cur, usage: { ...usage, memoryLimit: 2 ** 63 } }, host);
  assert.equal(unlimited.memoryLimit, 8 * 2 ** 30);
  const v2unlimited = statsEntry(
    "web",
    c,
    prev,
    { ...cur, usage: { ...usage, memoryLimit: Infinity } },
    host,
  );
  assert.equal(v2unlimited.memoryLimit, 8 * 2 ** 30);
  // The first sample of a container has nothing to compare with: 0% CPU.
  assert.equal(statsEntry("web", c, undefined, cur, host).cpuPercent, 0);
  const stopped = statsEntry("web", c, prev, { systemNs: 0, usage: null, netRx: 0, netTx: 0 }, host);

  const table = renderStats([entry, stopped], parseStatsFormat(undefined), true).split("\n");
  assert.match(
    table[0],
    /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS$/,
  );
  assert.match(
    table[1],
    /^0123456789ab +web +50\.00% +2MiB \/ 64MiB +3\.13% +1\.05kB \/ 0B +1\.5kB \/ 2\.5MB +4$/,
  );
  assert.match(table[2], /^0123456789ab +web +0\.00% +0B \/ 0B +0\.00% +0B \/ 0B +0B \/ 0B +0$/);

  const json = renderStats([entry], parseStatsFormat("json"), true);
  assert.deepEqual(JSON.parse(json), {
    BlockIO: "1.5kB / 2.5MB",
    CPUPerc: "50.00%",
    Container: "web",
    ID: "0123456789ab",
    MemPerc: "3.13%",
    MemUsage: "2MiB / 64MiB",
    Name: "web",
    NetIO: "1.05kB / 0B",
    PIDs: "4",
  });
  assert.equal(JSON.parse(renderStats([entry], parseStatsFormat("{{json .}}"), false)).ID, ID);
  assert.equal(renderStats([entry], parseStatsFormat("{{.Name}}: {{ .CPUPerc }}"), true), "web: 50.00%\n");
  assert.equal(
    renderStats([entry], parseStatsFormat("table {{.Name}}\\t{{.PIDs}}"), true),
    "NAME   PIDS\nweb    4\n",
  );
  assert.throws(() => parseStatsFormat("{{.Nope}}"), /can't evaluate field Nope/);
});

Deno.test("v1 create: the device cgroup denies every device, then allows the container's own", () => {
  const root = fakeV1(["memory", "devices"]);
  try {
    const written: string[] = [];
    const cgroups = new CgroupManager(root, "floka", noDevices);
    cgroups.create(ID, { memory: 0, cpuShares: 0 });
    const dir = `${root}/devices/floka/${ID}`;
    // A real devices.allow takes one rule a write; the fake file keeps the last one.
    written.push(Deno.readTextFileSync(`${dir}/devices.deny`), Deno.readTextFileSync(`${dir}/devices.allow`));
    assert.deepEqual(written, ["a", ALLOWED_DEVICES.at(-1)]);
    assert.ok(ALLOWED_DEVICES.includes("c 1:3 rwm")); // /dev/null
    assert.ok(
      !ALLOWED_DEVICES.some((r) => r.startsWith("b ") && r.includes("r")),
      "no block device readable",
    );
    // --privileged: the parent's policy (every device) stays.
    cgroups.create("p".repeat(64), { memory: 0, cpuShares: 0, privileged: true });
    assert.equal(pathExists(`${root}/devices/floka/${"p".repeat(64)}/devices.deny`), false);
  } finally {
    cleanup(root);
  }
});

Deno.test("v2 create: the device policy goes on the new cgroup, except with --privileged", () => {
  const root = fakeV2();
  try {
    const applied: [string, readonly string[]][] = [];
    const cgroups = new CgroupManager(root, "floka", (dir, rules) => applied.push([dir, rules]));
    const cg = cgroups.create(ID, { memory: 0, cpuShares: 0 });
    assert.deepEqual(applied, [[cg.dirs[0], ALLOWED_DEVICES]]);
    cgroups.create("p".repeat(64), { memory: 0, cpuShares: 0, privileged: true });
    assert.equal(applied.length, 1);
  } finally {
    cleanup(root);
  }
});
