import assert from "node:assert/strict";
import { compressionOf, fileCompression, layerFileCompression } from "../../lib/compression.ts";
import { FlokaError } from "../../lib/errors.ts";

Deno.test("compressionOf tells gzip, zstd, xz and bzip2 by their magic numbers", () => {
  assert.equal(compressionOf(new Uint8Array([0x1f, 0x8b, 8])), "gzip");
  assert.equal(compressionOf(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0])), "zstd");
  assert.equal(compressionOf(new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), "xz");
  assert.equal(compressionOf(new TextEncoder().encode("BZh91AY")), "bzip2");
  assert.equal(compressionOf(new TextEncoder().encode("etc/passwd\0")), "none");
  assert.equal(compressionOf(new Uint8Array([0x1f])), "none", "too short to tell");
  assert.equal(compressionOf(new Uint8Array([0xfd, 0x37, 0x7a])), "none");
});

Deno.test("fileCompression reads a file's first bytes; layers refuse xz and bzip2", () => {
  const path = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(path, new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2]));
    assert.equal(fileCompression(path), "xz");
    assert.throws(
      () => layerFileCompression(path),
      (e: Error) => e instanceof FlokaError && /xz/.test(e.message),
    );
    Deno.writeFileSync(path, new Uint8Array([0x1f, 0x8b]));
    assert.equal(layerFileCompression(path), "gzip");
    Deno.writeFileSync(path, new Uint8Array(0));
    assert.equal(layerFileCompression(path), "none");
  } finally {
    Deno.removeSync(path);
  }
});
