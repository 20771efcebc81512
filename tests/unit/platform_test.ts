import assert from "node:assert/strict";
import type { Digest } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import { type Descriptor, type ImageIndex, MediaType, type Platform } from "../../lib/oci.ts";
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from "../../lib/platform.ts";

function digest(n: number): Digest {
  return `sha256:${n.toString(16).padStart(2, "0").repeat(32)}`;
}

function entry(n: number, platform?: Platform, annotations?: Record<string, string>): Descriptor {
  const d: Descriptor = { mediaType: MediaType.OciManifest, digest: digest(n), size: 1000 + n };
  if (platform) d.platform = platform;
  if (annotations) d.annotations = annotations;
  return d;
}

function attestation(n: number, of: number): Descriptor {
  return entry(n, { os: "unknown", architecture: "unknown" }, {
    "vnd.docker.reference.digest": digest(of),
    "vnd.docker.reference.type": "attestation-manifest",
  });
}

function index(...manifests: Descriptor[]): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
}

/** Shaped like a BuildKit-built official image on Docker Hub: images, then attestations. */
const HUB = index(
  entry(1, { os: "linux", architecture: "amd64" }),
  entry(2, { os: "linux", architecture: "arm", variant: "v6" }),
  entry(3, { os: "linux", architecture: "arm", variant: "v7" }),
  entry(4, { os: "linux", architecture: "arm64", variant: "v8" }),
  entry(5, { os: "linux", architecture: "ppc64le" }),
  entry(6, { os: "linux", architecture: "s390x" }),
  attestation(11, 1),
  attestation(12, 2),
  attestation(13, 3),
  attestation(14, 4),
  attestation(15, 5),
  attestation(16, 6),
);

/** A Docker schema 2 manifest list, as older pushes to Docker Hub produce. */
const MANIFEST_LIST: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifestList,
  manifests: [
    { ...entry(21, { os: "linux", architecture: "amd64" }), mediaType: MediaType.DockerManifest },
    {
      ...entry(22, { os: "linux", architecture: "arm", variant: "v5" }),
      mediaType: MediaType.DockerManifest,
    },
    { ...entry(23, { os: "linux", architecture: "arm64" }), mediaType: MediaType.DockerManifest },
    { ...entry(24, { os: "linux", architecture: "386" }), mediaType: MediaType.DockerManifest },
    {
      ...entry(25, { os: "windows", architecture: "amd64", "os.version": "10.0.17763.1879" }),
      mediaType: MediaType.DockerManifest,
    },
  ],
};

function pick(idx: ImageIndex, platform: string | Platform): Digest {
  return selectManifest(idx, typeof platform === "string" ? parsePlatform(platform) : platform).digest;
}

function assertNoMatch(idx: ImageIndex, want: Platform, message: string): void {
  assert.throws(
    () => selectManifest(idx, want),
    (err: unknown) => err instanceof FlokaError && err.message === message,
  );
}

Deno.test("hostPlatform: linux on Deno's architecture, with arm64's v8 spelled out", () => {
  const host = hostPlatform();
  assert.equal(host.os, "linux");
  if (Deno.build.arch === "x86_64") assert.deepEqual(host, { os: "linux", architecture: "amd64" });
  if (Deno.build.arch === "aarch64") {
    assert.deepEqual(host, { os: "linux", architecture: "arm64", variant: "v8" });
  }
});

Deno.test("hostPlatform: the host's entry is chosen from a Docker Hub index", () => {
  const want = Deno.build.arch === "aarch64" ? digest(4) : digest(1);
  assert.equal(selectManifest(HUB, hostPlatform()).digest, want);
});

Deno.test("parsePlatform: os/arch and os/arch/variant", () => {
  assert.deepEqual(parsePlatform("linux/amd64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(parsePlatform("linux/arm/v7"), { os: "linux", architecture: "arm", variant: "v7" });
  assert.deepEqual(parsePlatform("linux/s390x"), { os: "linux", architecture: "s390x" });
  assert.equal("variant" in parsePlatform("linux/amd64"), false);
});

Deno.test("parsePlatform: architecture aliases and case are normalized", () => {
  assert.deepEqual(parsePlatform("linux/x86_64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/x86-64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("Linux/AMD64"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/amd64/v1"), { os: "linux", architecture: "amd64" });
  assert.deepEqual(parsePlatform("linux/aarch64"), { os: "linux", architecture: "arm64" });
  assert.deepEqual(parsePlatform("linux/arm64/8"), { os: "linux", architecture: "arm64", variant: "v8" });
  assert.deepEqual(parsePlatform("linux/armhf"), { os: "linux", architecture: "arm", variant: "v7" });
  assert.deepEqual(parsePlatform("linux/armel"), { os: "linux", architecture: "arm", variant: "v6" });
  assert.deepEqual(parsePlatform("linux/arm/6"), { os: "linux", architecture: "arm", variant: "v6" });
  assert.deepEqual(parsePlatform("linux/i386"), { os: "linux", architecture: "386" });
});

Deno.test("parsePlatform: malformed platforms are FlokaErrors", () => {
  for (
    const bad of [
      "",
      "linux",
      "amd64",
      "linux/",
      "/amd64",
      "linux//v7",
      "linux/arm/v7/x",
      "linux/amd 64",
      "linux/arm/",
    ]
  ) {
    assert.throws(
      () => parsePlatform(bad),
      (err: unknown) =>
        err instanceof FlokaError &&
        err.message.startsWith(`invalid platform ${JSON.stringify(bad)}: expected os/architecture[/variant]`),
      JSON.stringify(bad),
    );
  }
});

Deno.test("formatPlatform: with and without a variant, round-tripping parsePlatform", () => {
  assert.equal(formatPlatform({ os: "linux", architecture: "arm64", variant: "v8" }), "linux/arm64/v8");
  assert.equal(formatPlatform({ os: "linux", architecture: "amd64" }), "linux/amd64");
  assert.equal(formatPlatform({ os: "linux", architecture: "amd64", variant: undefined }), "linux/amd64");
  assert.equal(formatPlatform({ os: "linux", architecture: "amd64", variant: "" }), "linux/amd64");
  for (
    const text of [
      "linux/amd64",
      "linux/arm64/v8",
      "linux/arm/v7",
      "linux/arm/v6",
      "linux/ppc64le",
      "windows/amd64",
    ]
  ) {
    assert.equal(formatPlatform(parsePlatform(text)), text);
  }
  assert.equal(formatPlatform(parsePlatform("linux/aarch64")), "linux/arm64");
  assert.equal(formatPlatform(parsePlatform("linux/armhf")), "linux/arm/v7");
});

Deno.test("selectManifest: each platform of a Docker Hub index gets its own entry", () => {
  assert.equal(pick(HUB, "linux/amd64"), digest(1));
  assert.equal(pick(HUB, "linux/arm/v6"), digest(2));
  assert.equal(pick(HUB, "linux/arm/v7"), digest(3));
  assert.equal(pick(HUB, "linux/arm64/v8"), digest(4));
  assert.equal(pick(HUB, "linux/ppc64le"), digest(5));
  assert.equal(pick(HUB, "linux/s390x"), digest(6));
});

Deno.test("selectManifest: architecture aliases in the request", () => {
  assert.equal(pick(HUB, { os: "linux", architecture: "x86_64" }), digest(1));
  assert.equal(pick(HUB, { os: "linux", architecture: "x86-64" }), digest(1));
  assert.equal(pick(HUB, { os: "linux", architecture: "aarch64" }), digest(4));
  assert.equal(pick(HUB, { os: "linux", architecture: "armhf" }), digest(3));
  assert.equal(pick(HUB, { os: "linux", architecture: "armel" }), digest(2));
  assert.equal(pick(HUB, { os: "Linux", architecture: "AMD64" }), digest(1));
});

Deno.test("selectManifest: architecture aliases in the index", () => {
  const idx = index(
    entry(1, { os: "linux", architecture: "x86_64" }),
    entry(2, { os: "linux", architecture: "aarch64" }),
    entry(3, { os: "linux", architecture: "armhf" }),
    entry(4, { os: "linux", architecture: "armel" }),
  );
  assert.equal(pick(idx, "linux/amd64"), digest(1));
  assert.equal(pick(idx, "linux/arm64/v8"), digest(2));
  assert.equal(pick(idx, "linux/arm/v7"), digest(3));
  assert.equal(pick(idx, "linux/arm/v6"), digest(4));
});

Deno.test("selectManifest: an arm64 entry without a variant matches v8, and v8 matches a bare request", () => {
  assert.equal(pick(MANIFEST_LIST, "linux/arm64/v8"), digest(23));
  assert.equal(pick(MANIFEST_LIST, "linux/arm64"), digest(23));
  assert.equal(pick(HUB, "linux/arm64"), digest(4));
  assert.equal(pick(HUB, { os: "linux", architecture: "arm64", variant: "8" }), digest(4));
});

Deno.test("selectManifest: the exact variant beats an entry that leaves it implied, wherever it is", () => {
  const bare = { os: "linux", architecture: "arm64" };
  const v8 = { os: "linux", architecture: "arm64", variant: "v8" };
  assert.equal(pick(index(entry(1, bare), entry(2, v8)), "linux/arm64/v8"), digest(2));
  assert.equal(pick(index(entry(2, v8), entry(1, bare)), "linux/arm64/v8"), digest(2));
  assert.equal(pick(index(entry(1, bare), entry(2, v8)), "linux/arm64"), digest(2));
});

Deno.test("selectManifest: arm64 v9 is not offered to a v8 host", () => {
  const idx = index(entry(1, { os: "linux", architecture: "arm64", variant: "v9" }));
  assertNoMatch(
    idx,
    parsePlatform("linux/arm64/v8"),
    "no matching manifest for linux/arm64/v8 in the manifest list entries (available: linux/arm64/v9)",
  );
  assert.equal(pick(idx, "linux/arm64/v9"), digest(1));
});

Deno.test("selectManifest: 32-bit arm takes the nearest older variant, never a newer one", () => {
  // Only v5 is published: v7 and v6 CPUs run it.
  assert.equal(pick(MANIFEST_LIST, "linux/arm/v7"), digest(22));
  assert.equal(pick(MANIFEST_LIST, "linux/arm/v6"), digest(22));
  // v6 and v5 on offer: a v7 CPU gets v6.
  const idx = index(
    entry(1, { os: "linux", architecture: "arm", variant: "v5" }),
    entry(2, { os: "linux", architecture: "arm", variant: "v6" }),
  );
  assert.equal(pick(idx, "linux/arm/v7"), digest(2));
  // A v6 CPU cannot run v7.
  assertNoMatch(
    index(entry(3, { os: "linux", architecture: "arm", variant: "v7" })),
    parsePlatform("linux/arm/v6"),
    "no matching manifest for linux/arm/v6 in the manifest list entries (available: linux/arm/v7)",
  );
});

Deno.test("selectManifest: arm without a variant means v7", () => {
  assert.equal(pick(HUB, { os: "linux", architecture: "arm" }), digest(3));
  const bare = index(entry(1, { os: "linux", architecture: "arm" }));
  assert.equal(pick(bare, "linux/arm/v7"), digest(1));
  assertNoMatch(
    bare,
    parsePlatform("linux/arm/v6"),
    "no matching manifest for linux/arm/v6 in the manifest list entries (available: linux/arm)",
  );
});

Deno.test("selectManifest: amd64 microarchitecture levels", () => {
  const idx = index(
    entry(1, { os: "linux", architecture: "amd64" }),
    entry(2, { os: "linux", architecture: "amd64", variant: "v2" }),
    entry(3, { os: "linux", architecture: "amd64", variant: "v3" }),
  );
  assert.equal(pick(idx, "linux/amd64"), digest(1));
  assert.equal(pick(idx, "linux/amd64/v2"), digest(2));
  assert.equal(pick(idx, "linux/amd64/v3"), digest(3));
  assert.equal(pick(idx, "linux/amd64/v4"), digest(3));
  // A baseline CPU never gets a v3 build.
  assertNoMatch(
    index(entry(3, { os: "linux", architecture: "amd64", variant: "v3" })),
    parsePlatform("linux/amd64"),
    "no matching manifest for linux/amd64 in the manifest list entries (available: linux/amd64/v3)",
  );
});

Deno.test("selectManifest: a variant the index does not name falls back to the entry without one", () => {
  const idx = index(entry(1, { os: "linux", architecture: "riscv64" }));
  assert.equal(pick(idx, "linux/riscv64/rva22u64"), digest(1));
  const other = index(entry(2, { os: "linux", architecture: "riscv64", variant: "rva20u64" }));
  assertNoMatch(
    other,
    parsePlatform("linux/riscv64/rva22u64"),
    "no matching manifest for linux/riscv64/rva22u64 in the manifest list entries (available: linux/riscv64/rva20u64)",
  );
  assertNoMatch(
    other,
    parsePlatform("linux/riscv64"),
    "no matching manifest for linux/riscv64 in the manifest list entries (available: linux/riscv64/rva20u64)",
  );
});

Deno.test("selectManifest: os and architecture must both match", () => {
  assert.equal(pick(MANIFEST_LIST, "linux/amd64"), digest(21));
  assert.equal(pick(MANIFEST_LIST, "windows/amd64"), digest(25));
  assert.equal(pick(MANIFEST_LIST, "linux/386"), digest(24));
  // An amd64 host is not offered the 386 build by this matcher.
  assertNoMatch(
    index(entry(24, { os: "linux", architecture: "386" })),
    parsePlatform("linux/amd64"),
    "no matching manifest for linux/amd64 in the manifest list entries (available: linux/386)",
  );
  // An arm64 host is not offered 32-bit arm.
  assertNoMatch(
    index(entry(3, { os: "linux", architecture: "arm", variant: "v7" })),
    parsePlatform("linux/arm64/v8"),
    "no matching manifest for linux/arm64/v8 in the manifest list entries (available: linux/arm/v7)",
  );
});

Deno.test("selectManifest: a Docker manifest list returns its Docker manifest descriptor", () => {
  const chosen = selectManifest(MANIFEST_LIST, parsePlatform("linux/amd64"));
  assert.equal(chosen, MANIFEST_LIST.manifests[0]);
  assert.equal(chosen.mediaType, MediaType.DockerManifest);
});

Deno.test("selectManifest: attestations are never chosen, whatever is asked for", () => {
  assertNoMatch(
    HUB,
    { os: "unknown", architecture: "unknown" },
    "no matching manifest for unknown/unknown in the manifest list entries (available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, linux/ppc64le, linux/s390x)",
  );
  // Marked by annotation only, with a real-looking platform.
  const tricky = index(
    entry(9, { os: "linux", architecture: "amd64" }, { "vnd.docker.reference.type": "attestation-manifest" }),
    entry(1, { os: "linux", architecture: "amd64" }),
  );
  assert.equal(pick(tricky, "linux/amd64"), digest(1));
  // Even without a platform, an attestation is no fallback.
  const onlyAttestations = index(
    attestation(11, 1),
    entry(12, undefined, { "vnd.docker.reference.type": "attestation-manifest" }),
  );
  assertNoMatch(
    onlyAttestations,
    parsePlatform("linux/amd64"),
    "no matching manifest for linux/amd64 in the manifest list entries (available: none)",
  );
});

Deno.test("selectManifest: the error lists the real platforms, not attestations", () => {
  const idx = index(
    entry(4, { os: "linux", architecture: "arm64", variant: "v8" }),
    entry(6, { os: "linux", architecture: "s390x" }),
    attestation(14, 4),
    attestation(16, 6),
  );
  assertNoMatch(
    idx,
    parsePlatform("linux/amd64"),
    "no matching manifest for linux/amd64 in the manifest list entries (available: linux/arm64/v8, linux/s390x)",
  );
});

Deno.test("selectManifest: entries without a platform are only a last resort", () => {
  const platformless = entry(7);
  assert.equal(pick(index(platformless, ...HUB.manifests), "linux/amd64"), digest(1));
  assert.equal(
    pick(index(platformless, entry(6, { os: "linux", architecture: "s390x" })), "linux/amd64"),
    digest(7),
  );
  assert.equal(pick(index(entry(7), entry(8)), "linux/arm64/v8"), digest(7));
});

Deno.test("selectManifest: ties go to the first entry, and an empty index matches nothing", () => {
  const idx = index(
    entry(1, { os: "linux", architecture: "amd64" }),
    entry(2, { os: "linux", architecture: "amd64" }),
  );
  assert.equal(pick(idx, "linux/amd64"), digest(1));
  assertNoMatch(
    index(),
    parsePlatform("linux/amd64"),
    "no matching manifest for linux/amd64 in the manifest list entries (available: none)",
  );
});

Deno.test("selectManifest: the request is not modified", () => {
  const want: Platform = { os: "Linux", architecture: "aarch64" };
  selectManifest(HUB, want);
  assert.deepEqual(want, { os: "Linux", architecture: "aarch64" });
});
