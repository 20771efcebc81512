/**
 * `floka push`: upload an image from the content store to a registry, as `docker push` does
 * (the OCI distribution spec's push).
 *
 * The image goes up exactly as it is stored: the same layer and config blobs and the same
 * manifest bytes, so its digest in the registry is the digest Floka has for it.
 *
 * 1. For each layer, three at a time, then the config: `HEAD` the blob in the destination
 *    repository and skip it if it is there. Otherwise, when another image in the store that
 *    holds the blob is named after another repository of the same registry, ask the
 *    registry to mount it from there (no bytes sent); a registry that cannot mount starts an
 *    ordinary upload instead. Uploads are monolithic (`POST`, then one `PUT` with the body)
 *    up to a threshold, chunked above it (`PATCH` each chunk, then an empty `PUT`).
 * 2. `PUT` the manifest under the tag, with its media type as Content-Type, and check that
 *    the digest the registry reports is the manifest's.
 *
 * Nothing on the local side changes: a failed push leaves the store as it was (the blobs
 * are only read, under the store's shared lease so garbage collection keeps them meanwhile).
 */
import { type Digest, sha256 } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import { type Descriptor, type ImageManifest, MANIFEST_TYPES } from "../../lib/oci.ts";
import { familiarReference, formatReference, parseReference, type Reference } from "../../lib/reference.ts";
import type { RegistryClient } from "../registry/client.ts";
import { type ContentStore, NAME_ANNOTATION } from "./content_store.ts";
import { inParallel } from "../../lib/parallel.ts";
import { layerLine, type PullProgress, terminalProgress } from "./progress.ts";

/** Layers sent at once, as Docker's default max-concurrent-uploads (3)... */
const PARALLEL_LAYERS = 3;
/** Blobs up to this size go up in one request; larger ones in chunks of this size. */
export const DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024;

/** What became of one blob. */
export type BlobOutcome =
  | { kind: "exists" }
  | { kind: "mounted"; from: string }
  | { kind: "pushed" };

/** The final line Docker shows for a layer. */
export function outcomeStatus(outcome: BlobOutcome): string {
  switch (outcome.kind) {
    case "exists":
      return "Layer already exists";
    case "mounted":
      return `Mounted from ${outcome.from}`;
    case "pushed":
      return "Pushed";
  }
}

/** Whether a progress status is a layer's last (the only ones shown when not on a terminal). */
export function isFinalStatus(status: string): boolean {
  return status === "Pushed" || status === "Layer already exists" || status.startsWith("Mounted from ");
}

/** `<tag>: digest: sha256:... size: N`, Docker's last line. */
export function digestLine(tag: string, digest: Digest, size: number): string {
  return `${tag}: digest: ${digest} size: ${size}`;
}

/** Only each layer's outcome, one plain line each: for logs and pipes. */
export function plainPushProgress(write: (line: string) => void): PullProgress {
  return {
    start() {},
    layer(digest, status) {
      if (isFinalStatus(status)) write(layerLine(digest, status));
    },
    note: write,
    done() {},
  };
}

/**
 * On a terminal: every layer's line redrawn in place (Preparing, Waiting, Pushing with a
 * bar, then the outcome), as `floka pull` draws its own.
 */
export function terminalPushProgress(
  stream: { write(s: string): unknown; columns?: number },
): Promise<PullProgress> {
  return terminalProgress(stream, { initial: "Preparing", streaming: "Pushing" });
}

export interface PushOptions {
  progress: PullProgress;
  /**
   * Blobs larger than this go up in chunks of this size (default 16 MiB). Tests set it
   * small (FLOKA_PUSH_CHUNK_SIZE) to exercise chunked uploads.
   */
  chunkSize?: number;
}

export interface PushedImage {
  /** The full reference pushed (`127.0.0.1:5000/app:1`). */
  name: string;
  /** The registry repository as Docker names it in its first line (`host/name`). */
  repository: string;
  tag: string;
  digest: Digest;
  size: number;
  /** What happened to each layer, in manifest order. */
  layers: { digest: Digest; outcome: BlobOutcome }[];
}

/** Reads the manifest and checks that everything it names is in the store, before any upload. */
function loadLocal(
  store: ContentStore,
  ref: Reference,
): { entry: Descriptor; bytes: Uint8Array<ArrayBuffer>; manifest: ImageManifest } {
  const name = formatReference(ref);
  const entry = store.lookup(name);
  if (!entry) {
    throw new FlokaError(`An image does not exist locally with the tag: ${familiarReference(ref)}`);
  }
  if (!MANIFEST_TYPES.includes(entry.mediaType)) {
    throw new FlokaError(`image ${familiarReference(ref)}: cannot push a ${entry.mediaType}`);
  }
  let bytes: Uint8Array<ArrayBuffer>;
  let manifest: ImageManifest;
  try {
    bytes = Deno.readFileSync(store.blobPath(entry.digest));
    manifest = JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
  } catch (err) {
    throw new FlokaError(
      `image ${familiarReference(ref)}: its manifest ${entry.digest} is missing or unreadable (${
        (err as Error).message
      })`,
    );
  }
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
    throw new FlokaError(`image ${familiarReference(ref)}: its manifest has no config or no layers list`);
  }
  for (const blob of [manifest.config, ...manifest.layers]) {
    if (!store.hasBlob(blob.digest)) {
      throw new FlokaError(
        `image ${
          familiarReference(ref)
        }: blob ${blob.digest} is missing from the store; pull or build it again`,
      );
    }
  }
  return { entry, bytes, manifest };
}

/**
 * Where each blob may be mounted from: for every other image in the store named after
 * another repository of the same registry, the blobs its manifest lists. The store keeps no
 * other record of where a blob came from; the name an image was pulled (or pushed) under is
 * the repository that had it. The first image listed wins.
 */
export function mountSources(store: ContentStore, target: Reference): Map<Digest, string> {
  const sources = new Map<Digest, string>();
  for (const entry of store.index().manifests) {
    const name = entry.annotations?.[NAME_ANNOTATION];
    if (!name) continue;
    let ref: Reference;
    try {
      ref = parseReference(name);
    } catch {
      continue;
    }
    if (ref.registry !== target.registry || ref.repository === target.repository) continue;
    let manifest: ImageManifest;
    try {
      manifest = JSON.parse(new TextDecoder().decode(store.readBlob(entry.digest)));
    } catch {
      continue;
    }
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
      if (blob?.digest && !sources.has(blob.digest)) sources.set(blob.digest, ref.repository);
    }
  }
  return sources;
}

/** Reads exactly `length` bytes (or to the end of the file) at the current position. */
async function readChunk(file: Deno.FsFile, length: number): Promise<Uint8Array<ArrayBuffer>> {
  const buf = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buf.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled === length ? buf : buf.slice(0, filled);
}

/** Sends one blob to the registry unless it is there already; says what it did. */
async function pushBlob(
  client: RegistryClient,
  store: ContentStore,
  ref: Reference,
  blob: Descriptor,
  mountFrom: string | undefined,
  chunkSize: number,
  report: (status: string, current?: number, total?: number) => void,
  signal: AbortSignal,
): Promise<BlobOutcome> {
  if (await client.blobExists(ref, blob.digest)) return { kind: "exists" };
  signal.throwIfAborted();
  let started: Awaited<ReturnType<RegistryClient["startUpload"]>>;
  try {
    started = await client.startUpload(ref, mountFrom ? { digest: blob.digest, from: mountFrom } : undefined);
  } catch (err) {
    // A mount the registry refuses outright (no pull access to the source repository) is
    // only a missed shortcut: upload instead, which says what is wrong if that fails too.
    if (!mountFrom || !(err instanceof FlokaError)) throw err;
    started = await client.startUpload(ref);
  }
  if (started.mounted) return { kind: "mounted", from: mountFrom! };
  let location = started.location;
  const size = Deno.statSync(store.blobPath(blob.digest)).size;
  report("Pushing", 0, size);
  if (size <= chunkSize) {
    const body = await Deno.readFile(store.blobPath(blob.digest));
    signal.throwIfAborted();
    await client.finishUpload(ref, location, blob.digest, body);
  } else {
    using file = await Deno.open(store.blobPath(blob.digest));
    for (let offset = 0; offset < size;) {
      signal.throwIfAborted();
      const chunk = await readChunk(file, Math.min(chunkSize, size - offset));
      if (chunk.length === 0) throw new FlokaError(`blob ${blob.digest} ended early in the store`);
      location = await client.uploadChunk(ref, location, chunk, offset, blob.digest);
      offset += chunk.length;
      report("Pushing", offset, size);
    }
    await client.finishUpload(ref, location, blob.digest);
  }
  return { kind: "pushed" };
}

/** The chunk size from FLOKA_PUSH_CHUNK_SIZE (bytes), else the default. */
export function chunkSizeFromEnv(value: string | undefined): number {
  if (value === undefined || value === "") return DEFAULT_CHUNK_SIZE;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new FlokaError(
      `FLOKA_PUSH_CHUNK_SIZE must be a positive number of bytes, not ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/** Pushes the image `reference` names (tag `latest` when none) to the registry it names. */
export async function pushImage(
  client: RegistryClient,
  store: ContentStore,
  reference: string,
  opts: PushOptions,
): Promise<PushedImage> {
  const ref = parseReference(reference);
  if (ref.digest) {
    throw new FlokaError(`cannot push a digest reference (${familiarReference(ref)}): push a tag`);
  }
  const tag = ref.tag ?? "latest";
  const named: Reference = { registry: ref.registry, repository: ref.repository, tag };
  store.init();
  return await store.withPullLease(() => pushInto(client, store, named, tag, opts));
}

async function pushInto(
  client: RegistryClient,
  store: ContentStore,
  ref: Reference,
  tag: string,
  opts: PushOptions,
): Promise<PushedImage> {
  const { entry, bytes, manifest } = loadLocal(store, ref);
  const digest = await sha256(bytes);
  if (digest !== entry.digest) {
    throw new FlokaError(
      `image ${familiarReference(ref)}: its manifest does not match its digest ${entry.digest}`,
    );
  }
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const sources = mountSources(store, ref);
  const progress = opts.progress;
  // Docker lists the top layer first.
  const shown = [...manifest.layers].reverse().map((l) => l.digest);
  const unique = [...new Map(manifest.layers.map((l) => [l.digest, l])).values()];
  const outcomes = new Map<Digest, BlobOutcome>();
  progress.start(shown);
  for (const d of shown) progress.layer(d, "Waiting");
  try {
    await inParallel(unique, PARALLEL_LAYERS, async (layer, signal) => {
      const outcome = await pushBlob(
        client,
        store,
        ref,
        layer,
        sources.get(layer.digest),
        chunkSize,
        (status, current, total) => progress.layer(layer.digest, status, current, total),
        signal,
      );
      outcomes.set(layer.digest, outcome);
      progress.layer(layer.digest, outcomeStatus(outcome));
    });
    await pushBlob(
      client,
      store,
      ref,
      manifest.config,
      sources.get(manifest.config.digest),
      chunkSize,
      () => {},
      new AbortController().signal,
    );
  } finally {
    progress.done();
  }
  const claimed = await client.putManifest(ref, tag, entry.mediaType, bytes);
  if (claimed && claimed !== digest) {
    throw new FlokaError(
      `${ref.registry} stored the manifest of ${familiarReference(ref)} as ${claimed}, not ${digest}`,
    );
  }
  return {
    name: formatReference(ref),
    repository: `${ref.registry}/${ref.repository}`,
    tag,
    digest,
    size: bytes.length,
    layers: manifest.layers.map((l) => ({ digest: l.digest, outcome: outcomes.get(l.digest)! })),
  };
}
