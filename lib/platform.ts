/**
 * Platforms (`os/architecture[/variant]`) and choosing, from an image index (a Docker
 * manifest list), the one manifest to run on a platform. The rules follow containerd's
 * platforms matcher: names are normalized first (`x86_64` is `amd64`, `aarch64` is
 * `arm64`, `armhf` is `arm/v7`), os and architecture must then be equal, and a variant
 * matches itself or, for CPUs whose variants are ordered levels (arm v5 < v6 < v7 < v8,
 * amd64 v1 < v2 < v3 < v4), an older level the CPU can still run.
 */
import { FlokaError } from "./errors.ts";
import type { Descriptor, ImageIndex, Platform } from "./oci.ts";

/**
 * The variant a platform that names none means, and the lowest level of the ladder. An
 * arm64 entry without a variant is v8 and a 32-bit arm one is v7, as containerd assumes.
 */
const VARIANT_LEVELS: Record<string, { implied: string; lowest: number }> = {
  arm: { implied: "v7", lowest: 5 },
  arm64: { implied: "v8", lowest: 8 },
  amd64: { implied: "v1", lowest: 1 },
};

/** Annotation BuildKit puts on the index entries that hold provenance/SBOM attestations. */
const REFERENCE_TYPE = "vnd.docker.reference.type";
const ATTESTATION = "attestation-manifest";

const PLATFORM_PART = /^[A-Za-z0-9_.-]+$/;

/** `platform` with lowercase names and the aliases containerd knows replaced. */
function normalize(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase() || undefined;
  switch (architecture) {
    case "i386":
      architecture = "386";
      variant = undefined;
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      architecture = "amd64";
      // v1 is the baseline every amd64 CPU runs; it is the same as no variant.
      if (variant === "v1") variant = undefined;
      break;
    case "aarch64":
    case "arm64":
      architecture = "arm64";
      if (variant === "8" || variant === "v8.0") variant = "v8";
      else if (variant === "9" || variant === "v9.0") variant = "v9";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant !== undefined && /^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return variant === undefined ? { os, architecture } : { os, architecture, variant };
}

/** The platform Floka runs on. Containers share the host kernel, so the os is linux. */
export function hostPlatform(): Platform {
  const host = normalize({ os: "linux", architecture: Deno.build.arch });
  // Docker reports arm64 hosts as linux/arm64/v8, so spell the implied variant out.
  if (host.architecture === "arm64" && host.variant === undefined) host.variant = "v8";
  return host;
}

/** Reads `os/architecture[/variant]` as `--platform` takes it, normalizing aliases. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || !parts.every((part) => PLATFORM_PART.test(part))) {
    throw new FlokaError(
      `invalid platform ${
        JSON.stringify(text)
      }: expected os/architecture[/variant], such as linux/amd64 or linux/arm/v7`,
    );
  }
  const [os, architecture, variant] = parts;
  return normalize(variant === undefined ? { os, architecture } : { os, architecture, variant });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** The number of a `v<N>` variant, or null for variants that are not ladder levels. */
function level(variant: string): number | null {
  const match = /^v([0-9]+)$/.exec(variant);
  return match ? Number(match[1]) : null;
}

/**
 * How well `have` (an index entry) suits `want`, lower is better, or null when it cannot
 * run there. Both are normalized. An entry naming the wanted variant beats one that leaves
 * its variant implied; older ladder levels come after both, nearest first.
 */
function matchRank(want: Platform, have: Platform): number | null {
  if (want.os !== have.os || want.architecture !== have.architecture) return null;
  const levels = VARIANT_LEVELS[have.architecture];
  const wanted = want.variant ?? levels?.implied;
  const offered = have.variant ?? levels?.implied;
  const implied = have.variant === undefined ? 1 : 0;
  if (wanted === offered) return implied;
  // An entry that names no variant, on a CPU without variant levels, is taken to fit any.
  if (offered === undefined) return 1;
  if (levels === undefined || wanted === undefined) return null;
  const w = level(wanted);
  const o = level(offered);
  if (w === null || o === null || o > w || o < levels.lowest) return null;
  return 2 * (w - o) + implied;
}

/** Entries that are no image at all: BuildKit's attestations, filed under unknown/unknown. */
function isAttestation(entry: Descriptor): boolean {
  return entry.annotations?.[REFERENCE_TYPE] === ATTESTATION || entry.platform?.os === "unknown" ||
    entry.platform?.architecture === "unknown";
}

/**
 * The manifest in `index` to run on `want`: the best match by the rules above, the first
 * one on ties. Entries without a platform are taken only when nothing else matches, since
 * nothing says what they hold.
 */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor {
  const wanted = normalize(want);
  let best: Descriptor | undefined;
  let bestRank = Infinity;
  let unlabelled: Descriptor | undefined;
  const available: string[] = [];
  for (const entry of index.manifests ?? []) {
    if (isAttestation(entry)) continue;
    if (entry.platform === undefined) {
      unlabelled ??= entry;
      continue;
    }
    const shown = formatPlatform(entry.platform);
    if (!available.includes(shown)) available.push(shown);
    const rank = matchRank(wanted, normalize(entry.platform));
    if (rank !== null && rank < bestRank) {
      best = entry;
      bestRank = rank;
    }
  }
  const chosen = best ?? unlabelled;
  if (chosen === undefined) {
    throw new FlokaError(
      `no matching manifest for ${formatPlatform(wanted)} in the manifest list entries (available: ${
        available.length > 0 ? available.join(", ") : "none"
      })`,
    );
  }
  return chosen;
}
