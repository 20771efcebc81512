/**
 * The content-addressed part of the image store, laid out as an OCI image layout that other
 * tools can read (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), plus Floka's unpacked
 * layers (`layers/sha256/<diff_id hex>/`, one overlayfs lower directory each, shared by every
 * image that has the layer).
 *
 * Nothing here is ever half-written where a reader looks: a blob is streamed to a temporary
 * file, its size and digest are verified, and only then is it renamed into place; a layer is
 * unpacked into a temporary directory and renamed when its diff_id is verified. Two Floka
 * processes pulling the same image at once therefore both succeed and store one copy.
 * `index.json` (the tags) is replaced atomically under `images/.lock`.
 */
import * as libc from "../../ffi/libc.ts";
import { type Digest, digestHex, sha256 } from "../../lib/digest.ts";
import { MNT_DETACH } from "../../lib/linux.ts";
import { FlokaError } from "../../lib/errors.ts";
import { type Descriptor, type ImageConfig, type ImageIndex, MediaType } from "../../lib/oci.ts";
import { formatReference, type Reference } from "../../lib/reference.ts";
import { pathExists, readJsonIfExists, withLock, writeJsonAtomic } from "../store/files.ts";

/** The annotation that names an image in `index.json` (as containerd's OCI exporter writes it). */
export const NAME_ANNOTATION = "io.containerd.image.name";
/** The tag part, as the OCI image layout spec defines it. */
export const REF_ANNOTATION = "org.opencontainers.image.ref.name";
/** The digest the registry gave for the whole image (an index's, for a multi-platform image). */
export const REPO_DIGEST_ANNOTATION = "io.floka.image.repo-digest";

export class ContentStore {
  constructor(readonly root: string) {}

  blobPath(digest: Digest): string {
    return `${this.root}/blobs/sha256/${digestHex(digest)}`;
  }

  layerPath(diffId: Digest): string {
    return `${this.root}/layers/sha256/${digestHex(diffId)}`;
  }

  /** A new name in the store's `tmp/`, on the same file system as its blobs and layers. */
  tempPath(kind: string): string {
    return `${this.root}/tmp/${kind}-${Deno.pid}-${crypto.randomUUID()}`;
  }

  /**
   * Makes the layout's directories and its `oci-layout` marker, and removes what pulls that
   * were killed (Ctrl-C, SIGKILL) left in `tmp/`: nothing there is ever trusted, since a blob
   * or layer only counts once renamed into place, but it takes room.
   */
  init(): void {
    for (const dir of ["blobs/sha256", "layers/sha256", "tmp"]) {
      Deno.mkdirSync(`${this.root}/${dir}`, { recursive: true });
    }
    if (!pathExists(`${this.root}/oci-layout`)) {
      writeJsonAtomic(`${this.root}/oci-layout`, { imageLayoutVersion: "1.0.0" });
    }
    for (const entry of Deno.readDirSync(`${this.root}/tmp`)) {
      const pid = Number(/^[a-z]+-(\d+)-/.exec(entry.name)?.[1]);
      if (pid && pid !== Deno.pid && !pathExists(`/proc/${pid}`)) {
        const path = `${this.root}/tmp/${entry.name}`;
        // A killed build may have left its steps' overlays mounted there: never recurse into one.
        if (unmountAllUnder(path)) removeQuietly(path);
      }
    }
  }

  hasBlob(digest: Digest): boolean {
    return pathExists(this.blobPath(digest));
  }

  hasLayer(diffId: Digest): boolean {
    return pathExists(this.layerPath(diffId));
  }

  readBlob(digest: Digest): Uint8Array {
    return Deno.readFileSync(this.blobPath(digest));
  }

  /**
   * Streams `body` into a new temporary file, hashing it on the way; `maxSize` stops a
   * stream longer than announced before it fills the disk. The caller renames or removes it.
   */
  private async toTempFile(body: ReadableStream<Uint8Array>, maxSize: number, what: string) {
    const tmp = this.tempPath("blob");
    try {
      // Loaded here: node:crypto (the one streaming sha256) costs Deno's Node layer start-up,
      // which `floka run` of a present image must not pay.
      const { createHash } = await import("node:crypto");
      const hash = createHash("sha256");
      let size = 0;
      using file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      for await (const chunk of body) {
        size += chunk.length;
        if (size > maxSize) {
          throw new FlokaError(`${what} is larger than its descriptor says (${maxSize} bytes)`);
        }
        hash.update(chunk);
        for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
      }
      await file.syncData();
      return { tmp, digest: `sha256:${hash.digest("hex")}` as Digest, size };
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
  }

  /**
   * Stores the blob `expected` from `body`, verifying its size and digest on the way; on any
   * mismatch or error nothing is stored. A blob already present is not written again.
   */
  async writeBlob(expected: Descriptor, body: ReadableStream<Uint8Array>): Promise<void> {
    if (this.hasBlob(expected.digest)) {
      await body.cancel();
      return;
    }
    const what = `blob ${expected.digest}`;
    const { tmp, digest, size } = await this.toTempFile(body, expected.size, what);
    try {
      if (size !== expected.size) {
        throw new FlokaError(`${what} is ${size} bytes, its descriptor says ${expected.size}`);
      }
      if (digest !== expected.digest) {
        throw new FlokaError(`${what} does not match its digest (got ${digest}): refusing it`);
      }
      Deno.renameSync(tmp, this.blobPath(digest));
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
  }

  /**
   * Unpacks a layer with `unpack` into a temporary directory and moves it to its place once
   * `unpack` has returned the layer's diff_id and that equals `expected` (when one is
   * expected: an imported tarball has no config to say). Returns the diff_id.
   */
  async addLayer(expected: Digest | null, unpack: (target: string) => Promise<Digest>): Promise<Digest> {
    if (expected && this.hasLayer(expected)) return expected;
    const tmp = this.tempPath("layer");
    try {
      const diffId = await unpack(tmp);
      if (expected && diffId !== expected) {
        throw new FlokaError(
          `its content has diff_id ${diffId}, but the image config says ${expected}: refusing it`,
        );
      }
      try {
        Deno.renameSync(tmp, this.layerPath(diffId));
      } catch (err) {
        // Another Floka unpacked the same layer meanwhile: theirs is as good as ours.
        if (!this.hasLayer(diffId)) throw err;
        removeQuietly(tmp);
      }
      return diffId;
    } catch (err) {
      removeQuietly(tmp);
      throw err;
    }
  }

  /** Stores a blob whose digest is not known in advance (an imported tarball); returns it. */
  async importBlob(mediaType: string, body: ReadableStream<Uint8Array>): Promise<Descriptor> {
    const { tmp, digest, size } = await this.toTempFile(body, Infinity, "tarball");
    if (this.hasBlob(digest)) removeQuietly(tmp);
    else Deno.renameSync(tmp, this.blobPath(digest));
    return { mediaType, digest, size };
  }

  /** Stores `value` as a JSON blob of `mediaType` (a config, a manifest); returns its descriptor. */
  async writeJson(mediaType: string, value: unknown): Promise<Descriptor> {
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    const descriptor: Descriptor = { mediaType, digest: await sha256(bytes), size: bytes.length };
    await this.writeBlob(descriptor, ReadableStream.from([bytes]));
    return descriptor;
  }

  /**
   * Stores an image made here (built, committed, imported): its config, then an OCI manifest
   * of `layers`, named by `refs` or, with none, kept untagged (`<none>:<none>`, found by its
   * ID). Returns the image ID, its config's digest.
   */
  async storeImage(config: ImageConfig, layers: Descriptor[], refs: readonly Reference[]): Promise<Digest> {
    const configDescriptor = await this.writeJson(MediaType.OciConfig, config);
    const manifest = await this.writeJson(MediaType.OciManifest, {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDescriptor,
      layers,
    });
    if (refs.length === 0) this.keepUntagged(manifest);
    for (const ref of refs) this.tag(formatReference(ref), ref.tag ?? "latest", manifest);
    return configDescriptor.digest;
  }

  /**
   * Keeps `manifest` in the index without a name, unless an entry already holds it: an
   * untagged build's image, which Docker calls dangling (`<none>:<none>`).
   */
  keepUntagged(manifest: Descriptor): void {
    withLock(`${this.root}/.lock`, () => {
      const index = this.index();
      if (index.manifests.some((m) => m.digest === manifest.digest)) return;
      const entry: Descriptor = {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
      };
      writeJsonAtomic(`${this.root}/index.json`, { ...index, manifests: [...index.manifests, entry] });
    });
  }

  /** The tagged images (`index.json`). */
  index(): ImageIndex {
    return readJsonIfExists<ImageIndex>(`${this.root}/index.json`) ?? { schemaVersion: 2, manifests: [] };
  }

  /**
   * Points `name` (a full reference) at `manifest`, replacing what it pointed at; `repoDigest`
   * is the manifest's digest in a registry, for an image that came from one.
   */
  tag(name: string, tag: string, manifest: Descriptor, repoDigest?: Digest): void {
    withLock(`${this.root}/.lock`, () => {
      const index = this.index();
      const entry: Descriptor = {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        ...(manifest.platform ? { platform: manifest.platform } : {}),
        annotations: {
          [NAME_ANNOTATION]: name,
          [REF_ANNOTATION]: tag,
          ...(repoDigest ? { [REPO_DIGEST_ANNOTATION]: repoDigest } : {}),
        },
      };
      const manifests = index.manifests.filter((m) => m.annotations?.[NAME_ANNOTATION] !== name);
      writeJsonAtomic(`${this.root}/index.json`, {
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [...manifests, entry],
      });
    });
  }

  /** The index entry for `name` (a full reference), or null. */
  lookup(name: string): Descriptor | null {
    return this.index().manifests.find((m) => m.annotations?.[NAME_ANNOTATION] === name) ?? null;
  }

  /** Removes every index entry of `manifest`, tagged or not; returns the names it had. */
  removeManifest(manifest: Digest): string[] {
    return withLock(`${this.root}/.lock`, () => {
      const index = this.index();
      const doomed = index.manifests.filter((m) => m.digest === manifest);
      if (!doomed.length) return [];
      const manifests = index.manifests.filter((m) => m.digest !== manifest);
      writeJsonAtomic(`${this.root}/index.json`, { ...index, manifests });
      return doomed.flatMap((m) => m.annotations?.[NAME_ANNOTATION] ?? []);
    });
  }

  /** Removes the tag `name`; false when there was none. */
  untag(name: string): boolean {
    return withLock(`${this.root}/.lock`, () => {
      const index = this.index();
      const manifests = index.manifests.filter((m) => m.annotations?.[NAME_ANNOTATION] !== name);
      if (manifests.length === index.manifests.length) return false;
      writeJsonAtomic(`${this.root}/index.json`, { ...index, manifests });
      return true;
    });
  }

  /**
   * Runs `pull` while holding a shared lease on the store: garbage collection takes the
   * lease exclusively, so it never deletes the blobs and layers of a pull that has not
   * tagged its image yet.
   */
  async withPullLease<T>(pull: () => Promise<T>): Promise<T> {
    Deno.mkdirSync(this.root, { recursive: true });
    using lease = await Deno.open(`${this.root}/.gc.lock`, { read: true, write: true, create: true });
    await lease.lock(false);
    return await pull();
  }

  /**
   * Deletes every blob and unpacked layer that no tagged image references and that is not in
   * `keepLayers` (the layer directories containers use). Returns what was deleted.
   */
  collectGarbage(keepLayers: ReadonlySet<string>): Digest[] {
    this.init();
    using lease = Deno.openSync(`${this.root}/.gc.lock`, { read: true, write: true, create: true });
    lease.lockSync(true);
    const blobs = new Set<string>();
    const layers = new Set<string>();
    const json = <T>(digest: Digest): T | null => {
      try {
        return JSON.parse(new TextDecoder().decode(this.readBlob(digest))) as T;
      } catch {
        return null;
      }
    };
    for (const entry of this.index().manifests) {
      blobs.add(entry.digest);
      const repoDigest = entry.annotations?.[REPO_DIGEST_ANNOTATION];
      if (repoDigest) blobs.add(repoDigest);
      const manifest = json<{ config: Descriptor; layers: Descriptor[] }>(entry.digest);
      if (!manifest) continue;
      blobs.add(manifest.config.digest);
      for (const layer of manifest.layers) blobs.add(layer.digest);
      for (const diffId of json<ImageConfig>(manifest.config.digest)?.rootfs?.diff_ids ?? []) {
        layers.add(diffId);
      }
    }
    const deleted: Digest[] = [];
    const sweep = (dir: string, keep: (digest: Digest, path: string) => boolean) => {
      for (const entry of Deno.readDirSync(dir)) {
        const digest = `sha256:${entry.name}` as Digest;
        const path = `${dir}/${entry.name}`;
        if (keep(digest, path)) continue;
        // Out of place first: a Floka killed halfway through must not leave half a layer there.
        const aside = this.tempPath("gc");
        try {
          Deno.renameSync(path, aside);
        } catch {
          continue; // removed by another collection
        }
        removeQuietly(aside);
        deleted.push(digest);
      }
    };
    sweep(`${this.root}/layers/sha256`, (d, path) => layers.has(d) || keepLayers.has(path));
    sweep(`${this.root}/blobs/sha256`, (d) => blobs.has(d));
    return deleted;
  }
}

/** Mount points at or below `path` (its real path) in this process's mount namespace, deepest first. */
export function mountPointsUnder(path: string): string[] {
  let real = path;
  let text = "";
  try {
    real = Deno.realPathSync(path);
    text = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch { /* nothing there, or no /proc: nothing mounted we could see */ }
  return text.split("\n").filter(Boolean)
    .map((line) => line.split(" ")[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))))
    .filter((point) => point === real || point.startsWith(`${real}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything mounted at or below `path`; false when something stays mounted. */
export function unmountAllUnder(path: string): boolean {
  for (const point of mountPointsUnder(path)) unmountQuietly(point);
  return mountPointsUnder(path).length === 0;
}

function unmountQuietly(path: string): void {
  try {
    libc.umount2(path, MNT_DETACH);
  } catch { /* not mounted */ }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch { /* never made, or already gone */ }
}
