/**
 * `floka pull`: fetch an image from a registry into the content store, as Docker does.
 *
 * 1. Resolve the reference to a manifest; an index (multi-platform image) resolves to the
 *    host's platform, or the one asked for.
 * 2. Fetch the image config; its `rootfs.diff_ids` name the layers' uncompressed contents.
 * 3. For each layer not already unpacked, three at a time: download the blob (verified
 *    against its digest and size before anything uses it) and, as it arrives, unpack it
 *    into its own directory (verified against its diff_id). This thread downloads, stores
 *    and decompresses; a pool of worker threads, one a core, parses and writes the files.
 * 4. Tag the image in `index.json`.
 *
 * Every document is stored under its digest, so a pulled image can be read by other OCI tools.
 */
import { type Digest, sha256 } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import {
  checkImageConfig,
  checkImageIndex,
  checkImageManifest,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  INDEX_TYPES,
  layerCompression,
  MANIFEST_TYPES,
} from "../../lib/oci.ts";
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from "../../lib/platform.ts";
import { formatReference, parseReference, type Reference } from "../../lib/reference.ts";
import { inParallel } from "../../lib/parallel.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ContentStore } from "./content_store.ts";
import type { PullProgress } from "./progress.ts";
import { unpackLayer, UnpackWorkers } from "./unpack.ts";

/** Layers fetched at once, as Docker's default max-concurrent-downloads (3). */
const PARALLEL_LAYERS = 3;

export interface PullOptions {
  /** `os/arch[/variant]`; the host's platform when absent. */
  platform?: string;
  progress: PullProgress;
}

export interface PulledImage {
  /** The full reference the image is stored under (`docker.io/library/busybox:latest`). */
  name: string;
  /** The digest of what the registry served for the reference (an index or a manifest). */
  repoDigest: Digest;
  /** The platform manifest that was pulled. */
  manifest: Descriptor;
  config: ImageConfig;
  /** False when the name already pointed at this very image. */
  changed: boolean;
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    throw new FlokaError(`${what} is not valid JSON`);
  }
}

async function storeBytes(
  store: ContentStore,
  mediaType: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<Descriptor> {
  const descriptor: Descriptor = { mediaType, digest: await sha256(bytes), size: bytes.length };
  await store.writeBlob(descriptor, ReadableStream.from([bytes]));
  return descriptor;
}

/** Resolves `ref` to one platform's manifest, storing what it reads. */
async function resolveManifest(
  client: RegistryClient,
  store: ContentStore,
  ref: Reference,
  platform: string | undefined,
): Promise<{ repoDigest: Digest; descriptor: Descriptor; manifest: ImageManifest }> {
  const top = await client.getManifest(ref);
  if (ref.digest && top.digest !== ref.digest) {
    throw new FlokaError(
      `${formatReference(ref)}: the registry served ${top.digest} for digest ${ref.digest}`,
    );
  }
  await storeBytes(store, top.mediaType, new Uint8Array(top.bytes));
  let descriptor: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
  let bytes = top.bytes;
  if (INDEX_TYPES.includes(top.mediaType)) {
    const what = `the index of ${formatReference(ref)}`;
    const index = checkImageIndex(parseJson<unknown>(top.bytes, what), what);
    descriptor = selectManifest(index, platform ? parsePlatform(platform) : hostPlatform());
    const chosen = await client.getManifest(ref, descriptor.digest);
    if (chosen.digest !== descriptor.digest) {
      throw new FlokaError(
        `${formatReference(ref)}: manifest ${descriptor.digest} came back as ${chosen.digest}`,
      );
    }
    await storeBytes(store, chosen.mediaType, new Uint8Array(chosen.bytes));
    bytes = chosen.bytes;
    descriptor = { ...descriptor, mediaType: chosen.mediaType, size: chosen.bytes.length };
  }
  if (!MANIFEST_TYPES.includes(descriptor.mediaType)) {
    throw new FlokaError(`${formatReference(ref)}: unsupported manifest media type ${descriptor.mediaType}`);
  }
  const what = `the manifest of ${formatReference(ref)}`;
  const manifest = checkImageManifest(parseJson<unknown>(bytes, what), what);
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
    throw new FlokaError(`${formatReference(ref)}: the manifest has no config or no layers list`);
  }
  return { repoDigest: top.digest, descriptor, manifest };
}

/** Downloads (if missing) and unpacks (if missing) one layer. */
async function pullLayer(
  client: RegistryClient,
  store: ContentStore,
  ref: Reference,
  layer: Descriptor,
  diffId: Digest,
  progress: PullProgress,
  workers: UnpackWorkers,
  signal: AbortSignal,
): Promise<void> {
  const compression = layerCompression(layer.mediaType);
  if (compression === null) {
    throw new FlokaError(`layer ${layer.digest}: unsupported media type ${layer.mediaType}`);
  }
  if (store.hasLayer(diffId)) {
    progress.layer(layer.digest, "Already exists");
    return;
  }
  // A layer downloads and unpacks at once, as with `docker pull`; the unpacked directory
  // takes its place only when the blob's digest and the layer's diff_id are both verified.
  let source: ReadableStream<Uint8Array>;
  let stored: Promise<void> = Promise.resolve();
  if (store.hasBlob(layer.digest)) {
    source = (await Deno.open(store.blobPath(layer.digest))).readable;
    progress.layer(layer.digest, "Extracting");
  } else {
    progress.layer(layer.digest, "Pulling fs layer");
    const { body } = await client.getBlob(ref, layer.digest);
    let done = 0;
    const counted = body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          signal.throwIfAborted(); // another layer failed: stop, and let writeBlob clean up
          done += chunk.length;
          progress.layer(layer.digest, "Downloading", done, layer.size);
          out.enqueue(chunk);
        },
      }),
    );
    const [toStore, toUnpack] = counted.tee();
    stored = store.writeBlob(layer, toStore);
    source = toUnpack;
  }
  try {
    await store.addLayer(diffId, async (target) => {
      // Both must end before the temporary directory is kept or removed.
      const [unpacked, verified] = await Promise.allSettled([
        unpackLayer(source, compression, target, { workers }),
        stored,
      ]);
      if (verified.status === "rejected") throw verified.reason;
      if (unpacked.status === "rejected") throw unpacked.reason;
      return unpacked.value.diffId;
    });
  } catch (err) {
    await stored.catch(() => {});
    throw new FlokaError(`layer ${layer.digest}: ${(err as Error).message}`);
  }
  progress.layer(layer.digest, "Pull complete");
}

export async function pullImage(
  client: RegistryClient,
  store: ContentStore,
  reference: string,
  opts: PullOptions,
): Promise<PulledImage> {
  const ref = parseReference(reference);
  store.init();
  return await store.withPullLease(() => pullInto(client, store, ref, opts));
}

async function pullInto(
  client: RegistryClient,
  store: ContentStore,
  ref: Reference,
  opts: PullOptions,
): Promise<PulledImage> {
  const { repoDigest, descriptor, manifest } = await resolveManifest(client, store, ref, opts.platform);

  if (!store.hasBlob(manifest.config.digest)) {
    const { body } = await client.getBlob(ref, manifest.config.digest);
    await store.writeBlob(manifest.config, body);
  }
  const configWhat = `config ${manifest.config.digest}`;
  const config = checkImageConfig(
    parseJson<unknown>(store.readBlob(manifest.config.digest), configWhat),
    configWhat,
  );
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new FlokaError(
      `${
        formatReference(ref)
      }: the config lists ${diffIds.length} layer diff_ids for ${manifest.layers.length} layers`,
    );
  }
  if (opts.platform === undefined && config.os && config.architecture) {
    const want = hostPlatform();
    if (config.os !== want.os || config.architecture !== want.architecture) {
      const got = formatPlatform({
        os: config.os,
        architecture: config.architecture,
        variant: config.variant,
      });
      opts.progress.note(
        `WARNING: the image's platform (${got}) does not match the host's (${formatPlatform(want)})`,
      );
    }
  }

  opts.progress.start(manifest.layers.map((l) => l.digest));
  const layers = manifest.layers.map((layer, i) => ({ layer, diffId: diffIds[i] }));
  {
    // Started now, the unpacking threads load while the first downloads begin. More of
    // them than cores would only add start-up costs (about 15 ms of this thread and 50 ms
    // of CPU each); a layer that waits for one keeps downloading meanwhile.
    const missing = layers.filter(({ diffId }) => !store.hasLayer(diffId)).length;
    using workers = new UnpackWorkers(Math.min(PARALLEL_LAYERS, navigator.hardwareConcurrency), missing);
    await inParallel(
      layers,
      PARALLEL_LAYERS,
      ({ layer, diffId }, signal) =>
        pullLayer(client, store, ref, layer, diffId, opts.progress, workers, signal),
    );
  }
  opts.progress.done();

  const name = formatReference(ref);
  const changed = store.lookup(name)?.digest !== descriptor.digest;
  store.tag(name, ref.tag ?? "", descriptor, repoDigest);
  return { name, repoDigest, manifest: descriptor, config, changed };
}
