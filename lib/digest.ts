/**
 * Content digests (`sha256:<64 hex>`), the names under which registries and the OCI image
 * layout store every blob. Only sha256 is accepted: it is what OCI and Docker images use,
 * and a digest Floka cannot verify is a digest it must not trust.
 */
import { FlokaError } from "./errors.ts";

export type Digest = `sha256:${string}`;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function isDigest(text: string): text is Digest {
  return DIGEST.test(text);
}

/** `text` as a digest, or a FlokaError naming where it came from. */
export function parseDigest(text: string, what = "digest"): Digest {
  if (!isDigest(text)) {
    throw new FlokaError(`invalid ${what} ${JSON.stringify(text)}: expected sha256:<64 hex digits>`);
  }
  return text;
}

/** The hex part of a digest (its file name in `blobs/sha256/`). */
export function digestHex(digest: Digest): string {
  return digest.slice("sha256:".length);
}

/** Hex encoding of digest bytes as a Digest. */
export function digestFromBytes(bytes: Uint8Array): Digest {
  return `sha256:${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** sha256 of `data`. */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Digest> {
  return digestFromBytes(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}
