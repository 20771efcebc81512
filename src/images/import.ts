/**
 * `floka import`: an image from a root filesystem tarball (`docker import`), one layer
 * stored and unpacked like a pulled one, with a config and an OCI manifest made here.
 */
import type { Digest } from "../../lib/digest.ts";
import { layerFileCompression } from "../../lib/compression.ts";
import { type Descriptor, type ImageConfig, LAYER_MEDIA_TYPES, MediaType } from "../../lib/oci.ts";
import { hostPlatform } from "../../lib/platform.ts";
import { parseReference } from "../../lib/reference.ts";
import { DEFAULT_PATH } from "../../lib/env.ts";
import type { ContentStore } from "./content_store.ts";
import { unpackLayer } from "./unpack.ts";

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
    const compression = layerFileCompression(store.blobPath(stored.digest));
    const layer: Descriptor = { ...stored, mediaType: LAYER_MEDIA_TYPES[compression] };
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
    // Without a name the image is untagged, as with `docker import`: found by its ID.
    return await store.storeImage(config, [layer], ref ? [ref] : []);
  });
}
