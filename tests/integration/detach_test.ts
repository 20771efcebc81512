/**
 * Detached containers and their supervisor (`run -d`), logs, stop/kill/start/restart/wait,
 * restart policies, `--init`, and stdin: a container's life as a Docker user drives it.
 */
import assert from "node:assert/strict";
import {
  cgroupDirsOf,
  hostMountsMentioning,
  integrationTest,
  lines,
  MAIN,
  show,
  type Store,
  waitUntil,
  withStore,
} from "./helpers.ts";

/** `floka run -d ...`: the container's full ID. */
async function runDetached(s: Store, args: string[]): Promise<string> {
  const r = await s.run(["-d", ...args]);
  assert.equal(r.code, 0, show(r));
  const id = r.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/, show(r));
  return id;
}

// deno-lint-ignore no-explicit-any
async function state(s: Store, ref: string): Promise<any> {
  return (await s.inspect(ref)).State;
}

function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

integrationTest(
  "detach: run -d returns at once; logs; stop sends SIGTERM and records the trap's exit code",
  async () => {
    await withStore(async (s) => {
      const id = await runDetached(s, [
        "--name",
        "svc",
        "busybox",
        "sh",
        "-c",
        'trap "echo stopping >&2; exit 7" TERM; echo ready; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done',
      ]);
      const running = await state(s, "svc");
      assert.equal(running.Status, "running");
      assert.ok(alive(running.Pid));
      const ps = await s.floka(["ps"]);
      assert.match(ps.stdout, /\bUp\b.*\bsvc$/m, show(ps));
      await waitUntil(
        "three ticks in the log",
        async () => (await s.floka(["logs", "svc"])).stdout.includes("tick 2"),
      );
      const logs = await s.floka(["logs", "svc"]);
      assert.equal(logs.code, 0, show(logs));
      assert.deepEqual(lines(logs.stdout).slice(0, 3), ["ready", "tick 0", "tick 1"]);
      const tail = await s.floka(["logs", "--tail", "1", "-t", "svc"]);
      assert.match(tail.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z tick \d+\n$/, show(tail));

      const stop = await s.floka(["stop", "svc"]);
      assert.equal(stop.code, 0, show(stop));
      assert.equal(stop.stdout, "svc\n");
      const stopped = await state(s, "svc");
      assert.equal(stopped.Status, "exited");
      assert.equal(stopped.ExitCode, 7);
      assert.ok(!alive(running.Pid));
      // stderr is kept apart from stdout.
      const both = await s.floka(["logs", "svc"]);
      assert.match(both.stderr, /^stopping$/m);
      assert.doesNotMatch(both.stdout, /stopping/);
      const wait = await s.floka(["wait", "svc"]);
      assert.equal(wait.stdout, "7\n", show(wait));
      // Stopping a stopped container is not an error (Docker's behaviour).
      assert.equal((await s.floka(["stop", "svc"])).code, 0);
      assert.deepEqual(cgroupDirsOf(id), []);
      assert.deepEqual(hostMountsMentioning(s.root), []);
    });
  },
);

integrationTest("detach: logs -f follows until the container ends", async () => {
  await withStore(async (s) => {
    await runDetached(s, [
      "--name",
      "counter",
      "busybox",
      "sh",
      "-c",
      "for i in 1 2 3 4 5; do echo $i; sleep 0.1; done",
    ]);
    const follow = await s.floka(["logs", "-f", "counter"]);
    assert.equal(follow.code, 0, show(follow));
    assert.deepEqual(lines(follow.stdout), ["1", "2", "3", "4", "5"]);
    assert.equal((await s.floka(["wait", "counter"])).stdout, "0\n");
  });
});

/**
 * Runs `floka ARGS` on a terminal of ROWS x COLS (under script), types a command that
 * prints 42 and the terminal's size, then the detach keys; what the terminal showed.
 */
async function typeAndDetach(s: Store, rows: number, cols: number, args: string[]): Promise<string> {
  const floka = ["deno", "run", "--allow-all", "--quiet", MAIN, "--root", s.root, ...args].join(" ");
  const typing = "sleep 1; printf 'echo typed-$((6*7)); stty size\\n'; sleep 0.5; printf '\\020\\021'";
  const session = await new Deno.Command("sh", {
    args: ["-c", `(${typing}) | script -qec "stty rows ${rows} cols ${cols}; ${floka}" /dev/null`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(session.stdout);
  assert.equal(session.code, 0, text);
  assert.match(text, /typed-42/, text);
  return text;
}

integrationTest("detach: the detach keys leave a foreground run -it container running", async () => {
  await withStore(async (s) => {
    const text = await typeAndDetach(s, 31, 101, ["run", "-it", "--name", "fg", "busybox", "sh"]);
    assert.match(text, /^31 101\r?$/m, "the container's terminal has the size of Floka's");
    assert.equal((await state(s, "fg")).Status, "running", "detaching leaves the container running");
    assert.equal((await s.floka(["kill", "fg"])).code, 0);
  });
});

integrationTest("detach: wait prints the exit code of a --rm container, which is gone after", async () => {
  await withStore(async (s) => {
    await runDetached(s, ["--rm", "--name", "brief", "busybox", "sh", "-c", "sleep 0.5; echo bye; exit 3"]);
    const wait = await s.floka(["wait", "brief"]);
    assert.equal(wait.code, 0, show(wait));
    assert.equal(wait.stdout, "3\n", "the exit code, and none of the container's output");
    await waitUntil("the container removed", async () => (await s.floka(["ps", "-aq"])).stdout === "");
  });
});

integrationTest(
  "detach: kill -s by name and number; start keeps the writable layer; restart; start -a",
  async () => {
    await withStore(async (s) => {
      await runDetached(s, [
        "--name",
        "k",
        "busybox",
        "sh",
        "-c",
        'trap "echo hup" HUP; n=$(( $(cat /count 2>/dev/null || echo 0) + 1 )); echo $n > /count; echo "run $n"; ' +
        "while true; do sleep 0.1; done",
      ]);
      await waitUntil("the first run", async () => (await s.floka(["logs", "k"])).stdout.includes("run 1"));
      assert.equal((await s.floka(["kill", "-s", "HUP", "k"])).code, 0);
      await waitUntil("the HUP trap", async () => (await s.floka(["logs", "k"])).stdout.includes("hup"));
      assert.equal((await state(s, "k")).Status, "running");
      const kill = await s.floka(["kill", "-s", "9", "k"]);
      assert.equal(kill.code, 0, show(kill));
      assert.equal((await s.floka(["wait", "k"])).stdout, "137\n");
      const again = await s.floka(["kill", "k"]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /is not running/);
      const bad = await s.floka(["kill", "-s", "NOPE", "k"]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /invalid signal: NOPE/);

      const start = await s.floka(["start", "k"]);
      assert.equal(start.code, 0, show(start));
      assert.equal((await state(s, "k")).Status, "running");
      await waitUntil("the second run", async () => (await s.floka(["logs", "k"])).stdout.includes("run 2"));
      const restart = await s.floka(["restart", "-t", "1", "k"]);
      assert.equal(restart.code, 0, show(restart));
      await waitUntil("the third run", async () => (await s.floka(["logs", "k"])).stdout.includes("run 3"));
      assert.equal((await state(s, "k")).Status, "running");
      assert.equal((await s.floka(["stop", "-t", "0", "k"])).code, 0);

      const once = await s.run(["--name", "once", "busybox", "sh", "-c", "echo hi; exit 5"]);
      assert.equal(once.code, 5, show(once));
      const attached = await s.floka(["start", "-a", "once"]);
      assert.equal(attached.code, 5, show(attached));
      assert.equal(attached.stdout, "hi\n");
      assert.equal((await s.floka(["logs", "once"])).stdout, "hi\nhi\n");
      const missing = await s.floka(["start", "nosuch"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /No such container: nosuch/);
    });
  },
);

integrationTest(
  "detach: --restart on-failure:2 runs the command three times, then stays exited",
  async () => {
    await withStore(async (s) => {
      await runDetached(s, [
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
      ]);
      // Status and count from one look: after the second run, "exited" comes just before the
      // count goes to 2 for the third.
      await waitUntil("the container to stop for good", async () => {
        const c = await s.inspect("flaky");
        return c.State.Status === "exited" && c.RestartCount === 2;
      });
      assert.deepEqual(lines((await s.floka(["logs", "flaky"])).stdout), ["run", "run", "run"]);
      assert.equal((await state(s, "flaky")).ExitCode, 3);
      const bad = await s.run(["--restart", "sometimes", "busybox", "true"]);
      assert.equal(bad.code, 125);
      assert.match(bad.stderr, /invalid restart policy/);
      const conflict = await s.run(["--rm", "--restart", "always", "busybox", "true"]);
      assert.equal(conflict.code, 125);
      assert.match(conflict.stderr, /Conflicting options: --restart and --rm/);
    });
  },
);

integrationTest(
  "detach: a SIGKILLed supervisor takes its container with it, and the next command reclaims it",
  async () => {
    await withStore(async (s) => {
      const id = await runDetached(s, ["--name", "orphan", "busybox", "sleep", "300"]);
      const { Pid } = await state(s, "orphan");
      const supervisor =
        JSON.parse(Deno.readTextFileSync(`${s.containersDir}/${id}/state.json`)).supervisorPid;
      assert.ok(supervisor > 0 && alive(supervisor));
      Deno.kill(supervisor, "SIGKILL");
      await waitUntil("the container's process to die", () => !alive(Pid));
      const ps = await s.floka(["ps", "-a"]);
      assert.match(ps.stdout, /Exited \(255\).*orphan/, show(ps));
      assert.deepEqual(cgroupDirsOf(id), []);
      assert.deepEqual(hostMountsMentioning(s.root), []);
      assert.equal((await s.floka(["rm", "orphan"])).code, 0);
      assert.deepEqual(s.containerEntries(), []);
    });
  },
);

integrationTest(
  "detach: a foreground container's output is logged too; -i passes stdin byte for byte",
  async () => {
    await withStore(async (s) => {
      const r = await s.run(["--name", "fg", "busybox", "sh", "-c", "echo out; echo err >&2"]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.stdout, "out\n");
      assert.equal(r.stderr, "err\n");
      const logs = await s.floka(["logs", "fg"]);
      assert.equal(logs.stdout, "out\n");
      assert.equal(logs.stderr, "err\n");
      // Without -i the container's stdin is empty; with it, bytes round-trip exactly.
      const input = Array.from({ length: 300 }, (_, i) => String.fromCharCode(i % 256)).join("") + "end";
      const noI = await s.run(["--rm", "busybox", "wc", "-c"], { stdin: input });
      assert.equal(noI.stdout.trim(), "0");
      const withI = await s.run(["--rm", "-i", "busybox", "md5sum"], { stdin: input });
      const expected = await new Deno.Command("md5sum", { stdin: "piped", stdout: "piped" }).spawn();
      const w = expected.stdin.getWriter();
      await w.write(new TextEncoder().encode(input));
      await w.close();
      const want = new TextDecoder().decode((await expected.output()).stdout).split(" ")[0];
      assert.equal(withI.stdout.split(" ")[0], want, show(withI));
    });
  },
);

integrationTest("detach: --init reaps orphaned zombies and forwards signals", async () => {
  await withStore(async (s) => {
    // The shell forks a child that forks a grandchild and exits: the grandchild is orphaned
    // to PID 1, which must reap it when it dies.
    const r = await s.run([
      "--rm",
      "--init",
      "busybox",
      "sh",
      "-c",
      "(sleep 0.2 &) ; sleep 0.6; ps -o pid,stat,comm | grep -c ' Z ' || true; cat /proc/1/cmdline | tr '\\000' ' '",
    ]);
    assert.equal(r.code, 0, show(r));
    const [zombies, pid1] = lines(r.stdout);
    assert.equal(zombies, "0", show(r));
    assert.match(pid1, /^\/dev\/init -- sh /, show(r));
    const id = await runDetached(s, ["--init", "--name", "inited", "busybox", "sleep", "300"]);
    const stop = await s.floka(["stop", "-t", "5", "inited"]);
    assert.equal(stop.code, 0, show(stop));
    // The init forwarded SIGTERM to sleep, which died of it: 143, well before the timeout's SIGKILL.
    assert.equal((await state(s, id)).ExitCode, 143);
  });
});

integrationTest(
  "detach: -t gives the command a terminal of the container's own, relayed and logged",
  async () => {
    await withStore(async (s) => {
      const floka = ["deno", "run", "--allow-all", "--quiet", MAIN, "--root", s.root];
      // util-linux `script` gives Floka a terminal of 30 rows and 100 columns to relay. No -i:
      // script's own end of input (stdin is /dev/null) would otherwise be typed into the
      // container's terminal and echoed (the attach test covers input).
      const inner = [
        ...floka,
        "run",
        "--name",
        "term",
        "-t",
        "busybox",
        "sh",
        "-c",
        "tty; stty size; echo $TERM",
      ]
        .join(" ");
      const out = await new Deno.Command("script", {
        args: ["-qec", `stty rows 30 cols 100; ${inner}`, "/dev/null"],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text);
      assert.match(text, /^\/dev\/pts\/0\r?$/m, text);
      assert.match(text, /^30 100\r?$/m, text);
      assert.match(text, /^xterm\r?$/m, text);
      // A window size change of Floka's terminal (SIGWINCH) reaches the container's terminal.
      const resized = [
        ...floka,
        "run",
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "'stty size; sleep 3; stty size'",
      ]
        .join(" ");
      const resize = await new Deno.Command("script", {
        args: [
          "-qec",
          `stty rows 30 cols 100; ${resized} & P=$!; sleep 1.5; stty rows 40 cols 120; kill -WINCH $P; wait $P`,
          "/dev/null",
        ],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      const sizes = new TextDecoder().decode(resize.stdout).replaceAll("\r", "");
      assert.deepEqual(lines(sizes), ["30 100", "40 120"], sizes);
      const logs = await s.floka(["logs", "term"]);
      assert.match(logs.stdout, /\/dev\/pts\/0/);
      // -t without -i needs no terminal; -it does, as in Docker.
      const plain = await s.run(["--rm", "-t", "busybox", "sh", "-c", "tty"]);
      assert.equal(plain.code, 0, show(plain));
      assert.match(plain.stdout, /^\/dev\/pts\/0\r?\n$/);
      const noTty = await s.run(["--rm", "-it", "busybox", "true"]);
      assert.equal(noTty.code, 125);
      assert.match(noTty.stderr, /the input device is not a TTY/);
    });
  },
);

integrationTest(
  "detach: attach relays a -d -i container's stdin and output; the detach keys leave it running",
  async () => {
    await withStore(async (s) => {
      await runDetached(s, [
        "-i",
        "--name",
        "echoer",
        "busybox",
        "sh",
        "-c",
        'while read line; do echo "got: $line"; echo "err: $line" >&2; [ "$line" = quit ] && exit 4; done',
      ]);
      const attached = await s.floka(["attach", "echoer"], { stdin: "hello\nquit\n" });
      assert.equal(attached.code, 4, show(attached)); // the container's exit code
      assert.equal(attached.stdout, "got: hello\ngot: quit\n");
      assert.equal(attached.stderr, "err: hello\nerr: quit\n");
      const stopped = await s.floka(["attach", "echoer"]);
      assert.equal(stopped.code, 1);
      assert.match(stopped.stderr, /You cannot attach to a stopped container/);

      // A terminal: what is typed reaches the shell, whose terminal takes the attaching
      // one's size; Ctrl-P Ctrl-Q detaches and it runs on.
      await runDetached(s, ["-it", "--name", "shell", "busybox", "sh"]);
      const text = await typeAndDetach(s, 33, 111, ["attach", "shell"]);
      assert.match(text, /^33 111\r?$/m, text);
      assert.equal((await state(s, "shell")).Status, "running", "detaching leaves the container running");
      assert.match((await s.floka(["logs", "shell"])).stdout, /typed-42/);
      assert.equal((await s.floka(["kill", "shell"])).code, 0);
    });
  },
);
