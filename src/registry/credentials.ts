/**
 * Registry credentials saved by `floka login`, in the file format Docker and Podman use
 * (`~/.docker/config.json`, `auth.json`):
 *
 *     {"auths": {"registry.example:5000": {"auth": "<base64 of user:password>"}}}
 *
 * so a file written by one tool can be read by the others (point FLOKA_AUTH_FILE at it).
 * Docker Hub's entry is keyed `https://index.docker.io/v1/`, the address of its long-gone
 * v1 API, because that is where Docker has always stored it; Floka writes the same key and
 * reads Hub credentials under any of Hub's names.
 *
 * The file holds passwords in the clear (base64 is an encoding, not a protection), so it is
 * written with mode 0600 in a directory of mode 0700, and replaced atomically: a crash or a
 * concurrent reader sees either the old file or the new one, never half of each.
 */
import { FlokaError } from "../../lib/errors.ts";
import { base64Utf8, type Credentials } from "./auth.ts";

export type { Credentials };

/** Looks up the credentials for a registry (`docker.io`, `localhost:5000`); null if none. */
export type CredentialLookup = (registry: string) => Credentials | null;

/** Where Docker has always kept Docker Hub's credentials. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

const DOCKER_HUB_NAMES = new Set([
  "docker.io",
  "index.docker.io",
  "registry-1.docker.io",
  "registry.hub.docker.com",
]);

/** The credentials file: FLOKA_AUTH_FILE, else the XDG config dir, else ~/.config. */
export function defaultAuthFile(): string {
  const explicit = Deno.env.get("FLOKA_AUTH_FILE");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg) return `${xdg}/floka/auth.json`;
  const home = Deno.env.get("HOME");
  if (!home) {
    throw new FlokaError("cannot locate the credentials file: set HOME or FLOKA_AUTH_FILE");
  }
  return `${home}/.config/floka/auth.json`;
}

/**
 * The registry a key of `auths` stands for, in the form registries are named in image
 * references: keys may carry a scheme and a path (`https://index.docker.io/v1/`,
 * `https://quay.io`), and Docker Hub has several names that all mean `docker.io`.
 */
export function normalizeRegistry(key: string): string {
  let host = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  const slash = host.indexOf("/");
  if (slash >= 0) host = host.slice(0, slash);
  host = host.toLowerCase();
  return DOCKER_HUB_NAMES.has(host) ? "docker.io" : host;
}

/** The key under which credentials for `registry` are written. */
export function authKey(registry: string): string {
  const normalized = normalizeRegistry(registry);
  return normalized === "docker.io" ? DOCKER_HUB_AUTH_KEY : normalized;
}

interface AuthFile {
  auths?: Record<string, Record<string, unknown>>;
  [other: string]: unknown;
}

async function readAuthFile(path: string): Promise<AuthFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    throw new FlokaError(`cannot read credentials file ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new FlokaError(`invalid credentials file ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new FlokaError(`invalid credentials file ${path}: expected a JSON object`);
  }
  const file = parsed as AuthFile;
  if (file.auths !== undefined && (typeof file.auths !== "object" || file.auths === null)) {
    throw new FlokaError(`invalid credentials file ${path}: "auths" is not an object`);
  }
  return file;
}

/** Decodes one `auths` entry: `auth` (base64 `user:password`) or `username`/`password`. */
function decodeEntry(entry: Record<string, unknown>): Credentials | null {
  if (typeof entry !== "object" || entry === null) return null;
  if (typeof entry.auth === "string" && entry.auth !== "") {
    let decoded: string;
    try {
      const binary = atob(entry.auth);
      decoded = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    } catch {
      return null;
    }
    // The username cannot hold a colon (Docker refuses one), so the first colon splits.
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === "string" && typeof entry.password === "string") {
    return { username: entry.username, password: entry.password };
  }
  return null;
}

/**
 * Reads the credentials file (default: `defaultAuthFile()`) once and returns a lookup over
 * it. A missing file means no credentials, not an error: most pulls are anonymous.
 */
export async function loadCredentials(path = defaultAuthFile()): Promise<CredentialLookup> {
  const file = await readAuthFile(path);
  const byRegistry = new Map<string, Credentials>();
  for (const [key, entry] of Object.entries(file.auths ?? {})) {
    const creds = decodeEntry(entry);
    if (!creds) continue;
    const registry = normalizeRegistry(key);
    // An exact key (as Floka writes it) beats an alias written by some other tool.
    if (!byRegistry.has(registry) || key === authKey(registry)) byRegistry.set(registry, creds);
  }
  return (registry) => byRegistry.get(normalizeRegistry(registry)) ?? null;
}

/** Writes `file` to `path` atomically with mode 0600, creating its directory with 0700. */
async function writeAuthFile(path: string, file: AuthFile): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dir = slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
  // Only directories created here get 0700; an existing one (~/.config, /tmp) is left alone.
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    // createNew + mode: the temp file is never readable by others, not even for a moment.
    await Deno.writeTextFile(temp, JSON.stringify(file, null, "\t") + "\n", {
      createNew: true,
      mode: 0o600,
    });
    await Deno.chmod(temp, 0o600); // the umask may have removed bits, never added: be exact
    const handle = await Deno.open(temp, { read: true });
    try {
      await handle.sync(); // the rename must not land before the data does
    } finally {
      handle.close();
    }
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw new FlokaError(`cannot write credentials file ${path}: ${(err as Error).message}`);
  }
}

/** Drops every entry of `auths` that stands for `registry`, whatever its spelling. */
function withoutRegistry(auths: Record<string, Record<string, unknown>>, registry: string) {
  const target = normalizeRegistry(registry);
  const kept: Record<string, Record<string, unknown>> = {};
  let removed = false;
  for (const [key, entry] of Object.entries(auths)) {
    if (normalizeRegistry(key) === target) removed = true;
    else kept[key] = entry;
  }
  return { kept, removed };
}

/** Saves credentials for `registry`, keeping the file's other entries and fields. */
export async function saveCredentials(
  registry: string,
  username: string,
  password: string,
  path = defaultAuthFile(),
): Promise<void> {
  if (username.includes(":")) {
    throw new FlokaError("invalid username: it must not contain ':'");
  }
  const file = await readAuthFile(path);
  const { kept } = withoutRegistry(file.auths ?? {}, registry);
  kept[authKey(registry)] = { auth: base64Utf8(`${username}:${password}`) };
  await writeAuthFile(path, { ...file, auths: kept });
}

/** Removes the credentials for `registry`; false when there were none. */
export async function removeCredentials(registry: string, path = defaultAuthFile()): Promise<boolean> {
  const file = await readAuthFile(path);
  const { kept, removed } = withoutRegistry(file.auths ?? {}, registry);
  if (removed) await writeAuthFile(path, { ...file, auths: kept });
  return removed;
}
