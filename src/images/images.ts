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
import type { Descriptor, ImageConfig, ImageManifest } from "../../lib/oci.ts";
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
  /** The manifest of an image in the content store. */
  manifestDigest?: Digest;
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
  return entry ? loadEntry(content, entry) : null;
}

/** The image an `index.json` entry describes; `<none>:<none>` when it has no name. */
function loadEntry(content: ContentStore, entry: Descriptor): Image {
  const name = entry.annotations?.[NAME_ANNOTATION] ?? null;
  const read = <T>(digest: Digest, what: string): T => {
    try {
      return JSON.parse(new TextDecoder().decode(content.readBlob(digest))) as T;
    } catch (err) {
      throw new FlokaError(
        `image ${name ?? entry.digest}: its ${what} ${digest} is missing or unreadable (${
          (err as Error).message
        })`,
      );
    }
  };
  const manifest = read<ImageManifest>(entry.digest, "manifest");
  const config = read<ImageConfig>(manifest.config.digest, "config");
  const ref = name ? parseReference(name) : null;
  return {
    repository: ref ? familiarReference({ registry: ref.registry, repository: ref.repository }) : "<none>",
    tag: ref?.tag ?? "<none>",
    lowerDirs: (config.rootfs?.diff_ids ?? []).map((d) => content.layerPath(d)).reverse(),
    config,
    configDigest: manifest.config.digest,
    manifestDigest: entry.digest,
    repoDigest: entry.annotations?.[REPO_DIGEST_ANNOTATION] as Digest | undefined,
  };
}

/** An image ID as Docker accepts one: a prefix of the config's hex digest, or all of it. */
export const IMAGE_ID = /^(?:sha256:[0-9a-f]{64}|[0-9a-f]{12,64})$/;

/** The image whose ID (config digest) `id` is or starts with, or null. */
function findById(content: ContentStore, id: string): Image | null {
  const hex = id.replace(/^sha256:/, "");
  for (const entry of content.index().manifests) {
    const image = loadEntry(content, entry);
    if (image.configDigest && digestHex(image.configDigest).startsWith(hex)) return image;
  }
  return null;
}

/**
 * The image `reference` names (`busybox` is `busybox:latest`), or the image of that ID
 * (`docker run 3f2a1b9c8d7e`), or null.
 */
export function findImage(store: StoreRoot, reference: string): Image | null {
  if (IMAGE_ID.test(reference)) {
    const byId = findById(contentStore(store), reference);
    if (byId) return byId;
  }
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
  for (const entry of content.index().manifests) images.push(loadEntry(content, entry));
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
