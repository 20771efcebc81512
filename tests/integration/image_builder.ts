/**
 * Image builders for the pull tests, beyond `registry_harness.ts`'s one-layer busybox:
 *
 * - umoci builds multi-layer images: `umociLayer` unpacks a tag into a bundle, lets the test
 *   change its rootfs, and repacks, so umoci writes the layer (its mtree diff, with a
 *   `.wh.NAME` whiteout for every deleted name; umoci 0.4.7 never writes an opaque
 *   `.wh..wh..opq` marker, even for a directory that was removed and made again).
 *   `umociAddLayer` appends a tar made by GNU tar verbatim (`umoci raw add-layer`), which is
 *   how a layer umoci cannot express (an opaque directory) gets in.
 * - `OciLayout` writes blobs, manifests, configs and indexes by hand into the same OCI image
 *   layout, for what no tool makes on purpose: an index with an attestation entry, a config
 *   whose diff_ids disagree with its layers.
 * - `skopeoPush` pushes a tag of the layout to a registry (`--all` for an index).
 *
 * Nothing here uses Floka's code: digests, tars and documents come from other tools or
 * from Web APIs, so Floka is checked against them rather than against itself.
 */
import { makeBusyboxImage } from "../fixtures/busybox_image.ts";
import { run, umociShellImage } from "./registry_harness.ts";

export type Digest = `sha256:${string}`;

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Digest> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export async function gzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = ReadableStream.from([bytes]).pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * A tar of `names` (paths relative to `dir`, with everything below them) written by GNU tar
 * to `out`: numeric owners, entries sorted by name, as `docker save` orders them.
 */
export async function gnuTar(dir: string, names: string[], out: string): Promise<void> {
  await run("tar", ["--create", "--file", out, "--numeric-owner", "--sort=name", "-C", dir, "--", ...names]);
}

/** `tar -tv` of a gzip layer blob: one line per entry, numeric owners. */
export async function tarListing(layout: OciLayout, layer: Descriptor): Promise<string> {
  return await run("tar", [
    "--list",
    "--verbose",
    "--numeric-owner",
    "-z",
    "-f",
    layout.blobPath(layer.digest),
  ]);
}

/** The entry names of a gzip layer blob, in archive order. */
export async function tarNames(layout: OciLayout, layer: Descriptor): Promise<string[]> {
  const out = await run("tar", ["--list", "-z", "-f", layout.blobPath(layer.digest)]);
  return out.split("\n").filter(Boolean);
}

/** An image configuration, as much of it as the tests set. */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs: { type: "layers"; diff_ids: Digest[] };
  [key: string]: unknown;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** One tag of the layout, read back: its manifest, layers and config. */
export interface LayoutImage {
  manifest: Descriptor;
  layers: Descriptor[];
  config: ImageConfig;
  configDescriptor: Descriptor;
}

/** An OCI image layout on disk (made by `umoci init`), with ways to write into it by hand. */
export class OciLayout {
  private constructor(readonly dir: string) {}

  static async init(dir: string): Promise<OciLayout> {
    await run("umoci", ["init", "--layout", dir]);
    return new OciLayout(dir);
  }

  blobPath(digest: Digest): string {
    return `${this.dir}/blobs/sha256/${digest.slice("sha256:".length)}`;
  }

  async writeBlob(
    mediaType: string,
    bytes: Uint8Array<ArrayBuffer>,
    extra: Partial<Descriptor> = {},
  ): Promise<Descriptor> {
    const digest = await sha256(bytes);
    Deno.writeFileSync(this.blobPath(digest), bytes);
    return { mediaType, digest, size: bytes.length, ...extra };
  }

  writeJson(mediaType: string, value: unknown, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
    return this.writeBlob(mediaType, new TextEncoder().encode(JSON.stringify(value)), extra);
  }

  readJson<T>(digest: Digest): T {
    return JSON.parse(Deno.readTextFileSync(this.blobPath(digest))) as T;
  }

  /** A gzip layer from an uncompressed tar; returns its descriptor and diff_id. */
  async addLayer(tar: Uint8Array<ArrayBuffer>): Promise<{ layer: Descriptor; diffId: Digest }> {
    return { layer: await this.writeBlob(MEDIA.layerGzip, await gzip(tar)), diffId: await sha256(tar) };
  }

  /** The manifest, layers and config `tag` names in `index.json`. */
  image(tag: string): LayoutImage {
    const manifest = this.tagged(tag);
    const doc = this.readJson<ImageManifest>(manifest.digest);
    return {
      manifest,
      layers: doc.layers,
      config: this.readJson<ImageConfig>(doc.config.digest),
      configDescriptor: doc.config,
    };
  }

  /** Writes a config and a manifest over `layers` (bottom first); the config as given. */
  async writeImage(
    layers: Descriptor[],
    config: ImageConfig,
    extra: Partial<Descriptor> = {},
  ): Promise<Descriptor> {
    const configDescriptor = await this.writeJson(MEDIA.config, config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA.manifest,
      config: configDescriptor,
      layers,
    };
    return this.writeJson(MEDIA.manifest, manifest, extra);
  }

  writeIndex(manifests: Descriptor[]): Promise<Descriptor> {
    return this.writeJson(MEDIA.index, { schemaVersion: 2, mediaType: MEDIA.index, manifests });
  }

  private readIndex(): { schemaVersion: 2; manifests: Descriptor[] } {
    return JSON.parse(Deno.readTextFileSync(`${this.dir}/index.json`));
  }

  tagged(tag: string): Descriptor {
    const found = this.readIndex().manifests.find((m) =>
      m.annotations?.["org.opencontainers.image.ref.name"] === tag
    );
    if (!found) throw new Error(`${this.dir} has no tag ${tag}`);
    return found;
  }

  /** Points `tag` at `descriptor` in `index.json`, as umoci does. */
  tag(tag: string, descriptor: Descriptor): void {
    const index = this.readIndex();
    const { platform: _, annotations: __, ...plain } = descriptor;
    index.manifests = [
      ...index.manifests.filter((m) => m.annotations?.["org.opencontainers.image.ref.name"] !== tag),
      { ...plain, annotations: { "org.opencontainers.image.ref.name": tag } },
    ];
    Deno.writeTextFileSync(`${this.dir}/index.json`, JSON.stringify(index));
  }
}

/** `umoci new` and a config a busybox shell can run with (Cmd sh, PATH), for `architecture`. */
export async function umociNew(layout: OciLayout, tag: string, architecture = "amd64"): Promise<void> {
  await umociShellImage(`${layout.dir}:${tag}`, architecture);
}

/**
 * Adds one layer made by umoci: unpacks `tag` into a fresh bundle, runs `change` on its
 * rootfs, and repacks (umoci diffs the rootfs against what it unpacked).
 */
export async function umociLayer(
  layout: OciLayout,
  tag: string,
  change: (rootfs: string) => void | Promise<void>,
): Promise<void> {
  const bundle = `${layout.dir}.bundle-${crypto.randomUUID()}`;
  try {
    await run("umoci", ["unpack", "--image", `${layout.dir}:${tag}`, bundle]);
    await change(`${bundle}/rootfs`);
    await run("umoci", ["repack", "--image", `${layout.dir}:${tag}`, bundle]);
  } finally {
    await Deno.remove(bundle, { recursive: true }).catch(() => {});
  }
}

/** Appends the uncompressed tar `tarPath` to `tag` as a layer, verbatim (`umoci raw add-layer`). */
export async function umociAddLayer(layout: OciLayout, tag: string, tarPath: string): Promise<void> {
  await run("umoci", ["raw", "add-layer", "--image", `${layout.dir}:${tag}`, tarPath]);
}

/** Makes tag `to` name what tag `from` names. */
export async function umociTag(layout: OciLayout, from: string, to: string): Promise<void> {
  await run("umoci", ["tag", "--image", `${layout.dir}:${from}`, to]);
}

/** Copies the busybox rootfs of `tests/fixtures/busybox_image.ts` into `rootfs`. */
export async function addBusybox(rootfs: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "floka-busybox-" });
  try {
    makeBusyboxImage(`${dir}/image`);
    await run("cp", ["-a", `${dir}/image/rootfs/.`, `${rootfs}/`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface SkopeoPushOptions {
  /** Docker schema 2 at the destination instead of OCI. */
  format?: "v2s2";
  /** Copy an index with every image it lists (`skopeo copy --all`). */
  all?: boolean;
}

/** Pushes `tag` of `layout` to `reference` (`host/name:tag`); returns the pushed manifest's digest. */
export async function skopeoPush(
  layout: OciLayout,
  tag: string,
  reference: string,
  opts: SkopeoPushOptions = {},
): Promise<Digest> {
  const digestFile = `${layout.dir}.digest-${crypto.randomUUID()}`;
  try {
    const args = [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      "--dest-no-creds",
      "--digestfile",
      digestFile,
    ];
    if (opts.format) args.push("--format", opts.format);
    if (opts.all) args.push("--all");
    args.push(`oci:${layout.dir}:${tag}`, `docker://${reference}`);
    await run("skopeo", args);
    return Deno.readTextFileSync(digestFile).trim() as Digest;
  } finally {
    await Deno.remove(digestFile).catch(() => {});
  }
}
