/**
 * `floka exec` as a user sees it: a new process in a running container shares its PID,
 * mount, UTS, IPC, network and cgroup namespaces, its cgroup, capabilities, environment,
 * working directory and user, reaches nothing of the host, and passes on its exit code.
 * `-t` is driven through a real terminal made by util-linux `script`.
 */
import assert from "node:assert/strict";
import {
  type Background,
  cgroupDirsOf,
  flokaArgv,
  integrationTest,
  lines,
  type Result,
  show,
  type Store,
  waitUntil,
  which,
  withStore,
} from "./helpers.ts";

const IMAGE_USERS = {
  users: ["alice:x:1000:1000:alice:/home/alice:/bin/sh"],
  groups: ["alice:x:1000:", "staff:x:50:alice"],
};

/** Starts `floka run --name NAME ... busybox sleep 60` in the background; its full ID once running. */
async function startContainer(
  s: Store,
  name = "c",
  runArgs: string[] = [],
): Promise<{ id: string; run: Background }> {
  const run = s.spawn(["run", "--name", name, ...runArgs, "busybox", "sleep", "60"]);
  const id = await s.waitRunning();
  return { id, run };
}

function exec(s: Store, args: string[], stdin?: string): Promise<Result> {
  return s.floka(["exec", ...args], stdin === undefined ? {} : { stdin });
}

/** `exec` that must succeed; its stdout. */
async function out(s: Store, args: string[]): Promise<string> {
  const r = await exec(s, args);
  assert.equal(r.code, 0, `floka exec ${args.join(" ")}: ${show(r)}`);
  return r.stdout;
}

/** The lines of /proc/PID/status named in `fields`, as "Name:\tvalue". */
const statusFields = (text: string, fields: string[]) =>
  lines(text).filter((l) => fields.includes(l.slice(0, l.indexOf(":"))));

integrationTest("exec: the process joins the container's namespaces; PID 1 is the container's", async () => {
  await withStore(async (s) => {
    const { id } = await startContainer(s);
    const ps = lines(await out(s, ["c", "ps", "-o", "pid,args"]));
    assert.match(ps.find((l) => /^\s*1\s/.test(l)) ?? "", /^\s*1\s+sleep 60$/, ps.join("\n"));
    const own = ps.find((l) => /\bps -o pid,args$/.test(l));
    assert.ok(own && !/^\s*1\s/.test(own), `the exec'd ps is listed and is not PID 1: ${ps.join("\n")}`);
    assert.equal(ps.length, 3, `only PID 1 and ps itself: ${ps.join("\n")}`);

    const script = "for n in pid mnt net uts ipc cgroup; do echo $n $(readlink /proc/self/ns/$n) " +
      "$(readlink /proc/1/ns/$n); done";
    for (const line of lines(await out(s, ["c", "sh", "-c", script]))) {
      const [name, own, pid1] = line.split(" ");
      assert.ok(own && own === pid1, `${name} namespace: exec'd ${own}, PID 1 ${pid1}`);
    }
    assert.equal(await out(s, ["c", "hostname"]), id.slice(0, 12) + "\n");
  });
});

integrationTest(
  "exec: writes are shared with the container and later execs (same overlay upper)",
  async () => {
    await withStore(async (s) => {
      const { id } = await startContainer(s);
      await out(s, ["c", "sh", "-c", "echo written by exec > /tmp/note"]);
      assert.equal(await out(s, ["c", "cat", "/tmp/note"]), "written by exec\n");
      assert.equal(Deno.readTextFileSync(`${s.containersDir}/${id}/upper/tmp/note`), "written by exec\n");
      assert.equal((await out(s, ["c", "ls", "/"])).includes("note"), false, "nothing of the host's / leaks");
    });
  },
);

integrationTest("exec: exit codes 0 and 3, 126 not executable, 127 not found", async () => {
  await withStore(async (s) => {
    await startContainer(s);
    assert.equal((await exec(s, ["c", "true"])).code, 0);
    const three = await exec(s, ["c", "sh", "-c", "exit 3"]);
    assert.equal(three.code, 3, show(three));
    const notExecutable = await exec(s, ["c", "/etc/passwd"]);
    assert.equal(notExecutable.code, 126, show(notExecutable));
    assert.equal(lines(notExecutable.stderr).length, 1, show(notExecutable));
    assert.match(notExecutable.stderr, /\/etc\/passwd/);
    const missing = await exec(s, ["c", "no-such-command"]);
    assert.equal(missing.code, 127, show(missing));
    assert.equal(lines(missing.stderr).length, 1, show(missing));
    assert.match(missing.stderr, /no-such-command.*not found/);
    const missingPath = await exec(s, ["c", "/bin/no-such-command"]);
    assert.equal(missingPath.code, 127, show(missingPath));
    const signalled = await exec(s, ["c", "sh", "-c", "kill -TERM $$"]);
    assert.equal(signalled.code, 128 + 15, show(signalled));
  });
});

integrationTest("exec: environment (-e, --env-file, the container's), -w, -u and HOME", async () => {
  await withStore(async (s) => {
    await startContainer(s, "c", ["-e", "FROM_RUN=run", "-e", "BOTH=run", "-w", "/srv"]);
    const envFile = `${s.root}/exec.env`;
    Deno.writeTextFileSync(envFile, "# comment\nFROM_FILE=file\n");
    const env = new Set(lines(
      await out(s, ["-e", "BOTH=exec", "-e", "NEW=1", "--env-file", envFile, "c", "env"]),
    ));
    for (const want of ["FROM_RUN=run", "BOTH=exec", "NEW=1", "FROM_FILE=file", "HOME=/root"]) {
      assert.ok(env.has(want), `${want} in ${[...env].join(" ")}`);
    }
    assert.ok([...env].some((e) => e.startsWith("PATH=/usr/local/sbin:")), [...env].join(" "));
    assert.ok(![...env].some((e) => e.startsWith("TERM=")), "TERM only with -t");

    assert.equal(await out(s, ["c", "pwd"]), "/srv\n", "the container's working directory");
    assert.equal(await out(s, ["-w", "/tmp", "c", "pwd"]), "/tmp\n");
    const missingDir = await exec(s, ["-w", "/no/such/dir", "c", "pwd"]);
    assert.notEqual(missingDir.code, 0, show(missingDir));
    assert.match(missingDir.stderr, /\/no\/such\/dir/);

    assert.equal(await out(s, ["c", "id"]), "uid=0(root) gid=0(root) groups=0(root)\n");
    assert.equal(await out(s, ["-u", "1000", "c", "id", "-u"]), "1000\n");
    assert.equal(
      await out(s, ["-u", "alice", "c", "sh", "-c", "id; echo $HOME"]),
      "uid=1000(alice) gid=1000(alice) groups=50(staff),1000(alice)\n/home/alice\n",
    );
    assert.equal(
      await out(s, ["-u", "1000:50", "c", "id"]),
      "uid=1000(alice) gid=50(staff) groups=50(staff)\n",
    );
    const unknown = await exec(s, ["-u", "nosuchuser", "c", "id"]);
    assert.notEqual(unknown.code, 0, show(unknown));
    assert.match(unknown.stderr, /unable to find user nosuchuser/);
  }, IMAGE_USERS);
});

integrationTest("exec: an unknown container, a stopped one, no command", async () => {
  await withStore(async (s) => {
    const unknown = await exec(s, ["nope", "true"]);
    assert.equal(unknown.code, 1, show(unknown));
    assert.equal(unknown.stderr, "floka: No such container: nope\n");

    const done = await s.run(["--name", "done", "busybox", "true"]);
    assert.equal(done.code, 0, show(done));
    const id = (await s.inspect("done")).Id;
    const stopped = await exec(s, ["done", "true"]);
    assert.equal(stopped.code, 1, show(stopped));
    assert.equal(stopped.stderr, `floka: container ${id} is not running\n`);

    const noCommand = await exec(s, ["done"]);
    assert.equal(noCommand.code, 125, show(noCommand));
    assert.match(noCommand.stderr, /"floka exec" requires at least 2 arguments/);
  });
});

integrationTest(
  "exec: capabilities, no_new_privs and cgroup are PID 1's; dumpable again after execve",
  async () => {
    await withStore(async (s) => {
      const { id } = await startContainer(s);
      const fields = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"];
      const own = statusFields(await out(s, ["c", "cat", "/proc/self/status"]), fields);
      const pid1 = statusFields(await out(s, ["c", "cat", "/proc/1/status"]), fields);
      assert.equal(own.length, fields.length, own.join("\n"));
      assert.deepEqual(own, pid1);
      assert.ok(own.includes("CapBnd:\t00000000a80425fb"), `Docker's 14 capabilities: ${own.join(" ")}`);
      assert.ok(own.includes("NoNewPrivs:\t0"), own.join(" "));

      assert.equal(
        await out(s, ["c", "cat", "/proc/self/cgroup"]),
        await out(s, ["c", "cat", "/proc/1/cgroup"]),
      );
      // The host's view: the exec'd process is in each of the container's cgroups.
      const background = await exec(s, ["-d", "c", "sleep", "30"]);
      assert.equal(background.code, 0, show(background));
      const dirs = cgroupDirsOf(id);
      assert.ok(dirs.length > 0, "the container has cgroups");
      for (const dir of dirs) {
        const procs = lines(Deno.readTextFileSync(`${dir}/cgroup.procs`));
        assert.equal(procs.length, 2, `${dir}/cgroup.procs: PID 1 and the exec'd sleep: ${procs}`);
      }

      // Dumpable again (as PID 1 is): /proc/PID is owned by the process's user, not root.
      assert.equal(await out(s, ["-u", "1000", "c", "stat", "-c", "%u", "/proc/self/"]), "1000\n");
    });
  },
);

integrationTest(
  "exec: only stdin, stdout and stderr are open; cwd and root are the container's",
  async () => {
    await withStore(async (s) => {
      const { id } = await startContainer(s, "c", ["-w", "/srv"]);
      // ls opens the directory it lists: descriptor 3.
      assert.deepEqual(lines(await out(s, ["c", "ls", "/proc/self/fd"])), ["0", "1", "2", "3"]);
      assert.equal(await out(s, ["c", "readlink", "/proc/self/cwd"]), "/srv\n");
      assert.equal(await out(s, ["c", "readlink", "/proc/self/root"]), "/\n");
      assert.equal(await out(s, ["c", "readlink", "/proc/self/fd/0"]), "/dev/null\n", "stdin without -i");

      // From the host: the exec'd process's root and cwd are the container's, not the host's.
      await out(s, ["-d", "-w", "/tmp", "c", "sleep", "30"]);
      const pid1 = (await s.inspect(id)).State.Pid;
      const procs = cgroupDirsOf(id).flatMap((d) => lines(Deno.readTextFileSync(`${d}/cgroup.procs`)));
      const sleeper = Number(procs.find((p) => Number(p) !== pid1));
      const identity = (path: string) => {
        const st = Deno.statSync(path);
        return `${st.dev}:${st.ino}`;
      };
      assert.equal(identity(`/proc/${sleeper}/root`), identity(`/proc/${pid1}/root`));
      assert.notEqual(identity(`/proc/${sleeper}/root`), identity("/"));
      assert.equal(identity(`/proc/${sleeper}/cwd`), identity(`/proc/${pid1}/root/tmp`));
      const fds = [...Deno.readDirSync(`/proc/${sleeper}/fd`)].map((e) => Number(e.name)).sort();
      assert.deepEqual(fds, [0, 1, 2]);
    });
  },
);

integrationTest("exec: -i passes stdin on; without it stdin is /dev/null", async () => {
  await withStore(async (s) => {
    await startContainer(s);
    const text = "line one\nline two\n\u00e9\u00e8 \x01\x7f\n".repeat(2000);
    const piped = await exec(s, ["-i", "c", "cat"], text);
    assert.equal(piped.code, 0, show(piped));
    assert.equal(piped.stdout, text);
    const ignored = await exec(s, ["c", "cat"], "not read\n");
    assert.equal(ignored.code, 0, show(ignored));
    assert.equal(ignored.stdout, "");
  });
});

integrationTest("exec: -d returns at once, prints nothing, and the command runs on", async () => {
  await withStore(async (s) => {
    await startContainer(s);
    const r = await exec(s, ["-d", "c", "sh", "-c", "sleep 0.3; echo done > /tmp/detached"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout + r.stderr, "");
    await waitUntil(
      "the detached command's file",
      async () => (await exec(s, ["c", "cat", "/tmp/detached"])).stdout === "done\n",
    );
    const failing = await exec(s, ["-d", "c", "no-such-command"]);
    assert.equal(failing.code, 127, show(failing));
    // It ended, and is no zombie: the container's supervisor reaped it (its PID 1, sleep,
    // reaps nothing), as Docker's shim does.
    const states = async () => (await exec(s, ["c", "ps", "-o", "stat,args"])).stdout;
    await waitUntil("the detached command gone", async () => !(await states()).includes("sleep 0.3"));
    assert.doesNotMatch(await states(), /^\s*Z/m);
  });
});

integrationTest("exec: signals to floka exec go to the process; it dies with the container", async () => {
  await withStore(async (s) => {
    await startContainer(s);
    const trapper = s.spawn([
      "exec",
      "c",
      "sh",
      "-c",
      'trap "echo got TERM; exit 4" TERM; echo ready; while :; do sleep 0.05; done',
    ]);
    await trapper.waitForOutput("ready");
    trapper.child.kill("SIGTERM");
    const r = await trapper.finish();
    assert.equal(r.code, 4, show(r));
    assert.equal(r.stdout, "ready\ngot TERM\n");

    const victim = s.spawn(["exec", "c", "sh", "-c", "echo started; sleep 60"]);
    await victim.waitForOutput("started");
    const rm = await s.floka(["rm", "-f", "c"]);
    assert.equal(rm.code, 0, show(rm));
    const ended = await victim.finish();
    assert.equal(ended.code, 128 + 9, `killed with the container's PID namespace: ${show(ended)}`);
  });
});

integrationTest("exec: works in a detached container (run -d)", async () => {
  await withStore(async (s) => {
    const run = await s.run(["-d", "--name", "bg", "busybox", "sleep", "60"]);
    assert.equal(run.code, 0, show(run));
    assert.equal(await out(s, ["bg", "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"]), "sleep 60 ");
    const rm = await s.floka(["rm", "-f", "bg"]);
    assert.equal(rm.code, 0, show(rm));
  });
});

/** Runs `floka ARGS` under util-linux `script`, which gives it a terminal; a shell line may follow. */
function inTerminal(s: Store, shell: string): Promise<Result> {
  const floka = [Deno.execPath(), ...flokaArgv(s.root, [])].map((w) => `'${w}'`).join(" ");
  return new Deno.Command("script", {
    args: ["-qec", shell.replaceAll("FLOKA", floka), "/dev/null"],
    stdin: "piped", // kept open and empty: script would type an end-of-file into the terminal
    stdout: "piped",
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn().output().then((o) => ({
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  }));
}

integrationTest("exec -t: a terminal of the container's own, its size, raw mode restored", async () => {
  if (!which("script")) throw new Error("util-linux `script` is needed (apt-get install util-linux)");
  await withStore(async (s) => {
    await startContainer(s);
    const tty = await inTerminal(s, "FLOKA exec -it c tty");
    assert.equal(tty.code, 0, show(tty));
    assert.match(tty.stdout, /^\/dev\/pts\/0\r\n/, show(tty));

    const session = await inTerminal(
      s,
      "stty rows 33 cols 111; FLOKA exec -it c sh -c 'stty size; echo TERM=$TERM; ls -1 /proc/self/fd; exit 5'; " +
        "echo code=$?; stty -a",
    );
    assert.equal(session.code, 0, show(session));
    const text = session.stdout.replaceAll("\r\n", "\n");
    assert.match(text, /^33 111\nTERM=xterm\n0\n1\n2\n3\ncode=5\n/, show(session));
    // The host terminal is back in its normal mode: line editing and echo are on.
    assert.match(text, /(^|[\s;])icanon\b/m, show(session));
    assert.match(text, /(^|[\s;])echo\b/m, show(session));

    const user = await inTerminal(s, "FLOKA exec -it -u 1000 c sh -c 'stat -c %u $(tty)'");
    assert.equal(user.stdout.trim(), "1000", `the terminal belongs to the exec'd user: ${show(user)}`);
  });
});

integrationTest("exec -t without a terminal: -it is refused, -t alone still gets one", async () => {
  await withStore(async (s) => {
    await startContainer(s);
    const refused = await exec(s, ["-it", "c", "tty"]);
    assert.equal(refused.code, 1, show(refused));
    assert.equal(refused.stderr, "floka: the input device is not a TTY\n");
    const tty = await exec(s, ["-t", "c", "tty"]);
    assert.equal(tty.code, 0, show(tty));
    assert.equal(tty.stdout, "/dev/pts/0\r\n");
    const term = await exec(s, ["-t", "-e", "TERM=dumb", "c", "sh", "-c", "echo $TERM"]);
    assert.equal(term.stdout, "dumb\r\n", "-e wins over Docker's TERM=xterm");
  });
});
