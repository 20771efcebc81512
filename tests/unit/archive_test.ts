/**
 * The documents of `floka save` archives (manifest.json, index.json, repositories), the tar
 * writer, and reading archives back: names, symlinks, hard links, gzip, truncation. Also
 * the `--change` lines of `floka commit`. No root needed.
 */
import assert from "node:assert/strict";
import tar from "tar-stream";
import type { Digest } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import type { ImageManifest } from "../../lib/oci.ts";
import {
  blobPathOf,
  dockerManifestJson,
  loadedLines,
  normalizeName,
  ociIndexJson,
  repositoriesJson,
  type SaveImage,
  stageArchive,
  TarWriter,
} from "../../src/images/archive.ts";
import { parseChange } from "../../src/images/commit.ts";
import { applyMetadata, scratchState } from "../../src/build/state.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const hex = (c: string) => c.repeat(64);
const digest = (c: string) => `sha256:${hex(c)}` as Digest;

const manifest: ImageManifest = {
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: digest("c"), size: 10 },
  layers: [
    { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: digest("1"), size: 100 },
    { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: digest("2"), size: 200 },
  ],
};

const tagged: SaveImage = {
  manifestDigest: digest("m"),
  manifest,
  manifestSize: 321,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  names: ["docker.io/library/app:1", "localhost:5000/team/app:latest"],
};
const untagged: SaveImage = { ...tagged, manifestDigest: digest("n"), names: [] };

Deno.test("save: manifest.json lists Config, RepoTags in Docker's short form, and Layers as blob paths", () => {
  assert.deepEqual(dockerManifestJson([tagged, untagged]), [
    {
      Config: `blobs/sha256/${hex("c")}`,
      RepoTags: ["app:1", "localhost:5000/team/app:latest"],
      Layers: [`blobs/sha256/${hex("1")}`, `blobs/sha256/${hex("2")}`],
    },
    {
      Config: `blobs/sha256/${hex("c")}`,
      RepoTags: null,
      Layers: [`blobs/sha256/${hex("1")}`, `blobs/sha256/${hex("2")}`],
    },
  ]);
  assert.equal(blobPathOf(digest("a")), `blobs/sha256/${hex("a")}`);
});

Deno.test("save: index.json has one entry per name with containerd's and OCI's annotations", () => {
  const index = ociIndexJson([tagged, untagged]);
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.deepEqual(index.manifests, [
    {
      mediaType: tagged.mediaType,
      digest: digest("m"),
      size: 321,
      annotations: {
        "io.containerd.image.name": "docker.io/library/app:1",
        "org.opencontainers.image.ref.name": "1",
      },
    },
    {
      mediaType: tagged.mediaType,
      digest: digest("m"),
      size: 321,
      annotations: {
        "io.containerd.image.name": "localhost:5000/team/app:latest",
        "org.opencontainers.image.ref.name": "latest",
      },
    },
    { mediaType: tagged.mediaType, digest: digest("n"), size: 321 },
  ]);
});

Deno.test("save: repositories maps repository and tag to the top layer", () => {
  assert.deepEqual(repositoriesJson([tagged, untagged]), {
    app: { "1": hex("2") },
    "localhost:5000/team/app": { latest: hex("2") },
  });
});

Deno.test("load: archive names are made relative, and nothing may climb out", () => {
  assert.equal(normalizeName("./manifest.json"), "manifest.json");
  assert.equal(normalizeName("blobs//sha256/x/"), "blobs/sha256/x");
  assert.equal(normalizeName("/abs/./x"), "abs/x");
  assert.equal(normalizeName("a/../b"), "b");
  assert.equal(normalizeName("../etc/passwd"), null);
  assert.equal(normalizeName("a/../../x"), null);
});

Deno.test("load: loaded lines name tagged images, or give the ID of an untagged one", () => {
  assert.deepEqual(
    loadedLines([
      { id: digest("c"), manifest: manifest.config, names: ["docker.io/library/app:1"] },
      { id: digest("d"), manifest: manifest.config, names: [] },
    ]),
    ["Loaded image: app:1", `Loaded image ID: ${digest("d")}`],
  );
});

/** An archive written by TarWriter into memory. */
async function writeArchive(fill: (out: TarWriter) => Promise<void>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const out = new TarWriter({
    write(bytes) {
      chunks.push(bytes.slice());
      return Promise.resolve(bytes.length);
    },
  }, 1700000000);
  await fill(out);
  await out.end();
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

Deno.test("save: TarWriter writes a tar that tar-stream reads back, padded to 512-byte blocks", async () => {
  const bytes = await writeArchive(async (out) => {
    await out.directory("blobs");
    await out.bytes("index.json", encoder.encode('{"a":1}'));
  });
  assert.equal(bytes.length % 512, 0);
  const extract = tar.extract();
  const seen: string[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      let text = "";
      for await (const chunk of entry as AsyncIterable<Uint8Array>) text += decoder.decode(chunk);
      seen.push(`${entry.header.type} ${entry.header.name} ${text} ${entry.header.mtime?.getTime()}`);
    }
  })();
  extract.end(bytes);
  await done;
  assert.deepEqual(seen, ["directory blobs/  1700000000000", 'file index.json {"a":1} 1700000000000']);
});

Deno.test("load: stageArchive hashes every file and follows symlinks and hard links inside the archive", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pack = tar.pack();
    pack.entry({ name: "./abc.tar" }, "layer bytes");
    pack.entry({ name: "legacy/layer.tar", type: "symlink", linkname: "../abc.tar" });
    pack.entry({ name: "hard.tar", type: "link", linkname: "abc.tar" });
    pack.entry({ name: "escape", type: "symlink", linkname: "../../etc/passwd" });
    pack.finalize();
    const bytes: Uint8Array[] = [];
    for await (const chunk of pack as unknown as AsyncIterable<Uint8Array>) bytes.push(chunk);
    const gz = ReadableStream.from(bytes).pipeThrough(
      new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    );
    const staged = await stageArchive(gz, `${dir}/stage`);
    const expected = `sha256:${
      Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode("layer bytes"))))
        .map((b) => b.toString(16).padStart(2, "0")).join("")
    }`;
    assert.equal(staged.find("abc.tar")?.digest, expected);
    assert.equal(staged.find("legacy/layer.tar")?.digest, expected);
    assert.equal(staged.find("hard.tar")?.digest, expected);
    assert.equal(staged.find("escape"), null);
    assert.throws(
      () => staged.require("missing.json", "the config"),
      /the config "missing.json" is not in it/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("load: a truncated archive is a one-line error naming the entry", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bytes = await writeArchive(async (out) => {
      await out.bytes("big", new Uint8Array(5000));
    });
    await assert.rejects(
      () => stageArchive(ReadableStream.from([bytes.subarray(0, 2000)]), `${dir}/stage`),
      (err: Error) => err instanceof FlokaError && /truncated in "big"/.test(err.message),
    );
    await assert.rejects(
      () => stageArchive(ReadableStream.from([encoder.encode("not a tar at all")]), `${dir}/stage2`),
      FlokaError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("commit: --change lines are Flokafile instructions, limited to what docker commit allows", () => {
  let state = scratchState();
  state = applyMetadata(state, parseChange('CMD ["echo", "hi"]', state.config), { cmdSet: true });
  assert.deepEqual(state.config.config?.Cmd, ["echo", "hi"]);
  state = applyMetadata(state, parseChange("ENV A=1", state.config), { cmdSet: true });
  state = applyMetadata(state, parseChange("LABEL x=$A", state.config), { cmdSet: true });
  assert.deepEqual(state.config.config?.Labels, { x: "1" });
  state = applyMetadata(state, parseChange("EXPOSE 80/tcp", state.config), { cmdSet: true });
  assert.deepEqual(state.config.config?.ExposedPorts, { "80/tcp": {} });
  state = applyMetadata(state, parseChange("workdir /srv", state.config), { cmdSet: true });
  assert.equal(state.config.config?.WorkingDir, "/srv");
  assert.throws(() => parseChange("RUN echo no", state.config), /run is not a valid change command/);
  assert.throws(() => parseChange("COPY a b", state.config), /copy is not a valid change command/);
  assert.throws(() => parseChange("FROM busybox", state.config), /exactly one instruction/);
});
