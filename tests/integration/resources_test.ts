/**
 * Resource limits as `docker run` takes them (-m, --memory-swap, --cpus, --cpu-period,
 * --cpu-quota, -c, --cpuset-cpus, --pids-limit, --blkio-weight): each lands in the
 * container's cgroup files while it runs, is shown by `inspect`, works on the processes
 * inside, and goes with the container; bad values are refused before anything is made.
 * `floka stats` reads the same cgroups. (The OOM kill under -m is in lifecycle_test.ts.)
 */
import assert from "node:assert/strict";
import {
  CGROUP_ROOT,
  cgroupDirsOf,
  cgroupV2,
  integrationTest,
  lines,
  sharesToWeight,
  show,
  type Store,
  waitUntil,
  withStore,
} from "./helpers.ts";

/** `floka run -d ...`: the container's full ID and what `run` said on stderr (warnings). */
async function runDetached(s: Store, args: string[]): Promise<{ id: string; stderr: string }> {
  const r = await s.run(["-d", ...args]);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/, show(r));
  return { id, stderr: r.stderr };
}

/** The container's cgroup directory in v1 hierarchy `hierarchy` (or its v2 directory). */
function cgroupDir(id: string, hierarchy: string): string {
  return cgroupV2() ? `${CGROUP_ROOT}/floka/${id}` : `${CGROUP_ROOT}/${hierarchy}/floka/${id}`;
}

function readTrimmed(path: string): string {
  return Deno.readTextFileSync(path).trim();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Waits until `pid` is in every cgroup directory of the container. */
async function waitJoined(id: string, pid: number): Promise<void> {
  for (const dir of cgroupDirsOf(id)) {
    await waitUntil(
      `PID ${pid} in ${dir}`,
      () => lines(readTrimmed(`${dir}/cgroup.procs`)).map(Number).includes(pid),
    );
  }
}

/** Removes the container by force and checks that no hierarchy keeps a directory of it. */
async function removeAndCheckCgroups(s: Store, id: string): Promise<void> {
  const rm = await s.floka(["rm", "-f", id]);
  assert.equal(rm.code, 0, show(rm));
  await waitUntil(
    () => `no cgroup left of ${id}: ${cgroupDirsOf(id).join(", ")}`,
    () => cgroupDirsOf(id).length === 0,
  );
}

/** The CPUs this machine lets a process use, as Docker counts them. */
function cpuCount(): number {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(Deno.readTextFileSync("/proc/self/status"))![1];
  return list.split(",").reduce((n, part) => {
    const [a, b] = part.split("-").map(Number);
    return n + (b === undefined ? 1 : b - a + 1);
  }, 0);
}

integrationTest("resources: every limit lands in the container's cgroup files and in inspect", async () => {
  await withStore(async (s) => {
    const { id, stderr } = await runDetached(s, [
      "-m",
      "64m",
      "--memory-swap",
      "96m",
      "--cpus",
      "0.5",
      "--cpu-shares",
      "512",
      "--cpuset-cpus",
      "0",
      "--pids-limit",
      "10",
      "--blkio-weight",
      "300",
      "busybox",
      "sleep",
      "300",
    ]);
    const { State, HostConfig } = await s.inspect(id);
    await waitJoined(id, State.Pid);
    const swapAccounting = cgroupV2() || exists(`${CGROUP_ROOT}/memory/memory.memsw.limit_in_bytes`);
    assert.equal(HostConfig.Memory, 64 * 2 ** 20);
    assert.equal(HostConfig.MemorySwap, swapAccounting ? 96 * 2 ** 20 : -1);
    assert.equal(HostConfig.NanoCpus, 500_000_000);
    assert.equal(HostConfig.CpuShares, 512);
    assert.equal(HostConfig.CpusetCpus, "0");
    assert.equal(HostConfig.PidsLimit, 10);

    const memory = cgroupDir(id, "memory");
    const cpu = cgroupDir(id, "cpu");
    const blkio = cgroupDir(id, "blkio");
    if (cgroupV2()) {
      assert.equal(readTrimmed(`${memory}/memory.max`), String(64 * 2 ** 20));
      if (exists(`${memory}/memory.swap.max`)) {
        assert.equal(readTrimmed(`${memory}/memory.swap.max`), String(32 * 2 ** 20));
      }
      assert.equal(readTrimmed(`${cpu}/cpu.max`), "50000 100000");
      assert.equal(readTrimmed(`${cpu}/cpu.weight`), String(sharesToWeight(512)));
      assert.equal(readTrimmed(`${cpu}/cpuset.cpus`), "0");
    } else {
      assert.equal(readTrimmed(`${memory}/memory.limit_in_bytes`), String(64 * 2 ** 20));
      if (swapAccounting) {
        assert.equal(readTrimmed(`${memory}/memory.memsw.limit_in_bytes`), String(96 * 2 ** 20));
      } else {
        assert.match(stderr, /^WARNING: Your kernel does not support swap limit capabilities/m);
      }
      assert.equal(readTrimmed(`${cpu}/cpu.cfs_quota_us`), "50000");
      assert.equal(readTrimmed(`${cpu}/cpu.cfs_period_us`), "100000");
      assert.equal(readTrimmed(`${cpu}/cpu.shares`), "512");
      const cpuset = cgroupDir(id, "cpuset");
      assert.equal(readTrimmed(`${cpuset}/cpuset.cpus`), "0");
      assert.equal(
        readTrimmed(`${cpuset}/cpuset.mems`),
        readTrimmed(`${CGROUP_ROOT}/cpuset/floka/cpuset.mems`),
      );
      // CPU time for `floka stats` comes from cpuacct, a hierarchy of its own on some hosts.
      assert.ok(cgroupDirsOf(id).some((d) => exists(`${d}/cpuacct.usage`)), cgroupDirsOf(id).join(", "));
    }
    assert.equal(readTrimmed(`${cgroupDir(id, "pids")}/pids.max`), "10");
    // The weight goes to BFQ's file where BFQ is, else to the generic one; without either,
    // Docker's warning and no weight.
    const weightFile = (cgroupV2() ? ["io.bfq.weight", "io.weight"] : ["blkio.bfq.weight", "blkio.weight"])
      .map((f) => `${blkio}/${f}`).find(exists);
    if (weightFile) {
      assert.equal(HostConfig.BlkioWeight, 300);
      // io.weight has its own range: runc maps 10-1000 onto 1-10000.
      const expected = weightFile.endsWith("/io.weight") ? Math.floor(1 + (290 * 9999) / 990) : 300;
      assert.match(readTrimmed(weightFile), new RegExp(`\\b${expected}$`));
    } else {
      assert.equal(HostConfig.BlkioWeight, 0);
      assert.match(stderr, /^WARNING: Your kernel does not support Block I\/O weight/m);
    }
    await removeAndCheckCgroups(s, id);
  });
});

integrationTest("resources: -m alone allows as much swap again; --memory-swap -1 is unlimited", async () => {
  await withStore(async (s) => {
    const swapAccounting = cgroupV2() || exists(`${CGROUP_ROOT}/memory/memory.memsw.limit_in_bytes`);
    const alone = await runDetached(s, ["-m", "32m", "busybox", "sleep", "300"]);
    const unlimited = await runDetached(s, ["-m", "32m", "--memory-swap", "-1", "busybox", "sleep", "300"]);
    assert.equal((await s.inspect(alone.id)).HostConfig.MemorySwap, swapAccounting ? 64 * 2 ** 20 : -1);
    assert.equal((await s.inspect(unlimited.id)).HostConfig.MemorySwap, -1);
    assert.equal(unlimited.stderr, "", "-1 asks for no swap limit: nothing to warn about");
    if (!cgroupV2() && swapAccounting) {
      const memsw = (id: string) =>
        Number(readTrimmed(`${cgroupDir(id, "memory")}/memory.memsw.limit_in_bytes`));
      assert.equal(memsw(alone.id), 64 * 2 ** 20);
      assert.ok(memsw(unlimited.id) > 2 ** 40, `memsw ${memsw(unlimited.id)}`);
    }
    await removeAndCheckCgroups(s, alone.id);
    await removeAndCheckCgroups(s, unlimited.id);
  });
});

integrationTest("resources: --cpu-period/--cpu-quota as given", async () => {
  await withStore(async (s) => {
    const { id } = await runDetached(s, [
      "--cpu-period",
      "50000",
      "--cpu-quota",
      "25000",
      "busybox",
      "sleep",
      "300",
    ]);
    const { HostConfig } = await s.inspect(id);
    assert.equal(HostConfig.CpuPeriod, 50000);
    assert.equal(HostConfig.CpuQuota, 25000);
    assert.equal(HostConfig.NanoCpus, 0);
    const cpu = cgroupDir(id, "cpu");
    if (cgroupV2()) {
      assert.equal(readTrimmed(`${cpu}/cpu.max`), "25000 50000");
    } else {
      assert.equal(readTrimmed(`${cpu}/cpu.cfs_period_us`), "50000");
      assert.equal(readTrimmed(`${cpu}/cpu.cfs_quota_us`), "25000");
    }
    await removeAndCheckCgroups(s, id);
  });
});

integrationTest("resources: --cpuset-cpus 0 confines the container's processes to CPU 0", async () => {
  await withStore(async (s) => {
    const r = await s.run([
      "--name",
      "pinned",
      "--cpuset-cpus",
      "0",
      "busybox",
      "grep",
      "Cpus_allowed_list",
      "/proc/self/status",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^Cpus_allowed_list:\s+0$/m, show(r));
    const [id] = await s.ids();
    assert.deepEqual(cgroupDirsOf(id), [], "the cpuset cgroup went with the container");
    // Without the flag the container may use every CPU, and joins no cpuset cgroup.
    const free = await s.run(["--rm", "busybox", "grep", "Cpus_allowed_list", "/proc/self/status"]);
    const mine = /^Cpus_allowed_list:\s*(\S+)$/m.exec(Deno.readTextFileSync("/proc/self/status"))![1];
    assert.match(free.stdout, new RegExp(`^Cpus_allowed_list:\\s+${mine}$`, "m"), show(free));
  });
});

integrationTest("resources: --pids-limit 10 stops a fork loop at 10 processes", async () => {
  await withStore(async (s) => {
    const bg = s.spawn([
      "run",
      "--name",
      "forky",
      "--pids-limit",
      "10",
      "busybox",
      "sh",
      "-c",
      // The inner shell forks until the kernel refuses (ash then gives up); the outer one stays.
      "sh -c 'for i in $(seq 20); do sleep 300 & done'; echo spawned; exec sleep 300",
    ]);
    await bg.waitForOutput("spawned\n");
    const id = await s.waitRunning();
    const pids = cgroupDir(id, "pids");
    assert.equal(readTrimmed(`${pids}/pids.max`), "10");
    const current = Number(readTrimmed(`${pids}/pids.current`));
    assert.ok(current <= 10 && current >= 9, `pids.current ${current}`);
    assert.match(bg.stderr, /can't fork|Resource temporarily unavailable/, bg.stderr);
    assert.equal((await s.inspect(id)).HostConfig.PidsLimit, 10);
    await removeAndCheckCgroups(s, id);
    assert.equal((await bg.finish()).code, 137);
  });
});

integrationTest("resources: no limit asked, none set; --pids-limit -1 is unlimited", async () => {
  await withStore(async (s) => {
    const { id } = await runDetached(s, ["--pids-limit", "-1", "busybox", "sleep", "300"]);
    const { HostConfig } = await s.inspect(id);
    assert.equal(HostConfig.PidsLimit, null);
    assert.equal(HostConfig.MemorySwap, 0);
    assert.equal(HostConfig.NanoCpus, 0);
    assert.equal(HostConfig.CpusetCpus, "");
    assert.equal(HostConfig.BlkioWeight, 0);
    assert.equal(readTrimmed(`${cgroupDir(id, "pids")}/pids.max`), "max");
    if (cgroupV2()) {
      assert.match(readTrimmed(`${cgroupDir(id, "cpu")}/cpu.max`), /^max /);
    } else {
      assert.equal(readTrimmed(`${cgroupDir(id, "cpu")}/cpu.cfs_quota_us`), "-1");
      assert.equal(exists(cgroupDir(id, "cpuset")), false, "no cpuset cgroup without --cpuset-cpus");
    }
    await removeAndCheckCgroups(s, id);
  });
});

integrationTest("resources: bad values exit 125 with Docker's message before anything is made", async () => {
  await withStore(async (s) => {
    const n = cpuCount();
    const cases: [string[], RegExp][] = [
      [
        ["--cpus", String(n + 1)],
        new RegExp(`Range of CPUs is from 0\\.01 to ${n}\\.00, as there are only ${n} CPUs available`),
      ],
      [["--cpus", "-1"], /Range of CPUs is from 0\.01/],
      [
        ["--cpus", "lots"],
        /invalid argument "lots" for "--cpus" flag: failed to parse lots as a rational number/,
      ],
      [
        ["--cpus", "1", "--cpu-quota", "50000"],
        /Conflicting options: Nano CPUs and CPU Quota cannot both be set/,
      ],
      [["--cpu-period", "10"], /CPU cfs period can not be less than 1ms/],
      [["--cpu-quota", "10"], /CPU cfs quota can not be less than 1ms \(i\.e\. 1000\)/],
      [["-m", "64m", "--memory-swap", "32m"], /Minimum memoryswap limit should be larger than memory limit/],
      [["--memory-swap", "64m"], /You should always set the Memory limit when using Memoryswap limit/],
      [["-m", "1m"], /Minimum memory limit allowed is 6MB/],
      [["--cpuset-cpus", "0-x"], /Invalid value 0-x for cpuset cpus: invalid format: 0-x/],
      [
        ["--cpuset-cpus", String(n + 7)],
        new RegExp(`Requested CPUs are not available - requested ${n + 7}, available: `),
      ],
      [["--pids-limit", "ten"], /invalid argument "ten" for "--pids-limit" flag/],
      [
        ["--blkio-weight", "5"],
        /Range of blkio weight is from 10 to 1000|does not support Block I\/O weight/,
      ],
    ];
    for (const [flags, message] of cases) {
      const r = await s.run(["--name", "never", ...flags, "busybox", "echo", "ran"]);
      if (flags[0] === "--blkio-weight" && r.code === 0) {
        // No weight support here: Docker discards the weight with a warning before the range check.
        assert.match(r.stderr, message, show(r));
        await s.floka(["rm", "never"]);
        continue;
      }
      assert.equal(r.code, 125, `${flags.join(" ")}: ${show(r)}`);
      assert.equal(r.stdout, "", show(r));
      assert.equal(lines(r.stderr).length, 1, `one line: ${show(r)}`);
      assert.match(r.stderr, message, show(r));
      assert.deepEqual(await s.ids(), [], `${flags.join(" ")} left a container`);
      assert.deepEqual(s.containerEntries(), []);
    }
  });
});

integrationTest(
  "resources: stats --no-stream shows running containers with sane numbers; json parses",
  async () => {
    await withStore(async (s) => {
      // --network none: its NET I/O is 0B / 0B (the default bridge's eth0 sees traffic).
      const busy = await runDetached(s, [
        "--network",
        "none",
        "--name",
        "busy",
        "--cpus",
        "0.5",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
      ]);
      const idle = await runDetached(s, ["--name", "idle", "busybox", "sleep", "300"]);
      const exited = await s.run(["--name", "done", "busybox", "true"]);
      assert.equal(exited.code, 0, show(exited));

      const r = await s.floka(["stats", "--no-stream"]);
      assert.equal(r.code, 0, show(r));
      const [header, ...rows] = lines(r.stdout);
      assert.match(
        header,
        /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS$/,
      );
      assert.equal(rows.length, 2, `running containers only: ${r.stdout}`);
      const row = (name: string) => rows.find((l) => l.split(/ {3,}/)[1] === name)?.split(/ {3,}/);
      const b = row("busy")!;
      assert.ok(b, r.stdout);
      assert.equal(b[0], busy.id.slice(0, 12));
      const cpu = Number(b[2].replace("%", ""));
      // The quota caps it at half a CPU; a busy loop surely got some of it in a second.
      assert.ok(cpu > 0 && cpu <= 60, `busy CPU ${b[2]}`);
      assert.match(b[3], /^[\d.]+(B|KiB|MiB) \/ 64MiB$/);
      const memPercent = Number(b[4].replace("%", ""));
      assert.ok(memPercent > 0 && memPercent < 100, b[4]);
      assert.equal(b[5], "0B / 0B", "no network but loopback");
      assert.match(b[6], /^[\d.]+[kMG]?B \/ [\d.]+[kMG]?B$/);
      assert.ok(Number(b[7]) >= 1, `PIDS ${b[7]}`);
      const i = row("idle")!;
      assert.ok(i, r.stdout);
      assert.equal(i[2], "0.00%");
      assert.match(i[3], /^[\d.]+(B|KiB|MiB) \/ [\d.]+GiB$/, "no limit: the host's RAM");

      const json = await s.floka(["stats", "--no-stream", "--format", "json", "busy", idle.id.slice(0, 12)]);
      assert.equal(json.code, 0, show(json));
      const objects = lines(json.stdout).map((l) => JSON.parse(l));
      assert.deepEqual(objects.map((o) => o.Name), ["busy", "idle"]);
      assert.deepEqual(objects.map((o) => o.Container), ["busy", idle.id.slice(0, 12)]);
      for (const o of objects) {
        assert.deepEqual(Object.keys(o), [
          "BlockIO",
          "CPUPerc",
          "Container",
          "ID",
          "MemPerc",
          "MemUsage",
          "Name",
          "NetIO",
          "PIDs",
        ]);
        assert.match(o.CPUPerc, /^\d+\.\d\d%$/);
        assert.match(o.ID, /^[0-9a-f]{12}$/);
      }
      // -a adds the exited container, with zeros; an unknown name fails as in Docker.
      const all = await s.floka([
        "stats",
        "-a",
        "--no-stream",
        "--format",
        "{{.Name}} {{.CPUPerc}} {{.PIDs}}",
      ]);
      assert.ok(lines(all.stdout).includes("done 0.00% 0"), show(all));
      const missing = await s.floka(["stats", "--no-stream", "nosuch"]);
      assert.equal(missing.code, 1, show(missing));
      assert.match(missing.stderr, /No such container: nosuch/);

      // Streaming (not a terminal): one block per second until stopped.
      const stream = s.spawn(["stats", "--format", "{{.Name}}", "busy"]);
      await waitUntil("three frames", () => lines(stream.stdout).length >= 3);
      stream.child.kill("SIGINT");
      await stream.finish();
      assert.deepEqual([...new Set(lines(stream.stdout))], ["busy"]);

      await removeAndCheckCgroups(s, busy.id);
      await removeAndCheckCgroups(s, idle.id);
    });
  },
);
