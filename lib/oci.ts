/**
 * The OCI image and Docker schema 2 documents Floka reads and writes: media types,
 * descriptors, indexes (manifest lists), manifests and image configs, as the OCI image
 * spec and Docker's registry spec define them.
 */
import { type Digest, isDigest } from "./digest.ts";
import { FlokaError } from "./errors.ts";

export const MediaType = {
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciLayerNondistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  DockerLayerForeignGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const;

/** Media types of documents that list manifests for several platforms. */
export const INDEX_TYPES: readonly string[] = [MediaType.OciIndex, MediaType.DockerManifestList];
/** Media types of single-platform image manifests. */
export const MANIFEST_TYPES: readonly string[] = [MediaType.OciManifest, MediaType.DockerManifest];

/** How a layer blob is compressed, from its media type; null for a type that is not a layer. */
export function layerCompression(mediaType: string): "gzip" | "zstd" | "none" | null {
  if (mediaType.endsWith("+gzip") || mediaType.endsWith(".tar.gzip")) return "gzip";
  if (mediaType.endsWith("+zstd")) return "zstd";
  if (mediaType.endsWith(".tar")) return "none";
  return null;
}

/** The OCI media type of a layer blob compressed so (the inverse of layerCompression). */
export const LAYER_MEDIA_TYPES = {
  gzip: MediaType.OciLayerGzip,
  zstd: MediaType.OciLayerZstd,
  none: MediaType.OciLayer,
} as const;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The image config (image-spec config.md); `config` is what containers run with. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, Record<string, never>>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, Record<string, never>>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
    /** Docker's extensions, which `docker build` writes and OCI tools carry along. */
    Healthcheck?: HealthConfig;
    OnBuild?: string[] | null;
    Shell?: string[];
  };
  rootfs?: { type: "layers"; diff_ids: Digest[] };
  history?: {
    created?: string;
    created_by?: string;
    author?: string;
    comment?: string;
    empty_layer?: boolean;
  }[];
}

/** A HEALTHCHECK as Docker stores it; durations in nanoseconds. `["NONE"]` turns one off. */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

// ---------------------------------------------------------------------------------------
// Checking documents from a registry: `JSON.parse` gives any shape, and code that trusts a
// cast crashes on the first field of the wrong type. These accept what Go's encoding/json
// accepts into Docker's types (unknown fields, `null` for an optional field) and refuse,
// with a FlokaError naming the field, what it would refuse.

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks one document; `what` names it in errors ("the manifest of x"). With `dropNull`, an
 * optional field that is null is removed, as Go reads it as absent (a descriptor's
 * `"platform": null` is no platform), so that the result has the declared type.
 */
class DocumentCheck {
  constructor(readonly what: string, readonly dropNull: boolean) {}

  fail(path: string, expected: string): never {
    throw new FlokaError(`${this.what} is invalid: ${path} must be ${expected}`);
  }

  object(value: unknown, path: string): JsonObject {
    return isObject(value) ? value : this.fail(path, "an object");
  }

  /** Optional fields may be absent or null (Go leaves them zero). */
  optional(doc: JsonObject, key: string, path: string, check: (value: unknown, path: string) => void): void {
    if (doc[key] === null && this.dropNull) delete doc[key];
    if (doc[key] !== undefined && doc[key] !== null) check(doc[key], path ? `${path}.${key}` : key);
  }

  string(value: unknown, path: string): void {
    if (typeof value !== "string") this.fail(path, "a string");
  }

  number(value: unknown, path: string): void {
    if (typeof value !== "number" || !Number.isFinite(value)) this.fail(path, "a number");
  }

  strings(value: unknown, path: string): void {
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      this.fail(path, "an array of strings");
    }
  }

  stringMap(value: unknown, path: string): void {
    if (!isObject(value) || !Object.values(value).every((v) => typeof v === "string")) {
      this.fail(path, "an object of strings");
    }
  }

  objectMap(value: unknown, path: string): void {
    if (!isObject(value) || !Object.values(value).every((v) => v === null || isObject(v))) {
      this.fail(path, "an object of objects");
    }
  }

  digest(value: unknown, path: string): void {
    if (typeof value !== "string" || !isDigest(value)) this.fail(path, "a sha256:<64 hex digits> digest");
  }

  schemaVersion(doc: JsonObject): void {
    if (doc.schemaVersion !== 2) this.fail("schemaVersion", "2");
  }

  array(value: unknown, path: string, each: (item: unknown, path: string) => void): void {
    if (!Array.isArray(value)) this.fail(path, "an array");
    value.forEach((item, i) => each(item, `${path}[${i}]`));
  }

  descriptor(value: unknown, path: string): void {
    const d = this.object(value, path);
    this.string(d.mediaType, `${path}.mediaType`);
    this.digest(d.digest, `${path}.digest`);
    if (!Number.isSafeInteger(d.size) || (d.size as number) < 0) this.fail(`${path}.size`, "a size in bytes");
    this.optional(d, "urls", path, (v, p) => this.strings(v, p));
    this.optional(d, "annotations", path, (v, p) => this.stringMap(v, p));
    this.optional(d, "platform", path, (v, p) => {
      const platform = this.object(v, p);
      this.string(platform.architecture, `${p}.architecture`);
      this.string(platform.os, `${p}.os`);
      this.optional(platform, "variant", p, (x, q) => this.string(x, q));
      this.optional(platform, "os.version", p, (x, q) => this.string(x, q));
      this.optional(platform, "os.features", p, (x, q) => this.strings(x, q));
    });
  }
}

/** `value` (parsed JSON) as an image index, or a FlokaError naming the first bad field. */
export function checkImageIndex(value: unknown, what: string): ImageIndex {
  const c = new DocumentCheck(what, true);
  const doc = c.object(value, "the document");
  c.schemaVersion(doc);
  c.optional(doc, "mediaType", "", (v, p) => c.string(v, p));
  c.array(doc.manifests, "manifests", (item, path) => c.descriptor(item, path));
  c.optional(doc, "annotations", "", (v, p) => c.stringMap(v, p));
  return doc as unknown as ImageIndex;
}

/** `value` (parsed JSON) as an image manifest, or a FlokaError naming the first bad field. */
export function checkImageManifest(value: unknown, what: string): ImageManifest {
  const c = new DocumentCheck(what, true);
  const doc = c.object(value, "the document");
  c.schemaVersion(doc);
  c.optional(doc, "mediaType", "", (v, p) => c.string(v, p));
  c.descriptor(doc.config, "config");
  c.array(doc.layers, "layers", (item, path) => c.descriptor(item, path));
  c.optional(doc, "annotations", "", (v, p) => c.stringMap(v, p));
  return doc as unknown as ImageManifest;
}

/** `value` (parsed JSON) as an image config, or a FlokaError naming the first bad field. */
export function checkImageConfig(value: unknown, what: string): ImageConfig {
  // Docker writes `"Cmd": null`, `"Labels": null`...: kept as they are, as before.
  const c = new DocumentCheck(what, false);
  const doc = c.object(value, "the document");
  const string = (v: unknown, p: string) => c.string(v, p);
  const strings = (v: unknown, p: string) => c.strings(v, p);
  for (const key of ["created", "author", "architecture", "os", "variant"]) c.optional(doc, key, "", string);
  c.optional(doc, "config", "", (v, p) => {
    const config = c.object(v, p);
    for (const key of ["User", "WorkingDir", "StopSignal"]) c.optional(config, key, "config", string);
    for (const key of ["Env", "Entrypoint", "Cmd", "OnBuild", "Shell"]) {
      c.optional(config, key, "config", strings);
    }
    c.optional(config, "ExposedPorts", "config", (x, q) => c.objectMap(x, q));
    c.optional(config, "Volumes", "config", (x, q) => c.objectMap(x, q));
    c.optional(config, "Labels", "config", (x, q) => c.stringMap(x, q));
    c.optional(config, "Healthcheck", "config", (x, q) => {
      const health = c.object(x, q);
      c.optional(health, "Test", q, strings);
      for (const key of ["Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"]) {
        c.optional(health, key, q, (y, r) => c.number(y, r));
      }
    });
  });
  c.optional(doc, "rootfs", "", (v, p) => {
    const rootfs = c.object(v, p);
    c.string(rootfs.type, "rootfs.type");
    c.optional(rootfs, "diff_ids", "rootfs", (x, q) => c.array(x, q, (y, r) => c.digest(y, r)));
  });
  c.optional(doc, "history", "", (v, p) =>
    c.array(v, p, (item, path) => {
      const entry = c.object(item, path);
      for (const key of ["created", "created_by", "author", "comment"]) c.optional(entry, key, path, string);
      c.optional(entry, "empty_layer", path, (x, q) => {
        if (typeof x !== "boolean") c.fail(q, "a boolean");
      });
    }));
  return doc as unknown as ImageConfig;
}
