/**
 * Images in the local store. In this version an image is a directory
 * `images/<name>:<tag>/` holding `rootfs/` (placed by hand or by a tool) and, optionally,
 * an OCI image config `config.json` whose Env, Cmd, Entrypoint, WorkingDir and User apply
 * as in Docker.
 */
import { FlokaError } from "../../lib/errors.ts";
import { formatImageName, type ImageName, parseImageName } from "../../lib/image_name.ts";
import type { ImageConfig } from "../../lib/oci.ts";
import { readJsonIfExists } from "../store/files.ts";
import type { StoreRoot } from "../store/root.ts";

export interface LocalImage extends ImageName {
  /** `images/<name>:<tag>` */
  dir: string;
  rootfs: string;
  config: ImageConfig | null;
}

function imageDir(store: StoreRoot, image: ImageName): string {
  // A repository path like `library/busybox` is kept as one directory name.
  return `${store.images}/${formatImageName(image).replaceAll("/", "%2F")}`;
}

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function load(store: StoreRoot, image: ImageName): LocalImage | null {
  const dir = imageDir(store, image);
  const rootfs = `${dir}/rootfs`;
  if (!isDirectory(rootfs)) return null;
  let config: ImageConfig | null;
  try {
    config = readJsonIfExists<ImageConfig>(`${dir}/config.json`);
  } catch (err) {
    throw new FlokaError(
      `image ${formatImageName(image)}: unreadable ${dir}/config.json: ${(err as Error).message}`,
    );
  }
  return { ...image, dir, rootfs, config };
}

/** The image `reference` names (`busybox` is `busybox:latest`), or a FlokaError. */
export function findImage(store: StoreRoot, reference: string): LocalImage {
  const name = parseImageName(reference);
  const image = load(store, name);
  if (!image) {
    throw new FlokaError(
      `Unable to find image '${formatImageName(name)}' locally: no ${imageDir(store, name)}/rootfs ` +
        `(place a root filesystem there to make the image)`,
    );
  }
  return image;
}

/** Every image in the store, sorted by name and tag. */
export function listImages(store: StoreRoot): LocalImage[] {
  const images: LocalImage[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(store.images)];
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  for (const entry of entries) {
    const colon = entry.name.lastIndexOf(":");
    if (!entry.isDirectory || colon <= 0) continue;
    let name: ImageName;
    try {
      name = parseImageName(entry.name.replaceAll("%2F", "/"));
    } catch {
      continue; // not an image directory
    }
    const image = load(store, name);
    if (image) images.push(image);
  }
  return images.sort((a, b) => formatImageName(a).localeCompare(formatImageName(b)));
}

/**
 * The image ID: sha256 of its config as Docker computes it, or, for a bare rootfs, of its
 * name and directory identity (stable while the directory is not replaced).
 */
export async function imageId(image: LocalImage): Promise<string> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = Deno.readFileSync(`${image.dir}/config.json`);
  } catch {
    const st = Deno.statSync(image.rootfs);
    bytes = new TextEncoder().encode(
      `${formatImageName(image)}\0${st.dev}:${st.ino}:${st.birthtime?.getTime()}`,
    );
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return "sha256:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** When the image was made: the config's `created`, else the rootfs directory's mtime. */
export function imageCreated(image: LocalImage): Date {
  const created = image.config?.created ? new Date(image.config.created) : null;
  if (created && !isNaN(created.getTime())) return created;
  return Deno.statSync(image.rootfs).mtime ?? new Date(0);
}

/** Bytes used by the rootfs, each hard-linked file counted once. */
export function imageSize(image: LocalImage): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      const st = Deno.lstatSync(path);
      if (entry.isDirectory) {
        walk(path);
      } else if (entry.isFile) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
        total += st.size;
      }
    }
  };
  walk(image.rootfs);
  return total;
}
