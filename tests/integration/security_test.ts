/**
 * The security baseline checked from inside containers, as runtime-tools' runtimetest does:
 * capabilities (default, --user, --cap-add/--cap-drop, --privileged), no_new_privs, seccomp
 * (default profile, unconfined, a custom profile), masked and read-only paths, the minimal
 * /dev, the device cgroup, and classic escapes (chroot through /proc, mounting the host's
 * disk, /proc/sysrq-trigger, host processes and descriptors, a working directory through
 * /proc/self/fd). A small static C probe, built when the host can, makes the system calls
 * busybox cannot (keyctl, personality, open_by_handle_at). isolation_test.ts covers the rest
 * of what a container sees.
 *
 * Every probe here is harmless even when Floka is broken: nothing writes to a device but
 * /dev/null, the only sysrq write is "h" (help) and only where it must fail, mounts of the
 * host's disk are read-only and inside the container's mount namespace, and devices are at
 * most opened for reading.
 */
import assert from "node:assert/strict";
import {
  type Background,
  integrationTest,
  IS_ROOT,
  lines,
  parseMountinfo,
  type Result,
  show,
  type Store,
  waitUntil,
  withStore,
} from "./helpers.ts";
import { pathExists } from "../../src/store/files.ts";

/** Docker's 14 default capabilities (moby's oci/caps/defaults.go). */
const DEFAULT_CAPS = 0xa80425fbn;
const CAP_CHOWN = 0;
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_MKNOD = 27;
const bit = (cap: number) => 1n << BigInt(cap);

/** A capability mask as /proc/PID/status prints it. */
const hex = (mask: bigint) => mask.toString(16).padStart(16, "0");

/** The "Name:\tvalue" fields of a /proc/PID/status text. */
function parseStatus(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of lines(text)) {
    const colon = line.indexOf(":");
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

const HOST_STATUS = parseStatus(Deno.readTextFileSync("/proc/self/status"));
/** Everything the host can give: what --privileged and --cap-add ALL must grant. */
const HOST_BOUNDING = BigInt(`0x${HOST_STATUS.CapBnd}`);

/** /proc/self/status of `cat` run as `floka run --rm RUN_ARGS busybox cat /proc/self/status`. */
async function statusIn(s: Store, runArgs: string[]): Promise<Record<string, string>> {
  const r = await s.run(["--rm", ...runArgs, "busybox", "cat", "/proc/self/status"]);
  assert.equal(r.code, 0, `floka run ${runArgs.join(" ")}: ${show(r)}`);
  return parseStatus(r.stdout);
}

interface Caps {
  eff: bigint;
  prm: bigint;
  bnd: bigint;
}

/**
 * Asserts the effective, permitted and bounding sets, and an empty ambient set. The
 * inheritable set has a test of its own (below), so that its failure hides nothing else.
 */
function assertCaps(status: Record<string, string>, want: Caps, what: string): void {
  const got = ["CapEff", "CapPrm", "CapBnd", "CapAmb"].map((f) => `${f}: ${status[f]}`);
  const expected = [
    `CapEff: ${hex(want.eff)}`,
    `CapPrm: ${hex(want.prm)}`,
    `CapBnd: ${hex(want.bnd)}`,
    `CapAmb: ${hex(0n)}`,
  ];
  assert.deepEqual(got, expected, what);
}

/** The whole same mask in effective, permitted and bounding sets (a root process). */
const rootCaps = (mask: bigint): Caps => ({ eff: mask, prm: mask, bnd: mask });

/** True when the host itself can open `path` for reading (then closes it at once). */
function hostCanOpen(path: string): boolean {
  try {
    Deno.openSync(path, { read: true }).close();
    return true;
  } catch {
    return false;
  }
}

/** The host's root filesystem device, from its mountinfo: path and major:minor. */
function hostRootDevice(): { source: string; major: number; minor: number } {
  const line = lines(Deno.readTextFileSync("/proc/self/mountinfo")).find((l) => l.split(" ")[4] === "/");
  assert.ok(line, "the host's / is in its mountinfo");
  const [major, minor] = line.split(" ")[2].split(":").map(Number);
  return { source: line.split(" - ")[1].split(" ")[1], major, minor };
}

/** Asserts a failed run: Docker's 125, nothing on stdout, one line on stderr matching `reason`. */
async function assertRefused(s: Store, args: string[], reason: RegExp): Promise<void> {
  const r = await s.run(args);
  assert.equal(r.code, 125, `floka run ${args.join(" ")}: ${show(r)}`);
  assert.equal(r.stdout, "", `floka run ${args.join(" ")}`);
  assert.equal(lines(r.stderr).length, 1, `one line on stderr: floka run ${args.join(" ")}: ${show(r)}`);
  assert.match(r.stderr, reason, `floka run ${args.join(" ")}: ${show(r)}`);
  assert.deepEqual(await s.ids(), [], `a refused run leaves no container: ${args.join(" ")}`);
}

/** Runs `sh -c SCRIPT` in a new container; the result, whatever it is. */
function sh(s: Store, runArgs: string[], script: string): Promise<Result> {
  return s.run(["--rm", ...runArgs, "busybox", "sh", "-c", script]);
}

/** Starts `floka run --name c RUN_ARGS busybox sleep 60` in the background, once running. */
async function startContainer(s: Store, runArgs: string[] = []): Promise<Background> {
  const run = s.spawn(["run", "--name", "c", ...runArgs, "busybox", "sleep", "60"]);
  await waitUntil("the container to run", async () => {
    if (run.exited) {
      throw new Error(`floka run ${runArgs.join(" ")} ended: ${show(await run.finish())}`);
    }
    return (await s.ids(false)).length === 1;
  });
  return run;
}

/** `floka exec [OPTIONS] c COMMAND` that must succeed; its stdout. */
async function execOut(s: Store, args: string[], options: string[] = []): Promise<string> {
  const r = await s.floka(["exec", ...options, "c", ...args]);
  assert.equal(r.code, 0, `floka exec c ${args.join(" ")}: ${show(r)}`);
  return r.stdout;
}

const EPERM = /Operation not permitted/;

// ---------------------------------------------------------------------------------------------
// Capabilities

integrationTest(
  "security: no inheritable capabilities, whatever the options (CVE-2022-24769)",
  async () => {
    // Docker gives none since 20.10.14 (runc's `exec --cap` since 1.1.2, CVE-2022-29162): with
    // an inheritable set, a program carrying inheritable file capabilities gains them in its
    // permitted set on execve, which lets a non-root user in the container raise its privileges.
    await withStore(async (s) => {
      for (const args of [[], ["--user", "1000"], ["--cap-add", "NET_ADMIN"], ["--privileged"]]) {
        const status = await statusIn(s, args);
        assert.equal(status.CapInh, hex(0n), `floka run ${args.join(" ")}: CapInh`);
      }
      await startContainer(s);
      for (const args of [[], ["-u", "1000"]]) {
        const status = parseStatus(await execOut(s, ["cat", "/proc/self/status"], args));
        assert.equal(status.CapInh, hex(0n), `floka exec ${args.join(" ")}: CapInh`);
      }
    });
  },
);

integrationTest(
  "security: a root process has exactly Docker's 14 capabilities, none ambient",
  async () => {
    await withStore(async (s) => {
      assertCaps(await statusIn(s, []), rootCaps(DEFAULT_CAPS), "default capabilities");
      // What they allow and what they do not: CAP_CHOWN yes; CAP_NET_ADMIN and CAP_SYS_ADMIN
      // (addresses on its own lo, its own host name: harmless either way) no.
      const r = await sh(
        s,
        ["--network", "none"],
        "touch /f && chown 1000 /f && stat -c %u /f; " +
          "ip addr add 10.123.45.67/32 dev lo && echo NET_ADMIN; hostname changed && echo SYS_ADMIN; true",
      );
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(lines(r.stdout), ["1000"], show(r));
      assert.equal(lines(r.stderr).filter((l) => EPERM.test(l)).length, 2, show(r));
    });
  },
);

integrationTest("security: --user 1000 has no effective capabilities; the bounding set stays", async () => {
  await withStore(async (s) => {
    assertCaps(await statusIn(s, ["--user", "1000"]), { eff: 0n, prm: 0n, bnd: DEFAULT_CAPS }, "--user 1000");
    const r = await sh(s, ["--user", "1000"], "touch /tmp/f && chown 0 /tmp/f && echo chowned");
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, EPERM);
  });
});

integrationTest("security: --cap-add NET_ADMIN (also net_admin) adds that capability", async () => {
  await withStore(async (s) => {
    const want = rootCaps(DEFAULT_CAPS | bit(CAP_NET_ADMIN));
    assertCaps(await statusIn(s, ["--cap-add", "NET_ADMIN"]), want, "--cap-add NET_ADMIN");
    assertCaps(await statusIn(s, ["--cap-add", "net_admin"]), want, "--cap-add net_admin (case-insensitive)");
    const r = await sh(
      s,
      ["--network", "none", "--cap-add", "NET_ADMIN"],
      "ip addr add 10.123.45.67/32 dev lo && ip addr show lo",
    );
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /10\.123\.45\.67/);
    // A non-root user gets it in the bounding set only.
    assertCaps(
      await statusIn(s, ["--user", "1000", "--cap-add", "NET_ADMIN"]),
      { eff: 0n, prm: 0n, bnd: DEFAULT_CAPS | bit(CAP_NET_ADMIN) },
      "--user 1000 --cap-add NET_ADMIN",
    );
  });
});

integrationTest("security: --cap-add CAP_SYS_ADMIN (with the CAP_ prefix) adds that capability", async () => {
  await withStore(async (s) => {
    const want = rootCaps(DEFAULT_CAPS | bit(CAP_SYS_ADMIN));
    assertCaps(await statusIn(s, ["--cap-add", "CAP_SYS_ADMIN"]), want, "--cap-add CAP_SYS_ADMIN");
    const r = await sh(s, ["--cap-add", "CAP_SYS_ADMIN"], "hostname changed && hostname");
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "changed\n");
  });
});

integrationTest("security: --cap-drop CHOWN removes it: chown fails, the rest stays", async () => {
  await withStore(async (s) => {
    assertCaps(
      await statusIn(s, ["--cap-drop", "CHOWN"]),
      rootCaps(DEFAULT_CAPS & ~bit(CAP_CHOWN)),
      "--cap-drop CHOWN",
    );
    const r = await sh(s, ["--cap-drop", "CHOWN"], "touch /f && chown 1000 /f");
    assert.notEqual(r.code, 0, `chown works without CAP_CHOWN: ${show(r)}`);
    assert.match(r.stderr, EPERM);
  });
});

integrationTest(
  "security: --cap-drop ALL leaves none; --cap-add CHOWN on top gives exactly that",
  async () => {
    await withStore(async (s) => {
      assertCaps(await statusIn(s, ["--cap-drop", "ALL"]), rootCaps(0n), "--cap-drop ALL");
      const none = await sh(s, ["--cap-drop", "ALL"], "touch /f && chown 1000 /f");
      assert.notEqual(none.code, 0, show(none));
      assert.match(none.stderr, EPERM);

      const args = ["--cap-drop", "ALL", "--cap-add", "CHOWN"];
      assertCaps(await statusIn(s, args), rootCaps(bit(CAP_CHOWN)), args.join(" "));
      const r = await sh(
        s,
        args,
        "touch /f && chown 1000 /f && stat -c %u /f; mknod /tmp/n c 1 3 && echo made",
      );
      assert.equal(r.stdout, "1000\n", `chown works, mknod (CAP_MKNOD, ${CAP_MKNOD}) does not: ${show(r)}`);
      assert.match(r.stderr, EPERM);
    });
  },
);

integrationTest("security: --cap-add ALL grants every capability the host has", async () => {
  await withStore(async (s) => {
    assertCaps(await statusIn(s, ["--cap-add", "ALL"]), rootCaps(HOST_BOUNDING), "--cap-add ALL");
  });
});

integrationTest("security: an unknown capability exits 125 with one line naming it", async () => {
  await withStore(async (s) => {
    await assertRefused(s, ["--cap-add", "FOO", "busybox", "true"], /FOO/);
    await assertRefused(s, ["--cap-drop", "CAP_NOT_A_CAP", "busybox", "true"], /NOT_A_CAP/);
  });
});

// ---------------------------------------------------------------------------------------------
// --privileged

integrationTest("security: --privileged has every capability and no seccomp filter", async () => {
  await withStore(async (s) => {
    const status = await statusIn(s, ["--privileged"]);
    assertCaps(status, rootCaps(HOST_BOUNDING), "--privileged");
    assert.equal(status.Seccomp, "0", "--privileged runs without a seccomp filter");
  });
});

integrationTest("security: --privileged sees the host's devices and may open them", async () => {
  await withStore(async (s) => {
    const root = hostRootDevice();
    const devices = [root.source, "/dev/loop-control", "/dev/kmsg"].filter((d) => d.startsWith("/dev/"))
      .filter(pathExists);
    assert.ok(devices.length > 0, "the host has none of its root device, /dev/loop-control, /dev/kmsg");
    // stat's %t:%T: the major and minor numbers in hex, on the host (coreutils) and inside (busybox).
    const format = "%n %F %t:%T";
    const host = await new Deno.Command("stat", { args: ["-c", format, ...devices] }).output();
    assert.ok(host.success, new TextDecoder().decode(host.stderr));
    const hostIds = lines(new TextDecoder().decode(host.stdout));
    const script = `stat -c '${format}' ${devices.join(" ")}`;
    const r = await sh(s, ["--privileged"], script);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout), hostIds, "the host's device nodes, same numbers");
    // Opening for reading only, and only what the host itself may open: nothing is read from
    // /dev/loop-control, and a byte of the root disk is harmless.
    const openable = devices.filter((d) => d !== "/dev/kmsg" && hostCanOpen(d));
    for (const dev of openable) {
      const probe = dev === root.source ? `head -c 1 ${dev} | wc -c` : `true < ${dev} && echo 1`;
      const opened = await sh(s, ["--privileged"], probe);
      assert.equal(opened.code, 0, `${dev}: ${show(opened)}`);
      assert.equal(opened.stdout.trim(), "1", `${dev} opens under --privileged: ${show(opened)}`);
    }
    if (!hostCanOpen(root.source)) {
      console.log(`(the host itself cannot open ${root.source}: not read under --privileged)`);
    }
  });
});

integrationTest("security: --privileged masks nothing and mounts /sys and /proc/sys read-write", async () => {
  await withStore(async (s) => {
    const r = await sh(
      s,
      ["--privileged"],
      "cat /proc/self/mountinfo; echo ---; ls -A /sys/firmware | wc -l",
    );
    assert.equal(r.code, 0, show(r));
    const [mountinfo, firmware] = r.stdout.split("---\n");
    const mounts = parseMountinfo(mountinfo);
    const masked = [
      "/proc/kcore",
      "/proc/keys",
      "/proc/timer_list",
      "/proc/sched_debug",
      "/proc/acpi",
      "/proc/scsi",
      "/sys/firmware",
      "/proc/bus",
      "/proc/fs",
      "/proc/irq",
      "/proc/sys",
      "/proc/sysrq-trigger",
    ];
    for (const path of masked) {
      assert.ok(
        !mounts.some((m) => m.mountPoint === path),
        `${path} is still masked or read-only:\n${mountinfo}`,
      );
    }
    const sys = mounts.find((m) => m.mountPoint === "/sys");
    assert.ok(sys?.options.includes("rw"), `/sys is not read-write under --privileged:\n${mountinfo}`);
    if (pathExists("/sys/firmware") && [...Deno.readDirSync("/sys/firmware")].length > 0) {
      assert.notEqual(firmware.trim(), "0", "/sys/firmware is empty under --privileged");
    }
  });
});

// ---------------------------------------------------------------------------------------------
// no_new_privs

integrationTest(
  "security: no_new_privs is off by default and on with --security-opt no-new-privileges",
  async () => {
    await withStore(async (s) => {
      assert.equal((await statusIn(s, [])).NoNewPrivs, "0", "default");
      for (const opt of ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"]) {
        assert.equal((await statusIn(s, ["--security-opt", opt])).NoNewPrivs, "1", `--security-opt ${opt}`);
      }
      assert.equal(
        (await statusIn(s, ["--security-opt", "no-new-privileges=false"])).NoNewPrivs,
        "0",
        "--security-opt no-new-privileges=false",
      );
      // For another user too (set before the switch to the user, kept across execve).
      assert.equal(
        (await statusIn(s, ["--user", "1000", "--security-opt", "no-new-privileges"])).NoNewPrivs,
        "1",
        "--user 1000 --security-opt no-new-privileges",
      );
    });
  },
);

// ---------------------------------------------------------------------------------------------
// seccomp

/** True when the host lets a process make a user namespace (what the seccomp probes use). */
function hostAllowsUserNamespaces(): boolean {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/user/max_user_namespaces").trim()) > 0;
  } catch {
    return false;
  }
}

integrationTest("security: the default seccomp profile filters; ordinary shell work passes", async () => {
  await withStore(async (s) => {
    assert.equal((await statusIn(s, [])).Seccomp, "2", "the default profile is a seccomp filter");
    assert.equal((await statusIn(s, ["--user", "1000"])).Seccomp, "2", "--user 1000");
    // A user namespace needs no capability from the kernel: only the profile refuses it
    // (Docker allows unshare/clone of namespaces with CAP_SYS_ADMIN only).
    const userns = await sh(s, [], "unshare -U true && echo unshared");
    assert.notEqual(userns.code, 0, `unshare -U passes the default profile: ${show(userns)}`);
    assert.match(userns.stderr, EPERM);
    // What a shell, a pipeline and common tools do is allowed.
    const work = await sh(
      s,
      [],
      "mkdir -p /work/a && echo hello > /work/a/f && cat /work/a/f | tr a-z A-Z | wc -c; " +
        "ln -s /work/a/f /work/l && chmod 600 /work/a/f && mv /work/l /work/m && rm /work/m; " +
        "sleep 0.1 & wait; ps -o pid | grep -c '^ *1$'; date +%Y >/dev/null && id -u && " +
        "sh -c 'exit 3'; echo $?",
    );
    assert.equal(work.code, 0, show(work));
    assert.deepEqual(lines(work.stdout), ["6", "1", "0", "3"], show(work));
    assert.equal(work.stderr, "", show(work));
  });
});

integrationTest("security: --security-opt seccomp=unconfined runs without a filter", async () => {
  await withStore(async (s) => {
    assert.equal((await statusIn(s, ["--security-opt", "seccomp=unconfined"])).Seccomp, "0");
    if (hostAllowsUserNamespaces()) {
      const r = await sh(s, ["--security-opt", "seccomp=unconfined"], "unshare -U true && echo unshared");
      assert.equal(r.code, 0, `unshare -U without a filter: ${show(r)}`);
      assert.equal(r.stdout, "unshared\n");
    }
  });
});

integrationTest("security: with CAP_SYS_ADMIN the default profile allows mount and unshare", async () => {
  await withStore(async (s) => {
    const script = "mkdir -p /mnt && mount -t tmpfs none /mnt && grep -c ' /mnt ' /proc/self/mountinfo; " +
      "unshare -m true && echo unshared";
    const denied = await sh(s, [], script);
    assert.equal(denied.stdout, "", `mount and unshare without CAP_SYS_ADMIN: ${show(denied)}`);
    const allowed = await sh(s, ["--cap-add", "SYS_ADMIN"], script);
    assert.equal(allowed.code, 0, show(allowed));
    assert.deepEqual(lines(allowed.stdout), ["1", "unshared"], show(allowed));
  });
});

/** Docker's seccomp profile format: allow everything but mkdir and mkdirat (EPERM). */
const NO_MKDIR_PROFILE = {
  defaultAction: "SCMP_ACT_ALLOW",
  syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 1 }],
};

integrationTest(
  "security: --security-opt seccomp=PROFILE applies a custom profile, to exec too",
  async () => {
    await withStore(async (s) => {
      const profile = `${s.root}/no-mkdir.json`;
      Deno.writeTextFileSync(profile, JSON.stringify(NO_MKDIR_PROFILE, null, 2));
      const opt = ["--security-opt", `seccomp=${profile}`];
      assert.equal((await statusIn(s, opt)).Seccomp, "2");
      const r = await sh(s, opt, "touch /y && echo touched; mkdir /x && echo made; test -d /x || echo no-x");
      assert.deepEqual(lines(r.stdout), ["touched", "no-x"], show(r));
      assert.match(r.stderr, EPERM);
      // Only this profile: what the default one refuses is allowed here.
      if (hostAllowsUserNamespaces()) {
        const userns = await sh(s, opt, "unshare -U true && echo unshared");
        assert.equal(userns.stdout, "unshared\n", `the custom profile replaces the default: ${show(userns)}`);
      }
      await startContainer(s, opt);
      const exec = await s.floka([
        "exec",
        "c",
        "sh",
        "-c",
        "touch /z && echo touched; mkdir /w && echo made",
      ]);
      assert.equal(exec.stdout, "touched\n", `the profile holds for floka exec: ${show(exec)}`);
      assert.match(exec.stderr, EPERM);
    });
  },
);

integrationTest("security: a bad --security-opt or seccomp profile exits 125 with one line", async () => {
  await withStore(async (s) => {
    const malformed = `${s.root}/malformed.json`;
    Deno.writeTextFileSync(malformed, '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [');
    await assertRefused(
      s,
      ["--security-opt", `seccomp=${malformed}`, "busybox", "true"],
      /seccomp|malformed/i,
    );
    const missing = `${s.root}/no-such-profile.json`;
    await assertRefused(s, ["--security-opt", `seccomp=${missing}`, "busybox", "true"], /no-such-profile/);
    await assertRefused(s, ["--security-opt", "bogus-option=1", "busybox", "true"], /bogus-option/);
  });
});

/**
 * System calls busybox cannot make, by a tiny static C program: each line says whether the
 * call worked or why not. All three are harmless: a new session keyring for this process,
 * its own personality flags, and a read-only open by handle (the "shocker" escape).
 */
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *name, long r) {
  printf("%s: %s\n", name, r < 0 ? strerror(errno) : "ok");
}

int main(void) {
  say("keyctl", syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0L));
  say("personality", personality(ADDR_NO_RANDOMIZE));
  /* A made-up handle: whatever it names, opening by handle needs CAP_DAC_READ_SEARCH. */
  struct file_handle *fh = calloc(1, sizeof *fh + 8);
  fh->handle_bytes = 8;
  fh->handle_type = 1; /* FILEID_INO32_GEN */
  int root = open("/", O_RDONLY | O_DIRECTORY);
  say("open_by_handle_at", open_by_handle_at(root, fh, O_RDONLY));
  return 0;
}
`;

/** Why this host cannot build a static C program (no gcc, no static libc), or null when it can. */
function staticBuildMissing(): string | null {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/trivial.c`, "int main(void) { return 0; }\n");
    const out = new Deno.Command("gcc", { args: ["-static", "-o", `${dir}/trivial`, `${dir}/trivial.c`] })
      .outputSync();
    return out.success ? null : `no static C build here: ${new TextDecoder().decode(out.stderr).trim()}`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "no gcc here (apt-get install gcc libc6-dev)";
    throw err;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Builds the probe into the image as /usr/bin/syscall-probe. */
async function installProbe(s: Store): Promise<void> {
  const source = `${s.root}/probe.c`;
  Deno.writeTextFileSync(source, PROBE_C);
  const built = await new Deno.Command("gcc", {
    args: ["-static", "-O2", "-o", `${s.imageDir()}/rootfs/usr/bin/syscall-probe`, source],
    stdout: "null",
  }).output();
  assert.ok(built.success, `the probe does not build: ${new TextDecoder().decode(built.stderr)}`);
}

integrationTest(
  "security: the default profile refuses keyctl, odd personalities, open_by_handle_at",
  async () => {
    await withStore(async (s) => {
      await installProbe(s);
      const confined = await s.run(["--rm", "busybox", "syscall-probe"]);
      assert.equal(confined.code, 0, show(confined));
      assert.deepEqual(lines(confined.stdout), [
        "keyctl: Operation not permitted",
        "personality: Operation not permitted",
        "open_by_handle_at: Operation not permitted",
      ], "under the default profile");
      // The first two are the profile's doing: unconfined, they work. open_by_handle_at still
      // needs CAP_DAC_READ_SEARCH, which the container lacks.
      const unconfined = await s.run([
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "syscall-probe",
      ]);
      assert.equal(unconfined.code, 0, show(unconfined));
      const [keyctl, personality, byHandle] = lines(unconfined.stdout);
      assert.deepEqual([keyctl, personality], ["keyctl: ok", "personality: ok"], "with seccomp=unconfined");
      assert.notEqual(byHandle, "open_by_handle_at: ok", "with seccomp=unconfined");
    });
  },
  IS_ROOT ? staticBuildMissing() : null,
);

// ---------------------------------------------------------------------------------------------
// Masked and read-only paths, /dev

integrationTest(
  "security: masked paths read empty; /proc/{bus,fs,irq,sysrq-trigger} are read-only",
  async () => {
    await withStore(async (s) => {
      // isolation_test.ts checks /proc/kcore, /proc/keys, /proc/timer_list, /proc/acpi, /proc/sys.
      const files = ["/proc/sched_debug", "/proc/latency_stats", "/proc/timer_stats"].filter(pathExists);
      const dirs = ["/proc/scsi", "/proc/asound", "/sys/firmware", "/sys/devices/virtual/powercap"].filter(
        pathExists,
      );
      const readonly = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sysrq-trigger"].filter(pathExists);
      assert.ok(files.length + dirs.length > 0, "the host has none of the masked paths checked here");
      const script = [
        ...files.map((p) => `echo ${p} $(cat ${p} 2>/dev/null | wc -c)`),
        ...dirs.map((p) => `echo ${p} $(ls -A ${p} | wc -l)`),
        "echo ---",
        "cat /proc/self/mountinfo",
      ].join("; ");
      const r = await sh(s, [], script);
      assert.equal(r.code, 0, show(r));
      const [contents, mountinfo] = r.stdout.split("---\n");
      assert.deepEqual(lines(contents), [...files, ...dirs].map((p) => `${p} 0`), "masked paths read empty");
      const mounts = parseMountinfo(mountinfo);
      for (const path of readonly) {
        const m = mounts.find((e) => e.mountPoint === path);
        assert.ok(m?.options.includes("ro"), `${path} is not mounted read-only:\n${mountinfo}`);
      }
      for (const path of dirs) {
        const m = mounts.find((e) => e.mountPoint === path);
        assert.ok(m?.options.includes("ro"), `${path} is not masked by a read-only mount:\n${mountinfo}`);
      }
    });
  },
);

const MINIMAL_DEV = [
  "fd",
  "full",
  "mqueue",
  "null",
  "ptmx",
  "pts",
  "random",
  "shm",
  "stderr",
  "stdin",
  "stdout",
  "tty",
  "urandom",
  "zero",
];

integrationTest("security: /dev holds only the minimal devices", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "ls", "-A", "/dev"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(lines(r.stdout).sort(), MINIMAL_DEV, "/dev without -t");
  });
});

integrationTest("security: with -t, /dev also has console, as Docker's", async () => {
  await withStore(async (s) => {
    const t = await s.run(["--rm", "-t", "busybox", "ls", "-A", "-1", "/dev"]);
    assert.equal(t.code, 0, show(t));
    assert.deepEqual(
      lines(t.stdout.replaceAll("\r", "")).sort(),
      [...MINIMAL_DEV, "console"].sort(),
      "/dev with -t",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Device cgroup

integrationTest(
  "security: the device cgroup refuses devices outside Docker's list, even made with mknod",
  async () => {
    await withStore(async (s) => {
      const root = hostRootDevice();
      const nodes = [
        `b ${root.major} ${root.minor} /tmp/hostdisk`,
        "c 1 1 /tmp/mem",
        ...(pathExists("/dev/loop-control") ? ["c 10 237 /tmp/loop-control"] : []),
      ];
      // mknod itself is allowed (CAP_MKNOD, and Docker's "c *:* m" and "b *:* m"); opening the
      // node for reading must fail with EPERM. `true < node` opens it and reads nothing.
      const script = nodes.map((n) => {
        const [type, major, minor, path] = n.split(" ");
        return `mknod ${path} ${type} ${major} ${minor} 2>/dev/null; ` +
          `if test -e ${path}; then true < ${path} && echo "${path} opened"; else echo "${path} not made" >&2; fi`;
      }).join("; ");
      const r = await sh(s, [], script);
      assert.equal(r.stdout, "", `a device outside the container's list opened: ${show(r)}`);
      const refusals = lines(r.stderr).filter((l) => EPERM.test(l));
      assert.equal(refusals.length, nodes.length, show(r));
      // An allowed device made with mknod works: the list is Docker's, not "nothing".
      const allowed = await sh(
        s,
        [],
        "mknod /tmp/null2 c 1 3 && echo discarded > /tmp/null2 && wc -c < /tmp/null2",
      );
      assert.equal(allowed.code, 0, show(allowed));
      assert.equal(allowed.stdout.trim(), "0");
    });
  },
);

// ---------------------------------------------------------------------------------------------
// Classic escapes

integrationTest(
  "security: chroot /proc/1/root stays in the container; a host file is unreachable",
  async () => {
    await withStore(async (s) => {
      const marker = `floka-host-marker-${crypto.randomUUID()}`;
      const hostDir = await Deno.makeTempDir({ prefix: "floka-it-host-" });
      try {
        Deno.writeTextFileSync(`${hostDir}/${marker}`, "host only\n");
        const r = await sh(
          s,
          [],
          `touch /container-marker; ` +
            `chroot /proc/1/root sh -c 'test -e /container-marker && echo container-root; cat ${hostDir}/${marker}'; ` +
            `cat /proc/1/root${hostDir}/${marker} /proc/self/root${hostDir}/${marker} ${hostDir}/${marker}; ` +
            `cd /proc/1/root/../../../../.. && ls -A | grep -c container-marker; ` +
            `find / \\( -path /proc -o -path /sys \\) -prune -o -name ${marker} -print`,
        );
        assert.deepEqual(lines(r.stdout), ["container-root", "1"], `the chroot reached the host: ${show(r)}`);
        assert.ok(!r.stdout.includes("host only"), show(r));
      } finally {
        await Deno.remove(hostDir, { recursive: true });
      }
    });
  },
);

integrationTest("security: the host's disk cannot be mounted, even with CAP_SYS_ADMIN", async () => {
  await withStore(async (s) => {
    const root = hostRootDevice();
    // Read-only, in the container's own mount namespace: harmless even if it worked.
    const script = `mkdir -p /mnt; mknod /tmp/hostdisk b ${root.major} ${root.minor}; ` +
      `mount -o ro /tmp/hostdisk /mnt && echo mounted; ls -A /mnt | wc -l`;
    for (const args of [[], ["--cap-add", "SYS_ADMIN"]]) {
      const r = await sh(s, args, script);
      assert.deepEqual(lines(r.stdout), ["0"], `mounting the host's disk ${args.join(" ")}: ${show(r)}`);
    }
  });
});

integrationTest("security: /proc/sysrq-trigger cannot be written", async () => {
  await withStore(async (s) => {
    // "h" only prints the SysRq help to the kernel log: harmless should the write get through.
    const r = await sh(s, [], "echo h > /proc/sysrq-trigger && echo written");
    assert.notEqual(r.code, 0, show(r));
    assert.equal(r.stdout, "", show(r));
    assert.match(r.stderr, /Read-only file system/);
  });
}, pathExists("/proc/sysrq-trigger") ? null : "this host has no /proc/sysrq-trigger");

integrationTest("security: no host process, binary or descriptor is reachable through /proc", async () => {
  await withStore(async (s) => {
    const r = await sh(
      s,
      [],
      "for p in /proc/[0-9]*; do echo \"$(readlink $p/exe) $(tr '\\0' ' ' < $p/cmdline)\"; done; echo ---; " +
        // `; true`: else the shell would exec ls as its last command, and ls would be PID 1.
        "ls /proc/self/fd; echo ---; ls /proc/1/fd; true",
    );
    assert.equal(r.code, 0, show(r));
    const [procs, selfFds, pid1Fds] = r.stdout.split("---\n");
    // The glob is expanded before any command substitution forks: the shell alone.
    assert.deepEqual(lines(procs).map((l) => l.split(" ")[0]), ["/bin/busybox"], show(r));
    for (const word of ["deno", "main.ts", "floka", Deno.execPath()]) {
      assert.ok(!procs.includes(word), `${word} shows in the container's /proc:\n${procs}`);
    }
    // ls opens the directory it lists: descriptor 3.
    assert.deepEqual(lines(selfFds), ["0", "1", "2", "3"], "inherited descriptors");
    assert.deepEqual(lines(pid1Fds), ["0", "1", "2"], "PID 1 holds only stdin, stdout and stderr");
  });
});

integrationTest(
  "security: -w through /proc/self/fd cannot leave the container (CVE-2024-21626)",
  async () => {
    await withStore(async (s) => {
      const workdirs = [3, 4, 5, 6, 7, 8, 9].map((n) => `/proc/self/fd/${n}`).concat([
        "/proc/self/cwd",
        "/proc/1/cwd",
      ]);
      const refusals: Result[] = [];
      for (const dir of workdirs) {
        // From a working directory outside the container's root, ".." climbs to the host's root;
        // inside it, it stops at the container's.
        const r = await s.run([
          "--rm",
          "-w",
          dir,
          "busybox",
          "sh",
          "-c",
          "pwd; cd ../../../../../../../../..; stat -c %d:%i . /",
        ]);
        if (r.code !== 0) {
          refusals.push(r); // contained; how it says so is checked below
          continue;
        }
        const [pwd, climbed, root] = lines(r.stdout);
        assert.ok(pwd?.startsWith("/") && !pwd.includes("unreachable"), `-w ${dir}: ${show(r)}`);
        assert.equal(climbed, root, `-w ${dir} starts outside the container's root: ${show(r)}`);
      }
      // A refusal is an error of Floka's (125) or of the working directory (126, 127), before
      // the command ran. (Its wording is not checked here: a start failure sometimes comes with
      // a "read(N) failed" stack trace instead, whatever the cause; run_test.ts covers messages.)
      for (const r of refusals) {
        assert.ok([125, 126, 127].includes(r.code), show(r));
        assert.equal(r.stdout, "", show(r));
        assert.match(r.stderr, /^floka: /, show(r));
      }
    });
  },
);

// ---------------------------------------------------------------------------------------------
// exec

/** The capability, seccomp and no_new_privs lines of a /proc/PID/status text. */
function securityFields(text: string): string[] {
  const status = parseStatus(text);
  return ["CapEff", "CapPrm", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"].map((f) => `${f}: ${status[f]}`);
}

integrationTest("security: exec gets the container's capabilities, seccomp and no_new_privs", async () => {
  await withStore(async (s) => {
    await startContainer(s, ["--cap-add", "NET_ADMIN", "--security-opt", "no-new-privileges"]);
    const own = securityFields(await execOut(s, ["cat", "/proc/self/status"]));
    const mask = hex(DEFAULT_CAPS | bit(CAP_NET_ADMIN));
    assert.deepEqual(own, [
      `CapEff: ${mask}`,
      `CapPrm: ${mask}`,
      `CapBnd: ${mask}`,
      `CapAmb: ${hex(0n)}`,
      "NoNewPrivs: 1",
      "Seccomp: 2",
    ]);
    assert.deepEqual(securityFields(await execOut(s, ["cat", "/proc/1/status"])), own, "the same as PID 1");
    // Nothing of Floka shows: every process is the container's busybox.
    const procs = await execOut(s, [
      "sh",
      "-c",
      "for p in /proc/[0-9]*; do echo \"$(readlink $p/exe) $(tr '\\0' ' ' < $p/cmdline)\"; done",
    ]);
    for (const line of lines(procs)) {
      assert.ok(line.startsWith("/bin/busybox "), `a process that is not the container's:\n${procs}`);
    }
    assert.ok(!procs.includes("deno") && !procs.includes("main.ts"), procs);
  });
});

integrationTest(
  "security: exec in a default container has the default profile; --cap-drop ALL holds",
  async () => {
    await withStore(async (s) => {
      await startContainer(s, ["--cap-drop", "ALL"]);
      assert.deepEqual(securityFields(await execOut(s, ["cat", "/proc/self/status"])), [
        `CapEff: ${hex(0n)}`,
        `CapPrm: ${hex(0n)}`,
        `CapBnd: ${hex(0n)}`,
        `CapAmb: ${hex(0n)}`,
        "NoNewPrivs: 0",
        "Seccomp: 2",
      ]);
      const chown = await s.floka(["exec", "c", "sh", "-c", "touch /f && chown 1000 /f"]);
      assert.notEqual(chown.code, 0, show(chown));
      assert.match(chown.stderr, EPERM);
    });
  },
);

integrationTest("security: exec in a --privileged container has every capability, no filter", async () => {
  await withStore(async (s) => {
    await startContainer(s, ["--privileged"]);
    const status = parseStatus(await execOut(s, ["cat", "/proc/self/status"]));
    assertCaps(status, rootCaps(HOST_BOUNDING), "exec in a --privileged container");
    assert.equal(status.Seccomp, "0");
  });
});
