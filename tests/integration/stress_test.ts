/**
 * Floka under load and under pressure, from the hardening issue:
 *
 * 1. Sixteen `floka run --rm` and four pulls of one image at once, against one store: all
 *    succeed, and the store ends with one copy of each blob and each unpacked layer,
 *    nothing in `images/tmp`, no container.
 * 2. A store on a full file system (a small tmpfs): pull, build, and run of an image to
 *    pull fail with exit 125 and one line that says "no space left on device", and leave
 *    nothing partial: at most complete, verified content of the image (as containerd
 *    keeps it), and after `floka image prune` the store is exactly as it was. On a disk
 *    full to the last byte `run` fails the same way; once there is room, it works again.
 * 3. 200 containers of every kind (foreground, `--rm`, `-d` then stop or `rm -f`, `-d --rm`
 *    with its supervisor and process SIGKILLed, a published port on the default and on a
 *    user-defined network, `--network none`, `--network host`), four at a time: afterwards
 *    no mount, cgroup, network namespace, veth, iptables rule, IPAM lease, release job,
 *    socket, temporary or lock file of theirs is left.
 *
 * Other Floka processes may share the host meanwhile (other tests), so the host is searched
 * for what belongs to this test's containers (their IDs, addresses and veth ifindexes, which
 * each container reports), not compared as a whole. A network is released in the
 * background once its container ends (see src/network/release.ts), so the check waits for
 * the host to settle before it compares; the wait is a safety net, not a timing assertion.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { makeBusyboxImage } from "../fixtures/busybox_image.ts";
import {
  CGROUP_ROOT,
  hostMountsMentioning,
  IS_ROOT,
  lines,
  type Result,
  show,
  Store,
  waitUntil,
  withStore,
} from "./helpers.ts";
import { addBusybox, type Digest, OciLayout, skopeoPush, umociLayer, umociNew } from "./image_builder.ts";
import { freePort, registryToolsMissing, run, startRegistry, type TestRegistry } from "./registry_harness.ts";
import { pathExists } from "../../src/store/files.ts";

const CNI_BRIDGE = "/usr/lib/cni/bridge";

const missing = registryToolsMissing();
const skip = !IS_ROOT
  ? "stress tests skipped: they need root"
  : missing
  ? `stress tests skipped: ${missing}`
  : !pathExists(CNI_BRIDGE)
  ? `stress tests skipped: ${CNI_BRIDGE} is missing (apt-get install containernetworking-plugins)`
  : null;
if (skip) console.error(skip);

function stressTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, ignore: skip !== null, fn });
}

// --- helpers -------------------------------------------------------------------------------

/** Runs `fn` over `items`, at most `limit` at a time; results in order. */
async function inPool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function readDirNames(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
}

/**
 * Every path under `root` (relative to it), with the size of each file, except inside
 * image root file systems and unpacked layers: those are listed as one entry each.
 */
function storeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of Deno.readDirSync(rel ? `${root}/${rel}` : root)) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isFile) {
        out.push(`${path} (${Deno.lstatSync(`${root}/${path}`).size} bytes)`);
        continue;
      }
      out.push(`${path}${entry.isDirectory ? "/" : ""}`);
      if (!entry.isDirectory) continue;
      if (entry.name === "rootfs" || /^images\/layers\/sha256\/[0-9a-f]{64}$/.test(path)) continue;
      walk(path);
    }
  };
  walk("");
  return out.sort();
}

/** Names Floka gives its temporary files (`writeFileAtomic`) and directories (`tempPath`). */
const TEMP_NAME = /\.tmp-\d+-|^(blob|layer|build|import|commit|export|save|load)-\d+-/;

/** Temporary files and lock files anywhere in the store, outside image root file systems. */
function tempAndLockFiles(root: string): { temp: string[]; locks: string[] } {
  const listing = storeListing(root).map((l) => l.replace(/ \(\d+ bytes\)$/, "").replace(/\/$/, ""));
  const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  return {
    temp: listing.filter((p) => TEMP_NAME.test(base(p))),
    locks: listing.filter((p) => /(^|\.)lock$/.test(base(p))),
  };
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A manifest as the registry serves it, with its config. */
async function registryImage(
  registry: TestRegistry,
  name: string,
  tag: string,
): Promise<{ digest: Digest; config: Digest; layers: Digest[]; diffIds: Digest[] }> {
  const res = await fetch(`http://${registry.host}/v2/${name}/manifests/${tag}`, {
    headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  assert.equal(res.status, 200, `GET manifest ${name}:${tag}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const manifest = JSON.parse(new TextDecoder().decode(bytes));
  const configRes = await fetch(`http://${registry.host}/v2/${name}/blobs/${manifest.config.digest}`);
  assert.equal(configRes.status, 200, `GET config of ${name}:${tag}`);
  const config = await configRes.json();
  return {
    digest: `sha256:${sha256Hex(bytes)}`,
    config: manifest.config.digest,
    layers: manifest.layers.map((l: { digest: Digest }) => l.digest),
    diffIds: config.rootfs.diff_ids,
  };
}

/** Writes `size` random (incompressible) bytes to `path`. */
function writeRandomFile(path: string, size: number): void {
  using file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(65536);
  for (let done = 0; done < size;) {
    const n = Math.min(chunk.length, size - done);
    crypto.getRandomValues(chunk.subarray(0, n));
    for (let w = 0; w < n;) w += file.writeSync(chunk.subarray(w, n));
    done += n;
  }
}

/** Fills the file system holding `path` to the last byte, writing `path`. */
function fillUp(path: string): void {
  using file = Deno.openSync(path, { write: true, createNew: true });
  const chunk = new Uint8Array(65536);
  try {
    for (;;) file.writeSync(chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  }
}

/** Free bytes on the file system holding `path` (`stat -f`). */
async function freeBytes(path: string): Promise<number> {
  const [avail, blockSize] = (await run("stat", ["-f", "-c", "%a %S", path])).trim().split(" ").map(Number);
  return avail * blockSize;
}

/** The lines of `floka` stderr that are not empty. */
function stderrLines(r: Result): string[] {
  return lines(r.stderr).filter((l) => l.trim() !== "");
}

// --- 1 -------------------------------------------------------------------------------------

stressTest(
  "stress: 16 parallel `floka run --rm` plus 4 parallel pulls of the same image: all succeed; one copy of each blob and layer",
  async () => {
    const registry = await startRegistry();
    const work = await Deno.makeTempDir({ prefix: "floka-stress-" });
    try {
      // Three layers: busybox, then a file, then another.
      const layout = await OciLayout.init(`${work}/layout`);
      await umociNew(layout, "latest");
      await umociLayer(layout, "latest", addBusybox);
      await umociLayer(layout, "latest", (rootfs) => {
        Deno.mkdirSync(`${rootfs}/data`, { recursive: true });
        Deno.writeTextFileSync(`${rootfs}/data/one`, "layer two\n");
      });
      await umociLayer(layout, "latest", (rootfs) => {
        Deno.writeTextFileSync(`${rootfs}/data/two`, "layer three\n");
      });
      const ref = `${registry.host}/stress:latest`;
      await skopeoPush(layout, "latest", ref);
      const image = await registryImage(registry, "stress", "latest");
      assert.equal(image.layers.length, 3);

      await withStore(async (s) => {
        const runs = Array.from(
          { length: 16 },
          (_, i) => s.run(["--rm", "busybox", "sh", "-c", `echo run $0 says hello`, String(i)]),
        );
        const pulls = Array.from({ length: 4 }, () => s.floka(["pull", ref]));
        const [ran, pulled] = await Promise.all([Promise.all(runs), Promise.all(pulls)]);
        ran.forEach((r, i) => {
          assert.equal(r.code, 0, `run ${i}: ${show(r)}`);
          assert.equal(r.stdout, `run ${i} says hello\n`, `run ${i}: ${show(r)}`);
        });
        pulled.forEach((r, i) => {
          assert.equal(r.code, 0, `pull ${i}: ${show(r)}`);
          assert.equal(r.stdout.trim(), ref, `pull ${i}: ${show(r)}`);
        });

        // One file per blob (the manifest, its config, three layers), each matching its name.
        const images = `${s.root}/images`;
        const blobs = readDirNames(`${images}/blobs/sha256`);
        const expected = [image.digest, image.config, ...image.layers].map((d) => d.slice(7)).sort();
        assert.deepEqual(blobs, expected, "the blobs stored");
        for (const hex of blobs) {
          assert.equal(sha256Hex(Deno.readFileSync(`${images}/blobs/sha256/${hex}`)), hex, `blob ${hex}`);
        }
        // One unpacked directory per layer.
        assert.deepEqual(
          readDirNames(`${images}/layers/sha256`),
          image.diffIds.map((d) => d.slice(7)).sort(),
          "the unpacked layers",
        );
        // One tag for the image, nothing half-done, no container.
        const index = JSON.parse(Deno.readTextFileSync(`${images}/index.json`));
        assert.equal(index.manifests.length, 1, JSON.stringify(index));
        assert.equal(index.manifests[0].digest, image.digest);
        assert.deepEqual(readDirNames(`${images}/tmp`), [], "leftovers in images/tmp");
        assert.deepEqual(tempAndLockFiles(s.root).temp, [], "temporary files in the store");
        assert.deepEqual(await s.ids(), [], "containers left");
        assert.deepEqual(s.containerEntries(), [], "container directories or names left");

        // And the image the four pulls made works.
        const check = await s.run(["--rm", ref, "cat", "/data/one", "/data/two"]);
        assert.equal(check.code, 0, show(check));
        assert.equal(check.stdout, "layer two\nlayer three\n");
      });
    } finally {
      await registry.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
);

// --- 2 -------------------------------------------------------------------------------------

/** The tmpfs the full-disk test uses as its store: big enough for busybox, not for more. */
const TMPFS_SIZE = "12m";

stressTest(
  "stress: a root directory on a full filesystem: pull and build fail with 'no space left on device' and leave nothing partial",
  async () => {
    const registry = await startRegistry();
    const work = await Deno.makeTempDir({ prefix: "floka-stress-" });
    const root = `${work}/root`;
    Deno.mkdirSync(root);
    await run("mount", ["-t", "tmpfs", "-o", `size=${TMPFS_SIZE},mode=0755`, "floka-stress", root]);
    const s = new Store(root);
    try {
      makeBusyboxImage(s.imageDir());
      // Use the store once, a pull included, so that what a command makes on its first use
      // (the OCI layout's directories, lock files) is there before the failures.
      const small = await OciLayout.init(`${work}/small`);
      await umociNew(small, "latest");
      await umociLayer(small, "latest", (rootfs) => Deno.writeTextFileSync(`${rootfs}/hello`, "hello\n"));
      await skopeoPush(small, "latest", `${registry.host}/small:latest`);
      const pulledSmall = await s.floka(["pull", `${registry.host}/small:latest`]);
      assert.equal(pulledSmall.code, 0, show(pulledSmall));
      const first = await s.run(["--rm", "busybox", "true"]);
      assert.equal(first.code, 0, show(first));
      const tiny = `${work}/tiny`;
      Deno.mkdirSync(tiny);
      Deno.writeTextFileSync(`${tiny}/small`, "small\n");
      Deno.writeTextFileSync(`${tiny}/Flokafile`, "FROM busybox\nCOPY small /small\n");
      const built = await s.floka(["build", "-q", "-t", "tiny", tiny]);
      assert.equal(built.code, 0, show(built));
      const imagesBefore = await s.floka([
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}",
      ]);
      assert.equal(imagesBefore.code, 0, show(imagesBefore));

      // Whatever a command made on its first use is there now; garbage collection has
      // nothing to do in this store.
      const pruned = await s.floka(["image", "prune", "-f"]);
      assert.equal(pruned.code, 0, show(pruned));

      // More random bytes than the tmpfs has room for: in three layers pulled at once, in a
      // build context.
      const big = (await freeBytes(root)) + 2 * 1024 * 1024;
      const layout = await OciLayout.init(`${work}/layout`);
      await umociNew(layout, "latest");
      for (const n of [1, 2, 3]) {
        await umociLayer(
          layout,
          "latest",
          (rootfs) => writeRandomFile(`${rootfs}/big${n}`, Math.ceil(big / 3)),
        );
      }
      const ref = `${registry.host}/big:latest`;
      await skopeoPush(layout, "latest", ref);
      const image = await registryImage(registry, "big", "latest");
      // A layer whose blob fits, but not once more unpacked.
      const halfLayout = await OciLayout.init(`${work}/half`);
      await umociNew(halfLayout, "latest");
      const half = Math.floor((await freeBytes(root)) * 0.6);
      await umociLayer(halfLayout, "latest", (rootfs) => writeRandomFile(`${rootfs}/half`, half));
      const halfRef = `${registry.host}/half:latest`;
      await skopeoPush(halfLayout, "latest", halfRef);
      const halfImage = await registryImage(registry, "half", "latest");
      const context = `${work}/context`;
      Deno.mkdirSync(context);
      writeRandomFile(`${context}/big`, big);
      Deno.writeTextFileSync(`${context}/Flokafile`, "FROM busybox\nCOPY big /big\n");
      // A step whose files fit, but not once more as the layer's blob.
      const fits = `${work}/fits`;
      Deno.mkdirSync(fits);
      writeRandomFile(`${fits}/part`, Math.floor((await freeBytes(root)) * 0.6));
      Deno.writeTextFileSync(`${fits}/Flokafile`, "FROM busybox\nCOPY part /part\n");

      // A failed pull may keep what it stored whole, as containerd does: the manifest, the
      // config, a layer blob verified before its unpacking ran out of room, a layer another
      // download left no room for. It is complete (blobs are checked here, a layer directory
      // only ever appears by a rename once verified), the next pull resumes from it, and
      // garbage collection removes it. Anything else new (a partial blob or layer, a tag,
      // a temporary file, a container) is a leftover.
      const keepableBlobs = new Set(
        [image, halfImage].flatMap((i) => [i.digest, i.config, ...i.layers]).map((d) => d.slice(7)),
      );
      const keepableLayers = new Set([image, halfImage].flatMap((i) => i.diffIds).map((d) => d.slice(7)));
      const leftovers = (before: string[], after: string[]) => {
        const old = new Set(before);
        return after.filter((entry) => {
          if (old.has(entry)) return false;
          const blob = /^images\/blobs\/sha256\/([0-9a-f]{64}) \(\d+ bytes\)$/.exec(entry)?.[1];
          if (blob && keepableBlobs.has(blob)) {
            return sha256Hex(Deno.readFileSync(`${root}/images/blobs/sha256/${blob}`)) !== blob;
          }
          const layer = /^images\/layers\/sha256\/([0-9a-f]{64})\/$/.exec(entry)?.[1];
          return !(layer && keepableLayers.has(layer));
        });
      };
      const expectNoSpace = async (what: string, args: string[]) => {
        const before = storeListing(root);
        const r = await s.floka(args);
        assert.equal(r.code, 125, `${what}: ${show(r)}`);
        const errors = stderrLines(r).filter((l) => l.startsWith("floka:"));
        assert.equal(errors.length, 1, `${what}: one error line: ${show(r)}`);
        assert.match(errors[0], /no space left on device/i, `${what}: ${show(r)}`);
        assert.ok(
          !stderrLines(r).some((l) => /^\s+at /.test(l)),
          `${what}: a stack trace is no message: ${show(r)}`,
        );
        const after = storeListing(root);
        assert.deepEqual(leftovers(before, after), [], `${what} left something in the store`);
        assert.deepEqual(before.filter((e) => !after.includes(e)), [], `${what} removed something`);
        assert.deepEqual(hostMountsMentioning(root).filter((l) => !l.includes(` ${root} `)), [], what);
        // And once garbage is collected, the store is exactly as it was.
        const prune = await s.floka(["image", "prune", "-f"]);
        assert.equal(prune.code, 0, `image prune after ${what}: ${show(prune)}`);
        assert.deepEqual(storeListing(root), before, `the store after ${what} and image prune`);
      };
      await expectNoSpace("build", ["build", "-t", "toobig", context]);
      await expectNoSpace("build of a layer too big to store", ["build", "-t", "toobig", fits]);
      await expectNoSpace("pull", ["pull", ref]);
      await expectNoSpace("run of an image to pull", ["run", "--rm", ref, "true"]);
      await expectNoSpace("pull of a layer too big to unpack", ["pull", halfRef]);

      // Full to the last byte: not even a container can be made. Once there is room, it can.
      fillUp(`${root}/filler`);
      await expectNoSpace("run --rm on a full disk", ["run", "--rm", "busybox", "true"]);
      await expectNoSpace("run -d on a full disk", ["run", "-d", "--name", "full", "busybox", "sleep", "1"]);
      Deno.removeSync(`${root}/filler`);

      // The store still works, as it was.
      const imagesAfter = await s.floka(["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"]);
      assert.equal(imagesAfter.code, 0, show(imagesAfter));
      assert.equal(imagesAfter.stdout, imagesBefore.stdout);
      const after = await s.run(["--rm", "busybox", "echo", "still works"]);
      assert.equal(after.code, 0, show(after));
      assert.equal(after.stdout, "still works\n");
      assert.deepEqual(await s.ids(), []);
      assert.deepEqual(readDirNames(`${root}/images/tmp`), []);
    } finally {
      await s.cleanUp();
      await run("umount", [root]).catch(() => run("umount", ["-l", root]));
      await registry.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
);

// --- 3 -------------------------------------------------------------------------------------

const RUN_FLOKA = "/run/floka";
const LEASES = "/var/lib/cni/networks";

function sh(cmd: string, args: string[]): string {
  const out = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Every `floka/<name>` cgroup directory, in every hierarchy. */
function flokaCgroups(): string[] {
  const found: string[] = [];
  const parents = [
    `${CGROUP_ROOT}/floka`,
    ...readDirNames(CGROUP_ROOT).map((c) => `${CGROUP_ROOT}/${c}/floka`),
  ];
  for (const parent of parents) {
    try {
      for (const e of Deno.readDirSync(parent)) if (e.isDirectory) found.push(`${parent}/${e.name}`);
    } catch { /* no such hierarchy, or no floka in it */ }
  }
  return found.sort();
}

/**
 * What identifies the host-side things of the containers this test ran: their IDs, their
 * addresses, and the host ends of their veths (ifindex). Other Floka processes may use the
 * same host meanwhile (other tests); only what is ours counts.
 */
interface Footprints {
  ids: Set<string>;
  ips: Set<string>;
  ifindexes: Set<string>;
}

/**
 * What a container prints about itself: the argument, its ID (the source of its
 * /etc/hostname bind mount, as /proc/self/mountinfo shows it), and, when it has an eth0,
 * the ifindex of the host end of its veth and its address.
 */
const SELF_REPORT =
  'echo "$0"; grep -o "/containers/[0-9a-f]*/hostname " /proc/self/mountinfo | head -n 1; ' +
  'if [ -e /sys/class/net/eth0 ]; then echo "iflink $(cat /sys/class/net/eth0/iflink)"; ip -o -4 addr show eth0; fi';

/** Adds what `report` (SELF_REPORT's output) says to `mine`; checks it says what `say` expects. */
function noteFootprints(mine: Footprints, report: string, say: string, bridged: boolean): void {
  const out = lines(report);
  assert.equal(out[0], say, report);
  const id = /^\/containers\/([0-9a-f]{64})\/hostname $/.exec(out[1] ?? "")?.[1];
  assert.ok(id, `${say}: no container ID in ${JSON.stringify(report)}`);
  mine.ids.add(id);
  if (!bridged) return;
  const ifindex = /^iflink (\d+)$/m.exec(report)?.[1];
  const ip = / inet (\d+\.\d+\.\d+\.\d+)\//.exec(report)?.[1];
  assert.ok(ifindex && ip, `${say}: no veth or address in ${JSON.stringify(report)}`);
  mine.ifindexes.add(ifindex);
  mine.ips.add(ip);
}

/** True while process `pid` exists and is not a zombie. */
function processRuns(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** What of the containers in `mine` is still on the host, by kind; every entry one line. */
function footprintsLeft(store: Store, mine: Footprints): Record<string, string[]> {
  const ids = [...mine.ids];
  const hasId = (text: string) => ids.some((id) => text.includes(id));
  const ipRe = (ip: string) => new RegExp(`(^|[^\\d.])${ip.replaceAll(".", "\\.")}($|[^\\d])`);
  const ipRes = [...mine.ips].map(ipRe);
  const hasIp = (text: string) => ipRes.some((re) => re.test(text));
  // iptables: rules naming a container (CNI comments carry its ID) or its address, and
  // the per-container chains those rules jump to, with everything in them.
  const rules = ["filter", "nat"].flatMap((table) =>
    lines(sh("iptables-save", ["-t", table])).filter((l) => !l.startsWith("#") && l !== "COMMIT")
      .map((l) => `${table}: ${l.replace(/ \[\d+:\d+\]$/, "")}`)
  );
  const named = rules.filter((r) => hasId(r) || hasIp(r));
  const chains = new Set(named.flatMap((r) => /-j (CNI-(?:DN-)?[0-9a-f]{16,})\b/.exec(r)?.[1] ?? []));
  const inChains = rules.filter((r) =>
    [...chains].some((c) => r.includes(`:${c} `) || r.includes(`-A ${c} `))
  );
  const leases = readDirNames(LEASES).flatMap((net) =>
    readDirNames(`${LEASES}/${net}`).filter((f) => {
      if (mine.ips.has(f)) return true;
      try {
        return hasId(Deno.readTextFileSync(`${LEASES}/${net}/${f}`));
      } catch {
        return false;
      }
    }).map((f) => `${net}/${f}`)
  );
  const veths = lines(sh("ip", ["-o", "link", "show", "type", "veth"]))
    .filter((l) => mine.ifindexes.has(l.split(":")[0]));
  const left: Record<string, string[]> = {
    mounts: lines(Deno.readTextFileSync("/proc/self/mountinfo"))
      .filter((l) => l.includes(store.root) || hasId(l)),
    cgroups: flokaCgroups().filter(hasId),
    netns: [...readDirNames(`${RUN_FLOKA}/netns`), ...lines(sh("ip", ["netns", "list"]))].filter(hasId),
    veths,
    iptables: [...new Set([...named, ...inChains])],
    leases,
    runFloka: [...readDirNames(RUN_FLOKA), ...readDirNames(`${RUN_FLOKA}/release`).map((n) => `release/${n}`)]
      .filter(hasId),
  };
  return Object.fromEntries(Object.entries(left).filter(([, v]) => v.length));
}

/** The store's own leftovers: temporary files and directories, lock files, container entries. */
function storeSnapshot(store: Store): Record<string, string[]> {
  const { temp, locks } = tempAndLockFiles(store.root);
  return {
    temp: [...new Set([...readDirNames(`${store.root}/images/tmp`).map((n) => `images/tmp/${n}`), ...temp])],
    locks,
    containers: store.containerEntries(),
  };
}

type Kind = "foreground" | "rm" | "detached" | "killed" | "published" | "user-network" | "none" | "host";
const KINDS: Kind[] = ["foreground", "rm", "detached", "killed", "published", "user-network", "none", "host"];
/** The user-defined network of the leak check. */
const NETWORK = `flstress${Deno.pid}`;

/** One container of `kind`, from start to removal; checks every step, notes its footprints. */
async function oneContainer(s: Store, mine: Footprints, kind: Kind, n: number): Promise<void> {
  const name = `leak-${n}`;
  const say = `${kind}-${n}`;
  const bridged = kind !== "none" && kind !== "host";
  const expectOk = (r: Result, what: string, stdout?: string) => {
    assert.equal(r.code, 0, `${what} (${say}): ${show(r)}`);
    if (stdout !== undefined) assert.equal(r.stdout, stdout, `${what} (${say}): ${show(r)}`);
  };
  const report = ["sh", "-c", SELF_REPORT, say];
  const runOnce = async (args: string[]) => {
    const r = await s.run(args);
    expectOk(r, `run ${args.slice(0, -report.length - 1).join(" ")}`);
    noteFootprints(mine, r.stdout, say, bridged);
  };
  switch (kind) {
    case "foreground":
      await runOnce(["--name", name, "busybox", ...report]);
      expectOk(await s.floka(["rm", name]), "rm", `${name}\n`);
      return;
    case "rm":
      await runOnce(["--rm", "busybox", ...report]);
      return;
    case "detached":
    case "killed": {
      const started = await s.run([
        "-d",
        ...(kind === "killed" ? ["--rm"] : []),
        "--name",
        name,
        "-p",
        `${freePort()}:80`,
        "busybox",
        "sh",
        "-c",
        `${SELF_REPORT}; exec sleep 60`,
        say,
      ]);
      expectOk(started, "run -d");
      const id = /^([0-9a-f]{64})\n$/.exec(started.stdout)?.[1];
      assert.ok(id, show(started));
      mine.ids.add(id);
      const logs = await waitUntil(`${say}'s report in its log`, async () => {
        const r = await s.floka(["logs", name]);
        return r.code === 0 && r.stdout.includes("inet ") ? r.stdout : undefined;
      });
      noteFootprints(mine, logs, say, bridged);
      if (kind === "killed") {
        // Its supervisor and its process SIGKILLed: the next command that looks cleans up.
        const state = JSON.parse(Deno.readTextFileSync(`${s.containersDir}/${id}/state.json`));
        const pids: number[] = [state.supervisorPid, state.pid];
        assert.ok(pids.every((pid) => pid > 0), JSON.stringify(state));
        for (const pid of pids) Deno.kill(pid, "SIGKILL");
        await waitUntil(`${say}'s processes to be gone`, () => pids.every((pid) => !processRuns(pid)));
        expectOk(await s.floka(["ps", "-a"]), "ps -a");
        assert.ok(!(await s.ids()).includes(id), `${say}: still listed after its end was noticed`);
      } else if (n % 2) {
        expectOk(await s.floka(["stop", "-t", "0", name]), "stop", `${name}\n`);
        expectOk(await s.floka(["rm", name]), "rm", `${name}\n`);
      } else {
        expectOk(await s.floka(["rm", "-f", name]), "rm -f", `${name}\n`);
      }
      return;
    }
    case "published":
      await runOnce(["--rm", "-p", `${freePort()}:80`, "busybox", ...report]);
      return;
    case "user-network":
      await runOnce(["--rm", "--network", NETWORK, "-p", `${freePort()}:80`, "busybox", ...report]);
      return;
    case "none":
    case "host":
      await runOnce(["--rm", "--network", kind, "busybox", ...report]);
      return;
  }
}

stressTest(
  "stress: a leak check after 200 container runs of every kind: no mounts, cgroups, network namespaces, veths, iptables rules, temp directories or lock files left",
  async () => {
    await withStore(async (s) => {
      const created = await s.floka(["network", "create", NETWORK]);
      assert.equal(created.code, 0, show(created));
      try {
        await leakCheck(s);
      } finally {
        await s.floka(["network", "rm", NETWORK]);
      }
    });
  },
);

async function leakCheck(s: Store): Promise<void> {
  // One of each kind first: what is made once per store (lock files, the network's
  // record) is not a leak.
  const warmUp: Footprints = { ids: new Set(), ips: new Set(), ifindexes: new Set() };
  for (const [i, kind] of KINDS.entries()) await oneContainer(s, warmUp, kind, 1000 + i);
  const before = storeSnapshot(s);

  const mine: Footprints = { ids: new Set(), ips: new Set(), ifindexes: new Set() };
  const jobs = Array.from({ length: 200 }, (_, n) => ({ n, kind: KINDS[n % KINDS.length] }));
  await inPool(jobs, 4, ({ n, kind }) => oneContainer(s, mine, kind, n));
  assert.equal(mine.ids.size, 200, "every container's ID");
  for (const id of warmUp.ids) mine.ids.add(id);
  for (const ip of warmUp.ips) mine.ips.add(ip);
  for (const ifindex of warmUp.ifindexes) mine.ifindexes.add(ifindex);

  assert.deepEqual(await s.ids(), [], "containers left in `floka ps -a`");
  // Networks are released in the background: wait for the host to settle, then compare.
  let left: Record<string, string[]> = {};
  await waitUntil("the containers' host resources to be gone", () => {
    left = footprintsLeft(s, mine);
    return Object.keys(left).length === 0;
  }, 30_000).catch(() => {});
  assert.deepEqual(left, {}, `left on the host by ${mine.ids.size} containers`);
  assert.deepEqual(storeSnapshot(s), before, "left in the store by 200 containers");
}
