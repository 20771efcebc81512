import assert from "node:assert/strict";
import { CAPABILITIES, DEFAULT_CAPABILITIES } from "../../lib/capabilities.ts";
import type { ContainerRecord } from "../../src/containers/store.ts";
import { buildSpec, ETC_FILES, MASKED_PATHS, READONLY_PATHS, rootMount } from "../../src/runtime/spec.ts";

const ID = "a".repeat(64);
const STORE = "/srv/floka";
const DIR = `${STORE}/containers/${ID}`;

function record(network: "none" | "host", extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id: ID,
    name: "happy_turing",
    created: "2026-01-02T03:04:05.000Z",
    image: "busybox:latest",
    lowerDirs: [`${STORE}/images/busybox:latest/rootfs`],
    path: "sh",
    args: ["-c", "echo hi"],
    config: {
      hostname: ID.slice(0, 12),
      env: ["PATH=/usr/bin:/bin", "A=1"],
      workingDir: "/work",
      user: "1000:1000",
      entrypoint: null,
      cmd: ["sh"],
    },
    hostConfig: { autoRemove: false, networkMode: network, memory: 0, cpuShares: 0 },
    ...extra,
  };
}

Deno.test("rootMount: an overlay of the container's layer links, upper and work, all relative to the bundle", () => {
  const m = rootMount(1);
  assert.equal(m.type, "overlay");
  assert.equal(m.source, "overlay");
  assert.equal(m.target, "/");
  assert.deepEqual(m.options, ["lowerdir=init:layers/0", "upperdir=upper", "workdir=work"]);
});

Deno.test("rootMount: 120 layers stay far below mount(2)'s one page of options, top layer first", () => {
  const m = rootMount(120);
  assert.ok(m.options.join(",").length < 4096 / 2, `${m.options.join(",").length} bytes`);
  assert.ok(m.options[0].startsWith("lowerdir=init:layers/0:layers/1:"));
  assert.ok(m.options[0].endsWith(":layers/119"));
});

Deno.test("buildSpec: identity, rootfs, process and network from the record", () => {
  const spec = buildSpec(record("none"), DIR, []);
  assert.equal(spec.id, ID);
  assert.equal(spec.hostname, ID.slice(0, 12));
  assert.equal(spec.rootfs, `${DIR}/rootfs`);
  assert.deepEqual(spec.rootMount, rootMount(1));
  assert.equal(spec.bundle, DIR);
  assert.equal(spec.network, "none");
  assert.deepEqual(spec.process.args, ["sh", "-c", "echo hi"]);
  assert.deepEqual(spec.process.env, ["PATH=/usr/bin:/bin", "A=1"]);
  assert.equal(spec.process.cwd, "/work");
  assert.equal(spec.process.user, "1000:1000");
  assert.deepEqual(spec.process.capabilities.toSorted(), [...DEFAULT_CAPABILITIES].toSorted());
});

Deno.test("buildSpec: the spec is plain JSON (it crosses to containerize in a file)", () => {
  const spec = buildSpec(record("none"), DIR, []);
  assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
});

Deno.test("buildSpec: system mounts in order, Docker's options, sysfs with its own network", () => {
  const spec = buildSpec(record("none"), DIR, []);
  const system = spec.mounts.slice(0, 6);
  assert.deepEqual(system.map((m) => [m.type, m.source, m.target]), [
    ["proc", "proc", "/proc"],
    ["tmpfs", "tmpfs", "/dev"],
    ["devpts", "devpts", "/dev/pts"],
    ["tmpfs", "shm", "/dev/shm"],
    ["mqueue", "mqueue", "/dev/mqueue"],
    ["sysfs", "sysfs", "/sys"],
  ]);
  const byTarget = new Map(spec.mounts.map((m) => [m.target, m]));
  assert.deepEqual(byTarget.get("/proc")!.options, ["nosuid", "noexec", "nodev"]);
  assert.deepEqual(byTarget.get("/dev")!.options, ["nosuid", "strictatime", "mode=755", "size=65536k"]);
  assert.deepEqual(byTarget.get("/dev/pts")!.options, [
    "nosuid",
    "noexec",
    "newinstance",
    "ptmxmode=0666",
    "mode=0620",
    "gid=5",
  ]);
  assert.deepEqual(byTarget.get("/dev/shm")!.options, [
    "nosuid",
    "noexec",
    "nodev",
    "mode=1777",
    "size=65536k",
  ]);
  assert.deepEqual(byTarget.get("/sys")!.options, ["nosuid", "noexec", "nodev", "ro"]);
  // /dev is mounted before anything under it.
  const targets = spec.mounts.map((m) => m.target);
  for (const sub of ["/dev/pts", "/dev/shm", "/dev/mqueue"]) {
    assert.ok(targets.indexOf("/dev") < targets.indexOf(sub), sub);
  }
});

Deno.test("buildSpec: with the host's network /sys is a read-only rbind of the host's /sys", () => {
  const spec = buildSpec(record("host"), DIR, []);
  assert.equal(spec.network, "host");
  const sys = spec.mounts.filter((m) => m.target === "/sys");
  assert.deepEqual(sys, [{
    type: "bind",
    source: "/sys",
    target: "/sys",
    options: ["rbind", "nosuid", "noexec", "nodev", "ro"],
  }]);
  assert.equal(spec.mounts.some((m) => m.type === "sysfs"), false);
});

Deno.test("buildSpec: hostname, hosts and resolv.conf are bound from the container dir, after system mounts", () => {
  const spec = buildSpec(record("none"), DIR, []);
  const etc = spec.mounts.filter((m) => m.target.startsWith("/etc/"));
  assert.deepEqual(
    etc,
    ETC_FILES.map((f) => ({
      type: "bind",
      source: `${DIR}/${f}`,
      target: `/etc/${f}`,
      options: ["rbind", "rprivate"],
    })),
  );
  assert.deepEqual(etc.map((m) => m.target), ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"]);
  const lastSystem = spec.mounts.findIndex((m) => m.target === "/sys");
  assert.ok(spec.mounts.indexOf(etc[0]) > lastSystem);
});

Deno.test("buildSpec: Docker's default devices and /dev symlinks", () => {
  const spec = buildSpec(record("none"), DIR, []);
  assert.deepEqual(spec.devices.map((d) => [d.path, d.major, d.minor, d.mode]), [
    ["/dev/null", 1, 3, 0o666],
    ["/dev/zero", 1, 5, 0o666],
    ["/dev/full", 1, 7, 0o666],
    ["/dev/random", 1, 8, 0o666],
    ["/dev/urandom", 1, 9, 0o666],
    ["/dev/tty", 5, 0, 0o666],
  ]);
  assert.deepEqual(spec.devSymlinks, [
    ["pts/ptmx", "/dev/ptmx"],
    ["/proc/self/fd", "/dev/fd"],
    ["/proc/self/fd/0", "/dev/stdin"],
    ["/proc/self/fd/1", "/dev/stdout"],
    ["/proc/self/fd/2", "/dev/stderr"],
  ]);
});

Deno.test("buildSpec: Docker's masked and read-only paths", () => {
  const spec = buildSpec(record("none"), DIR, []);
  for (
    const p of [
      "/proc/acpi",
      "/proc/kcore",
      "/proc/keys",
      "/proc/latency_stats",
      "/proc/timer_list",
      "/proc/timer_stats",
      "/proc/sched_debug",
      "/proc/scsi",
      "/sys/firmware",
    ]
  ) {
    assert.ok(spec.maskedPaths.includes(p), p);
  }
  assert.deepEqual(spec.maskedPaths, MASKED_PATHS);
  assert.deepEqual(
    spec.readonlyPaths.toSorted(),
    ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
  );
  assert.deepEqual(spec.readonlyPaths, READONLY_PATHS);
});

Deno.test("buildSpec passes the cgroup files the container writes 0 into", () => {
  const files = ["/sys/fs/cgroup/memory/floka/x/tasks"];
  assert.deepEqual(buildSpec(record("none"), DIR, files).cgroupJoinFiles, files);
});

Deno.test("buildSpec --privileged: every capability, the host's devices, no masks, /sys writable, no seccomp", () => {
  const base = record("none");
  const privileged = { ...base, hostConfig: { ...base.hostConfig, privileged: true } };
  const loop = { path: "/dev/loop0", major: 7, minor: 0, mode: 0o660, block: true };
  const hostNull = { path: "/dev/null", major: 1, minor: 3, mode: 0o600 };
  const spec = buildSpec(privileged, DIR, [], undefined, undefined, [loop, hostNull]);
  assert.equal(spec.process.capabilities.length, CAPABILITIES.length);
  assert.equal(spec.process.seccomp, undefined);
  assert.deepEqual(spec.maskedPaths, []);
  assert.deepEqual(spec.readonlyPaths, []);
  assert.ok(!spec.mounts.find((m) => m.target === "/sys")!.options.includes("ro"));
  assert.deepEqual(
    spec.devices.filter((d) => d.path === "/dev/null").length,
    1,
    "the container's own /dev/null",
  );
  assert.ok(spec.devices.includes(loop));

  const plain = buildSpec(base, DIR, []);
  assert.ok(plain.process.seccomp, "a seccomp filter by default");
  assert.deepEqual(plain.maskedPaths, MASKED_PATHS);
  assert.ok(plain.mounts.find((m) => m.target === "/sys")!.options.includes("ro"));
  const unconfined = { ...base, hostConfig: { ...base.hostConfig, seccompProfile: "unconfined" } };
  assert.equal(buildSpec(unconfined, DIR, []).process.seccomp, undefined);
});
