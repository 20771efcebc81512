import assert from "node:assert/strict";
import { processStartTime } from "../../src/containers/liveness.ts";
import { EXIT_UNKNOWN, reconcile } from "../../src/containers/reconcile.ts";
import { type ContainerRecord, type ContainerState, ContainerStore } from "../../src/containers/store.ts";
import { CgroupManager } from "../../src/runtime/cgroups.ts";
import { ensureStoreDirs, storeRoot } from "../../src/store/root.ts";

const ID = "5".repeat(64);

function setUp(state: ContainerState, autoRemove = false) {
  const root = Deno.makeTempDirSync({ prefix: "floka-reconcile-" });
  const sr = storeRoot(root);
  ensureStoreDirs(sr);
  const store = new ContainerStore(sr);
  const record: ContainerRecord = {
    id: ID,
    name: "job",
    created: new Date().toISOString(),
    image: "busybox:latest",
    lowerDirs: [],
    path: "sh",
    args: [],
    config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
    hostConfig: { autoRemove, networkMode: "none", memory: 0, cpuShares: 0 },
  };
  store.create(record, () => {});
  store.updateState(ID, () => state);
  // A fake cgroup v2 tree holding the container's cgroup.
  const cgroot = `${root}/cgroup`;
  Deno.mkdirSync(cgroot);
  Deno.writeTextFileSync(`${cgroot}/cgroup.controllers`, "cpu memory pids\n");
  // The v2 device filter needs a real cgroup2 directory: none here.
  const cgroups = new CgroupManager(cgroot, "floka", () => {});
  cgroups.create(ID, { memory: 0, cpuShares: 0 });
  return {
    store,
    cgroups,
    cgroupDir: `${cgroot}/floka/${ID}`,
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const deadRunning: ContainerState = {
  status: "running",
  pid: 99_999_999,
  pidStartTime: 12345,
  startedAt: new Date().toISOString(),
};

Deno.test("reconcile leaves a container whose process is alive as it is", () => {
  using t = setUp({ status: "running", pid: Deno.pid, pidStartTime: processStartTime(Deno.pid)! });
  const c = t.store.find(ID);
  assert.equal(reconcile(t.store, c, t.cgroups), c);
  assert.equal(t.store.find(ID).state.status, "running");
  assert.ok(exists(t.cgroupDir));
});

Deno.test("reconcile leaves created and exited containers alone", () => {
  using t = setUp({ status: "exited", pid: 0, exitCode: 3 });
  const c = t.store.find(ID);
  assert.equal(reconcile(t.store, c, t.cgroups), c);
  assert.equal(t.store.find(ID).state.exitCode, 3);
});

Deno.test("reconcile records a vanished 'running' container as exited (255) and reclaims its cgroup", () => {
  using t = setUp(deadRunning);
  const result = reconcile(t.store, t.store.find(ID), t.cgroups);
  assert.ok(result);
  assert.equal(result.state.status, "exited");
  assert.equal(result.state.exitCode, EXIT_UNKNOWN);
  assert.equal(EXIT_UNKNOWN, 255);
  assert.equal(result.state.pid, 0);
  assert.ok(result.state.finishedAt && !isNaN(Date.parse(result.state.finishedAt)));
  const stored = t.store.find(ID).state;
  assert.equal(stored.status, "exited");
  assert.equal(stored.exitCode, 255);
  assert.equal(exists(t.cgroupDir), false);
});

Deno.test("reconcile removes a vanished --rm container", () => {
  using t = setUp(deadRunning, true);
  assert.equal(reconcile(t.store, t.store.find(ID), t.cgroups), null);
  assert.throws(() => t.store.find(ID), /No such container/);
  assert.equal(t.store.nameInUse("job"), false);
});
