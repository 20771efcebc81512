/**
 * What a container sees: its own PID namespace, host name, network, mounts, root filesystem,
 * /dev, /proc and /sys, and nothing of the host's.
 */
import assert from "node:assert/strict";
import {
  hostMountsMentioning,
  integrationTest,
  lines,
  parseMountinfo,
  show,
  waitUntil,
  withStore,
} from "./helpers.ts";

integrationTest("isolation: the command is PID 1 and sees only the container's processes", async () => {
  await withStore(async (s) => {
    const pid = await s.run(["--rm", "busybox", "sh", "-c", "echo $$"]);
    assert.equal(pid.code, 0, show(pid));
    assert.equal(pid.stdout, "1\n");
    const cmdline = await s.run(["--rm", "busybox", "cat", "/proc/1/cmdline"]);
    assert.equal(cmdline.code, 0, show(cmdline));
    assert.equal(cmdline.stdout, "cat\0/proc/1/cmdline\0");
    // A glob and echo are shell built-ins: the shell is the only process in the container.
    const procs = await s.run([
      "--rm",
      "busybox",
      "sh",
      "-c",
      "for p in /proc/[0-9]*; do echo ${p#/proc/}; done",
    ]);
    assert.equal(procs.code, 0, show(procs));
    assert.deepEqual(lines(procs.stdout), ["1"]);
  });
});

integrationTest(
  "isolation: the default host name is the first 12 characters of the container ID",
  async () => {
    await withStore(async (s) => {
      const r = await s.run(["busybox", "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME"]);
      assert.equal(r.code, 0, show(r));
      const ids = await s.ids();
      assert.equal(ids.length, 1);
      const short = ids[0].slice(0, 12);
      assert.deepEqual(lines(r.stdout), [short, short, short]);
      assert.equal((await s.inspect(ids[0])).Config.Hostname, short);
    });
  },
);

integrationTest("isolation: --hostname and -h set the host name and /etc/hostname", async () => {
  await withStore(async (s) => {
    const hostBefore = Deno.hostname();
    for (const flag of ["--hostname", "-h"]) {
      const r = await s.run(["--rm", flag, "foo", "busybox", "sh", "-c", "hostname; cat /etc/hostname"]);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(lines(r.stdout), ["foo", "foo"], flag);
    }
    assert.equal(Deno.hostname(), hostBefore, "the container's host name leaked to the host");
  });
});

integrationTest("isolation: --network none has only lo, and it is up", async () => {
  await withStore(async (s) => {
    for (const args of [["--network", "none"]]) {
      const r = await s.run([
        "--rm",
        ...args,
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; echo ---; cat /sys/class/net/lo/flags; echo ---; ip link show lo; echo ---; cat /proc/net/dev",
      ]);
      assert.equal(r.code, 0, show(r));
      const [ls, flags, ipLink, netDev] = r.stdout.split("---\n");
      assert.deepEqual(lines(ls), ["lo"], `${args}`);
      assert.equal(Number(flags.trim()) & 1, 1, `lo flags ${flags} lack IFF_UP`);
      assert.match(ipLink, /<[^>]*\bUP\b[^>]*>/);
      const devs = lines(netDev).slice(2).map((l) => l.split(":")[0].trim());
      assert.deepEqual(devs, ["lo"]);
    }
  });
});

integrationTest("isolation: --network host sees the host's interfaces", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "--network", "host", "busybox", "ls", "/sys/class/net"]);
    assert.equal(r.code, 0, show(r));
    const host = [...Deno.readDirSync("/sys/class/net")].map((e) => e.name).sort();
    assert.deepEqual(lines(r.stdout).sort(), host);
    const dev = await s.run(["--rm", "--network", "host", "busybox", "cat", "/proc/net/dev"]);
    const names = (text: string) => lines(text).slice(2).map((l) => l.split(":")[0].trim()).sort();
    assert.deepEqual(names(dev.stdout), names(Deno.readTextFileSync("/proc/net/dev")));
  });
});

integrationTest("isolation: the host's mounts are invisible and the root is overlay", async () => {
  await withStore(async (s) => {
    const mnt = `${s.root}/host-mount`;
    const source = `floka-it-host-${crypto.randomUUID().slice(0, 8)}`;
    Deno.mkdirSync(mnt);
    const mount = await new Deno.Command("mount", { args: ["-t", "tmpfs", source, mnt] }).output();
    assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
    try {
      assert.equal(hostMountsMentioning(source).length, 1, "the host sees its own tmpfs");
      const r = await s.run(["--rm", "busybox", "cat", "/proc/self/mountinfo"]);
      assert.equal(r.code, 0, show(r));
      assert.ok(!r.stdout.includes(source), `the host's tmpfs shows in the container:\n${r.stdout}`);
      assert.ok(!r.stdout.includes("host-mount"), r.stdout);
      const mounts = parseMountinfo(r.stdout);
      const roots = mounts.filter((m) => m.mountPoint === "/");
      assert.equal(roots.length, 1, r.stdout);
      assert.equal(roots[0].fstype, "overlay");
      // Only the container's own mounts: nothing of the host's other filesystems.
      const hostOnly = parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo"))
        .map((m) => m.mountPoint)
        .filter((point) => point !== "/" && !["/proc", "/sys", "/dev"].some((p) => point.startsWith(p)))
        // Floka binds its own /etc files; a host that is itself a container may bind the same.
        .filter((point) => !["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].includes(point));
      for (const point of hostOnly) {
        assert.ok(!mounts.some((m) => m.mountPoint === point), `host mount ${point} is visible`);
      }
    } finally {
      await new Deno.Command("umount", { args: [mnt] }).output();
    }
  });
});

integrationTest("isolation: a run leaves no mount on the host, during or after", async () => {
  await withStore(async (s) => {
    assert.deepEqual(hostMountsMentioning(s.root), []);
    const bg = s.spawn(["run", "--rm", "busybox", "sh", "-c", "echo ready; sleep 60"]);
    await bg.waitForOutput("ready\n");
    assert.deepEqual(
      hostMountsMentioning(s.root),
      [],
      "the container's mounts leak into the host's namespace",
    );
    await s.floka(["rm", "-f", await s.waitRunning()]);
    await bg.finish();
    const r = await s.run(["busybox", "true"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(hostMountsMentioning(s.root), []);
  });
});

integrationTest(
  "isolation: writes stay in the container, never reach the image or another container",
  async () => {
    await withStore(async (s) => {
      const rootfs = `${s.imageDir()}/rootfs`;
      const passwdBefore = Deno.readTextFileSync(`${rootfs}/etc/passwd`);
      const first = await s.run([
        "busybox",
        "sh",
        "-c",
        "echo secret > /written-by-first && echo extra >> /etc/passwd && rm /etc/group && mkdir /newdir && cat /written-by-first",
      ]);
      assert.equal(first.code, 0, show(first));
      assert.equal(first.stdout, "secret\n");
      assert.throws(() => Deno.statSync(`${rootfs}/written-by-first`), Deno.errors.NotFound);
      assert.throws(() => Deno.statSync(`${rootfs}/newdir`), Deno.errors.NotFound);
      assert.equal(Deno.readTextFileSync(`${rootfs}/etc/passwd`), passwdBefore);
      assert.ok(
        Deno.statSync(`${rootfs}/etc/group`).isFile,
        "deleting in the container deleted the image's file",
      );
      const second = await s.run([
        "--rm",
        "busybox",
        "sh",
        "-c",
        "test -e /written-by-first && echo present || echo absent; test -e /etc/group && echo group; grep -c extra /etc/passwd",
      ]);
      assert.deepEqual(lines(second.stdout), ["absent", "group", "0"], show(second));
    });
  },
);

integrationTest("isolation: /dev has the standard device nodes and links", async () => {
  await withStore(async (s) => {
    const r = await s.run([
      "--rm",
      "busybox",
      "sh",
      "-c",
      "stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; readlink /dev/ptmx; " +
      "echo discarded > /dev/null && head -c 5 /dev/zero | wc -c; test -c /dev/pts/ptmx && echo pts",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), [
      "/dev/null character special file 1:3",
      "/dev/zero character special file 1:5",
      "/dev/full character special file 1:7",
      "/dev/random character special file 1:8",
      "/dev/urandom character special file 1:9",
      "/dev/tty character special file 5:0",
      "pts/ptmx",
      "5",
      "pts",
    ]);
  });
});

integrationTest("isolation: /proc is nosuid,nodev,noexec and /proc/sys is read-only", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "cat", "/proc/self/mountinfo"]);
    assert.equal(r.code, 0, show(r));
    const mounts = parseMountinfo(r.stdout);
    const proc = mounts.find((m) => m.mountPoint === "/proc");
    assert.ok(proc, r.stdout);
    assert.equal(proc.fstype, "proc");
    for (const opt of ["nosuid", "nodev", "noexec"]) {
      assert.ok(proc.options.includes(opt), `/proc lacks ${opt}`);
    }
    const procSys = mounts.find((m) => m.mountPoint === "/proc/sys");
    assert.ok(procSys?.options.includes("ro"), "/proc/sys is not read-only");
    const write = await s.run(["--rm", "busybox", "sh", "-c", "echo changed > /proc/sys/kernel/hostname"]);
    assert.notEqual(write.code, 0, show(write));
    assert.match(write.stderr, /Read-only file system/);
  });
});

integrationTest("isolation: /sys is read-only, with its own and with the host's network", async () => {
  await withStore(async (s) => {
    for (const net of ["none", "host"]) {
      const r = await s.run([
        "--rm",
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        "cat /proc/self/mountinfo; touch /sys/floka-x",
      ]);
      assert.notEqual(r.code, 0, `writing to /sys succeeded with --network ${net}`);
      assert.match(r.stderr, /Read-only file system/, net);
      const sys = parseMountinfo(r.stdout).find((m) => m.mountPoint === "/sys");
      assert.ok(sys?.options.includes("ro"), `/sys is not mounted read-only with --network ${net}`);
    }
  });
});

integrationTest("isolation: masked /proc files read empty", async () => {
  await withStore(async (s) => {
    const candidates = ["/proc/kcore", "/proc/keys", "/proc/timer_list"].filter((p) => {
      try {
        Deno.statSync(p);
        return true;
      } catch {
        return false;
      }
    });
    assert.ok(candidates.length > 0, "the host has none of /proc/kcore, /proc/keys, /proc/timer_list");
    const script = candidates.map((p) => `echo ${p} $(wc -c < ${p}) $(stat -c %t:%T ${p})`).join("; ");
    const r = await s.run(["--rm", "busybox", "sh", "-c", script]);
    assert.equal(r.code, 0, show(r));
    // Docker masks files with /dev/null (1:3): they read empty whatever the host holds.
    assert.deepEqual(lines(r.stdout), candidates.map((p) => `${p} 0 1:3`));
    const acpi = await s.run(["--rm", "busybox", "sh", "-c", "ls -A /proc/acpi 2>/dev/null | wc -l"]);
    assert.equal(acpi.stdout.trim(), "0", "/proc/acpi is not masked");
  });
});

integrationTest("isolation: two containers at once get their own host names and files", async () => {
  await withStore(async (s) => {
    // Each writes its file, says so, and waits for SIGUSR1 (forwarded by floka run), so both
    // are certainly alive at the same time before either looks at /tmp.
    const script = 'trap "go=1" USR1; echo "$(hostname)" > /tmp/own-$(hostname); echo ready; ' +
      'while [ -z "$go" ]; do sleep 0.05; done; hostname; ls /tmp';
    const a = s.spawn(["run", "--rm", "-h", "first", "busybox", "sh", "-c", script]);
    const b = s.spawn(["run", "--rm", "-h", "second", "busybox", "sh", "-c", script]);
    await a.waitForOutput("ready\n");
    await b.waitForOutput("ready\n");
    await waitUntil("two running containers", async () => (await s.ids(false)).length === 2);
    a.child.kill("SIGUSR1");
    b.child.kill("SIGUSR1");
    const [ra, rb] = [await a.finish(), await b.finish()];
    assert.equal(ra.code, 0, show(ra));
    assert.equal(rb.code, 0, show(rb));
    assert.deepEqual(lines(ra.stdout), ["ready", "first", "own-first"]);
    assert.deepEqual(lines(rb.stdout), ["ready", "second", "own-second"]);
    assert.deepEqual(s.containerEntries(), []);
  });
});

integrationTest(
  "isolation: the command starts with every signal at its default, so SIGPIPE ends a writer",
  async () => {
    await withStore(async (s) => {
      const r = await s.run([
        "--rm",
        "busybox",
        "sh",
        "-c",
        "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(lines(r.stdout), ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000", "y"]);
    });
  },
);
