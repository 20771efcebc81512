/**
 * A container's life as `ps`, `inspect` and `rm` show it: exit status, names, removal,
 * cgroups made and taken away, signals, and a `floka run` killed under its container.
 */
import assert from "node:assert/strict";
import {
  CGROUP_ROOT,
  cgroupDirsOf,
  cgroupV2,
  hostMountsMentioning,
  integrationTest,
  lines,
  sharesToWeight,
  show,
  type Store,
  waitUntil,
  withStore,
} from "./helpers.ts";

/** The `floka ps -a` row of the container named `name`. */
async function psRow(s: Store, name: string): Promise<string | undefined> {
  const r = await s.floka(["ps", "-a"]);
  assert.equal(r.code, 0, show(r));
  return lines(r.stdout).slice(1).find((l) => l.trimEnd().endsWith(` ${name}`));
}

/** Waits until the container's process is in its cgroup (the host side records it first). */
async function waitInCgroup(dir: string, pid: number): Promise<void> {
  await waitUntil(`PID ${pid} in ${dir}/cgroup.procs`, () => {
    return lines(Deno.readTextFileSync(`${dir}/cgroup.procs`)).map(Number).includes(pid);
  });
}

integrationTest("lifecycle: --rm removes the container's directory and cgroup", async () => {
  await withStore(async (s) => {
    // The default host name is the ID's first 12 characters: enough to find its cgroup.
    const bg = s.spawn(["run", "--rm", "busybox", "sh", "-c", "hostname; sleep 300"]);
    const id = await s.waitRunning();
    await bg.waitForOutput("\n");
    assert.equal(bg.stdout, id.slice(0, 12) + "\n");
    assert.ok(cgroupDirsOf(id).length > 0, "the running container has no cgroup");
    assert.deepEqual(s.containerDirs(), [id]);
    Deno.kill((await s.inspect(id)).State.Pid, "SIGKILL");
    assert.equal((await bg.finish()).code, 137);
    assert.deepEqual(s.containerEntries(), []);
    assert.deepEqual(await s.ids(), []);
    assert.deepEqual(cgroupDirsOf(id), []);
    // And a container that ends by itself.
    const r = await s.run(["--rm", "busybox", "hostname"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim().length, 12, show(r));
    assert.deepEqual(s.containerEntries(), []);
    assert.deepEqual(cgroupDirsOf(r.stdout.trim()), []);
  });
});

integrationTest(
  "lifecycle: an exited container stays, listed by ps -a with its status and name",
  async () => {
    await withStore(async (s) => {
      const r = await s.run(["--name", "answer", "busybox", "sh", "-c", "exit 42"]);
      assert.equal(r.code, 42, show(r));
      const ids = await s.ids();
      assert.equal(ids.length, 1);
      assert.deepEqual(s.containerDirs(), ids, "the container's directory is kept without --rm");
      const row = await psRow(s, "answer");
      assert.ok(row, "ps -a does not list the container");
      assert.match(row, /Exited \(42\) .*ago/);
      assert.ok(row.startsWith(ids[0].slice(0, 12)), row);
      assert.match(row, /busybox:latest/);
      // ps without -a lists running containers only.
      const ps = await s.floka(["ps"]);
      assert.equal(ps.code, 0, show(ps));
      assert.ok(!ps.stdout.includes("answer"), ps.stdout);
      assert.equal(lines(ps.stdout).length, 1, `only the header expected:\n${ps.stdout}`);
      const quiet = await s.floka(["ps", "-q"]);
      assert.equal(quiet.stdout, "");
      const quietAll = await s.floka(["ps", "-a", "-q"]);
      assert.equal(quietAll.stdout, ids[0].slice(0, 12) + "\n");
      // No cgroup is left once the container has exited.
      assert.deepEqual(cgroupDirsOf(ids[0]), []);
    });
  },
);

integrationTest("lifecycle: inspect shows the exit code, environment and name", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--name", "probe", "-e", "COLOUR=blue", "busybox", "sh", "-c", "exit 3"]);
    assert.equal(r.code, 3, show(r));
    const [id] = await s.ids();
    for (const ref of ["probe", id, id.slice(0, 12)]) {
      const info = await s.inspect(ref);
      assert.equal(info.Id, id);
      assert.equal(info.Name, "/probe");
      assert.equal(info.State.ExitCode, 3);
      assert.equal(info.State.Status, "exited");
      assert.equal(info.State.Running, false);
      assert.ok(info.Config.Env.includes("COLOUR=blue"), JSON.stringify(info.Config.Env));
      assert.ok(info.Config.Env.some((e: string) => e.startsWith("PATH=")), JSON.stringify(info.Config.Env));
    }
    const missing = await s.floka(["inspect", "no-such-container"]);
    assert.notEqual(missing.code, 0, show(missing));
  });
});

integrationTest("lifecycle: rm by name and by ID prefix", async () => {
  await withStore(async (s) => {
    for (const name of ["one", "two"]) {
      const r = await s.run(["--name", name, "busybox", "true"]);
      assert.equal(r.code, 0, show(r));
    }
    const byName = await s.floka(["rm", "one"]);
    assert.equal(byName.code, 0, show(byName));
    assert.equal(await psRow(s, "one"), undefined);
    const [id] = await s.ids();
    assert.ok(await psRow(s, "two"));
    const rm = await s.floka(["rm", id.slice(0, 7)]);
    assert.equal(rm.code, 0, show(rm));
    assert.deepEqual(await s.ids(), []);
    assert.deepEqual(s.containerEntries(), []);
    const again = await s.floka(["rm", "one"]);
    assert.equal(again.code, 1, show(again));
  });
});

integrationTest("lifecycle: a duplicate --name is refused with 125", async () => {
  await withStore(async (s) => {
    const first = await s.run(["--name", "web", "busybox", "true"]);
    assert.equal(first.code, 0, show(first));
    const [id] = await s.ids();
    const dup = await s.run(["--name", "web", "busybox", "sh", "-c", "echo should not run"]);
    assert.equal(dup.code, 125, show(dup));
    assert.equal(dup.stdout, "");
    assert.equal(lines(dup.stderr).length, 1, show(dup));
    assert.match(dup.stderr, /web/);
    assert.deepEqual(await s.ids(), [id]);
    assert.deepEqual(s.containerDirs(), [id]);
  });
});

integrationTest("lifecycle: rm of a running container fails without -f; rm -f kills it", async () => {
  await withStore(async (s) => {
    const bg = s.spawn(["run", "--name", "busy", "busybox", "sleep", "300"]);
    const id = await s.waitRunning();
    const ps = await s.floka(["ps", "-q"]);
    assert.equal(ps.stdout, id.slice(0, 12) + "\n");
    const row = await psRow(s, "busy");
    assert.match(row ?? "", /\bUp\b/);
    const rm = await s.floka(["rm", "busy"]);
    assert.equal(rm.code, 1, show(rm));
    assert.equal(lines(rm.stderr).length, 1, show(rm));
    assert.deepEqual(await s.ids(false), [id], "the running container was removed without -f");
    assert.equal(bg.exited, false, "floka run ended when rm without -f was refused");
    const force = await s.floka(["rm", "-f", "busy"]);
    assert.equal(force.code, 0, show(force));
    const run = await bg.finish();
    assert.equal(run.code, 137, `floka run of a container killed by rm -f: ${show(run)}`);
    assert.deepEqual(await s.ids(), []);
    assert.deepEqual(s.containerEntries(), []);
    assert.deepEqual(cgroupDirsOf(id), []);
  });
});

integrationTest("lifecycle: a command killed by signal N exits 128+N and ps says so", async () => {
  await withStore(async (s) => {
    // PID 1 of a PID namespace ignores signals it has no handler for, even SIGKILL, when
    // they come from inside; from the host, SIGKILL always kills it.
    const bg = s.spawn(["run", "--name", "victim", "busybox", "sh", "-c", "echo ready; sleep 300"]);
    await bg.waitForOutput("ready\n");
    const id = await s.waitRunning();
    const { State } = await s.inspect(id);
    assert.equal(State.Running, true);
    assert.ok(State.Pid > 0, JSON.stringify(State));
    Deno.kill(State.Pid, "SIGKILL");
    const run = await bg.finish();
    assert.equal(run.code, 137, show(run));
    assert.match((await psRow(s, "victim")) ?? "", /Exited \(137\)/);
    assert.equal((await s.inspect("victim")).State.ExitCode, 137);
  });
});

integrationTest("lifecycle: SIGTERM to floka run goes on to the container's process", async () => {
  await withStore(async (s) => {
    const bg = s.spawn([
      "run",
      "--rm",
      "busybox",
      "sh",
      "-c",
      'trap "exit 7" TERM; echo ready; while true; do sleep 0.1; done',
    ]);
    await bg.waitForOutput("ready\n");
    await s.waitRunning();
    bg.child.kill("SIGTERM");
    const r = await bg.finish();
    assert.equal(r.code, 7, show(r));
    assert.deepEqual(s.containerEntries(), []);
  });
});

integrationTest(
  "lifecycle: a SIGKILLed floka run takes its container with it; the next command reclaims it",
  async () => {
    await withStore(async (s) => {
      const bg = s.spawn(["run", "--name", "orphan", "busybox", "sh", "-c", "echo ready; sleep 300"]);
      await bg.waitForOutput("ready\n");
      const id = await s.waitRunning();
      const pid = (await s.inspect(id)).State.Pid;
      bg.child.kill("SIGKILL");
      await bg.child.status;
      // The parent-death signal kills the container's process: nothing runs unwatched.
      await waitUntil("the container's process to die", () => {
        try {
          Deno.kill(pid, "SIGCONT");
          return false;
        } catch {
          return true;
        }
      });
      await bg.finish(); // the pipes close once the container's process is gone
      await waitUntil("the orphan to be seen as exited", async () => (await s.ids(false)).length === 0);
      const row = await psRow(s, "orphan");
      assert.match(row ?? "", /Exited \(\d+\)/, row);
      const info = await s.inspect(id);
      assert.equal(info.State.Running, false);
      assert.equal(info.State.Status, "exited");
      // Its cgroup was reclaimed by the command that noticed; it can be removed.
      assert.deepEqual(cgroupDirsOf(id), []);
      const rm = await s.floka(["rm", "orphan"]);
      assert.equal(rm.code, 0, show(rm));
      assert.deepEqual(s.containerEntries(), []);
      assert.deepEqual(hostMountsMentioning(s.root), []);
    });
  },
);

integrationTest(
  "lifecycle: -m and --cpu-shares are written to the container's cgroup, removed by rm -f",
  async () => {
    await withStore(async (s) => {
      const bg = s.spawn(["run", "-m", "64m", "--cpu-shares", "512", "busybox", "sleep", "300"]);
      const id = await s.waitRunning();
      const { State, HostConfig } = await s.inspect(id);
      assert.equal(HostConfig.Memory, 64 * 1024 * 1024);
      assert.equal(HostConfig.CpuShares, 512);
      if (cgroupV2()) {
        const dir = `${CGROUP_ROOT}/floka/${id}`;
        assert.equal(Deno.readTextFileSync(`${dir}/memory.max`).trim(), "67108864");
        assert.equal(Deno.readTextFileSync(`${dir}/cpu.weight`).trim(), String(sharesToWeight(512)));
        await waitInCgroup(dir, State.Pid);
      } else {
        const memory = `${CGROUP_ROOT}/memory/floka/${id}`;
        const cpu = `${CGROUP_ROOT}/cpu/floka/${id}`;
        assert.equal(Deno.readTextFileSync(`${memory}/memory.limit_in_bytes`).trim(), "67108864");
        assert.equal(Deno.readTextFileSync(`${cpu}/cpu.shares`).trim(), "512");
        await waitInCgroup(memory, State.Pid);
        await waitInCgroup(cpu, State.Pid);
      }
      assert.ok(cgroupDirsOf(id).length > 0);
      const rm = await s.floka(["rm", "-f", id]);
      assert.equal(rm.code, 0, show(rm));
      assert.deepEqual(cgroupDirsOf(id), [], "rm -f left the cgroup");
      const run = await bg.finish();
      assert.equal(run.code, 137, show(run));
      assert.deepEqual(cgroupDirsOf(id), [], "the cgroup came back or was left");
      assert.deepEqual(s.containerEntries(), []);
    });
  },
);

integrationTest(
  "lifecycle: without limits no limit is set, and the cgroup goes with the container",
  async () => {
    await withStore(async (s) => {
      const bg = s.spawn(["run", "--rm", "busybox", "sleep", "300"]);
      const id = await s.waitRunning();
      if (!cgroupV2()) {
        const limit = Deno.readTextFileSync(`${CGROUP_ROOT}/memory/floka/${id}/memory.limit_in_bytes`).trim();
        assert.ok(Number(limit) > 2 ** 40, `unexpected memory limit ${limit}`);
      } else {
        assert.equal(Deno.readTextFileSync(`${CGROUP_ROOT}/floka/${id}/memory.max`).trim(), "max");
      }
      const rm = await s.floka(["rm", "-f", id]);
      assert.equal(rm.code, 0, show(rm));
      await bg.finish();
      assert.deepEqual(cgroupDirsOf(id), []);
      assert.deepEqual(s.containerEntries(), []);
    });
  },
);

integrationTest(
  "lifecycle: a process over its -m limit is OOM-killed: exit 137 and OOMKilled in inspect",
  async () => {
    await withStore(async (s) => {
      // Holding 64 MB in a shell variable needs far more than the 8 MB allowed.
      const hog = 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived';
      const r = await s.run(["--name", "hog", "-m", "8m", "busybox", "sh", "-c", hog]);
      assert.equal(r.code, 137, show(r));
      assert.ok(!r.stdout.includes("survived"), show(r));
      const { State } = await s.inspect("hog");
      assert.equal(State.OOMKilled, true);
      assert.equal(State.ExitCode, 137);
      const calm = await s.run(["--name", "calm", "-m", "64m", "busybox", "true"]);
      assert.equal(calm.code, 0, show(calm));
      assert.equal((await s.inspect("calm")).State.OOMKilled, false);
    });
  },
);
