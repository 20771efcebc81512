/**
 * Test content for the pull and unpack benchmarks: directory trees of random files (which
 * gzip cannot shrink, like binaries) and text files (which it shrinks a few times, like
 * docs and logs), made into OCI image layers by umoci.
 */
import { umociShellImage } from "../tests/integration/registry_harness.ts";
import { must } from "./common.ts";

export type Content = "random" | "text" | "mixed";

const WORDS = ("the request worker cache index layer image volume network socket status config " +
  "started finished retry timeout upload download checksum verified container runtime mount")
  .split(" ");

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB a call.
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(bytes.subarray(off, Math.min(size, off + 65536)));
  }
  return bytes;
}

/** Log-like lines: compressible, but not a single repeated string. */
function textBytes(size: number): Uint8Array {
  const lines: string[] = [];
  let length = 0;
  for (let n = 0; length < size; n++) {
    const words = Array.from({ length: 8 }, () => WORDS[Math.floor(Math.random() * WORDS.length)]);
    const line = `2024-05-01T12:${String(n % 60).padStart(2, "0")}:00Z INFO ${words.join(" ")} id=${
      Math.floor(Math.random() * 1e9).toString(16)
    } bytes=${Math.floor(Math.random() * 1e6)}\n`;
    lines.push(line);
    length += line.length;
  }
  return new TextEncoder().encode(lines.join("")).subarray(0, size);
}

/**
 * Writes `count` files of `bytes` in all under `dir`, 100 to a subdirectory, their sizes
 * spread from a quarter to 1.75 times the mean. `mixed` alternates random and text files.
 */
export function writeFiles(dir: string, count: number, bytes: number, content: Content): void {
  const weights = Array.from({ length: count }, () => 0.25 + 1.5 * Math.random());
  const total = weights.reduce((a, b) => a + b);
  for (const [i, weight] of weights.entries()) {
    const sub = `${dir}/d${String(Math.floor(i / 100)).padStart(3, "0")}`;
    if (i % 100 === 0) Deno.mkdirSync(sub, { recursive: true });
    const size = Math.max(1, Math.round(bytes * weight / total));
    const random = content === "random" || (content === "mixed" && i % 2 === 0);
    Deno.writeFileSync(
      `${sub}/f${i}.${random ? "bin" : "txt"}`,
      random ? randomBytes(size) : textBytes(size),
    );
  }
}

export interface LayerInfo {
  digest: string;
  /** Compressed size, from the manifest. */
  size: number;
  mediaType: string;
}

/**
 * Makes the OCI image `layout:tag` with umoci, one gzip layer per filler: each writes files
 * into the rootfs of a bundle, which `umoci repack` then turns into a layer of what changed.
 * Not `umoci insert`: umoci 0.4.7's insert writes tar streams that stop after the last
 * file's data, without its padding and the end-of-archive blocks. Returns the layers from
 * the image's manifest.
 */
export async function buildImage(
  layout: string,
  tag: string,
  fillers: ((rootfs: string) => Promise<unknown> | unknown)[],
): Promise<LayerInfo[]> {
  const image = `${layout}:${tag}`;
  const bundle = `${layout}.bundle`;
  await must(["umoci", "init", "--layout", layout]);
  await umociShellImage(image);
  await must(["umoci", "unpack", "--image", image, bundle]);
  for (const fill of fillers) {
    await fill(`${bundle}/rootfs`);
    await must(["umoci", "repack", "--refresh-bundle", "--image", image, bundle]);
  }
  await Deno.remove(bundle, { recursive: true });
  const index = JSON.parse(await Deno.readTextFile(`${layout}/index.json`));
  const descriptor = index.manifests.find((m: { annotations?: Record<string, string> }) =>
    m.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  const manifest = JSON.parse(await Deno.readTextFile(blobPath(layout, descriptor.digest)));
  return manifest.layers;
}

/** Where a blob of `layout` lives. */
export function blobPath(layout: string, digest: string): string {
  return `${layout}/blobs/${digest.replace(":", "/")}`;
}

/** The size of a gzip blob's uncompressed contents. */
export async function gunzippedSize(path: string): Promise<number> {
  using file = await Deno.open(path);
  let size = 0;
  for await (const chunk of file.readable.pipeThrough(new DecompressionStream("gzip"))) size += chunk.length;
  return size;
}
