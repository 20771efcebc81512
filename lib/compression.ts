/** What compresses a stream, told from its first bytes (its magic number). */
import { FlokaError } from "./errors.ts";

export type Compression = "gzip" | "zstd" | "xz" | "bzip2" | "none";

const MAGIC: [Exclude<Compression, "none">, number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["bzip2", [0x42, 0x5a, 0x68]], // "BZh"
];

/** The compression whose magic number `head` starts with, else "none". */
export function compressionOf(head: Uint8Array): Compression {
  const found = MAGIC.find(([, magic]) =>
    head.length >= magic.length && magic.every((b, i) => head[i] === b)
  );
  return found?.[0] ?? "none";
}

/** The compression of the file at `path`, from its first bytes. */
export function fileCompression(path: string): Compression {
  using file = Deno.openSync(path);
  const head = new Uint8Array(6);
  const n = file.readSync(head) ?? 0;
  return compressionOf(head.subarray(0, n));
}

/** The compression of a layer blob at `path`: OCI layers are plain, gzip or zstd. */
export function layerFileCompression(path: string): "gzip" | "zstd" | "none" {
  const compression = fileCompression(path);
  if (compression === "xz" || compression === "bzip2") {
    throw new FlokaError(`a layer compressed with ${compression}: image layers are plain, gzip or zstd tars`);
  }
  return compression;
}
