/**
 * The images a container can start from, of two kinds, found by the same names:
 *
 * - placed by hand: `images/<name>:<tag>/rootfs/`, with an optional OCI image config in
 *   `images/<name>:<tag>/config.json` (the seed's workflow; it wins over a pulled image of
 *   the same name, being the more explicit of the two);
 * - pulled (and later built): tagged in the content store's `index.json`, their layers
 *   unpacked under `images/layers/`.
 *
 * Either way an image is a stack of lower directories for overlayfs and a config whose Env,
 * Cmd, Entrypoint, WorkingDir and User apply as in Docker.
 */
import { type Digest, digestHex, sha256 } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import type { ImageConfig, ImageManifest } from "../../lib/oci.ts";
import { familiarReference, formatReference, parseReference, type Reference } from "../../lib/reference.ts";
import { readJsonIfExists } from "../store/files.ts";
import type { StoreRoot } from "../store/root.ts";
import { ContentStore, NAME_ANNOTATION, REPO_DIGEST_ANNOTATION } from "./content_store.ts";

export interface Image {
  /** The repository as Docker shows it (`busybox`, `localhost:5000/app`). */
  repository: string;
  /** The tag, or `<none>` for an image pulled by digest only. */
  tag: string;
  /** Lower directories for overlayfs, top layer first. */
  lowerDirs: string[];
  config: ImageConfig | null;
  /** sha256 of the config, Docker's image ID; null for a hand-placed image without one. */
  configDigest: Digest | null;
  /** The digest the registry gave for a pulled image. */
  repoDigest?: Digest;
  /** For a hand-placed image: its `images/<name>:<tag>` directory. */
  dir?: string;
}

export function contentStore(store: StoreRoot): ContentStore {
  return new ContentStore(store.images);
}

/** `images/<name>:<tag>`: the reference as Docker shows it (`busybox:latest`), `/` kept as `%2F`. */
function handPlacedDir(store: StoreRoot, ref: Reference): string {
  return `${store.images}/${familiarReference(ref).replaceAll("/", "%2F")}`;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function loadHandPlaced(store: StoreRoot, ref: Reference): Image | null {
  const dir = handPlacedDir(store, ref);
  if (!isDirectory(`${dir}/rootfs`)) return null;
  let config: ImageConfig | null;
  try {
    config = readJsonIfExists<ImageConfig>(`${dir}/config.json`);
  } catch (err) {
    throw new FlokaError(
      `image ${familiarReference(ref)}: unreadable ${dir}/config.json: ${(err as Error).message}`,
    );
  }
  return {
    repository: familiarReference({ registry: ref.registry, repository: ref.repository }),
    tag: ref.tag ?? "latest",
    lowerDirs: [`${dir}/rootfs`],
    config,
    configDigest: null,
    dir,
  };
}

function loadPulled(content: ContentStore, name: string): Image | null {
  const entry = content.lookup(name);
  if (!entry) return null;
  const read = <T>(digest: Digest, what: string): T => {
    try {
      return JSON.parse(new TextDecoder().decode(content.readBlob(digest))) as T;
    } catch (err) {
      throw new FlokaError(
        `image ${name}: its ${what} ${digest} is missing or unreadable (${(err as Error).message})`,
      );
    }
  };
  const manifest = read<ImageManifest>(entry.digest, "manifest");
  const config = read<ImageConfig>(manifest.config.digest, "config");
  const ref = parseReference(name);
  const shown = familiarReference({ registry: ref.registry, repository: ref.repository });
  return {
    repository: shown,
    tag: ref.tag ?? "<none>",
    lowerDirs: (config.rootfs?.diff_ids ?? []).map((d) => content.layerPath(d)).reverse(),
    config,
    configDigest: manifest.config.digest,
    repoDigest: entry.annotations?.[REPO_DIGEST_ANNOTATION] as Digest | undefined,
  };
}

/** The image `reference` names (`busybox` is `busybox:latest`), or null. */
export function findImage(store: StoreRoot, reference: string): Image | null {
  const ref = parseReference(reference);
  const handPlaced = ref.digest ? null : loadHandPlaced(store, ref);
  return handPlaced ?? loadPulled(contentStore(store), formatReference(ref));
}

/** Every image in the store, sorted by repository and tag. */
export function listImages(store: StoreRoot): Image[] {
  const images: Image[] = [];
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(store.images)];
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  for (const entry of entries) {
    if (!entry.isDirectory || entry.name.lastIndexOf(":") <= 0) continue;
    let ref: Reference;
    try {
      ref = parseReference(entry.name.replaceAll("%2F", "/"));
    } catch {
      continue; // not an image directory
    }
    if (ref.digest) continue;
    const image = loadHandPlaced(store, ref);
    if (image) images.push(image);
  }
  const content = contentStore(store);
  for (const m of content.index().manifests) {
    const name = m.annotations?.[NAME_ANNOTATION];
    const image = name ? loadPulled(content, name) : null;
    if (image) images.push(image);
  }
  return images.sort((a, b) => `${a.repository}:${a.tag}`.localeCompare(`${b.repository}:${b.tag}`));
}

/**
 * The image ID: sha256 of its config as Docker computes it, or, for a hand-placed rootfs
 * without a config, of its name and directory identity (stable while it is not replaced).
 */
export async function imageId(image: Image): Promise<Digest> {
  if (image.configDigest) return image.configDigest;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Deno.readFileSync(`${image.dir}/config.json`);
  } catch {
    const st = Deno.statSync(image.lowerDirs[0]);
    bytes = new TextEncoder().encode(
      `${image.repository}:${image.tag}\0${st.dev}:${st.ino}:${st.birthtime?.getTime()}`,
    );
  }
  return await sha256(bytes);
}

/** The short ID `floka images` shows. */
export function shortImageId(id: Digest): string {
  return digestHex(id).slice(0, 12);
}

/** When the image was made: the config's `created`, else its top directory's mtime. */
export function imageCreated(image: Image): Date {
  const created = image.config?.created ? new Date(image.config.created) : null;
  if (created && !isNaN(created.getTime())) return created;
  return Deno.statSync(image.lowerDirs[0]).mtime ?? new Date(0);
}

/** Bytes used by the image's directories, each hard-linked file counted once. */
export function imageSize(image: Image): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) {
        walk(path);
      } else if (entry.isFile) {
        const st = Deno.lstatSync(path);
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
        total += st.size;
      }
    }
  };
  for (const dir of image.lowerDirs) walk(dir);
  return total;
}
