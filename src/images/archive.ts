/**
 * `floka save` and `floka load`: images out of the store into one tar archive, and back in.
 *
 * The archive `save` writes is what Docker 25 writes: an OCI image layout (`oci-layout`,
 * `index.json` naming each image with containerd's and OCI's annotations, `blobs/sha256/…`)
 * plus Docker's legacy `manifest.json` (Config, RepoTags, Layers as paths of those blobs) and
 * `repositories`, so that `docker load` of any version since 1.10, `podman load` and OCI
 * tools all read it. Blobs go in as stored (compressed layers stay compressed), streamed
 * from the store: nothing holds a whole image in memory.
 *
 * `load` reads Docker archives (`manifest.json`: `docker save` of any version, `podman save`,
 * skopeo's `docker-archive:`) and OCI archives (`index.json`: skopeo's and podman's
 * `oci-archive:`), plain or gzip-compressed. The archive is first extracted, file by file,
 * into a staging directory in the store's `tmp/`, each file hashed on the way; then every
 * blob an image needs is checked against the digest that names it, each layer is unpacked
 * by `unpackLayer` and its diff_id checked against the config (`ContentStore.addLayer`), and
 * only when every image of the archive is complete are the names tagged. On any failure
 * nothing is tagged; blobs and layers already verified and moved into the store stay there
 * (they are content-addressed and whole; `floka rmi`'s garbage collection removes them when
 * nothing uses them), and the staging directory is removed.
 */
import { createHash } from "node:crypto";
import tar from "tar-stream";
import { compressionOf, layerFileCompression } from "../../lib/compression.ts";
import { type Digest, digestFromBytes, digestHex } from "../../lib/digest.ts";
import { describeError, FlokaError, oneLine } from "../../lib/errors.ts";
import {
  checkImageConfig,
  checkImageIndex,
  checkImageManifest,
  type Descriptor,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  INDEX_TYPES,
  LAYER_MEDIA_TYPES,
  MediaType,
  type Platform,
} from "../../lib/oci.ts";
import { hostPlatform } from "../../lib/platform.ts";
import { familiarReference, formatReference, parseReference } from "../../lib/reference.ts";
import { encodeHeader, type TarHeader } from "../build/layer_diff.ts";
import { type ContentStore, NAME_ANNOTATION, REF_ANNOTATION } from "./content_store.ts";
import { inflate, runExtract, unpackLayer } from "./unpack.ts";

// ---------------------------------------------------------------------------------------
// The documents of an archive.

/** One image of `manifest.json`, as `docker save` writes it. */
export interface DockerArchiveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** An image to save: its manifest and the names to give it (full references, may be none). */
export interface SaveImage {
  manifestDigest: Digest;
  manifest: ImageManifest;
  /** The manifest blob's size. */
  manifestSize: number;
  /** The manifest's descriptor media type. */
  mediaType: string;
  /** The config's `created`, if any. */
  created?: string;
  /** Full references (`docker.io/library/busybox:latest`). */
  names: string[];
}

/** The path of a blob inside the archive. */
export function blobPathOf(digest: Digest): string {
  const [alg, hex] = digest.split(":");
  return `blobs/${alg}/${hex}`;
}

/** `manifest.json`: one entry per image, its tags in Docker's familiar form. */
export function dockerManifestJson(images: readonly SaveImage[]): DockerArchiveEntry[] {
  return images.map((image) => ({
    Config: blobPathOf(image.manifest.config.digest),
    RepoTags: image.names.length ? image.names.map((n) => familiarReference(parseReference(n))) : null,
    Layers: image.manifest.layers.map((l) => blobPathOf(l.digest)),
  }));
}

/** `index.json`: one entry per name (containerd's name, OCI's tag), one for an unnamed image. */
export function ociIndexJson(images: readonly SaveImage[]): ImageIndex {
  const manifests: Descriptor[] = [];
  for (const image of images) {
    const base = {
      mediaType: image.mediaType,
      digest: image.manifestDigest,
      size: image.manifestSize,
    };
    const names = image.names.length ? image.names : [null];
    for (const name of names) {
      const entry: Descriptor = { ...base };
      if (name) {
        const tag = parseReference(name).tag ?? "latest";
        entry.annotations = { [NAME_ANNOTATION]: name, [REF_ANNOTATION]: tag };
      }
      manifests.push(entry);
    }
  }
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
}

/** Docker's legacy `repositories`: repository -> tag -> the hex of the image's top layer. */
export function repositoriesJson(images: readonly SaveImage[]): Record<string, Record<string, string>> {
  const repos: Record<string, Record<string, string>> = {};
  for (const image of images) {
    const top = image.manifest.layers.at(-1);
    if (!top) continue;
    for (const name of image.names) {
      const ref = parseReference(name);
      const repo = familiarReference({ registry: ref.registry, repository: ref.repository });
      (repos[repo] ??= {})[ref.tag ?? "latest"] = digestHex(top.digest);
    }
  }
  return repos;
}

// ---------------------------------------------------------------------------------------
// Writing an archive.

/** Where the archive goes: a file or stdout. */
export interface Sink {
  write(bytes: Uint8Array): Promise<number>;
}

const ZEROS = new Uint8Array(1024);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A tar archive written entry by entry to `sink`, in Docker's PAX/USTAR header layout. */
export class TarWriter {
  /**
   * @param mtime every entry's time, in seconds: the images' creation time, so that the same
   * images always give the same archive.
   */
  constructor(private readonly sink: Sink, private readonly mtime = 0) {}

  private async put(bytes: Uint8Array): Promise<void> {
    try {
      for (let done = 0; done < bytes.length;) done += await this.sink.write(bytes.subarray(done));
    } catch (err) {
      throw new FlokaError(`cannot write the archive: ${describeError(err)}`);
    }
  }

  private header(name: string, type: TarHeader["type"], size: number): Uint8Array {
    const mode = type === "directory" ? 0o755 : 0o644;
    return encodeHeader({ name, type, mode, uid: 0, gid: 0, mtime: this.mtime, size });
  }

  async directory(name: string): Promise<void> {
    await this.put(this.header(name.endsWith("/") ? name : `${name}/`, "directory", 0));
  }

  async bytes(name: string, data: Uint8Array): Promise<void> {
    await this.put(this.header(name, "file", data.length));
    await this.put(data);
    await this.pad(data.length);
  }

  /** The file at `path`, which must be `size` bytes long, streamed in pieces. */
  async file(name: string, path: string, size: number): Promise<void> {
    using file = await Deno.open(path);
    const actual = (await file.stat()).size;
    if (actual !== size) {
      throw new FlokaError(`${path} is ${actual} bytes, its descriptor says ${size}: the store is damaged`);
    }
    await this.put(this.header(name, "file", size));
    const chunk = new Uint8Array(1024 * 1024);
    let left = size;
    while (left > 0) {
      const n = await file.read(chunk.subarray(0, Math.min(left, chunk.length)));
      if (n === null || n === 0) throw new FlokaError(`${path} ended early: the store is damaged`);
      await this.put(chunk.subarray(0, n));
      left -= n;
    }
    await this.pad(size);
  }

  private async pad(size: number): Promise<void> {
    const rest = size % 512;
    if (rest) await this.put(ZEROS.subarray(0, 512 - rest));
  }

  /** The two zero blocks that end a tar archive. */
  async end(): Promise<void> {
    await this.put(ZEROS);
  }
}

/** Reads a manifest from the store, as save needs it. */
export function readManifest(content: ContentStore, digest: Digest): ImageManifest {
  return JSON.parse(decoder.decode(content.readBlob(digest))) as ImageManifest;
}

/**
 * Writes `images` as one archive: the blobs (each once), then `index.json`, `manifest.json`,
 * `oci-layout` and `repositories`, in the order Docker 25 writes them.
 */
export async function saveImages(
  content: ContentStore,
  images: readonly SaveImage[],
  sink: Sink,
): Promise<void> {
  const created = images.map((i) => i.created ? Date.parse(i.created) : NaN).filter((t) => !isNaN(t));
  const out = new TarWriter(sink, created.length ? Math.floor(Math.max(...created) / 1000) : 0);
  await out.directory("blobs");
  await out.directory("blobs/sha256");
  const written = new Set<string>();
  const blob = async (descriptor: { digest: Digest; size: number }) => {
    if (written.has(descriptor.digest)) return;
    written.add(descriptor.digest);
    if (!content.hasBlob(descriptor.digest)) {
      throw new FlokaError(`blob ${descriptor.digest} is missing from the store`);
    }
    await out.file(blobPathOf(descriptor.digest), content.blobPath(descriptor.digest), descriptor.size);
  };
  for (const image of images) {
    for (const layer of image.manifest.layers) await blob(layer);
    await blob(image.manifest.config);
    await blob({ digest: image.manifestDigest, size: image.manifestSize });
  }
  await out.bytes("index.json", encoder.encode(JSON.stringify(ociIndexJson(images)) + "\n"));
  await out.bytes("manifest.json", encoder.encode(JSON.stringify(dockerManifestJson(images)) + "\n"));
  await out.bytes("oci-layout", encoder.encode(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
  const repos = repositoriesJson(images);
  if (Object.keys(repos).length) {
    await out.bytes("repositories", encoder.encode(JSON.stringify(repos) + "\n"));
  }
  await out.end();
}

// ---------------------------------------------------------------------------------------
// Reading an archive.

/** A regular file of the extracted archive. */
interface Staged {
  /** Where its bytes are, in the staging directory. */
  path: string;
  digest: Digest;
  size: number;
}

/** The extracted archive: its files by name, and its symlinks and hard links. */
export class StagedArchive {
  readonly files = new Map<string, Staged>();
  readonly links = new Map<string, string>();

  /** The file `name` (after symlinks inside the archive), or null. */
  find(name: string): Staged | null {
    let current = normalizeName(name);
    for (let hops = 0; hops < 16 && current !== null; hops++) {
      const file = this.files.get(current);
      if (file) return file;
      const target = this.links.get(current);
      if (target === undefined) return null;
      current = target;
    }
    return null;
  }

  /** The file `name`, or a one-line error naming what the archive lacks. */
  require(name: string, what: string): Staged {
    const file = this.find(name);
    if (!file) throw new FlokaError(`invalid archive: ${what} ${JSON.stringify(name)} is not in it`);
    return file;
  }

  json<T>(name: string, what: string, maxSize = 16 * 1024 * 1024): T {
    const file = this.require(name, what);
    if (file.size > maxSize) {
      throw new FlokaError(`invalid archive: ${what} ${JSON.stringify(name)} is too large`);
    }
    try {
      return JSON.parse(decoder.decode(Deno.readFileSync(file.path))) as T;
    } catch (err) {
      throw new FlokaError(`invalid archive: ${what} ${JSON.stringify(name)}: ${describeError(err)}`);
    }
  }
}

/**
 * An archive member's name relative to the archive's root, without `./` and trailing `/`;
 * null for a name that climbs out (`..`), which nothing may refer to.
 */
export function normalizeName(name: string): string | null {
  const parts: string[] = [];
  for (const part of name.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (!parts.length) return null;
      parts.pop();
    } else parts.push(part);
  }
  return parts.join("/");
}

/** A symlink's target as an archive name: relative to the link's directory, or to the root. */
function linkTarget(linkName: string, target: string): string | null {
  if (target.startsWith("/")) return normalizeName(target);
  const slash = linkName.lastIndexOf("/");
  return normalizeName(slash === -1 ? target : `${linkName.slice(0, slash)}/${target}`);
}

/**
 * The archive `input` decompressed, as `docker load` takes it: plain, or compressed with
 * gzip, zstd, xz or bzip2 (its first bytes tell). xz and bzip2 go through the host's `xz`
 * and `bzip2` programs, as Docker's xz does.
 */
async function decompressArchive(input: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
  const reader = input.getReader();
  const first = await reader.read();
  const head = first.done ? new Uint8Array(0) : first.value;
  const replay = new ReadableStream<Uint8Array>({
    start(controller) {
      if (head.length) controller.enqueue(head);
      if (first.done) controller.close();
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const compression = compressionOf(head);
  if (compression === "gzip" || compression === "zstd") return inflate(replay, compression);
  if (compression === "xz") return throughProgram(replay, "xz", "xz-utils");
  if (compression === "bzip2") return throughProgram(replay, "bzip2", "bzip2");
  return replay;
}

/** `input` decompressed by the host program `program -dc`; its failure is a FlokaError. */
function throughProgram(input: ReadableStream<Uint8Array>, program: string, pkg: string) {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, { args: ["-dc"], stdin: "piped", stdout: "piped", stderr: "piped" })
      .spawn();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new FlokaError(
      `a ${program}-compressed archive needs the ${program} program (apt-get install ${pkg})`,
    );
  }
  input.pipeTo(child.stdin).catch(() => {}); // a failure shows as the program's
  const errors = new Response(child.stderr).text();
  return child.stdout.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async flush(controller) {
        const status = await child.status;
        if (!status.success) {
          controller.error(new FlokaError(`${program} data is corrupt: ${oneLine(await errors)}`));
        }
      },
    }),
  );
}

/** Extracts the archive `input` into `dir` (new), hashing every regular file on the way. */
export async function stageArchive(input: ReadableStream<Uint8Array>, dir: string): Promise<StagedArchive> {
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const staged = new StagedArchive();
  const hardLinks: [string, string][] = [];
  const extract = tar.extract();
  const consume = async () => {
    let count = 0;
    let current: string | null = null;
    try {
      for await (const entry of extract) {
        const header = entry.header;
        current = header.name;
        const name = normalizeName(header.name);
        if (name === null) {
          throw new FlokaError(`invalid archive: entry ${JSON.stringify(header.name)} leaves it`);
        }
        if (header.type === "file" || header.type === "contiguous-file") {
          const path = `${dir}/${count++}`;
          const hash = createHash("sha256");
          let size = 0;
          using file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
          for await (const chunk of entry as AsyncIterable<Uint8Array>) {
            hash.update(chunk);
            size += chunk.length;
            for (let done = 0; done < chunk.length;) done += file.writeSync(chunk.subarray(done));
          }
          staged.files.set(name, { path, digest: digestFromBytes(hash.digest()), size });
        } else {
          if (header.type === "symlink" && header.linkname) {
            const target = linkTarget(name, header.linkname);
            if (target !== null) staged.links.set(name, target);
          } else if (header.type === "link" && header.linkname) {
            const target = normalizeName(header.linkname);
            if (target !== null) hardLinks.push([name, target]);
          }
          entry.resume();
        }
        current = null;
      }
    } catch (err) {
      const text = describeError(err);
      if (text === "Unexpected end of data") {
        const where = current === null ? "" : ` in ${JSON.stringify(current)}`;
        throw new FlokaError(`invalid archive: the tar stream is truncated${where}`);
      }
      throw err instanceof FlokaError ? err : new FlokaError(`invalid archive: ${text.split("\n")[0]}`);
    }
  };
  await runExtract(await decompressArchive(input), extract, consume, {
    readFailure: (err) => new FlokaError(`cannot read the archive: ${describeError(err)}`),
  });
  for (const [name, target] of hardLinks) {
    const file = staged.find(target);
    if (file) staged.files.set(name, file);
  }
  if (staged.files.size === 0) {
    throw new FlokaError("invalid archive: it holds no file (is it a tar archive?)");
  }
  return staged;
}

/** An image found in an archive, verified and stored, waiting to be tagged. */
export interface LoadedImage {
  /** The image ID: its config's digest. */
  id: Digest;
  manifest: Descriptor;
  /** Full references to tag it with. */
  names: string[];
}

/** A staged blob checked against the digest (and size) that names it. */
function verifiedBlob(
  staged: StagedArchive,
  descriptor: { digest: Digest; size?: number },
  what: string,
): Staged {
  const file = staged.require(blobPathOf(descriptor.digest), what);
  if (file.digest !== descriptor.digest) {
    throw new FlokaError(
      `invalid archive: ${what} ${descriptor.digest} does not match its digest (got ${file.digest})`,
    );
  }
  if (descriptor.size !== undefined && descriptor.size !== file.size) {
    throw new FlokaError(
      `invalid archive: ${what} ${descriptor.digest} is ${file.size} bytes, its descriptor says ${descriptor.size}`,
    );
  }
  return file;
}

/** Moves a verified staged file into the store's blobs (or drops it when the store has it). */
function storeStaged(content: ContentStore, file: Staged): void {
  if (content.hasBlob(file.digest)) return;
  try {
    Deno.renameSync(file.path, content.blobPath(file.digest));
  } catch (err) {
    if (!content.hasBlob(file.digest)) throw err;
  }
  // Another name of the same staged file (a hard link) now finds it in the store.
  file.path = content.blobPath(file.digest);
}

/**
 * The diff_id of a layer blob whose unpacked layer the store already has: the blob is
 * still checked, since it is what a later `save` or push hands on.
 */
async function blobDiffId(
  content: ContentStore,
  file: Staged,
  compression: "gzip" | "zstd" | "none",
): Promise<Digest> {
  if (compression === "none") return file.digest;
  if (compression === "zstd") {
    const tmp = content.tempPath("layer");
    try {
      using blob = await Deno.open(file.path);
      return (await unpackLayer(blob.readable, compression, tmp)).diffId;
    } finally {
      try {
        Deno.removeSync(tmp, { recursive: true });
      } catch { /* removed by unpackLayer on failure */ }
    }
  }
  const hash = createHash("sha256");
  using blob = await Deno.open(file.path);
  const gunzip = new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>;
  for await (const chunk of blob.readable.pipeThrough(gunzip)) hash.update(chunk);
  return digestFromBytes(hash.digest());
}

/** Stores one layer: unpacked and checked against `diffId`, then its blob moved into the store. */
async function storeLayer(
  content: ContentStore,
  file: Staged,
  diffId: Digest,
  what: string,
): Promise<Descriptor> {
  const compression = layerFileCompression(file.path);
  try {
    if (content.hasLayer(diffId)) {
      const actual = await blobDiffId(content, file, compression);
      if (actual !== diffId) {
        throw new FlokaError(
          `its content has diff_id ${actual}, but the image config says ${diffId}: refusing it`,
        );
      }
    } else {
      await content.addLayer(diffId, async (target) => {
        using blob = await Deno.open(file.path);
        return (await unpackLayer(blob.readable, compression, target)).diffId;
      });
    }
  } catch (err) {
    throw new FlokaError(`invalid archive: ${what}: ${describeError(err)}`);
  }
  storeStaged(content, file);
  return { mediaType: LAYER_MEDIA_TYPES[compression], digest: file.digest, size: file.size };
}

function parseConfig(file: Staged, what: string): ImageConfig {
  let config: unknown;
  try {
    config = JSON.parse(decoder.decode(Deno.readFileSync(file.path)));
  } catch (err) {
    throw new FlokaError(`invalid archive: ${what}: ${describeError(err)}`);
  }
  return checkImageConfig(config, `invalid archive: ${what}`);
}

/** The layers and config an image's config and layer files describe, stored; returns its manifest. */
async function storeImageParts(
  content: ContentStore,
  configFile: Staged,
  layerFiles: Staged[],
  what: string,
): Promise<{ config: Descriptor; layers: Descriptor[]; configJson: ImageConfig }> {
  const configJson = parseConfig(configFile, `the config of ${what}`);
  const diffIds = configJson.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layerFiles.length) {
    throw new FlokaError(
      `invalid archive: ${what} has ${layerFiles.length} layers, its config lists ${diffIds.length}`,
    );
  }
  const layers: Descriptor[] = [];
  for (const [i, file] of layerFiles.entries()) {
    layers.push(await storeLayer(content, file, diffIds[i], `layer ${i + 1} of ${what}`));
  }
  storeStaged(content, configFile);
  return {
    config: { mediaType: MediaType.OciConfig, digest: configFile.digest, size: configFile.size },
    layers,
    configJson,
  };
}

/** A name in an archive as a full reference; null for one that is not an image name. */
function fullName(name: string | undefined): string | null {
  if (!name) return null;
  try {
    const ref = parseReference(name);
    if (ref.digest) return null;
    return formatReference(ref);
  } catch {
    return null;
  }
}

/** The images of a Docker archive (`manifest.json`), each verified and stored. */
async function loadDocker(content: ContentStore, staged: StagedArchive): Promise<LoadedImage[]> {
  const entries = staged.json<DockerArchiveEntry[]>("manifest.json", "the manifest");
  if (!Array.isArray(entries)) throw new FlokaError("invalid archive: manifest.json is not a list");
  const loaded: LoadedImage[] = [];
  for (const [n, entry] of entries.entries()) {
    const what = `image ${n + 1} of manifest.json`;
    if (typeof entry?.Config !== "string" || !Array.isArray(entry.Layers)) {
      throw new FlokaError(`invalid archive: ${what} has no Config or Layers`);
    }
    const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
    if (!strings(entry.Layers) || (entry.RepoTags != null && !strings(entry.RepoTags))) {
      throw new FlokaError(`invalid archive: ${what} has Layers or RepoTags that are not lists of names`);
    }
    const configFile = staged.require(entry.Config, "the config");
    checkNamedDigest(entry.Config, configFile, "the config");
    const layerFiles = entry.Layers.map((layer) => {
      const file = staged.require(layer, "the layer");
      checkNamedDigest(layer, file, "the layer");
      return file;
    });
    const { config, layers } = await storeImageParts(content, configFile, layerFiles, what);
    const manifest = await content.writeJson(MediaType.OciManifest, {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config,
      layers,
    });
    const names = (entry.RepoTags ?? []).map((t) => {
      const name = fullName(t);
      if (!name) throw new FlokaError(`invalid archive: ${what} has an invalid tag ${JSON.stringify(t)}`);
      return name;
    });
    loaded.push({ id: config.digest, manifest, names });
  }
  return loaded;
}

/**
 * A file whose name says its digest (`blobs/sha256/<hex>`, `<hex>.json`, `<hex>.tar`,
 * `sha256:<hex>`) must have that digest. Older layouts name files by other IDs (a v1 layer
 * directory's `layer.tar`): those are checked through the config (diff_ids) instead.
 */
function checkNamedDigest(name: string, file: Staged, what: string): void {
  const base = normalizeName(name) ?? name;
  const m = /^(?:blobs\/sha256\/|sha256:)?([0-9a-f]{64})(?:\.json|\.tar)?$/.exec(base);
  if (m && file.digest !== `sha256:${m[1]}`) {
    throw new FlokaError(
      `invalid archive: ${what} ${JSON.stringify(name)} does not match its digest (got ${file.digest})`,
    );
  }
}

/** The manifests an OCI index names, nested indexes resolved to the host's platform. */
function manifestsOf(
  staged: StagedArchive,
  index: ImageIndex,
  names: string[],
  depth = 0,
): { descriptor: Descriptor; names: string[] }[] {
  if (depth > 4) throw new FlokaError("invalid archive: indexes nested too deep");
  const found: { descriptor: Descriptor; names: string[] }[] = [];
  for (const entry of index.manifests ?? []) {
    const name = fullName(entry.annotations?.[NAME_ANNOTATION]) ??
      (/[:/]/.test(entry.annotations?.[REF_ANNOTATION] ?? "")
        ? fullName(entry.annotations?.[REF_ANNOTATION])
        : null);
    const entryNames = name ? [...names, name] : names;
    if (INDEX_TYPES.includes(entry.mediaType)) {
      const file = verifiedBlob(staged, entry, "the index");
      let json: unknown;
      try {
        json = JSON.parse(decoder.decode(Deno.readFileSync(file.path)));
      } catch (err) {
        throw new FlokaError(`invalid archive: the index ${entry.digest}: ${describeError(err)}`);
      }
      const nested = checkImageIndex(json, `invalid archive: the index ${entry.digest}`);
      const wanted = pickPlatform(nested.manifests ?? []);
      if (!wanted) {
        throw new FlokaError(`invalid archive: index ${entry.digest} has no image for this platform`);
      }
      found.push(...manifestsOf(staged, { schemaVersion: 2, manifests: [wanted] }, entryNames, depth + 1));
    } else {
      found.push({ descriptor: entry, names: entryNames });
    }
  }
  return found;
}

function pickPlatform(manifests: Descriptor[]): Descriptor | null {
  const host: Platform = hostPlatform();
  return manifests.find((m) =>
    m.platform?.os === host.os && m.platform?.architecture === host.architecture &&
    (!host.variant || !m.platform.variant || m.platform.variant === host.variant)
  ) ?? (manifests.length === 1 ? manifests[0] : null);
}

/** The images of an OCI archive (`index.json`), each verified and stored. */
async function loadOci(content: ContentStore, staged: StagedArchive): Promise<LoadedImage[]> {
  const index = checkImageIndex(
    staged.json<unknown>("index.json", "the index"),
    "invalid archive: index.json",
  );
  const byManifest = new Map<string, { descriptor: Descriptor; names: string[] }>();
  for (const found of manifestsOf(staged, index, [])) {
    const seen = byManifest.get(found.descriptor.digest);
    if (seen) seen.names.push(...found.names);
    else byManifest.set(found.descriptor.digest, { descriptor: found.descriptor, names: [...found.names] });
  }
  const loaded: LoadedImage[] = [];
  for (const { descriptor, names } of byManifest.values()) {
    const what = `image ${descriptor.digest}`;
    const manifestFile = verifiedBlob(staged, descriptor, "the manifest");
    let manifest: ImageManifest;
    try {
      manifest = JSON.parse(decoder.decode(Deno.readFileSync(manifestFile.path))) as ImageManifest;
    } catch (err) {
      throw new FlokaError(`invalid archive: the manifest ${descriptor.digest}: ${describeError(err)}`);
    }
    if (!manifest.config || !Array.isArray(manifest.layers)) {
      throw new FlokaError(`invalid archive: ${descriptor.digest} is not an image manifest`);
    }
    manifest = checkImageManifest(manifest, `invalid archive: the manifest ${descriptor.digest}`);
    const configFile = verifiedBlob(staged, manifest.config, "the config");
    const layerFiles = manifest.layers.map((l) => verifiedBlob(staged, l, "the layer"));
    const { config } = await storeImageParts(content, configFile, layerFiles, what);
    storeStaged(content, manifestFile);
    loaded.push({
      id: config.digest,
      manifest: {
        mediaType: descriptor.mediaType ?? MediaType.OciManifest,
        digest: manifestFile.digest,
        size: manifestFile.size,
      },
      names: [...new Set(names)],
    });
  }
  return loaded;
}

/**
 * Loads every image of the archive `input` into the store and tags it; returns what was
 * loaded. Nothing is tagged unless every image was verified and stored.
 */
export async function loadArchive(
  content: ContentStore,
  input: ReadableStream<Uint8Array>,
): Promise<LoadedImage[]> {
  content.init();
  return await content.withPullLease(async () => {
    const dir = content.tempPath("load");
    try {
      const staged = await stageArchive(input, dir);
      let loaded: LoadedImage[];
      if (staged.find("manifest.json")) loaded = await loadDocker(content, staged);
      else if (staged.find("index.json")) loaded = await loadOci(content, staged);
      else throw new FlokaError("invalid archive: it has neither manifest.json nor index.json");
      if (!loaded.length) throw new FlokaError("invalid archive: it holds no image");
      for (const image of loaded) tagLoaded(content, image);
      return loaded;
    } finally {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* never made */ }
    }
  });
}

/**
 * Tags a loaded image with its names, as Docker does: a name that pointed at another image
 * moves, and that image, if it has no other entry, stays in the store untagged.
 */
function tagLoaded(content: ContentStore, image: LoadedImage): void {
  if (!image.names.length) {
    content.keepUntagged(image.manifest);
    return;
  }
  for (const name of image.names) {
    const previous = content.lookup(name);
    content.tag(name, parseReference(name).tag ?? "latest", image.manifest);
    if (previous && previous.digest !== image.manifest.digest) {
      const stillThere = content.index().manifests.some((m) => m.digest === previous.digest);
      if (!stillThere) {
        content.keepUntagged({ mediaType: previous.mediaType, digest: previous.digest, size: previous.size });
      }
    }
  }
}

/** `Loaded image: NAME` lines (Docker's familiar names), or `Loaded image ID: ...` for an untagged one. */
export function loadedLines(images: readonly LoadedImage[]): string[] {
  return images.flatMap((image) =>
    image.names.length
      ? image.names.map((n) => `Loaded image: ${familiarReference(parseReference(n))}`)
      : [`Loaded image ID: ${image.id}`]
  );
}
