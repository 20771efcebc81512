import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { S_IFCHR } from "../../lib/linux.ts";
import * as libc from "../../ffi/libc.ts";
import type { ContainerRecord } from "../../src/containers/store.ts";
import {
  copyUp,
  imageVolumes,
  type MountSpec,
  parseMountFlag,
  parseMountOptions,
  parseTmpfsFlag,
  parseVolumeFlag,
  prepareMounts,
  resolveMountSources,
  validateVolumeName,
  VolumeStore,
} from "../../src/containers/volumes.ts";
import { buildSpec, containerMounts } from "../../src/runtime/spec.ts";
import { storeRoot } from "../../src/store/root.ts";

const IS_ROOT = (() => {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
})();

function tempDir(): { path: string; [Symbol.dispose](): void } {
  const path = Deno.makeTempDirSync({ prefix: "floka-vol-" });
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof FlokaError && message.test(err.message));
}

// --- -v ------------------------------------------------------------------------------------

Deno.test("-v: absolute source is a bind, rw by default, ro with :ro; paths are cleaned", () => {
  assert.deepEqual(parseVolumeFlag("/host/dir/:/ctr//path"), {
    type: "bind",
    source: "/host/dir",
    target: "/ctr/path",
    readOnly: false,
    createSource: true,
  });
  assert.equal(parseVolumeFlag("/a:/b:ro").readOnly, true);
  assert.equal(parseVolumeFlag("/a:/b:rw").readOnly, false);
});

Deno.test("-v: a name is a named volume", () => {
  assert.deepEqual(parseVolumeFlag("data.1_x-y:/var/lib/db:ro"), {
    type: "volume",
    name: "data.1_x-y",
    source: "",
    target: "/var/lib/db",
    readOnly: true,
  });
});

Deno.test("-v: mistakes are refused with Docker's messages", () => {
  refuses(() => parseVolumeFlag("/a:/b:rx"), /invalid mode: rx/);
  refuses(() => parseVolumeFlag("/a:b"), /mount path must be absolute/);
  refuses(() => parseVolumeFlag("/a:/"), /destination can't be '\/'/);
  refuses(() => parseVolumeFlag("/a:/b:ro:x"), /invalid volume specification/);
  refuses(() => parseVolumeFlag("a::/b"), /invalid volume specification/);
  refuses(() => parseVolumeFlag("./rel:/b"), /invalid characters for a local volume name/);
  refuses(() => parseVolumeFlag("x:/b"), /invalid characters/); // one character is too short
  const anonymous = parseVolumeFlag("/data");
  assert.equal(anonymous.type, "volume");
  assert.equal(anonymous.anonymous, true);
  assert.equal(anonymous.target, "/data");
  assert.match(anonymous.name!, /^[0-9a-f]{64}$/);
  assert.notEqual(parseVolumeFlag("/data").name, anonymous.name, "each anonymous volume is new");
});

Deno.test("mounts over /proc, /sys (or below) and /dev are refused", () => {
  for (const target of ["/proc", "/proc/sys", "/sys", "/sys/fs/cgroup", "/dev", "/x/../proc"]) {
    refuses(() => parseVolumeFlag(`/tmp:${target}`), /cannot mount over/);
    refuses(() => parseTmpfsFlag(target), /cannot mount over/);
  }
  // A device bound into /dev is fine, as in Docker.
  assert.equal(parseVolumeFlag("/dev/fuse:/dev/fuse").target, "/dev/fuse");
});

// --- --mount -------------------------------------------------------------------------------

Deno.test("--mount: bind, volume and tmpfs with their options", () => {
  assert.deepEqual(parseMountFlag("type=bind,source=/h,target=/c,readonly"), {
    type: "bind",
    source: "/h",
    target: "/c",
    readOnly: true,
  });
  assert.deepEqual(parseMountFlag("type=volume,src=v1,dst=/data,ro=false"), {
    type: "volume",
    name: "v1",
    source: "",
    target: "/data",
    readOnly: false,
  });
  assert.equal(parseMountFlag("source=v1,destination=/data,volume-nocopy").noCopy, true);
  assert.equal(parseMountFlag("src=v1,target=/d").type, "volume", "volume is the default type");
  assert.deepEqual(parseMountFlag("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770"), {
    type: "tmpfs",
    source: "",
    target: "/t",
    readOnly: false,
    options: ["nosuid", "nodev", "noexec", "size=1048576", "mode=1770"],
  });
});

Deno.test("--mount: mistakes are refused", () => {
  refuses(() => parseMountFlag("type=bind,source=/h"), /target is required/);
  refuses(() => parseMountFlag("type=bind,target=/c"), /Source must not be empty/);
  refuses(() => parseMountFlag("type=bind,source=rel,target=/c"), /must be absolute/);
  refuses(() => parseMountFlag("type=nfs,source=/h,target=/c"), /unsupported mount type 'nfs'/);
  refuses(() => parseMountFlag("type=bind,source=/h,target=/c,color=red"), /unexpected key 'color'/);
  refuses(() => parseMountFlag("type=tmpfs,source=/h,target=/c"), /source must not be specified/);
  refuses(() => parseMountFlag("type=bind,source=/h,target=/c,tmpfs-size=1m"), /cannot mix 'tmpfs-size'/);
  refuses(() => parseMountFlag("type=tmpfs,target=/c,tmpfs-mode=999"), /tmpfs-mode/);
  const anonymous = parseMountFlag("type=volume,target=/c,readonly");
  assert.deepEqual([anonymous.anonymous, anonymous.target, anonymous.readOnly], [true, "/c", true]);
  refuses(() => parseMountFlag("type=volume,source=/abs,target=/c"), /invalid characters/);
  refuses(() => parseMountFlag("type=bind,source=/h,target=/c,readonly=maybe"), /invalid value for readonly/);
  refuses(() => parseMountFlag("type=bind,source=/h,target=/proc"), /cannot mount over \/proc/);
});

Deno.test("--tmpfs: Docker's default options, then the given ones", () => {
  assert.deepEqual(parseTmpfsFlag("/scratch"), {
    type: "tmpfs",
    source: "",
    target: "/scratch",
    readOnly: false,
    options: ["nosuid", "nodev", "noexec"],
  });
  assert.deepEqual(parseTmpfsFlag("/run:size=64m,mode=1777,exec").options, [
    "nosuid",
    "nodev",
    "noexec",
    "size=67108864",
    "mode=1777",
    "exec",
  ]);
  assert.equal(parseTmpfsFlag("/r:ro").readOnly, true);
  refuses(() => parseTmpfsFlag("rel"), /must be absolute/);
  refuses(() => parseTmpfsFlag("/r:size=lots"), /invalid size/);
  refuses(() => parseTmpfsFlag("/r:mode=rwx"), /invalid tmpfs mode/);
});

Deno.test("two mounts on one destination are refused", () => {
  refuses(
    () => parseMountOptions({ volume: ["/a:/x"], mount: [], tmpfs: ["/x/"] }),
    /Duplicate mount point: \/x/,
  );
});

Deno.test("volume names: Docker's rule", () => {
  for (const ok of ["ab", "a1", "my_vol.2-x", "A".repeat(64)]) assert.equal(validateVolumeName(ok), ok);
  for (const bad of ["a", "_ab", ".ab", "-ab", "a/b", "a b", "a:b", "", ".."]) {
    refuses(() => validateVolumeName(bad), /invalid characters/);
  }
});

// --- the runtime's mounts --------------------------------------------------------------------

Deno.test("containerMounts: parents first; binds rbind+rprivate, ro by option; tmpfs with options", () => {
  const mounts: MountSpec[] = [
    { type: "bind", source: "/h/sub", target: "/a/b", readOnly: true },
    { type: "volume", name: "v", source: "/s/volumes/v/_data", target: "/a", readOnly: false },
    { type: "tmpfs", source: "", target: "/t", readOnly: false, options: ["nosuid", "size=10"] },
  ];
  assert.deepEqual(containerMounts(mounts), [
    { type: "bind", source: "/s/volumes/v/_data", target: "/a", options: ["rbind", "rprivate"] },
    { type: "tmpfs", source: "tmpfs", target: "/t", options: ["nosuid", "size=10"] },
    { type: "bind", source: "/h/sub", target: "/a/b", options: ["rbind", "rprivate", "ro"] },
  ]);
});

function record(mounts: MountSpec[], readOnly = false): ContainerRecord {
  return {
    id: "f".repeat(64),
    name: "t",
    created: "2026-01-01T00:00:00.000Z",
    image: "busybox:latest",
    lowerDirs: ["/img/rootfs"],
    path: "sh",
    args: [],
    config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
    hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0, mounts, readOnly },
  };
}

Deno.test("buildSpec: the container's mounts after the system mounts, the /etc files over them", () => {
  const spec = buildSpec(
    record([
      { type: "volume", name: "v", source: "/s/v", target: "/etc", readOnly: false },
      { type: "bind", source: "/my/hosts", target: "/etc/hosts", readOnly: true },
    ]),
    "/c",
    [],
  );
  const targets = spec.mounts.map((m) => m.target);
  assert.deepEqual(targets.slice(-4), ["/etc", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
  assert.ok(targets.indexOf("/proc") < targets.indexOf("/etc"));
  // The container's own /etc/hosts replaces the generated one.
  assert.equal(spec.mounts.find((m) => m.target === "/etc/hosts")?.source, "/my/hosts");
  assert.ok(!spec.rootMount.options.includes("ro"));
  assert.ok(buildSpec(record([], true), "/c", []).rootMount.options.includes("ro"));
});

// --- the volume store ------------------------------------------------------------------------

Deno.test("volume store: create, get, list, create again is the same volume", () => {
  using t = tempDir();
  const volumes = new VolumeStore(storeRoot(t.path));
  assert.deepEqual(volumes.list(), []);
  const { volume, created } = volumes.create("data", { team: "a" });
  assert.equal(created, true);
  assert.equal(volume.mountpoint, `${t.path}/volumes/data/_data`);
  assert.ok(Deno.statSync(volume.mountpoint).isDirectory);
  assert.deepEqual(volume.meta.labels, { team: "a" });
  const again = volumes.create("data");
  assert.equal(again.created, false);
  assert.equal(again.volume.meta.createdAt, volume.meta.createdAt);
  const anon = volumes.create().volume;
  assert.match(anon.name, /^[0-9a-f]{64}$/);
  assert.deepEqual(volumes.list().map((v) => v.name), [anon.name, "data"].sort());
  assert.equal(volumes.get("nope"), null);
  assert.equal(volumes.get("../x"), null);
  refuses(() => volumes.create("bad/name"), /invalid characters/);
});

Deno.test("volume store: rm refuses a volume in use, even forced; -f ignores missing ones", () => {
  using t = tempDir();
  const volumes = new VolumeStore(storeRoot(t.path));
  volumes.create("used");
  volumes.create("free");
  Deno.writeTextFileSync(`${volumes.path("free")}/f`, "x");
  const users = (name: string) => name === "used" ? ["c1"] : [];
  const removed: string[] = [];
  const errors = volumes.remove(["used", "free", "ghost"], users, true, (n) => removed.push(n));
  assert.deepEqual(removed, ["free"]);
  assert.deepEqual(errors, ["remove used: volume is in use - [c1]"]);
  assert.deepEqual(volumes.remove(["ghost"], users, false, () => {}), ["No such volume: ghost"]);
  assert.deepEqual(volumes.list().map((v) => v.name), ["used"]);
  assert.deepEqual([...Deno.readDirSync(volumes.dir)].map((e) => e.name).sort(), [".lock", "used"]);
});

Deno.test("volume store: prune removes the unused volumes and counts their bytes", () => {
  using t = tempDir();
  const volumes = new VolumeStore(storeRoot(t.path));
  for (const n of ["a1", "b1", "c1"]) volumes.create(n);
  Deno.mkdirSync(`${volumes.path("b1")}/d`);
  Deno.writeTextFileSync(`${volumes.path("b1")}/d/f`, "12345");
  const { names, bytes } = volumes.prune((n) => n === "a1" ? ["x"] : []);
  assert.deepEqual(names, ["b1", "c1"]);
  assert.equal(bytes, 5);
  assert.deepEqual(volumes.list().map((v) => v.name), ["a1"]);
});

Deno.test("volume store: what a killed Floka left halfway is never a volume and is swept", () => {
  using t = tempDir();
  const volumes = new VolumeStore(storeRoot(t.path));
  volumes.create("keep");
  // A create and a removal interrupted by SIGKILL; a directory without meta.json.
  Deno.mkdirSync(`${volumes.dir}/.creating-123/_data`, { recursive: true });
  Deno.mkdirSync(`${volumes.dir}/.removing-old-1234/_data`, { recursive: true });
  Deno.mkdirSync(`${volumes.dir}/half/_data`, { recursive: true });
  assert.deepEqual(volumes.list().map((v) => v.name), ["keep"]);
  volumes.create("other");
  const left = [...Deno.readDirSync(volumes.dir)].map((e) => e.name).sort();
  assert.deepEqual(left, [".lock", "half", "keep", "other"]);
});

Deno.test("resolveMountSources and prepareMounts: volume paths, -v makes a missing source, --mount refuses it", () => {
  using t = tempDir();
  const volumes = new VolumeStore(storeRoot(t.path));
  const missing = `${t.path}/host/missing`;
  refuses(
    () => resolveMountSources([parseMountFlag(`type=bind,source=${missing},target=/x`)], volumes),
    /bind source path does not exist/,
  );
  const mounts = resolveMountSources([parseVolumeFlag(`${missing}:/x`), parseVolumeFlag("vv:/y")], volumes);
  assert.equal(mounts[1].source, volumes.path("vv"));
  assert.equal(volumes.get("vv"), null, "nothing is made before prepareMounts");
  Deno.mkdirSync(`${t.path}/img/y`, { recursive: true });
  Deno.writeTextFileSync(`${t.path}/img/y/seed`, "from the image");
  prepareMounts(mounts, volumes, [`${t.path}/img`]);
  assert.ok(Deno.statSync(missing).isDirectory);
  assert.equal(Deno.readTextFileSync(`${volumes.path("vv")}/seed`), "from the image");
  // Not empty any more: a second container does not copy again.
  Deno.removeSync(`${volumes.path("vv")}/seed`);
  Deno.writeTextFileSync(`${volumes.path("vv")}/mine`, "");
  prepareMounts(mounts, volumes, [`${t.path}/img`]);
  assert.deepEqual([...Deno.readDirSync(volumes.path("vv"))].map((e) => e.name), ["mine"]);
});

// --- copy-up ---------------------------------------------------------------------------------

Deno.test("copyUp: the merged content of the layers, symlinks copied as links, modes kept", () => {
  using t = tempDir();
  const [top, bottom, dest] = ["top", "bottom", "dest"].map((d) => `${t.path}/${d}`);
  Deno.mkdirSync(`${bottom}/data/sub`, { recursive: true });
  Deno.writeTextFileSync(`${bottom}/data/a`, "bottom a");
  Deno.writeTextFileSync(`${bottom}/data/sub/b`, "bottom b");
  Deno.mkdirSync(`${top}/data`, { recursive: true });
  Deno.writeTextFileSync(`${top}/data/a`, "top a");
  Deno.symlinkSync("/etc/shadow", `${top}/data/link`);
  Deno.writeTextFileSync(`${top}/data/exe`, "#!/bin/sh");
  Deno.chmodSync(`${top}/data/exe`, 0o750);
  Deno.mkdirSync(dest);
  copyUp([top, bottom], "/data", dest);
  assert.equal(Deno.readTextFileSync(`${dest}/a`), "top a");
  assert.equal(Deno.readTextFileSync(`${dest}/sub/b`), "bottom b");
  assert.equal(Deno.readLinkSync(`${dest}/link`), "/etc/shadow");
  assert.equal(Deno.statSync(`${dest}/exe`).mode! & 0o7777, 0o750);
});

Deno.test("copyUp: a destination that is a symlink is resolved inside the image, never on the host", () => {
  using t = tempDir();
  const layer = `${t.path}/layer`;
  const dest = `${t.path}/dest`;
  Deno.mkdirSync(`${layer}/real`, { recursive: true });
  Deno.writeTextFileSync(`${layer}/real/inside`, "image");
  Deno.symlinkSync("../../../../real", `${layer}/data`);
  Deno.symlinkSync("/etc", `${layer}/hostetc`); // the image has no /etc: nothing to copy
  Deno.mkdirSync(dest);
  copyUp([layer], "/data", dest);
  assert.deepEqual([...Deno.readDirSync(dest)].map((e) => e.name), ["inside"]);
  Deno.removeSync(`${dest}/inside`);
  copyUp([layer], "/hostetc", dest);
  assert.deepEqual([...Deno.readDirSync(dest)], [], "copied the host's /etc");
});

Deno.test({
  name: "copyUp: whiteouts and opaque directories hide the layers below (root: devices and trusted xattrs)",
  ignore: !IS_ROOT,
  fn() {
    using t = tempDir();
    const [top, bottom, dest] = ["top", "bottom", "dest"].map((d) => `${t.path}/${d}`);
    Deno.mkdirSync(`${bottom}/data/old`, { recursive: true });
    Deno.writeTextFileSync(`${bottom}/data/gone`, "");
    Deno.writeTextFileSync(`${bottom}/data/old/x`, "");
    Deno.writeTextFileSync(`${bottom}/data/kept`, "");
    Deno.mkdirSync(`${top}/data/old`, { recursive: true });
    libc.mknod(`${top}/data/gone`, S_IFCHR, 0, 0);
    Deno.writeTextFileSync(`${top}/data/old/y`, "");
    libc.lsetxattr(`${top}/data/old`, "trusted.overlay.opaque", new TextEncoder().encode("y"));
    Deno.mkdirSync(dest);
    copyUp([top, bottom], "/data", dest);
    assert.deepEqual([...Deno.readDirSync(dest)].map((e) => e.name).sort(), ["kept", "old"]);
    assert.deepEqual([...Deno.readDirSync(`${dest}/old`)].map((e) => e.name), ["y"]);
  },
});

Deno.test("imageVolumes: the image's VOLUME paths a mount does not cover become anonymous volumes", () => {
  const given = [parseVolumeFlag("named:/data")];
  const made = imageVolumes({ "/data": {}, "/var/lib/db/": {}, "/logs": {} }, given);
  assert.deepEqual(made.map((m) => m.target), ["/var/lib/db", "/logs"]);
  assert.ok(made.every((m) => m.anonymous && /^[0-9a-f]{64}$/.test(m.name!)));
  assert.deepEqual(imageVolumes(undefined, given), []);
});
