/**
 * `floka import`: an image from a root filesystem tarball (`docker import`), one layer
 * stored and unpacked like a pulled one, with a config and an OCI manifest made here.
 */
import type { Digest } from "../../lib/digest.ts";
import { type Descriptor, type ImageConfig, MediaType } from "../../lib/oci.ts";
import { hostPlatform } from "../../lib/platform.ts";
import { formatReference, parseReference } from "../../lib/reference.ts";
import { DEFAULT_PATH } from "../../lib/env.ts";
import type { ContentStore } from "./content_store.ts";
import { unpackLayer } from "./unpack.ts";

/** A tarball's compression, from its first bytes. */
async function sniffCompression(path: string): Promise<"gzip" | "zstd" | "none"> {
  using file = await Deno.open(path);
  const head = new Uint8Array(4);
  const n = (await file.read(head)) ?? 0;
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (n >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

const LAYER_TYPES = {
  gzip: MediaType.OciLayerGzip,
  zstd: MediaType.OciLayerZstd,
  none: MediaType.OciLayer,
} as const;

/** Imports the tarball `source` as `reference` (or untagged); returns the image ID (its config's digest). */
export async function importImage(
  store: ContentStore,
  source: ReadableStream<Uint8Array>,
  reference: string | undefined,
): Promise<Digest> {
  // Checked before anything is stored: a bad name must not cost an import.
  const ref = reference === undefined ? null : parseReference(reference);
  store.init();
  return await store.withPullLease(async () => {
    const stored = await store.importBlob(MediaType.OciLayer, source);
    const compression = await sniffCompression(store.blobPath(stored.digest));
    const layer: Descriptor = { ...stored, mediaType: LAYER_TYPES[compression] };
    const diffId = await store.addLayer(null, async (target) => {
      using file = await Deno.open(store.blobPath(layer.digest));
      return (await unpackLayer(file.readable, compression, target)).diffId;
    });
    const created = new Date().toISOString();
    const platform = hostPlatform();
    const config: ImageConfig = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [`PATH=${DEFAULT_PATH}`] },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, created_by: "floka import", comment: "Imported from tarball" }],
    };
    const configDescriptor = await store.writeJson(MediaType.OciConfig, config);
    const manifest = await store.writeJson(MediaType.OciManifest, {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDescriptor,
      layers: [layer],
    });
    // Without a name the image is untagged, as with `docker import`: found by its ID.
    if (ref) store.tag(formatReference(ref), ref.tag ?? "latest", manifest);
    else store.keepUntagged(manifest);
    return configDescriptor.digest;
  });
}
