/**
 * `floka exec`'s inside (exec_main.ts) against a recording fake of its system calls, so
 * the order that keeps it safe is tested without root: non-dumpable first, the cgroup
 * before the namespaces, every namespace descriptor closed once entered, the mount
 * namespace last and after unshare(CLONE_FS), root and cwd checked, the terminal taken
 * as root, capabilities dropped before the user switch. And the host's spec: Docker's
 * environment, working directory and user rules.
 */
import assert from "node:assert/strict";
import { CAPABILITIES, DEFAULT_CAPABILITIES } from "../../lib/capabilities.ts";
import { EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, FlokaError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import type { Container } from "../../src/containers/store.ts";
import { execSpec } from "../../src/runtime/exec.ts";
import { type ExecSpec, type ExecSys, NAMESPACES, setUpExec } from "../../src/runtime/exec_main.ts";
import type { FileKind } from "../../src/runtime/sys.ts";

const CLONE_FS = 0x200;

interface Call {
  name: string;
  args: unknown[];
}

/** Calls that only look: left out when checking what setup did. */
const QUERIES = new Set([
  "readlinkIfSymlink",
  "lstatKind",
  "isExecutableFile",
  "readTextFile",
  "identity",
  "cwd",
]);

/**
 * Records every call. Files are a map of container paths (the fake is "inside" once the
 * mount namespace is joined); any method of the Sys interface not written out here is
 * recorded and does nothing, so the fake keeps up when Sys grows.
 */
function fakeSys(opts: { rootChanges?: boolean; cwdUnreachable?: boolean } = {}) {
  const calls: Call[] = [];
  const files = new Map<string, { kind: FileKind; text?: string; exec?: boolean; target?: string }>([
    ["/", { kind: "dir" }],
    ["/etc", { kind: "dir" }],
    ["/etc/passwd", {
      kind: "file",
      text: "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    }],
    ["/etc/group", { kind: "file", text: "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n" }],
    ["/bin", { kind: "dir" }],
    ["/bin/sh", { kind: "file", exec: true }],
    ["/srv", { kind: "dir" }],
    ["/escape", { kind: "symlink", target: "../../../etc" }],
    ["/proc/sys/kernel/cap_last_cap", { kind: "file", text: "40\n" }],
  ]);
  let inside = false;
  let cwd = "/";
  const record = (name: string, ...args: unknown[]) => calls.push({ name, args });
  const known: Partial<ExecSys> = {
    readlinkIfSymlink(path) {
      record("readlinkIfSymlink", path);
      const f = files.get(path);
      return f?.kind === "symlink" ? f.target! : null;
    },
    lstatKind(path) {
      record("lstatKind", path);
      return files.get(path)?.kind ?? null;
    },
    isExecutableFile(path) {
      record("isExecutableFile", path);
      return files.get(path)?.exec === true;
    },
    readTextFile(path) {
      record("readTextFile", path);
      return files.get(path)?.text ?? null;
    },
    identity(path) {
      record("identity", path);
      return inside && opts.rootChanges !== false ? "container-root" : "host-root";
    },
    cwd() {
      record("cwd");
      if (opts.cwdUnreachable) throw new Error("getcwd: ENOENT");
      return cwd;
    },
    setns(fd, nstype) {
      record("setns", fd, nstype);
      if (nstype === L.CLONE_NEWNS) inside = true;
    },
    chdir(path) {
      record("chdir", path);
      if (files.get(path)?.kind !== "dir") throw new FlokaError(`chdir(${path}): ENOENT`);
      cwd = path;
    },
    umask(mask) {
      record("umask", mask);
      return 0o022;
    },
  };
  const sys = new Proxy(known, {
    get(target, name: string) {
      return target[name as keyof ExecSys] ?? ((...args: unknown[]) => record(name, ...args));
    },
  }) as ExecSys;
  const actions = () => calls.filter((c) => !QUERIES.has(c.name));
  const index = (name: string, ...args: unknown[]) =>
    actions().findIndex((c) => c.name === name && args.every((a, i) => c.args[i] === a));
  return { sys, calls, actions, index };
}

function spec(overrides: Partial<ExecSpec["process"]> = {}, tty = false): ExecSpec {
  return {
    id: "f".repeat(64),
    namespaces: { cgroup: 11, ipc: 12, uts: 13, net: 14, mnt: 15 },
    cgroupJoinFiles: ["/sys/fs/cgroup/memory/floka/x/tasks", "/sys/fs/cgroup/pids/floka/x/tasks"],
    process: {
      args: ["sh", "-c", "true"],
      env: ["PATH=/usr/bin:/bin"],
      cwd: "/srv",
      user: "",
      capabilities: [...DEFAULT_CAPABILITIES],
      ...overrides,
    },
    tty,
    windowSize: tty ? { rows: 24, cols: 80 } : null,
  };
}

Deno.test("setUpExec: the steps in order, up to the plan for execve", () => {
  const f = fakeSys();
  const plan = setUpExec(spec(), f.sys, 9);
  assert.deepEqual(plan, {
    path: "/bin/sh",
    argv: ["sh", "-c", "true"],
    env: ["PATH=/usr/bin:/bin", "HOME=/root"],
  });
  const actions = f.actions();
  assert.deepEqual(
    actions[0],
    { name: "prctl", args: [L.PR_SET_DUMPABLE, 0] },
    "non-dumpable before anything",
  );
  const writes = actions.filter((c) => c.name === "writeTextFile");
  assert.deepEqual(writes.map((c) => c.args), spec().cgroupJoinFiles.map((file) => [file, "0"]));
  const firstSetns = f.index("setns");
  assert.ok(
    actions.findLastIndex((c) => c.name === "writeTextFile") < firstSetns,
    "cgroup before namespaces",
  );
  assert.ok(f.index("unshare", CLONE_FS) < f.index("setns", 15, L.CLONE_NEWNS), "CLONE_FS unshared first");
  // Each namespace in turn, its descriptor closed at once; the mount namespace last.
  const entered = actions.slice(firstSetns, firstSetns + 2 * NAMESPACES.length);
  assert.deepEqual(entered, [
    { name: "setns", args: [11, L.CLONE_NEWCGROUP] },
    { name: "close", args: [11] },
    { name: "setns", args: [12, L.CLONE_NEWIPC] },
    { name: "close", args: [12] },
    { name: "setns", args: [13, L.CLONE_NEWUTS] },
    { name: "close", args: [13] },
    { name: "setns", args: [14, L.CLONE_NEWNET] },
    { name: "close", args: [14] },
    { name: "setns", args: [15, L.CLONE_NEWNS] },
    { name: "close", args: [15] },
  ]);
  assert.deepEqual(actions[firstSetns + 10], { name: "chdir", args: ["/"] }, "root and cwd: the container's");
  assert.deepEqual(actions[firstSetns + 11], { name: "chdir", args: ["/srv"] }, "then the working directory");
  assert.equal(f.index("takeTerminal"), -1, "no terminal without -t");
  // Capabilities: all but Docker's 14 dropped from the bounding set, as root, before the user switch.
  const drops = actions.filter((c) => c.name === "prctl" && c.args[0] === L.PR_CAPBSET_DROP);
  assert.equal(drops.length, 41 - DEFAULT_CAPABILITIES.length);
  const lastDrop = actions.findLastIndex((c) => c.name === "prctl" && c.args[0] === L.PR_CAPBSET_DROP);
  assert.ok(lastDrop < f.index("setgroups"));
  assert.deepEqual(actions.slice(-5).map((c) => c.name), [
    "setgroups",
    "setgid",
    "setuid",
    "umask",
    "resetSignals",
  ]);
  assert.equal(f.index("markFdsCloseOnExec"), -1, "left to the caller, right before execve");
});

Deno.test("setUpExec: -t takes the container's terminal as root, with the user's ownership and window size", () => {
  const f = fakeSys();
  setUpExec(spec({ user: "alice" }, true), f.sys, 9);
  const take = f.index("takeTerminal", 9, 1000, 1000);
  assert.ok(take > f.index("chdir", "/srv"), "inside the container");
  assert.deepEqual(f.actions()[take].args[3], { rows: 24, cols: 80 });
  assert.ok(take < f.index("setuid", 1000));
  assert.deepEqual(f.actions().find((c) => c.name === "setgroups")?.args, [[1000, 50]]);
});

Deno.test("setUpExec: the user comes from the container's /etc/passwd, HOME with it unless given", () => {
  const f = fakeSys();
  const plan = setUpExec(spec({ user: "alice" }), f.sys, 9);
  assert.deepEqual(plan.env, ["PATH=/usr/bin:/bin", "HOME=/home/alice"]);
  assert.ok(f.index("setuid", 1000) > 0);
  const given = setUpExec(spec({ user: "1000", env: ["HOME=/tmp"] }), fakeSys().sys, 9);
  assert.deepEqual(given.env, ["HOME=/tmp"]);
  assert.throws(() => setUpExec(spec({ user: "bob" }), fakeSys().sys, 9), /unable to find user bob/);
});

Deno.test("setUpExec: refuses a mount namespace whose root is the host's", () => {
  const f = fakeSys({ rootChanges: false });
  assert.throws(() => setUpExec(spec(), f.sys, 9), /host's root/);
  assert.equal(f.index("setuid"), -1);
});

Deno.test("setUpExec: the working directory is resolved inside the container and must exist (126)", () => {
  const f = fakeSys();
  setUpExec(spec({ cwd: "/escape" }), f.sys, 9);
  assert.ok(f.index("chdir", "/etc") > 0, "a symlink's `..` stops at the container's root");
  for (
    const [s, why] of [[fakeSys(), "missing"], [
      fakeSys({ cwdUnreachable: true }),
      "outside the root",
    ]] as const
  ) {
    let caught: unknown;
    try {
      setUpExec(spec({ cwd: why === "missing" ? "/no/such" : "/srv" }), s.sys, 9);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof FlokaError, `${why}: ${caught}`);
    assert.equal(caught.exitCode, EXIT_CANNOT_EXECUTE, `${why}: ${caught.message}`);
    assert.equal(s.index("setuid"), -1);
  }
});

Deno.test("setUpExec: a command not in the container's PATH is 127 before anything changes identity", () => {
  const f = fakeSys();
  let caught: unknown;
  try {
    setUpExec(spec({ args: ["nope"] }), f.sys, 9);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FlokaError);
  assert.equal(caught.exitCode, EXIT_NOT_FOUND);
  assert.equal(f.index("setuid"), -1);
});

function container(config: Partial<Container["record"]["config"]> = {}): Container {
  return {
    dir: "/store/containers/x",
    state: { status: "running", pid: 42, pidStartTime: 1 },
    record: {
      id: "a".repeat(64),
      name: "c",
      created: "2026-01-01T00:00:00Z",
      image: "busybox:latest",
      lowerDirs: [],
      path: "sleep",
      args: ["60"],
      config: {
        hostname: "aaaaaaaaaaaa",
        env: ["PATH=/bin", "HOSTNAME=aaaaaaaaaaaa", "A=container"],
        workingDir: "/srv",
        user: "alice",
        entrypoint: null,
        cmd: ["sleep", "60"],
        ...config,
      },
      hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
    },
  };
}

const request = { args: ["env"], env: [], interactive: false, tty: false, detach: false };
const namespaces = { cgroup: 1, ipc: 2, uts: 3, net: 4, mnt: 5 };

Deno.test("execSpec: the container's environment, working directory and user unless overridden", () => {
  const s = execSpec(container(), request, namespaces, ["/x/tasks"]);
  assert.deepEqual(s.process, {
    args: ["env"],
    env: ["PATH=/bin", "HOSTNAME=aaaaaaaaaaaa", "A=container"],
    cwd: "/srv",
    user: "alice",
    capabilities: CAPABILITIES.filter((c) => DEFAULT_CAPABILITIES.includes(c)),
    // The container's seccomp filter, as its own processes have it.
    seccomp: s.process.seccomp,
  });
  assert.ok((s.process.seccomp ?? "").length > 100);
  const privileged = container();
  privileged.record.hostConfig = { ...privileged.record.hostConfig, privileged: true, noNewPrivileges: true };
  const p = execSpec(privileged, request, namespaces, []).process;
  assert.equal(p.capabilities.length, CAPABILITIES.length);
  assert.equal(p.seccomp, undefined);
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(s.namespaces, namespaces);
  assert.deepEqual(s.cgroupJoinFiles, ["/x/tasks"]);
  assert.equal(s.tty, false);

  const o = execSpec(
    container(),
    { ...request, env: ["A=exec", "B=1"], workdir: "/tmp", user: "0:0" },
    namespaces,
    [],
  );
  assert.deepEqual(o.process.env, ["PATH=/bin", "HOSTNAME=aaaaaaaaaaaa", "A=exec", "B=1"]);
  assert.equal(o.process.cwd, "/tmp");
  assert.equal(o.process.user, "0:0");
  assert.equal(execSpec(container({ workingDir: "" }), request, namespaces, []).process.cwd, "/");
});

Deno.test("execSpec: -t adds TERM=xterm, which the container's or -e's TERM replaces", () => {
  assert.deepEqual(
    execSpec(container(), { ...request, tty: true }, namespaces, []).process.env,
    ["TERM=xterm", "PATH=/bin", "HOSTNAME=aaaaaaaaaaaa", "A=container"],
  );
  const fromContainer = container({ env: ["TERM=vt100"] });
  assert.deepEqual(execSpec(fromContainer, { ...request, tty: true }, namespaces, []).process.env, [
    "TERM=vt100",
  ]);
  assert.deepEqual(
    execSpec(fromContainer, { ...request, tty: true, env: ["TERM=dumb"] }, namespaces, []).process.env,
    ["TERM=dumb"],
  );
});
