/**
 * containerize's step list against a recording fake of the `Sys` interface (youki's
 * approach): every call is recorded with its arguments, and a small in-memory filesystem
 * answers the path questions, so mount order and path handling are tested without root.
 */
import assert from "node:assert/strict";
import { CAPABILITIES, capabilityNumber, DEFAULT_CAPABILITIES } from "../../lib/capabilities.ts";
import {
  EXIT_CANNOT_EXECUTE,
  EXIT_FLOKA,
  EXIT_NOT_FOUND,
  FlokaError,
  SyscallError,
} from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import type { ContainerSpec } from "../../lib/spec.ts";
import type { ContainerRecord } from "../../src/containers/store.ts";
import {
  createDevices,
  enterRoot,
  findExecutable,
  limitCapabilities,
  maskPaths,
  mountInRoot,
  setUpContainer,
  startFailure,
} from "../../src/runtime/containerize.ts";
import { buildSpec } from "../../src/runtime/spec.ts";
import type { FileKind, Sys } from "../../src/runtime/sys.ts";

type Node =
  | { kind: "dir" }
  | { kind: "file"; text: string; exec: boolean }
  | { kind: "symlink"; target: string }
  | { kind: "other" };

interface Call {
  name: string;
  args: unknown[];
}

/** Calls that only look: left out when checking what setup did. */
const QUERIES = new Set(["readlinkIfSymlink", "lstatKind", "isExecutableFile", "readTextFile"]);

class FakeSys implements Sys {
  readonly calls: Call[] = [];
  readonly fs = new Map<string, Node>([["/", { kind: "dir" }]]);
  /** Host path of the current root ("" for the host's own /): changed by pivot_root and chroot. */
  root = "";
  /** Current directory, as a path inside the current root. */
  workDir = "/";
  pivotRootError: Error | null = null;

  private record(name: string, ...args: unknown[]): void {
    this.calls.push({ name, args });
  }

  /** Effectful calls, in order. */
  actions(): Call[] {
    return this.calls.filter((c) => !QUERIES.has(c.name));
  }

  named(name: string): unknown[][] {
    return this.calls.filter((c) => c.name === name).map((c) => c.args);
  }

  mounts(): unknown[][] {
    return this.named("mount");
  }

  // --- the fake filesystem ---------------------------------------------------------------

  /** Adds `path` (a host path) and its missing parent directories. */
  add(path: string, node: Node): void {
    const parts = path.split("/").filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const dir = "/" + parts.slice(0, i).join("/");
      if (!this.fs.has(dir)) this.fs.set(dir, { kind: "dir" });
    }
    this.fs.set("/" + parts.join("/"), node);
  }

  dir(path: string): void {
    this.add(path, { kind: "dir" });
  }

  file(path: string, text = "", exec = false): void {
    this.add(path, { kind: "file", text, exec });
  }

  link(path: string, target: string): void {
    this.add(path, { kind: "symlink", target });
  }

  /** The host key of `path` as the process sees it, following symlinks like the kernel does. */
  resolve(path: string, followLast: boolean, depth = 0): string {
    if (depth > 40) throw new SyscallError("resolve", [path], 40); // ELOOP
    const abs = path.startsWith("/") ? path : `${this.workDir}/${path}`;
    const parts = abs.split("/").filter((p) => p !== "" && p !== ".");
    const cur: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === "..") {
        cur.pop();
        continue;
      }
      cur.push(parts[i]);
      const node = this.fs.get(this.key(cur));
      const last = i === parts.length - 1;
      if (node?.kind === "symlink" && (!last || followLast)) {
        const base = node.target.startsWith("/") ? "" : "/" + cur.slice(0, -1).join("/");
        return this.resolve(`${base}/${node.target}/${parts.slice(i + 1).join("/")}`, followLast, depth + 1);
      }
    }
    return this.key(cur);
  }

  private key(cur: string[]): string {
    return (this.root + "/" + cur.join("/")).replace(/(.)\/$/, "$1");
  }

  private lookup(path: string, followLast: boolean): Node | undefined {
    return this.fs.get(this.resolve(path, followLast));
  }

  // --- Sys ---------------------------------------------------------------------------------

  readlinkIfSymlink(path: string): string | null {
    this.record("readlinkIfSymlink", path);
    const node = this.lookup(path, false);
    return node?.kind === "symlink" ? node.target : null;
  }
  unshare(flags: number): void {
    this.record("unshare", flags);
  }
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
  ): void {
    this.record("mount", source, target, fstype, flags, data);
  }
  umount2(target: string, flags: number): void {
    this.record("umount2", target, flags);
  }
  pivotRoot(newRoot: string, putOld: string): void {
    this.record("pivotRoot", newRoot, putOld);
    if (this.pivotRootError) throw this.pivotRootError;
    this.root = this.resolve(newRoot, true).replace(/^\/$/, "");
    this.workDir = "/";
  }
  chroot(path: string): void {
    this.record("chroot", path);
    this.root = this.resolve(path, true).replace(/^\/$/, "");
    this.workDir = "/";
  }
  chdir(path: string): void {
    this.record("chdir", path);
    const node = this.lookup(path, true);
    if (node?.kind !== "dir") throw new SyscallError("chdir", [path], node ? L.ENOTDIR : L.ENOENT);
    const abs = path.startsWith("/") ? path : `${this.workDir}/${path}`;
    this.workDir = abs;
  }
  sethostname(name: string): void {
    this.record("sethostname", name);
  }
  mknod(path: string, mode: number, major: number, minor: number): void {
    this.record("mknod", path, mode, major, minor);
    this.fs.set(this.resolve(path, false), { kind: "other" });
  }
  symlink(target: string, path: string): void {
    this.record("symlink", target, path);
    this.fs.set(this.resolve(path, false), { kind: "symlink", target });
  }
  mkdirAll(path: string): void {
    this.record("mkdirAll", path);
    this.add(this.resolve(path, true), { kind: "dir" });
  }
  touch(path: string): void {
    this.record("touch", path);
    const key = this.resolve(path, true);
    if (!this.fs.has(key)) this.add(key, { kind: "file", text: "", exec: false });
  }
  lstatKind(path: string): FileKind | null {
    this.record("lstatKind", path);
    return this.lookup(path, false)?.kind ?? null;
  }
  isExecutableFile(path: string): boolean {
    this.record("isExecutableFile", path);
    const node = this.lookup(path, true);
    return node?.kind === "file" && node.exec;
  }
  readTextFile(path: string): string | null {
    this.record("readTextFile", path);
    const node = this.lookup(path, true);
    return node?.kind === "file" ? node.text : null;
  }
  writeTextFile(path: string, text: string): void {
    this.record("writeTextFile", path, text);
    this.add(this.resolve(path, true), { kind: "file", text, exec: false });
  }
  loopbackUp(): void {
    this.record("loopbackUp");
  }
  joinNetworkNamespace(path: string): void {
    this.record("joinNetworkNamespace", path);
  }
  waitForHost(channel: number): boolean {
    this.record("waitForHost", channel);
    return true;
  }
  setgroups(gids: readonly number[]): void {
    this.record("setgroups", [...gids]);
  }
  setgid(gid: number): void {
    this.record("setgid", gid);
  }
  setuid(uid: number): void {
    this.record("setuid", uid);
  }
  umask(mask: number): number {
    this.record("umask", mask);
    return 0o022;
  }
  resetSignals(): void {
    this.record("resetSignals");
  }

  takeTerminal(channel: number, uid: number, gid: number): void {
    this.record("takeTerminal", channel, uid, gid);
  }

  prctl(option: number, arg: number): void {
    this.record("prctl", option, arg);
  }
  clearInheritableCapabilities(): void {
    this.record("clearInheritableCapabilities");
  }
  setSeccompFilter(program: Uint8Array): void {
    this.record("setSeccompFilter", program.length);
  }
  /** The directory set to `unreachable` reads as getcwd does for one outside the root. */
  unreachable = "";
  cwd(): string {
    this.record("cwd");
    return this.workDir === this.unreachable ? `(unreachable)${this.workDir}` : this.workDir;
  }
  markFdsCloseOnExec(from: number): void {
    this.record("markFdsCloseOnExec", from);
  }
  execve(path: string, argv: readonly string[], env: readonly string[]): never {
    this.record("execve", path, argv, env);
    throw new Error("execve called on the fake");
  }
}

const ID = "c0ffee".padEnd(64, "0");
const DIR = `/srv/floka/containers/${ID}`;
const R = `${DIR}/rootfs`;
const LOWER = "/srv/floka/images/busybox:latest/rootfs";

const PASSWD = "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n";
const GROUP = "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\naudio:x:29:alice\n";

function makeRecord(
  network: string,
  config: Partial<ContainerRecord["config"]> = {},
): ContainerRecord {
  return {
    id: ID,
    name: "test",
    created: "2026-01-01T00:00:00.000Z",
    image: "busybox:latest",
    lowerDirs: [LOWER],
    path: "sh",
    args: ["-c", "true"],
    config: {
      hostname: "c0ffee000000",
      env: ["PATH=/usr/local/bin:/usr/bin:/bin"],
      workingDir: "/",
      user: "",
      entrypoint: null,
      cmd: null,
      ...config,
    },
    hostConfig: { autoRemove: false, networkMode: network, memory: 0, cpuShares: 0 },
  };
}

/** v1 `tasks` files the container's main thread writes 0 into to join its cgroup. */
const CGROUP_TASKS = ["/sys/fs/cgroup/memory/floka/x/tasks", "/sys/fs/cgroup/pids/floka/x/tasks"];

function makeSpec(
  network: "none" | "host" = "none",
  config: Partial<ContainerRecord["config"]> = {},
): ContainerSpec {
  return buildSpec(makeRecord(network, config), DIR, CGROUP_TASKS);
}

/** A host with the container's directory and a busybox-like image "mounted" at the rootfs. */
function makeSys(image: (sys: FakeSys) => void = standardEtc): FakeSys {
  const sys = new FakeSys();
  sys.dir("/sys");
  sys.dir("/etc");
  sys.file("/etc/hosts", "HOST FILE: must never be touched");
  for (const f of ["hostname", "hosts", "resolv.conf"]) sys.file(`${DIR}/${f}`, `generated ${f}\n`);
  sys.dir(`${DIR}/upper`);
  sys.dir(`${DIR}/work`);
  // The image's one layer, as its link in the container's directory: here the rootfs itself.
  sys.link(`${DIR}/layers/0`, R);
  sys.file(`${R}/bin/busybox`, "", true);
  sys.link(`${R}/bin/sh`, "busybox");
  sys.link(`${R}/bin/ls`, "/bin/busybox");
  for (const d of ["proc", "sys", "dev", "tmp", "root"]) sys.dir(`${R}/${d}`);
  // What the kernel's /proc and /sys would show once mounted.
  sys.file(`${R}/proc/kcore`);
  sys.dir(`${R}/proc/acpi`);
  sys.dir(`${R}/proc/sys`);
  sys.file(`${R}/proc/sysrq-trigger`);
  sys.file(`${R}/proc/sys/kernel/cap_last_cap`, "40\n");
  sys.dir(`${R}/sys/firmware`);
  image(sys);
  return sys;
}

function standardEtc(sys: FakeSys): void {
  sys.file(`${R}/etc/passwd`, PASSWD);
  sys.file(`${R}/etc/group`, GROUP);
}

function indexOfCall(sys: FakeSys, name: string, pred: (args: unknown[]) => boolean = () => true): number {
  const i = sys.calls.findIndex((c) => c.name === name && pred(c.args));
  assert.notEqual(i, -1, `no ${name} call matching`);
  return i;
}

function assertIncreasing(indices: number[], what: string): void {
  for (let i = 1; i < indices.length; i++) {
    assert.ok(indices[i - 1] < indices[i], `${what}: step ${i} (${indices}) out of order`);
  }
}

const NS_BASE = L.CLONE_NEWNS | L.CLONE_NEWUTS | L.CLONE_NEWIPC | L.CLONE_NEWCGROUP;

Deno.test("setUpContainer: unshares mount, UTS, IPC, cgroup and network namespaces and brings lo up (network none)", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("none"), sys);
  assert.deepEqual(sys.named("unshare"), [[NS_BASE | L.CLONE_NEWNET]]);
  assert.equal(sys.named("loopbackUp").length, 1);
  assert.ok(indexOfCall(sys, "unshare") < indexOfCall(sys, "loopbackUp"));
});

Deno.test("setUpContainer: with the host's network no network namespace and no loopback change", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("host"), sys);
  assert.deepEqual(sys.named("unshare"), [[NS_BASE]]);
  assert.equal(sys.named("loopbackUp").length, 0);
});

Deno.test("setUpContainer: joins the prepared network namespace by its path, then unshares the rest, lo up", () => {
  const sys = makeSys();
  const spec = buildSpec(makeRecord("bridge"), DIR, CGROUP_TASKS, undefined, "/run/floka/netns/abc");
  assert.deepEqual(spec.network, { path: "/run/floka/netns/abc" });
  setUpContainer(spec, sys);
  assert.deepEqual(sys.named("joinNetworkNamespace"), [["/run/floka/netns/abc"]]);
  assert.deepEqual(sys.named("unshare"), [[NS_BASE]]);
  assert.ok(indexOfCall(sys, "joinNetworkNamespace") < indexOfCall(sys, "unshare"));
  assert.ok(indexOfCall(sys, "joinNetworkNamespace") < indexOfCall(sys, "loopbackUp"));
  assert.equal(sys.named("waitForHost").length, 0);
  // Its own network namespace: sysfs of its own, not the host's /sys.
  assert.ok(spec.mounts.some((m) => m.target === "/sys" && m.type === "sysfs"));
});

Deno.test("setUpContainer: with awaitHost, waits for the host's go-ahead after the mounts, before credentials", () => {
  const sys = makeSys();
  const spec = {
    ...buildSpec(makeRecord("bridge"), DIR, CGROUP_TASKS, undefined, "/run/x"),
    awaitHost: true,
  };
  setUpContainer(spec, sys, 7);
  assert.deepEqual(sys.named("waitForHost"), [[7]]);
  assert.ok(indexOfCall(sys, "pivotRoot") < indexOfCall(sys, "waitForHost"));
  assert.ok(indexOfCall(sys, "waitForHost") < indexOfCall(sys, "setuid"));
});

Deno.test("setUpContainer: joins its cgroup by writing 0 to each given file, before the cgroup namespace", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  assert.deepEqual(sys.named("writeTextFile").slice(0, 2), CGROUP_TASKS.map((f) => [f, "0"]));
  assert.ok(indexOfCall(sys, "writeTextFile", (a) => a[0] === CGROUP_TASKS[1]) < indexOfCall(sys, "unshare"));
});

Deno.test("setUpContainer: makes itself non-dumpable before anything else", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  assert.deepEqual(sys.actions()[0], { name: "prctl", args: [L.PR_SET_DUMPABLE, 0] });
});

Deno.test("setUpContainer: performs every mount in order with targets inside the rootfs (network none)", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("none"), sys);
  const NOSUID_NOEXEC_NODEV = L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV;
  const etc = (f: string) => [
    [`${DIR}/${f}`, `${R}/etc/${f}`, null, L.MS_BIND | L.MS_REC, null],
    [null, `${R}/etc/${f}`, null, L.MS_PRIVATE | L.MS_REC, null],
  ];
  assert.deepEqual(sys.mounts(), [
    [null, "/", null, L.MS_REC | L.MS_PRIVATE, null],
    [
      "overlay",
      R,
      "overlay",
      0,
      "lowerdir=init:layers/0,upperdir=upper,workdir=work",
    ],
    ["proc", `${R}/proc`, "proc", NOSUID_NOEXEC_NODEV, null],
    ["tmpfs", `${R}/dev`, "tmpfs", L.MS_NOSUID | L.MS_STRICTATIME, "mode=755,size=65536k"],
    [
      "devpts",
      `${R}/dev/pts`,
      "devpts",
      L.MS_NOSUID | L.MS_NOEXEC,
      "newinstance,ptmxmode=0666,mode=0620,gid=5",
    ],
    ["shm", `${R}/dev/shm`, "tmpfs", NOSUID_NOEXEC_NODEV, "mode=1777,size=65536k"],
    ["mqueue", `${R}/dev/mqueue`, "mqueue", NOSUID_NOEXEC_NODEV, null],
    ["sysfs", `${R}/sys`, "sysfs", NOSUID_NOEXEC_NODEV | L.MS_RDONLY, null],
    ...etc("hostname"),
    ...etc("hosts"),
    ...etc("resolv.conf"),
    // After pivot_root: masked paths (a file gets /dev/null, a directory an empty ro tmpfs)...
    ["tmpfs", "/proc/acpi", "tmpfs", L.MS_RDONLY, null],
    ["/dev/null", "/proc/kcore", null, L.MS_BIND, null],
    ["tmpfs", "/sys/firmware", "tmpfs", L.MS_RDONLY, null],
    // ...and read-only paths: a bind onto itself, then a read-only remount.
    ["/proc/sys", "/proc/sys", null, L.MS_BIND | L.MS_REC, null],
    ["/proc/sys", "/proc/sys", null, L.MS_BIND | L.MS_REC | L.MS_REMOUNT | L.MS_RDONLY, null],
    ["/proc/sysrq-trigger", "/proc/sysrq-trigger", null, L.MS_BIND | L.MS_REC, null],
    [
      "/proc/sysrq-trigger",
      "/proc/sysrq-trigger",
      null,
      L.MS_BIND | L.MS_REC | L.MS_REMOUNT | L.MS_RDONLY,
      null,
    ],
  ]);
});

Deno.test("setUpContainer: with the host's network /sys is a bind of /sys, remounted read-only", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("host"), sys);
  const onSys = sys.mounts().filter((m) => m[1] === `${R}/sys`);
  const flags = L.MS_BIND | L.MS_REC | L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV | L.MS_RDONLY;
  assert.deepEqual(onSys, [
    ["/sys", `${R}/sys`, null, L.MS_BIND | L.MS_REC, null],
    [null, `${R}/sys`, null, flags | L.MS_REMOUNT, null],
  ]);
});

Deno.test("setUpContainer: the steps happen in order, from namespaces to the user switch", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("none", { user: "alice" }), sys);
  assertIncreasing([
    indexOfCall(sys, "prctl", (a) => a[0] === L.PR_SET_DUMPABLE),
    indexOfCall(sys, "writeTextFile", (a) => a[0] === CGROUP_TASKS[0]),
    indexOfCall(sys, "writeTextFile", (a) => a[0] === CGROUP_TASKS[1]),
    indexOfCall(sys, "unshare"),
    indexOfCall(sys, "loopbackUp"),
    indexOfCall(sys, "mount", (a) => a[1] === "/" && a[3] === (L.MS_REC | L.MS_PRIVATE)),
    indexOfCall(sys, "mount", (a) => a[2] === "overlay"),
    indexOfCall(sys, "mount", (a) => a[2] === "proc"),
    indexOfCall(sys, "mount", (a) => a[1] === `${R}/dev`),
    indexOfCall(sys, "mount", (a) => a[1] === `${R}/etc/resolv.conf`),
    indexOfCall(sys, "mknod", (a) => a[0] === `${R}/dev/null`),
    indexOfCall(sys, "symlink", (a) => a[1] === `${R}/dev/ptmx`),
    indexOfCall(sys, "sethostname"),
    indexOfCall(sys, "chdir", (a) => a[0] === R),
    indexOfCall(sys, "pivotRoot"),
    indexOfCall(sys, "umount2"),
    indexOfCall(sys, "chdir", (a) => a[0] === "/"),
    indexOfCall(sys, "mount", (a) => a[1] === "/proc/kcore"),
    indexOfCall(sys, "mount", (a) => a[1] === "/proc/sys"),
    indexOfCall(sys, "prctl", (a) => a[0] === L.PR_CAPBSET_DROP),
    indexOfCall(sys, "setgroups"),
    indexOfCall(sys, "setgid"),
    indexOfCall(sys, "setuid"),
    // After setuid, which clears the parent-death signal; then the signals go back to default.
    indexOfCall(sys, "prctl", (a) => a[0] === L.PR_SET_PDEATHSIG && a[1] === L.SIGNALS.SIGKILL),
    indexOfCall(sys, "resetSignals"),
  ], "setup order");
  // The umask is cleared for exact modes and 022 again at the end.
  const masks = sys.named("umask").map((a) => a[0]);
  assert.deepEqual([masks[0], masks.at(-1)], [0, 0o022]);
  assert.ok(
    indexOfCall(sys, "umask", (a) => a[0] === 0) < indexOfCall(sys, "mount", (a) => a[2] === "overlay"),
  );
  assert.equal(sys.calls.findLast((c) => !QUERIES.has(c.name))?.name, "resetSignals");
});

Deno.test("setUpContainer: pivot_root('.', '.') from inside the rootfs, then a lazy unmount of the old root", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  const i = indexOfCall(sys, "pivotRoot");
  assert.deepEqual(sys.calls[i - 1], { name: "chdir", args: [R] });
  assert.deepEqual(sys.calls[i], { name: "pivotRoot", args: [".", "."] });
  assert.deepEqual(sys.calls[i + 1], { name: "umount2", args: [".", L.MNT_DETACH] });
  assert.deepEqual(sys.calls[i + 2], { name: "chdir", args: ["/"] });
  assert.equal(sys.named("chroot").length, 0);
  assert.equal(sys.root, R, "the fake's root is now the container's rootfs");
});

Deno.test("setUpContainer: chroot fallback when pivot_root fails with EINVAL", () => {
  const sys = makeSys();
  sys.pivotRootError = new SyscallError("pivot_root", [".", "."], L.EINVAL);
  const plan = setUpContainer(makeSpec(), sys);
  assert.equal(plan.path, "/bin/sh");
  const i = indexOfCall(sys, "pivotRoot");
  assert.deepEqual(sys.calls.slice(i + 1, i + 4), [
    { name: "mount", args: [R, "/", null, L.MS_MOVE, null] },
    { name: "chroot", args: ["."] },
    { name: "chdir", args: ["/"] },
  ]);
  assert.equal(sys.named("umount2").length, 0);
  assert.equal(sys.root, R);
});

Deno.test("setUpContainer: another pivot_root failure is not hidden by the fallback", () => {
  const sys = makeSys();
  sys.pivotRootError = new SyscallError("pivot_root", [".", "."], L.EPERM);
  assert.throws(
    () => setUpContainer(makeSpec(), sys),
    (err) => err instanceof SyscallError && err.call === "pivot_root" && err.errno === L.EPERM,
  );
  assert.equal(sys.named("chroot").length, 0);
  assert.equal(sys.named("setuid").length, 0);
});

Deno.test("enterRoot alone: chdir into the root, pivot, detach, chdir /", () => {
  const sys = new FakeSys();
  sys.dir("/new/root");
  enterRoot("/new/root", sys);
  assert.deepEqual(sys.actions(), [
    { name: "chdir", args: ["/new/root"] },
    { name: "pivotRoot", args: [".", "."] },
    { name: "umount2", args: [".", L.MNT_DETACH] },
    { name: "chdir", args: ["/"] },
  ]);
});

Deno.test("setUpContainer: an image with /etc -> /elsewhere gets its /etc files mounted inside the rootfs", () => {
  const sys = makeSys((s) => {
    s.link(`${R}/etc`, "/elsewhere");
    s.file(`${R}/elsewhere/passwd`, PASSWD);
    s.file(`${R}/elsewhere/group`, GROUP);
  });
  setUpContainer(makeSpec("none", { user: "alice" }), sys);
  for (const f of ["hostname", "hosts", "resolv.conf"]) {
    assert.ok(
      sys.mounts().some((m) => m[0] === `${DIR}/${f}` && m[1] === `${R}/elsewhere/${f}`),
      `${f} not bound onto ${R}/elsewhere/${f}`,
    );
  }
  // The files did not exist in the image: they were made there, not on the host.
  assert.deepEqual(sys.named("touch").map((a) => a[0]), [
    `${R}/elsewhere/hostname`,
    `${R}/elsewhere/hosts`,
    `${R}/elsewhere/resolv.conf`,
  ]);
  // /etc/passwd was read through the symlink inside the container's root.
  assert.deepEqual(sys.named("setuid"), [[1000]]);
});

Deno.test("setUpContainer: an image with /etc -> / cannot make Floka mount over the host's /etc", () => {
  const sys = makeSys((s) => s.link(`${R}/etc`, "/"));
  setUpContainer(makeSpec(), sys);
  const beforePivot = sys.calls.slice(0, indexOfCall(sys, "pivotRoot"));
  const targets = beforePivot.filter((c) => c.name === "mount").map((c) => c.args[1] as string);
  for (const t of targets.slice(1)) {
    assert.ok(t === R || t.startsWith(`${R}/`), `mount target ${t} outside rootfs`);
  }
  assert.ok(targets.includes(`${R}/hosts`));
  for (const c of beforePivot) {
    // The cgroup join writes host cgroup files by design; every other write stays inside.
    if (c.name === "writeTextFile" && CGROUP_TASKS.includes(c.args[0] as string)) continue;
    if (["touch", "mkdirAll", "mknod", "symlink", "writeTextFile"].includes(c.name)) {
      const path = c.name === "symlink" ? c.args[1] : c.args[0];
      assert.ok(path === R || (path as string).startsWith(`${R}/`), `${c.name}(${path}) outside the rootfs`);
    }
  }
  assert.equal((sys.fs.get("/etc/hosts") as { text: string }).text, "HOST FILE: must never be touched");
});

Deno.test("setUpContainer: a relative symlink climbing out (/etc -> ../../../../tmp/x) stays inside", () => {
  const sys = makeSys((s) => s.link(`${R}/etc`, "../../../../../../../tmp/x"));
  setUpContainer(makeSpec(), sys);
  const hosts = sys.mounts().find((m) => m[0] === `${DIR}/hosts`);
  assert.equal(hosts?.[1], `${R}/tmp/x/hosts`);
  assert.equal(sys.fs.has("/tmp/x/hosts"), false);
});

for (const dir of ["/proc", "/sys", "/dev", "/dev/null"]) {
  Deno.test(`setUpContainer: refuses an image whose ${dir} is a symlink, before mounting on it`, () => {
    const sys = makeSys((s) => {
      s.fs.delete(`${R}${dir}`);
      for (const key of [...s.fs.keys()]) if (key.startsWith(`${R}${dir}/`)) s.fs.delete(key);
      s.link(`${R}${dir}`, `/host${dir}`);
    });
    assert.throws(
      () => setUpContainer(makeSpec(), sys),
      (err) => err instanceof FlokaError && err.message.includes(dir) && /symlink/.test(err.message),
    );
    // Only the rprivate and overlay mounts happened; nothing was mounted through the link.
    assert.deepEqual(sys.mounts().map((m) => m[2]), [null, "overlay"]);
  });
}

Deno.test("setUpContainer: device nodes are made in the container's /dev with their numbers and modes", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  assert.deepEqual(sys.named("mknod"), [
    [`${R}/dev/null`, 0o666, 1, 3],
    [`${R}/dev/zero`, 0o666, 1, 5],
    [`${R}/dev/full`, 0o666, 1, 7],
    [`${R}/dev/random`, 0o666, 1, 8],
    [`${R}/dev/urandom`, 0o666, 1, 9],
    [`${R}/dev/tty`, 0o666, 5, 0],
  ]);
  assert.deepEqual(sys.named("symlink"), [
    ["pts/ptmx", `${R}/dev/ptmx`],
    ["/proc/self/fd", `${R}/dev/fd`],
    ["/proc/self/fd/0", `${R}/dev/stdin`],
    ["/proc/self/fd/1", `${R}/dev/stdout`],
    ["/proc/self/fd/2", `${R}/dev/stderr`],
  ]);
});

Deno.test("createDevices: a /dev symlink already present is left alone", () => {
  const sys = makeSys();
  sys.link(`${R}/dev/fd`, "/proc/self/fd");
  createDevices(makeSpec(), sys);
  assert.equal(sys.named("symlink").filter((a) => a[1] === `${R}/dev/fd`).length, 0);
});

Deno.test("setUpContainer: sets the hostname from the spec", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("none", { hostname: "web-1" }), sys);
  assert.deepEqual(sys.named("sethostname"), [["web-1"]]);
});

Deno.test("setUpContainer: mount targets missing from the image are created (dirs for filesystems, files for file binds)", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  const made = sys.named("mkdirAll").map((a) => a[0]);
  for (const d of [`${R}/dev/pts`, `${R}/dev/shm`, `${R}/dev/mqueue`]) assert.ok(made.includes(d), d);
  assert.ok(made.includes(`${R}/etc`));
  assert.deepEqual(sys.named("touch").map((a) => a[0]), [
    `${R}/etc/hostname`,
    `${R}/etc/hosts`,
    `${R}/etc/resolv.conf`,
  ]);
});

Deno.test("mountInRoot: an existing target is not recreated; a bind of a directory gets a directory", () => {
  const sys = new FakeSys();
  sys.dir("/root/fs/data");
  sys.dir("/host/vol");
  mountInRoot("/root/fs", { type: "bind", source: "/host/vol", target: "/data", options: ["rbind"] }, sys);
  assert.equal(sys.named("mkdirAll").length, 0);
  assert.deepEqual(sys.mounts(), [["/host/vol", "/root/fs/data", null, L.MS_BIND | L.MS_REC, null]]);
  mountInRoot("/root/fs", { type: "bind", source: "/host/vol", target: "/new/dir", options: ["bind"] }, sys);
  assert.deepEqual(sys.named("mkdirAll"), [["/root/fs/new/dir"]]);
  assert.equal(sys.named("touch").length, 0);
});

Deno.test("mountInRoot: a read-only bind is a bind then a remount with the flags", () => {
  const sys = new FakeSys();
  sys.dir("/root/fs/data");
  sys.dir("/host/vol");
  mountInRoot(
    "/root/fs",
    { type: "bind", source: "/host/vol", target: "/data", options: ["bind", "ro"] },
    sys,
  );
  assert.deepEqual(sys.mounts(), [
    ["/host/vol", "/root/fs/data", null, L.MS_BIND, null],
    [null, "/root/fs/data", null, L.MS_BIND | L.MS_RDONLY | L.MS_REMOUNT, null],
  ]);
});

Deno.test("maskPaths skips paths that do not exist", () => {
  const sys = new FakeSys();
  sys.file("/proc/kcore");
  maskPaths(["/proc/kcore", "/proc/missing"], sys);
  assert.deepEqual(sys.mounts(), [["/dev/null", "/proc/kcore", null, L.MS_BIND, null]]);
});

Deno.test("setUpContainer: the user from the image's /etc/passwd: groups, gid, uid in that order, HOME", () => {
  const sys = makeSys();
  const plan = setUpContainer(makeSpec("none", { user: "alice" }), sys);
  assert.deepEqual(sys.named("setgroups").map((a) => (a[0] as number[]).toSorted((x, y) => x - y)), [[
    10,
    29,
    1000,
  ]]);
  assert.deepEqual(sys.named("setgid"), [[1000]]);
  assert.deepEqual(sys.named("setuid"), [[1000]]);
  assert.ok(plan.env.includes("HOME=/home/alice"));
  assert.ok(plan.env.includes("PATH=/usr/local/bin:/usr/bin:/bin"));
});

Deno.test("setUpContainer: root by default, HOME from passwd", () => {
  const sys = makeSys();
  const plan = setUpContainer(makeSpec(), sys);
  assert.deepEqual(sys.named("setgroups"), [[[0]]]);
  assert.deepEqual(sys.named("setgid"), [[0]]);
  assert.deepEqual(sys.named("setuid"), [[0]]);
  assert.ok(plan.env.includes("HOME=/root"));
});

Deno.test("setUpContainer: a HOME given in the environment is kept", () => {
  const sys = makeSys();
  const plan = setUpContainer(makeSpec("none", { user: "alice", env: ["PATH=/bin", "HOME=/custom"] }), sys);
  assert.deepEqual(plan.env.filter((e) => e.startsWith("HOME=")), ["HOME=/custom"]);
});

Deno.test("setUpContainer: uid:gid needs no passwd entry; HOME falls back to /", () => {
  const sys = makeSys((s) => s.file(`${R}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n"));
  const plan = setUpContainer(makeSpec("none", { user: "4242:4343" }), sys);
  assert.deepEqual(sys.named("setgroups"), [[[4343]]]);
  assert.deepEqual(sys.named("setgid"), [[4343]]);
  assert.deepEqual(sys.named("setuid"), [[4242]]);
  assert.ok(plan.env.includes("HOME=/"));
});

Deno.test("setUpContainer: an unknown user name fails before any credential change", () => {
  const sys = makeSys();
  assert.throws(
    () => setUpContainer(makeSpec("none", { user: "mallory" }), sys),
    /unable to find user mallory/,
  );
  assert.equal(sys.named("setuid").length, 0);
  assert.equal(sys.named("setgid").length, 0);
});

Deno.test("setUpContainer: the working directory is made when missing and entered", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("none", { workingDir: "/work/dir" }), sys);
  const afterPivot = sys.calls.slice(indexOfCall(sys, "pivotRoot"));
  assert.ok(afterPivot.some((c) => c.name === "mkdirAll" && c.args[0] === "/work/dir"));
  assert.ok(afterPivot.some((c) => c.name === "chdir" && c.args[0] === "/work/dir"));
  assert.ok(sys.fs.has(`${R}/work/dir`), "made inside the container's root");
});

Deno.test("setUpContainer: the returned plan execs the PATH lookup result with the spec's argv", () => {
  const sys = makeSys();
  const plan = setUpContainer(makeSpec(), sys);
  assert.deepEqual(plan, {
    path: "/bin/sh",
    argv: ["sh", "-c", "true"],
    env: ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"],
  });
  assert.equal(sys.named("execve").length, 0, "setUpContainer itself does not exec");
});

Deno.test("setUpContainer: a command not in PATH is exit code 127 before credentials change", () => {
  const sys = makeSys();
  const spec = makeSpec();
  spec.process.args = ["nosuchcmd"];
  assert.throws(
    () => setUpContainer(spec, sys),
    (err) =>
      err instanceof FlokaError && err.exitCode === 127 &&
      err.message === 'exec: "nosuchcmd": executable file not found in $PATH',
  );
  assert.equal(sys.named("setuid").length, 0);
});

Deno.test("limitCapabilities drops every capability outside the kept set up to cap_last_cap", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  const dropped = sys.named("prctl").filter((a) => a[0] === L.PR_CAPBSET_DROP).map((a) => a[1] as number);
  const kept = new Set(DEFAULT_CAPABILITIES.map(capabilityNumber));
  const expected = Array.from({ length: 41 }, (_, i) => i).filter((c) => !kept.has(c));
  assert.deepEqual(dropped, expected);
  assert.ok(dropped.includes(capabilityNumber("CAP_SYS_ADMIN")));
  assert.ok(!dropped.includes(capabilityNumber("CAP_CHOWN")));
});

Deno.test("limitCapabilities follows the kernel's cap_last_cap", () => {
  const sys = new FakeSys();
  sys.file("/proc/sys/kernel/cap_last_cap", "37\n");
  limitCapabilities(["CAP_KILL"], sys);
  const dropped = sys.named("prctl").map((a) => a[1]);
  assert.equal(dropped.length, 37); // 0..37 without CAP_KILL (5)
  assert.ok(!dropped.includes(5));
  assert.equal(Math.max(...(dropped as number[])), 37);
  assert.ok(sys.named("prctl").every((a) => a[0] === L.PR_CAPBSET_DROP));
});

Deno.test("limitCapabilities without /proc's cap_last_cap drops up to the last known capability", () => {
  const sys = new FakeSys();
  limitCapabilities([], sys);
  assert.equal(sys.named("prctl").length, CAPABILITIES.length);
});

Deno.test("findExecutable searches PATH in order and skips non-executable files", () => {
  const sys = new FakeSys();
  sys.file("/usr/bin/tool", "", false);
  sys.file("/bin/tool", "", true);
  sys.file("/opt/bin/tool", "", true);
  assert.equal(findExecutable("tool", ["PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin"], sys), "/bin/tool");
  assert.equal(findExecutable("tool", ["PATH=/opt/bin:/bin"], sys), "/opt/bin/tool");
});

Deno.test("findExecutable follows symlinks (busybox applets)", () => {
  const sys = new FakeSys();
  sys.file("/bin/busybox", "", true);
  sys.link("/bin/ls", "busybox");
  sys.link("/usr/bin/env", "/bin/busybox");
  assert.equal(findExecutable("ls", ["PATH=/bin"], sys), "/bin/ls");
  assert.equal(findExecutable("env", ["PATH=/usr/bin"], sys), "/usr/bin/env");
});

Deno.test("findExecutable uses Docker's default PATH when the environment has none", () => {
  const sys = new FakeSys();
  sys.file("/usr/sbin/daemon", "", true);
  assert.equal(findExecutable("daemon", ["A=1"], sys), "/usr/sbin/daemon");
});

Deno.test("findExecutable: not found is a FlokaError with exit code 127 and Docker's message", () => {
  const sys = new FakeSys();
  assert.throws(
    () => findExecutable("x", ["PATH=/bin"], sys),
    (err) =>
      err instanceof FlokaError &&
      err.exitCode === EXIT_NOT_FOUND &&
      err.message === 'exec: "x": executable file not found in $PATH',
  );
});

Deno.test("findExecutable: a name with a slash is used as is, or 127 when missing", () => {
  const sys = new FakeSys();
  sys.file("/app/run.sh", "", true);
  assert.equal(findExecutable("/app/run.sh", [], sys), "/app/run.sh");
  assert.throws(
    () => findExecutable("/app/missing", [], sys),
    (err) =>
      err instanceof FlokaError && err.exitCode === 127 &&
      err.message === 'exec: "/app/missing": stat /app/missing: no such file or directory',
  );
});

Deno.test("startFailure: execve ENOENT/ENOTDIR -> 127, EACCES/ENOEXEC -> 126, message names the call", () => {
  assert.deepEqual(startFailure(new SyscallError("execve", ["/bin/x"], L.ENOENT)), {
    exitCode: EXIT_NOT_FOUND,
    message: 'exec: execve("/bin/x"): ENOENT (No such file or directory)',
  });
  assert.equal(startFailure(new SyscallError("execve", ["/bin/x/y"], L.ENOTDIR)).exitCode, 127);
  assert.deepEqual(startFailure(new SyscallError("execve", ["/etc/passwd"], L.EACCES)), {
    exitCode: EXIT_CANNOT_EXECUTE,
    message: 'exec: execve("/etc/passwd"): EACCES (Permission denied)',
  });
  assert.equal(startFailure(new SyscallError("execve", ["/bin/x"], L.ENOEXEC)).exitCode, 126);
});

Deno.test("startFailure: other errors keep a FlokaError's code, anything else is 125", () => {
  assert.deepEqual(startFailure(new FlokaError('exec: "x": executable file not found in $PATH', 127)), {
    exitCode: 127,
    message: 'exec: "x": executable file not found in $PATH',
  });
  assert.deepEqual(startFailure(new SyscallError("mount", ["overlay", "/x/rootfs"], L.EINVAL)), {
    exitCode: EXIT_FLOKA,
    message: 'mount("overlay", "/x/rootfs"): EINVAL (Invalid argument)',
  });
  assert.deepEqual(startFailure(new Error("boom")), { exitCode: 125, message: "boom" });
  assert.deepEqual(startFailure("weird"), { exitCode: 125, message: "weird" });
});

Deno.test("setUpContainer: --read-only mounts the overlay writable, then remounts / read-only after the workdir exists", () => {
  const sys = makeSys();
  const record = makeRecord("none", { workingDir: "/new/dir" });
  record.hostConfig.readOnly = true;
  setUpContainer(buildSpec(record, DIR, CGROUP_TASKS), sys);
  const overlay = sys.mounts().find((a) => a[2] === "overlay")!;
  assert.equal((overlay[3] as number) & L.MS_RDONLY, 0, "the overlay itself is mounted writable");
  assert.ok(!String(overlay[4]).split(",").includes("ro"));
  const ro = L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY;
  assertIncreasing([
    indexOfCall(sys, "mount", (a) => a[1] === `${R}/etc/resolv.conf`),
    indexOfCall(sys, "pivotRoot"),
    indexOfCall(sys, "mkdirAll", (a) => a[0] === "/new/dir"),
    indexOfCall(sys, "chdir", (a) => a[0] === "/new/dir"),
    indexOfCall(sys, "mount", (a) => a[1] === "/" && a[3] === ro),
    indexOfCall(sys, "setuid"),
  ], "read-only root order");
});

Deno.test("setUpContainer: without --read-only / is never remounted read-only", () => {
  const sys = makeSys();
  setUpContainer(makeSpec(), sys);
  assert.ok(!sys.mounts().some((a) => a[1] === "/" && ((a[3] as number) & L.MS_RDONLY)));
});

Deno.test("setUpContainer: a volume whose destination is a symlink out of the image lands inside the rootfs", () => {
  const sys = makeSys((s) => {
    standardEtc(s);
    s.link(`${R}/data`, "../../../../tmp/escape");
    s.link(`${R}/abs`, "/etc");
  });
  sys.dir("/store/volumes/v/_data");
  const record = makeRecord("none");
  record.hostConfig.mounts = [
    { type: "volume", name: "v", source: "/store/volumes/v/_data", target: "/data", readOnly: false },
    { type: "bind", source: "/store/volumes/v/_data", target: "/abs", readOnly: true },
  ];
  setUpContainer(buildSpec(record, DIR, CGROUP_TASKS), sys);
  const binds = sys.mounts().filter((a) => a[0] === "/store/volumes/v/_data");
  assert.deepEqual(binds.map((a) => a[1]), [`${R}/tmp/escape`, `${R}/etc`]);
  // The read-only one is remounted read-only (a bind ignores MS_RDONLY on its first mount).
  assert.ok(
    sys.mounts().some((a) =>
      a[1] === `${R}/etc` && ((a[3] as number) & (L.MS_REMOUNT | L.MS_RDONLY)) ===
        (L.MS_REMOUNT | L.MS_RDONLY)
    ),
  );
  assert.ok(!sys.fs.has("/tmp/escape"), "a directory was made on the host");
});

function specWith(process: Partial<ContainerSpec["process"]>, cwd = "/"): ContainerSpec {
  const spec = makeSpec("none", { workingDir: cwd, user: "1000" });
  return { ...spec, process: { ...spec.process, seccomp: btoa("\0".repeat(16)), ...process } };
}

Deno.test("becomeUser: bounding set, then no inheritable set and the seccomp filter while root, then the ids", () => {
  const sys = makeSys();
  setUpContainer(specWith({ noNewPrivileges: false }), sys);
  const lastDrop = sys.calls.findLastIndex((c) => c.name === "prctl" && c.args[0] === L.PR_CAPBSET_DROP);
  const inheritable = indexOfCall(sys, "clearInheritableCapabilities");
  const filter = indexOfCall(sys, "setSeccompFilter");
  assertIncreasing(
    [lastDrop, inheritable, filter, indexOfCall(sys, "setgroups"), indexOfCall(sys, "setuid")],
    "order",
  );
  assert.equal(sys.named("setSeccompFilter")[0][0], 16);
  assert.equal(sys.named("prctl").filter((a) => a[0] === L.PR_SET_NO_NEW_PRIVS).length, 0);
});

Deno.test("no-new-privileges: set after every other step, and the seccomp filter after it", () => {
  const sys = makeSys();
  setUpContainer(specWith({ noNewPrivileges: true }), sys);
  const nnp = indexOfCall(sys, "prctl", (a) => a[0] === L.PR_SET_NO_NEW_PRIVS && a[1] === 1);
  const filter = indexOfCall(sys, "setSeccompFilter");
  assertIncreasing([indexOfCall(sys, "setuid"), indexOfCall(sys, "resetSignals"), nnp, filter], "order");
  assert.equal(filter, sys.calls.length - 1, "the filter is the last call before execve");
  assert.equal(sys.named("setSeccompFilter").length, 1);
});

Deno.test("without a seccomp program no filter is installed (--privileged, seccomp=unconfined)", () => {
  const sys = makeSys();
  setUpContainer(specWith({ seccomp: undefined, noNewPrivileges: true }), sys);
  assert.equal(sys.named("setSeccompFilter").length, 0);
  indexOfCall(sys, "prctl", (a) => a[0] === L.PR_SET_NO_NEW_PRIVS);
});

Deno.test("a working directory that getcwd places outside the root is refused with 126", () => {
  const sys = makeSys();
  sys.dir(`${R}/srv`);
  sys.unreachable = "/srv";
  assert.throws(
    () => setUpContainer(specWith({}, "/srv"), sys),
    (err: Error) =>
      err instanceof FlokaError && err.exitCode === 126 && /working directory \/srv/.test(err.message),
  );
  assert.equal(sys.named("setuid").length, 0);
});

Deno.test("-t: /dev/console is bound to the container's terminal once it is taken", () => {
  const sys = makeSys();
  setUpContainer(makeSpec("none", { tty: true }), sys);
  const taken = indexOfCall(sys, "takeTerminal");
  const bound = indexOfCall(sys, "mount", (a) => a[0] === "/proc/self/fd/0" && a[1] === "/dev/console");
  assert.ok(taken < bound);
  assert.equal(sys.mounts().filter((m) => m[1] === "/dev/console").length, 1);

  const plain = makeSys();
  setUpContainer(makeSpec(), plain);
  assert.equal(plain.mounts().filter((m) => m[1] === "/dev/console").length, 0);
});
