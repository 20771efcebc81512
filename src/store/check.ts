/**
 * `floka system check`: verifies the store and the state, and repairs what is safe to
 * repair (as `podman system check` does). Floka writes every file atomically (a temporary
 * name, then rename) and under a lock, so a Floka killed with SIGKILL at any moment leaves
 * only things that are out of place, never half a file where a reader looks:
 *
 * - temporary files and directories (`images/tmp/<kind>-<pid>-…`, `<file>.tmp-<pid>-…`)
 *   of a process that is gone, possibly with a killed build step's overlays still mounted;
 * - a container directory whose create, or a `.removing-<id>` directory whose removal,
 *   was interrupted, and a name reservation that names no container;
 * - a container whose state says "running" while its process and its supervisor are gone,
 *   and the cgroup and network namespace of a container that no longer runs;
 * - the container a build's RUN step ran in, when the build was killed.
 *
 * Damage from elsewhere (a disk, a person) is found too: a blob whose content does not
 * hash to its name, an image whose manifest, config, layer blobs or unpacked layers are
 * missing, an unreadable record. A repair never guesses: a corrupt blob is removed and the
 * images that need it are named; an image whose manifest or config is gone is untagged,
 * saying so, since it can only be pulled (or built) again; a missing unpacked layer is
 * unpacked again from its verified blob; what needs a person is reported and left alone.
 *
 * Nothing that a running Floka owns is touched: temporary names carry their owner's PID
 * and must be older than the check; containers are judged by their process and supervisor
 * (PID and start time); repairs of the image store hold the garbage collector's lease
 * exclusively (so no pull or build is under way), and those of container directories the
 * containers' lock.
 */
import * as libc from "../../ffi/libc.ts";
import type { Digest } from "../../lib/digest.ts";
import { describeError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import { type Descriptor, type ImageConfig, type ImageManifest, layerCompression } from "../../lib/oci.ts";
import { isAlive, supervisorAlive } from "../containers/liveness.ts";
import { reconcile, releaseNetwork } from "../containers/reconcile.ts";
import type { Container, ContainerRecord, ContainerState, ContainerStore } from "../containers/store.ts";
import { ContentStore, mountPointsUnder, NAME_ANNOTATION, unmountAllUnder } from "../images/content_store.ts";
import { unpackLayer } from "../images/unpack.ts";
import { netnsExists } from "../network/netns.ts";
import { attachSocketPath } from "../runtime/attach.ts";
import { CgroupManager } from "../runtime/cgroups.ts";
import { lstatOrNull, readJsonIfExists } from "./files.ts";

export type FindingKind =
  | "blob"
  | "layer"
  | "image"
  | "index"
  | "build-cache"
  | "tmp"
  | "container"
  | "name"
  | "mount"
  | "cgroup"
  | "netns"
  | "socket"
  | "lock";

/**
 * One inconsistency. `status`: `found` (repairable, not repaired: run with --repair),
 * `repaired`, `failed` (the repair was tried and failed), `manual` (no safe repair).
 */
export interface Finding {
  kind: FindingKind;
  /** A path, or the image or container it is about. */
  where: string;
  problem: string;
  /** What --repair does (or did); for `manual`, what a person should do. */
  action: string;
  status: "found" | "repaired" | "failed" | "manual";
  error?: string;
}

export interface CheckResult {
  findings: Finding[];
  checked: { blobs: number; layers: number; images: number; containers: number };
  /** True when nothing is left to repair: the store was consistent, or everything was repaired. */
  ok: boolean;
}

export interface CheckOptions {
  repair: boolean;
  cgroups?: CgroupManager;
  /** The check's start: temporary things younger than this may belong to a command under way. */
  start?: number;
  /** How long a repair waits for a pull or build in progress to finish (the store's lease). */
  lockWaitMs?: number;
}

type Fix = () => void | Promise<void>;
interface Pending {
  finding: Finding;
  fix: Fix | null;
}

const HEX64 = /^[0-9a-f]{64}$/;
/** `writeFileAtomic`'s temporary names: `<file>.tmp-<pid>-<8 hex>`. */
const ATOMIC_TMP = /\.tmp-(\d+)-[0-9a-f]{8}$/;
/** The content store's temporary names: `<kind>-<pid>-<uuid>`. */
const STORE_TMP = /^[a-z]+-(\d+)-/;

function pidAlive(pid: number): boolean {
  return pid === Deno.pid || lstatOrNull(`/proc/${pid}`) !== null;
}

function entries(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
}

function mtime(path: string): number {
  return lstatOrNull(path)?.mtime?.getTime() ?? 0;
}

/** Removes `path` (a file or a tree), never through a mount: everything below is unmounted first. */
function removeTree(path: string): void {
  if (!unmountAllUnder(path)) throw new Error(`something stays mounted under ${path}`);
  try {
    Deno.removeSync(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** sha256 of a file, streamed. */
async function hashFile(path: string): Promise<string> {
  // node:crypto is the one streaming sha256 (WebCrypto hashes whole buffers only).
  const { createHash } = await import("node:crypto");
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** The store's exclusive lease, taken without blocking forever: null when `waitMs` ran out. */
async function takeLease(path: string, waitMs: number): Promise<{ release(): void } | null> {
  const fd = libc.open(path, L.O_RDWR | L.O_CREAT | L.O_CLOEXEC, 0o644);
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (libc.flockExclusive(fd, false)) return { release: () => libc.close(fd) };
    if (Date.now() >= deadline) {
      libc.close(fd);
      return null;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** PIDs holding a lock on `path`, from /proc/locks. */
function lockHolders(path: string): number[] {
  const st = lstatOrNull(path);
  if (!st) return [];
  try {
    return Deno.readTextFileSync("/proc/locks").split("\n").flatMap((line) => {
      const f = line.trim().split(/\s+/);
      // `1: FLOCK ADVISORY WRITE 1234 fe:00:5678 0 EOF`
      const ino = Number(f[5]?.split(":")[2]);
      return ino === st.ino ? [Number(f[4])] : [];
    });
  } catch {
    return [];
  }
}

class Checker {
  readonly pending: Pending[] = [];
  readonly checked = { blobs: 0, layers: 0, images: 0, containers: 0 };
  /** IDs of the containers with a readable record and state. */
  readonly complete = new Set<string>();
  readonly start: number;
  readonly content: ContentStore;
  readonly cgroups: CgroupManager;

  constructor(readonly store: ContainerStore, readonly opts: CheckOptions) {
    this.start = opts.start ?? Date.now();
    this.content = new ContentStore(store.store.images);
    this.cgroups = opts.cgroups ?? new CgroupManager();
  }

  rel(path: string): string {
    return path.startsWith(`${this.store.store.root}/`) ? path.slice(this.store.store.root.length + 1) : path;
  }

  /** Records a finding; `fix` is its safe repair (null: a person must decide). */
  add(kind: FindingKind, where: string, problem: string, action: string, fix: Fix | null): Finding {
    const finding: Finding = { kind, where, problem, action, status: fix ? "found" : "manual" };
    this.pending.push({ finding, fix });
    return finding;
  }

  /** A lock that stayed held: what it guards was checked, but not repaired. */
  lockFinding(path: string, why: string): void {
    const holders = lockHolders(path);
    this.add(
      "lock",
      this.rel(path),
      `held by process ${holders.join(", ") || "(unknown)"} for too long: ${why}`,
      "run the check again when that has finished (or end a process that hangs); what the lock guards was not repaired",
      null,
    );
  }

  /** Runs the repairs of the findings from `from` on, when repairing. */
  async repair(from: number): Promise<void> {
    if (!this.opts.repair) return;
    for (const p of this.pending.slice(from)) {
      if (!p.fix || p.finding.status !== "found") continue;
      try {
        await p.fix();
        p.finding.status = "repaired";
      } catch (err) {
        p.finding.status = "failed";
        p.finding.error = describeError(err);
      }
    }
  }

  /** A temporary file of `writeFileAtomic` left in `dir` by a process that is gone. */
  atomicLeftovers(dir: string): void {
    for (const e of entries(dir)) {
      const pid = Number(ATOMIC_TMP.exec(e.name)?.[1]);
      const path = `${dir}/${e.name}`;
      if (!pid || pidAlive(pid) || mtime(path) >= this.start) continue;
      this.add(
        "tmp",
        this.rel(path),
        `temporary file of a replace that Floka process ${pid} did not finish`,
        "remove it",
        () => removeTree(path),
      );
    }
  }

  // -------------------------------------------------------------------------------------
  // The image store.

  async checkImages(): Promise<void> {
    const root = this.content.root;
    let lease: { release(): void } | null = null;
    if (this.opts.repair) {
      lease = await takeLease(`${root}/.gc.lock`, this.opts.lockWaitMs ?? 30_000);
      if (!lease) this.lockFinding(`${root}/.gc.lock`, "a pull, build or image removal is under way");
    }
    try {
      const before = this.pending.length;
      this.checkTmp();
      this.atomicLeftovers(root);
      const corrupt = await this.checkBlobs();
      this.checkLayerDirs();
      this.checkIndex(corrupt);
      this.checkBuildCache();
      if (lease) await this.repair(before);
    } finally {
      // Without the lease nothing of the image store was repaired: the findings stay as found.
      lease?.release();
    }
  }

  /** `images/tmp/`: what pulls, builds and collections killed halfway left there. */
  checkTmp(): void {
    const dir = `${this.content.root}/tmp`;
    for (const e of entries(dir)) {
      const path = `${dir}/${e.name}`;
      const pid = Number(STORE_TMP.exec(e.name)?.[1]);
      if (pid && pidAlive(pid)) continue; // a command under way (or a PID reused: left alone)
      if (mtime(path) >= this.start) continue;
      const mounts = mountPointsUnder(path);
      this.add(
        "tmp",
        this.rel(path),
        `left by ${pid ? `Floka process ${pid}, which is gone` : "an unknown process"}` +
          (mounts.length ? `, with ${mounts.length} overlay mount(s) of a build step under it` : ""),
        mounts.length ? "unmount what is mounted there and remove it" : "remove it",
        () => removeTree(path),
      );
    }
  }

  /** Every blob hashes to its name; returns the digests that do not. */
  async checkBlobs(): Promise<Set<Digest>> {
    const corrupt = new Set<Digest>();
    const dir = `${this.content.root}/blobs/sha256`;
    for (const e of entries(dir)) {
      const path = `${dir}/${e.name}`;
      if (!HEX64.test(e.name) || !e.isFile) {
        this.add(
          "blob",
          this.rel(path),
          "not a blob (a blob is a file named by its sha256)",
          "remove it",
          () => removeTree(path),
        );
        continue;
      }
      this.checked.blobs++;
      let hex: string;
      try {
        hex = await hashFile(path);
      } catch (err) {
        hex = `unreadable: ${describeError(err)}`;
      }
      if (hex === e.name) continue;
      const digest = `sha256:${e.name}` as Digest;
      corrupt.add(digest);
      const users = this.imagesUsing(digest);
      this.add(
        "blob",
        this.rel(path),
        `content does not match its digest (${hex.length === 64 ? `sha256:${hex}` : hex})` +
          (users.length ? `; needed by ${users.join(", ")}` : ""),
        "remove it" + (users.length ? `; pull (or build) ${users.join(", ")} again` : ""),
        () => Deno.removeSync(path),
      );
    }
    return corrupt;
  }

  /** `layers/sha256/`: only directories named by a diff_id (each put there complete by a rename). */
  checkLayerDirs(): void {
    const dir = `${this.content.root}/layers/sha256`;
    for (const e of entries(dir)) {
      const path = `${dir}/${e.name}`;
      if (HEX64.test(e.name) && e.isDirectory) {
        this.checked.layers++;
        continue;
      }
      this.add(
        "layer",
        this.rel(path),
        "not an unpacked layer (a layer is a directory named by its diff_id, renamed there once complete)",
        "remove it",
        () => {
          // Out of place first, as the collector does: a crash halfway leaves nothing in place.
          const aside = this.content.tempPath("check");
          Deno.renameSync(path, aside);
          removeTree(aside);
        },
      );
    }
  }

  private json<T>(digest: Digest, corrupt: ReadonlySet<Digest>): T | string {
    if (corrupt.has(digest)) return "corrupt";
    if (!this.content.hasBlob(digest)) return "missing";
    try {
      return JSON.parse(new TextDecoder().decode(this.content.readBlob(digest))) as T;
    } catch {
      return "not valid JSON";
    }
  }

  /** The names (or the digest, untagged) of the images whose manifest, config or layers include `digest`. */
  imagesUsing(digest: Digest): string[] {
    const names = new Set<string>();
    for (const entry of this.indexEntries() ?? []) {
      const manifest = this.json<ImageManifest>(entry.digest, new Set());
      const parts = typeof manifest === "string"
        ? [entry.digest]
        : [entry.digest, manifest.config?.digest, ...(manifest.layers ?? []).map((l) => l.digest)];
      if (parts.includes(digest)) names.add(entry.annotations?.[NAME_ANNOTATION] ?? entry.digest);
    }
    return [...names];
  }

  private indexEntries(): Descriptor[] | null {
    try {
      return this.content.index().manifests ?? [];
    } catch {
      return null;
    }
  }

  /** Each image in `index.json`: its manifest, config, layer blobs and unpacked layers. */
  checkIndex(corrupt: ReadonlySet<Digest>): void {
    const indexPath = `${this.content.root}/index.json`;
    const index = this.indexEntries();
    if (index === null) {
      this.add(
        "index",
        this.rel(indexPath),
        "unreadable: the image tags are lost",
        "restore it from a backup, or remove it and pull (or build) the images again",
        null,
      );
      return;
    }
    const byManifest = new Map<Digest, string[]>();
    for (const entry of index) {
      const names = byManifest.get(entry.digest) ?? [];
      names.push(entry.annotations?.[NAME_ANNOTATION] ?? `<none> (${entry.digest})`);
      byManifest.set(entry.digest, names);
    }
    for (const [digest, names] of byManifest) {
      this.checked.images++;
      const image = names.join(", ");
      const again = `pull (or build) ${image} again`;
      const manifest = this.json<ImageManifest>(digest, corrupt);
      const config = typeof manifest === "string" || !manifest.config?.digest
        ? null
        : this.json<ImageConfig>(manifest.config.digest, corrupt);
      if (typeof manifest === "string" || !manifest.config?.digest || !Array.isArray(manifest.layers)) {
        this.untagFinding(
          digest,
          image,
          `its manifest ${digest} is ${typeof manifest === "string" ? manifest : "invalid"}`,
          again,
        );
        continue;
      }
      if (config === null || typeof config === "string") {
        this.untagFinding(
          digest,
          image,
          `its config ${manifest.config.digest} is ${config ?? "missing"}`,
          again,
        );
        continue;
      }
      const diffIds = config.rootfs?.diff_ids ?? [];
      if (diffIds.length !== manifest.layers.length) {
        this.add(
          "image",
          image,
          `its config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
          `remove it (floka rmi) and ${again}`,
          null,
        );
        continue;
      }
      manifest.layers.forEach((layer, i) => {
        const diffId = diffIds[i];
        const blobOk = this.content.hasBlob(layer.digest) && !corrupt.has(layer.digest);
        const layerOk = this.content.hasLayer(diffId);
        if (!blobOk && !corrupt.has(layer.digest)) {
          this.add(
            "image",
            image,
            `its layer blob ${layer.digest} is missing` +
              (layerOk ? " (the unpacked layer is there: it still runs)" : ""),
            `remove it (floka rmi) and ${again}`,
            null,
          );
        } else if (corrupt.has(layer.digest)) {
          this.add(
            "image",
            image,
            `its layer blob ${layer.digest} is corrupt (removed with --repair)`,
            `remove it (floka rmi) and ${again}`,
            null,
          );
        }
        if (layerOk) return;
        const compression = layerCompression(layer.mediaType);
        this.add(
          "layer",
          this.rel(this.content.layerPath(diffId)),
          `the unpacked layer ${diffId} of ${image} is missing`,
          blobOk && compression ? "unpack it again from its blob (verifying its diff_id)" : again,
          blobOk && compression
            ? async () => {
              await this.content.addLayer(diffId, async (target) => {
                using file = await Deno.open(this.content.blobPath(layer.digest));
                return (await unpackLayer(file.readable, compression, target)).diffId;
              });
            }
            : null,
        );
      });
    }
  }

  private untagFinding(manifest: Digest, image: string, problem: string, again: string): void {
    this.add(
      "image",
      image,
      `${problem}: the image cannot be used`,
      `untag it (removed from index.json); ${again}`,
      () => {
        this.content.removeManifest(manifest);
      },
    );
  }

  checkBuildCache(): void {
    const dir = `${this.content.root}/build-cache`;
    this.atomicLeftovers(dir);
    for (const e of entries(dir)) {
      if (!e.name.endsWith(".json")) continue;
      const path = `${dir}/${e.name}`;
      try {
        readJsonIfExists(path);
      } catch {
        this.add(
          "build-cache",
          this.rel(path),
          "unreadable cache entry",
          "remove it (the step runs again)",
          () => Deno.removeSync(path),
        );
      }
    }
  }

  // -------------------------------------------------------------------------------------
  // Containers.

  async checkContainers(): Promise<void> {
    const dir = this.store.store.containers;
    if (!lstatOrNull(dir)) return;
    // Directories first, under the containers' lock: no create or removal is under way. The
    // lock is waited for only so long: a Floka stopped while holding it must not hang the check.
    const lock = await takeLease(`${dir}/.lock`, this.opts.lockWaitMs ?? 30_000);
    if (!lock) this.lockFinding(`${dir}/.lock`, "a container is being created or removed");
    try {
      const first = this.pending.length;
      this.checkContainerDirs();
      this.atomicLeftovers(dir);
      this.atomicLeftovers(`${dir}/.names`);
      // Repaired while the lock is held, or the directories could change meanwhile.
      if (lock) await this.repair(first);
    } finally {
      lock?.release();
    }
    const next = this.pending.length;
    for (const c of this.completeContainers()) this.checkContainer(c);
    await this.repair(next);
  }

  /** Container directories: complete (a record and a state), or leftovers of a killed create or rm. */
  checkContainerDirs(): void {
    const dir = this.store.store.containers;
    const complete = this.complete;
    for (const e of entries(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory && e.name.startsWith(".removing-")) {
        this.add(
          "container",
          this.rel(path),
          "a removal that was interrupted",
          "finish it (remove the directory)",
          () => removeTree(path),
        );
        continue;
      }
      if (!e.isDirectory || !HEX64.test(e.name)) continue;
      this.atomicLeftovers(path);
      let record: ContainerRecord | null = null;
      let state: ContainerState | null = null;
      try {
        record = readJsonIfExists<ContainerRecord>(`${path}/config.json`);
      } catch (err) {
        this.add(
          "container",
          this.rel(path),
          `config.json is unreadable (${describeError(err)})`,
          "save what you need from its upper/ directory, then remove the directory",
          null,
        );
        continue;
      }
      try {
        state = readJsonIfExists<ContainerState>(`${path}/state.json`);
      } catch (err) {
        this.add(
          "container",
          this.rel(path),
          `state.json is unreadable (${describeError(err)})`,
          "save what you need from its upper/ directory, then remove the directory",
          null,
        );
        continue;
      }
      if (record && state) {
        complete.add(e.name);
        continue;
      }
      if (mtime(path) >= this.start) continue;
      this.add(
        "container",
        this.rel(path),
        `an unfinished create (no ${record ? "state.json" : "config.json"}): not a container`,
        "remove the directory",
        () => removeTree(path),
      );
    }
    // Name reservations that name no complete container (a create or rm was interrupted).
    for (const e of entries(`${dir}/.names`)) {
      if (ATOMIC_TMP.test(e.name)) continue;
      const path = `${dir}/.names/${e.name}`;
      let id = "";
      try {
        id = Deno.readTextFileSync(path).trim();
      } catch { /* unreadable: as stale as it gets */ }
      if (complete.has(id) || (HEX64.test(id) && lstatOrNull(`${dir}/${id}/config.json`))) continue;
      this.add(
        "name",
        this.rel(path),
        `reserves the name "${e.name}" for no container`,
        "remove it",
        () => Deno.removeSync(path),
      );
    }
  }

  /** The containers whose record and state were read above (one unreadable record hides no other). */
  completeContainers(): Container[] {
    return [...this.complete].flatMap((id) => {
      const dir = this.store.dir(id);
      try {
        const record = readJsonIfExists<ContainerRecord>(`${dir}/config.json`);
        const state = readJsonIfExists<ContainerState>(`${dir}/state.json`);
        return record && state ? [{ record, state, dir }] : []; // removed meanwhile
      } catch {
        return [];
      }
    });
  }

  /** One container: its state against the kernel's, what it left, what it stacks. */
  checkContainer(c: Container): void {
    this.checked.containers++;
    const { record, state } = c;
    const short = `${record.id.slice(0, 12)} (${record.name})`;
    if (isAlive(state) || supervisorAlive(state)) return; // it runs, or its supervisor records its end
    const buildStep = record.image === "(build step)" ? builderPid(record) : null;
    if (buildStep !== null && !pidAlive(buildStep) && mtime(c.dir) < this.start) {
      this.add(
        "container",
        short,
        `a RUN step's container, left by build process ${buildStep}, which is gone`,
        "release its cgroup and network and remove it",
        () => {
          const now = reconcile(this.store, c, this.cgroups);
          if (!now) return;
          const left = this.cgroups.remove(this.cgroups.locate(record.id));
          if (left.length) throw new Error(`its cgroup ${left.join(", ")} still has processes`);
          releaseNetwork(this.store, now);
          if (!unmountAllUnder(c.dir)) throw new Error(`something stays mounted under ${c.dir}`);
          this.store.remove(record.id);
        },
      );
      return;
    }
    if (state.status === "running" || state.status === "restarting") {
      this.add(
        "container",
        short,
        `its state says ${state.status}, but its process and its supervisor are gone`,
        `record it as exited (exit code unknown), release its cgroup and network${
          record.hostConfig.autoRemove ? ", and remove it (--rm)" : ""
        }`,
        () => void reconcile(this.store, c, this.cgroups),
      );
      return;
    }
    const missing = record.lowerDirs.filter((d) => !lstatOrNull(d));
    if (missing.length) {
      this.add(
        "container",
        short,
        `its image ${record.image} is gone: ${missing.map((d) => this.rel(d)).join(", ")} missing`,
        "remove the container (floka rm), after saving what you need from it (floka export)",
        null,
      );
    }
    // Processes in its cgroup: a start under way (its creator records it as running next).
    const located = this.cgroups.locate(record.id);
    if (located.dirs.some((d) => cgroupHasProcesses(d))) return;
    const cgroupDirs = located.dirs.filter((d) => {
      const st = lstatOrNull(d);
      return st && (st.mtime?.getTime() ?? 0) < this.start;
    });
    if (cgroupDirs.length) {
      this.add(
        "cgroup",
        short,
        `its cgroup ${cgroupDirs[0]}${
          cgroupDirs.length > 1 ? ` (and in ${cgroupDirs.length - 1} more hierarchies)` : ""
        } is left while it is ${state.status}`,
        "remove it",
        () => {
          const left = this.cgroups.remove({ ...this.cgroups.locate(record.id), dirs: cgroupDirs });
          if (left.length) throw new Error(`${left.join(", ")} still has processes`);
        },
      );
    }
    if (netnsExists(record.id) && mtime(`/run/floka/netns/${record.id}`) < this.start) {
      this.add(
        "netns",
        short,
        `its network namespace /run/floka/netns/${record.id} is left while it is ${state.status}`,
        "release it (CNI DEL) and remove it",
        () => {
          releaseNetwork(this.store, c);
          if (netnsExists(record.id)) throw new Error("the namespace is still there");
        },
      );
    }
    const socket = attachSocketPath(record.id);
    if (lstatOrNull(socket) && mtime(socket) < this.start) {
      this.add(
        "socket",
        short,
        `the attach socket ${socket} of its supervisor, which is gone, is left`,
        "remove it",
        () => Deno.removeSync(socket),
      );
    }
    const mounts = mountPointsUnder(c.dir);
    if (mounts.length) {
      this.add(
        "mount",
        short,
        `mounted while it is ${state.status}: ${mounts.join(", ")}`,
        "unmount them",
        () => {
          if (!unmountAllUnder(c.dir)) throw new Error("still mounted");
        },
      );
    }
  }

  /** Temporary files of killed replaces in the networks' and volumes' stores. */
  async checkOtherLeftovers(): Promise<void> {
    const first = this.pending.length;
    const { root } = this.store.store;
    this.atomicLeftovers(`${root}/networks`);
    this.atomicLeftovers(`${root}/volumes`);
    for (const e of entries(`${root}/volumes`)) {
      if (e.isDirectory) this.atomicLeftovers(`${root}/volumes/${e.name}`);
    }
    await this.repair(first);
  }

  /** Mounts under the store root that nothing above accounts for. */
  checkStrayMounts(): void {
    const { root, images, containers } = this.store.store;
    let realImages = images;
    let realContainers = containers;
    try {
      realImages = Deno.realPathSync(images);
      realContainers = Deno.realPathSync(containers);
    } catch { /* not made yet */ }
    for (const point of mountPointsUnder(root)) {
      if (point.startsWith(`${realImages}/tmp/`) || point.startsWith(`${realContainers}/`)) continue;
      this.add(
        "mount",
        point,
        "mounted under the store, by nothing Floka knows of",
        "unmount it if nothing uses it",
        null,
      );
    }
  }
}

function cgroupHasProcesses(dir: string): boolean {
  try {
    return Deno.readTextFileSync(`${dir}/cgroup.procs`).trim() !== "";
  } catch {
    return false;
  }
}

/** The build process that made a RUN step's container: its init layer is in that build's tmp directory. */
function builderPid(record: ContainerRecord): number | null {
  for (const dir of record.lowerDirs) {
    const pid = Number(/\/tmp\/build-(\d+)-[^/]+\/init$/.exec(dir)?.[1]);
    if (pid) return pid;
  }
  return null;
}

/** Checks the store of `store` (images, containers and what they leave on the host), repairing if asked. */
export async function checkStore(store: ContainerStore, opts: CheckOptions): Promise<CheckResult> {
  const checker = new Checker(store, opts);
  // Containers first: a leftover RUN step's container is removed before its tmp directory.
  await checker.checkContainers();
  await checker.checkImages();
  checker.checkStrayMounts();
  await checker.checkOtherLeftovers();
  const findings = checker.pending.map((p) => p.finding);
  return {
    findings,
    checked: checker.checked,
    ok: findings.every((f) => f.status === "repaired"),
  };
}

/** One line per finding: what, where, and what was (or should be) done. */
export function formatFinding(f: Finding): string {
  const done = f.status === "repaired"
    ? `repaired: ${f.action}`
    : f.status === "failed"
    ? `repair failed (${f.action}): ${f.error}`
    : f.status === "found"
    ? `repairable with --repair: ${f.action}`
    : `not repairable by Floka: ${f.action}`;
  return `${f.kind} ${f.where}: ${f.problem}; ${done}`;
}
