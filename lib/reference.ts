/**
 * Docker image references: `[registry/]repository[:tag][@digest]`, read with the grammar of
 * Docker's distribution/reference package and normalized the way `docker pull` normalizes
 * them. A familiar name such as `ubuntu` is shorthand for the canonical
 * `docker.io/library/ubuntu:latest`: Docker Hub is the default registry, its official images
 * live under `library/`, and `latest` is the tag when neither a tag nor a digest is given.
 *
 * The first path component names a registry only when it looks like a host (it contains `.`
 * or `:`, or is `localhost`) or has uppercase letters; otherwise it is a Docker Hub
 * namespace. So `user/app` is on Docker Hub while `ghcr.io/o/r` and `host:5000/app` are not.
 */
import { type Digest, isDigest } from "./digest.ts";
import { FlokaError } from "./errors.ts";

export interface Reference {
  /** `host[:port]`: "docker.io", "ghcr.io", "localhost:5000", "[::1]:5000". */
  registry: string;
  /** The slash-separated name on the registry: "library/ubuntu", "user/app". */
  repository: string;
  tag?: string;
  digest?: Digest;
}

const DOCKER_HUB = "docker.io";
/** Docker Hub's old name ("the Docker Index"), still accepted as a synonym. */
const LEGACY_DOCKER_HUB = "index.docker.io";
/** Where Docker Hub's registry API actually answers; docker.io itself does not serve /v2/. */
const DOCKER_HUB_ENDPOINT = "registry-1.docker.io";
const OFFICIAL_PREFIX = "library/";
const DEFAULT_TAG = "latest";
/** Docker's limit on the full name, registry included. */
const NAME_MAX = 255;

/** Lowercase alphanumerics joined by one `.`, one or two `_`, or any number of `-`. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DNS_LABEL = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
/** A DNS name or decimal IPv4 address, or an IPv6 address in brackets; no port. */
const HOST = new RegExp(`^(?:${DNS_LABEL}(?:\\.${DNS_LABEL})*|\\[[a-fA-F0-9:]+\\])$`);
const PORT = /^[0-9]+$/;
/** A bare image ID; Docker refuses it as a name so that it is never mistaken for one. */
const IMAGE_ID = /^[a-f0-9]{64}$/;
const IPV4_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const LOOPBACK_V4 = new RegExp(`^127(?:\\.${IPV4_OCTET}){3}$`);

function invalid(text: string, why: string): FlokaError {
  return new FlokaError(`invalid reference format: ${JSON.stringify(text)}: ${why}`);
}

/**
 * Splits `host[:port]`; the host keeps its brackets and the port is not checked. null when
 * an IPv6 literal's brackets are not closed or are followed by something other than a port.
 */
function splitHostPort(registry: string): { host: string; port?: string } | null {
  if (registry.startsWith("[")) {
    const close = registry.indexOf("]");
    if (close < 0) return null;
    const host = registry.slice(0, close + 1);
    const rest = registry.slice(close + 1);
    if (rest === "") return { host };
    return rest.startsWith(":") ? { host, port: rest.slice(1) } : null;
  }
  const colon = registry.indexOf(":");
  return colon < 0 ? { host: registry } : { host: registry.slice(0, colon), port: registry.slice(colon + 1) };
}

/** The registry named by the first component, or null when it is a Docker Hub namespace. */
function registryPart(first: string): string | null {
  const hostLike = first === "localhost" || first.includes(".") || first.includes(":");
  // Docker also takes an uppercase first component for a host, since a namespace cannot
  // have one; `MyUser/app` thus fails at the registry rather than as a lowercase error.
  return hostLike || first !== first.toLowerCase() ? first : null;
}

/**
 * Reads `text` as `docker pull` would and returns it normalized (registry filled in,
 * `library/` added on Docker Hub, `latest` when there is neither tag nor digest); anything
 * outside Docker's grammar is a FlokaError starting "invalid reference format".
 */
export function parseReference(text: string): Reference {
  if (text === "") {
    throw new FlokaError("invalid reference format: repository name must have at least one component");
  }
  if (IMAGE_ID.test(text)) {
    throw new FlokaError(
      `invalid reference format: repository name (${text}) cannot be a 64-byte hexadecimal string`,
    );
  }

  // Neither names nor tags may contain `@`, so the first one starts the digest.
  const at = text.indexOf("@");
  const nameAndTag = at < 0 ? text : text.slice(0, at);
  const digestText = at < 0 ? undefined : text.slice(at + 1);

  const slash = nameAndTag.indexOf("/");
  const named = slash < 0 ? null : registryPart(nameAndTag.slice(0, slash));
  let registry = named ?? DOCKER_HUB;
  const rest = named === null ? nameAndTag : nameAndTag.slice(slash + 1);
  if (registry === LEGACY_DOCKER_HUB) registry = DOCKER_HUB;

  // Path components cannot contain `:`, so once the registry is split off the first `:`
  // starts the tag.
  const colon = rest.indexOf(":");
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  const repository = registry === DOCKER_HUB && !path.includes("/") ? OFFICIAL_PREFIX + path : path;

  if (repository !== repository.toLowerCase()) {
    throw new FlokaError(`invalid reference format: repository name (${repository}) must be lowercase`);
  }
  const hostPort = splitHostPort(registry);
  if (hostPort === null || !HOST.test(hostPort.host)) {
    throw invalid(text, `invalid registry host ${JSON.stringify(registry)}`);
  }
  if (hostPort.port !== undefined && !PORT.test(hostPort.port)) {
    throw invalid(text, `registry port ${JSON.stringify(hostPort.port)} is not a number`);
  }
  for (const component of repository.split("/")) {
    if (component === "") throw invalid(text, "repository name has an empty path component");
    if (!PATH_COMPONENT.test(component)) {
      throw invalid(text, `invalid repository name component ${JSON.stringify(component)}`);
    }
  }
  const fullName = `${registry}/${repository}`;
  if (fullName.length > NAME_MAX) {
    throw invalid(text, `repository name must not be more than ${NAME_MAX} characters`);
  }
  if (tag === "") throw invalid(text, "empty tag after ':'");
  if (tag !== undefined && !TAG.test(tag)) {
    throw invalid(text, `invalid tag ${JSON.stringify(tag)} (up to 128 letters, digits, '_', '.', '-')`);
  }
  if (digestText !== undefined && !isDigest(digestText)) {
    throw invalid(text, `invalid digest ${JSON.stringify(digestText)} (expected sha256:<64 hex digits>)`);
  }

  const ref: Reference = { registry, repository };
  // A digest pins the content by itself, so only a bare name gets the default tag.
  if (tag !== undefined || digestText === undefined) ref.tag = tag ?? DEFAULT_TAG;
  if (digestText !== undefined) ref.digest = digestText as Digest;
  return ref;
}

function withTagAndDigest(name: string, ref: Reference): string {
  return name + (ref.tag !== undefined ? `:${ref.tag}` : "") +
    (ref.digest !== undefined ? `@${ref.digest}` : "");
}

/** The fully qualified form, registry included: "docker.io/library/ubuntu:latest". */
export function formatReference(ref: Reference): string {
  return withTagAndDigest(`${ref.registry}/${ref.repository}`, ref);
}

/** The short form Docker shows: Docker Hub's domain and its `library/` prefix left out. */
export function familiarReference(ref: Reference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === DOCKER_HUB || ref.registry === LEGACY_DOCKER_HUB) {
    name = ref.repository;
    // Only a direct child of library/ is an official image; deeper paths keep the prefix.
    const official = name.startsWith(OFFICIAL_PREFIX) ? name.slice(OFFICIAL_PREFIX.length) : null;
    if (official !== null && !official.includes("/")) name = official;
    // Docker shows docker.io/ghcr.io/x as ghcr.io/x, which names another registry's image.
    if (name.includes("/") && registryPart(name.slice(0, name.indexOf("/"))) !== null) {
      name = `${ref.registry}/${ref.repository}`;
    }
  }
  return withTagAndDigest(name, ref);
}

/** The host[:port] to send registry API requests to for `registry`. */
export function registryEndpoint(registry: string): string {
  return registry === DOCKER_HUB || registry === LEGACY_DOCKER_HUB ? DOCKER_HUB_ENDPOINT : registry;
}

function isLoopbackV6(bracketed: string): boolean {
  try {
    // The URL parser canonicalizes IPv6, so every spelling of ::1 compares equal.
    return new URL(`http://${bracketed}/`).hostname === "[::1]";
  } catch {
    return false;
  }
}

/**
 * Whether Floka may talk plain HTTP to `registry`. Like Docker, loopback registries are
 * trusted (traffic never leaves the machine); any other host must be listed in `insecure`,
 * exactly as `host[:port]` is written in the reference.
 */
export function isInsecureRegistry(registry: string, insecure: readonly string[]): boolean {
  if (insecure.includes(registry)) return true;
  const hostPort = splitHostPort(registry);
  if (hostPort === null || (hostPort.port !== undefined && !PORT.test(hostPort.port))) return false;
  const host = hostPort.host;
  if (host.startsWith("[")) return isLoopbackV6(host);
  return host.toLowerCase() === "localhost" || LOOPBACK_V4.test(host);
}
