/**
 * Volumes: the parsing of `-v`, `--mount` and `--tmpfs` into mount specs, and the volume
 * store. A named volume is a directory `volumes/<name>/` of the store root holding `_data/`
 * (what the container sees) and `meta.json` (created time, labels), as Docker's local
 * driver keeps them. Every change is made under `volumes/.lock`; a volume appears and
 * disappears with one rename, so a killed Floka never leaves half of one.
 */
import * as libc from "../../ffi/libc.ts";
import { FlokaError } from "../../lib/errors.ts";
import { secureJoin } from "../../lib/secure_join.ts";
import { parseBytes } from "../../lib/units.ts";
import { lstatOrNull, pathExists, readJsonIfExists, withLock, writeJsonAtomic } from "../store/files.ts";
import type { StoreRoot } from "../store/root.ts";

/** One mount a container asked for, as its record keeps it. */
export interface MountSpec {
  type: "bind" | "volume" | "tmpfs";
  /** The volume's name (volumes only). */
  name?: string;
  /** Host path: the bind's source, the volume's `_data`; "" for tmpfs. */
  source: string;
  /** Absolute path inside the container, cleaned. */
  target: string;
  readOnly: boolean;
  /** tmpfs options (`size=…`, `mode=…`, `noexec`, …). */
  options?: string[];
  /** `-v` creates a missing bind source; `--mount` refuses one. */
  createSource?: boolean;
  /** `volume-nocopy`: a new volume is not filled from the image. */
  noCopy?: boolean;
  /** A volume without a name of the user's (`-v /path`, the image's VOLUME): it goes with the container on `rm -v` and `--rm`. */
  anonymous?: boolean;
}

/** A new anonymous volume at `target`, named at random as Docker names them. */
export function anonymousVolume(target: string): MountSpec {
  return {
    type: "volume",
    name: randomVolumeName(),
    source: "",
    target: checkDestination(target, "volume"),
    readOnly: false,
    anonymous: true,
  };
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Docker's rule for local volume names. */
export function validateVolumeName(name: string): string {
  if (!VOLUME_NAME.test(name)) {
    throw new FlokaError(
      `${JSON.stringify(name)} includes invalid characters for a local volume name, only ` +
        `"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
  return name;
}

/** `path` without `.`, `..` or doubled slashes (`..` stops at `/`). */
export function cleanPath(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return "/" + parts.join("/");
}

/** The kernel's own filesystems in a container: nothing may be mounted over them. */
const RESERVED = ["/proc", "/sys", "/dev"];

/** A container path a mount may go to: absolute, not `/`, not /proc, /sys or /dev (or below /proc, /sys). */
export function checkDestination(target: string, type: string): string {
  if (!target.startsWith("/")) {
    throw new FlokaError(
      `invalid mount config for type "${type}": invalid mount path: '${target}' mount path must be absolute`,
    );
  }
  const clean = cleanPath(target);
  if (clean === "/") {
    throw new FlokaError(`invalid mount config for type "${type}": destination can't be '/'`);
  }
  for (const dir of RESERVED) {
    if (clean === dir || (dir !== "/dev" && clean.startsWith(dir + "/"))) {
      throw new FlokaError(
        `invalid mount config for type "${type}": cannot mount over ${clean}: ` +
          `${dir} is the container's own ${dir.slice(1)} filesystem`,
      );
    }
  }
  return clean;
}

/** `-v SRC:DST[:MODE]`: a bind when SRC is absolute, else a named volume. */
export function parseVolumeFlag(value: string): MountSpec {
  const parts = value.split(":");
  const invalid = () => new FlokaError(`invalid volume specification: '${value}'`);
  if (parts.length === 1) {
    if (!value) throw invalid();
    return anonymousVolume(value);
  }
  if (parts.length > 3 || parts.some((p) => p === "")) throw invalid();
  const [source, target, mode = ""] = parts;
  let readOnly = false;
  for (const m of mode ? mode.split(",") : []) {
    if (m === "ro") readOnly = true;
    else if (m === "rw") readOnly = false;
    else throw new FlokaError(`invalid mode: ${mode}`);
  }
  if (source.startsWith("/")) {
    return {
      type: "bind",
      source: cleanPath(source),
      target: checkDestination(target, "bind"),
      readOnly,
      createSource: true,
    };
  }
  validateVolumeName(source);
  return { type: "volume", name: source, source: "", target: checkDestination(target, "volume"), readOnly };
}

const TRUE_TEXT = new Set(["", "1", "true"]);
const FALSE_TEXT = new Set(["0", "false"]);

/** `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly]…` in Docker's CSV syntax. */
export function parseMountFlag(value: string): MountSpec {
  const fields = new Map<string, string>();
  let type = "volume";
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  let noCopy = false;
  const options: string[] = [];
  const boolOf = (key: string, v: string | undefined): boolean => {
    const text = (v ?? "").toLowerCase();
    if (TRUE_TEXT.has(text)) return true;
    if (FALSE_TEXT.has(text)) return false;
    throw new FlokaError(`invalid value for ${key}: ${v}`);
  };
  for (const field of value.split(",")) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const v = eq < 0 ? undefined : field.slice(eq + 1);
    fields.set(key, v ?? "");
    switch (key) {
      case "type":
        type = v ?? "";
        break;
      case "source":
      case "src":
        source = v;
        break;
      case "target":
      case "destination":
      case "dst":
        target = v;
        break;
      case "readonly":
      case "ro":
        readOnly = boolOf(key, v);
        break;
      case "volume-nocopy":
        noCopy = boolOf(key, v);
        break;
      case "bind-propagation":
        if (v !== "rprivate" && v !== "private") {
          throw new FlokaError(
            `invalid value for bind-propagation: ${v}: only private and rprivate are supported`,
          );
        }
        break;
      case "tmpfs-size":
        options.push(`size=${parseBytes(v ?? "")}`);
        break;
      case "tmpfs-mode":
        if (!/^[0-7]{1,4}$/.test(v ?? "")) throw new FlokaError(`invalid value for tmpfs-mode: ${v}`);
        options.push(`mode=${v}`);
        break;
      default:
        throw new FlokaError(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (type !== "bind" && type !== "volume" && type !== "tmpfs") {
    throw new FlokaError(`invalid argument "${value}" for "--mount" flag: unsupported mount type '${type}'`);
  }
  if (!target) throw new FlokaError(`invalid argument "${value}" for "--mount" flag: target is required`);
  const wrongFor = (keys: string[], kind: string) => {
    for (const k of keys) {
      if (fields.has(k)) {
        throw new FlokaError(`invalid mount config: cannot mix '${k}' options with type '${kind}'`);
      }
    }
  };
  if (type === "tmpfs") {
    if (source) throw new FlokaError(`invalid mount config for type "tmpfs": source must not be specified`);
    wrongFor(["volume-nocopy", "bind-propagation"], type);
    return {
      type,
      source: "",
      target: checkDestination(target, type),
      readOnly,
      options: [...TMPFS_DEFAULTS, ...options],
    };
  }
  wrongFor(["tmpfs-size", "tmpfs-mode"], type);
  if (type === "bind") {
    wrongFor(["volume-nocopy"], type);
    if (!source) throw new FlokaError(`invalid mount config for type "bind": field Source must not be empty`);
    if (!source.startsWith("/")) {
      throw new FlokaError(
        `invalid mount config for type "bind": invalid mount path: '${source}' mount path must be absolute`,
      );
    }
    return { type, source: cleanPath(source), target: checkDestination(target, type), readOnly };
  }
  wrongFor(["bind-propagation"], type);
  if (!source) return { ...anonymousVolume(target), readOnly, ...(noCopy ? { noCopy } : {}) };
  return {
    type,
    name: validateVolumeName(source),
    source: "",
    target: checkDestination(target, type),
    readOnly,
    ...(noCopy ? { noCopy } : {}),
  };
}

/** Docker's options for a tmpfs a container asks for, before its own. */
const TMPFS_DEFAULTS = ["nosuid", "nodev", "noexec"];

/** `--tmpfs /path[:opts]`, opts as mount(8) takes them (`size=64m,mode=1777`). */
export function parseTmpfsFlag(value: string): MountSpec {
  const colon = value.indexOf(":");
  const target = colon < 0 ? value : value.slice(0, colon);
  const given = colon < 0 ? [] : value.slice(colon + 1).split(",").filter(Boolean);
  let readOnly = false;
  const options = [...TMPFS_DEFAULTS];
  for (const opt of given) {
    if (opt === "ro") readOnly = true;
    else if (opt === "rw") readOnly = false;
    else if (opt.startsWith("size=")) options.push(`size=${parseBytes(opt.slice(5))}`);
    else if (opt.startsWith("mode=")) {
      if (!/^[0-7]{1,4}$/.test(opt.slice(5))) throw new FlokaError(`invalid tmpfs mode: ${opt}`);
      options.push(opt);
    } else if (/^[a-z0-9_]+(=[^,]*)?$/.test(opt)) options.push(opt);
    else throw new FlokaError(`invalid tmpfs option: ${JSON.stringify(opt)}`);
  }
  return { type: "tmpfs", source: "", target: checkDestination(target, "tmpfs"), readOnly, options };
}

/** The mounts of a command line: `-v`, then `--mount`, then `--tmpfs`; one per destination. */
export function parseMountOptions(opts: { volume: string[]; mount: string[]; tmpfs: string[] }): MountSpec[] {
  const mounts = [
    ...opts.volume.map(parseVolumeFlag),
    ...opts.mount.map(parseMountFlag),
    ...opts.tmpfs.map(parseTmpfsFlag),
  ];
  const seen = new Set<string>();
  for (const m of mounts) {
    if (seen.has(m.target)) throw new FlokaError(`Duplicate mount point: ${m.target}`);
    seen.add(m.target);
  }
  return mounts;
}

// ---------------------------------------------------------------------------------------
// The volume store.

export interface VolumeMeta {
  createdAt: string;
  labels: Record<string, string>;
}

export interface Volume {
  name: string;
  /** `volumes/<name>/_data`: what containers mount. */
  mountpoint: string;
  meta: VolumeMeta;
}

/** The names of the containers (ID) that use a volume, whatever their state. */
export type VolumeUsers = (name: string) => string[];

export class VolumeStore {
  readonly dir: string;

  constructor(store: StoreRoot) {
    this.dir = `${store.root}/volumes`;
  }

  path(name: string): string {
    return `${this.dir}/${name}/_data`;
  }

  /** Runs `fn` under the store's lock (the directory made if missing). */
  lock<T>(fn: () => T): T {
    Deno.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    return withLock(`${this.dir}/.lock`, fn);
  }

  get(name: string): Volume | null {
    if (!VOLUME_NAME.test(name)) return null;
    const meta = readJsonIfExists<VolumeMeta>(`${this.dir}/${name}/meta.json`);
    return meta ? { name, mountpoint: this.path(name), meta } : null;
  }

  /** Every volume, by name. */
  list(): Volume[] {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(this.dir)];
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    return entries
      .filter((e) => e.isDirectory && VOLUME_NAME.test(e.name))
      .map((e) => this.get(e.name))
      .filter((v) => v !== null)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /**
   * The volume `name` (a random 64-hex name without one), made if missing: `_data` and
   * `meta.json` in a temporary directory renamed into place. `created` says whether it is new.
   */
  create(name?: string, labels: Record<string, string> = {}): { volume: Volume; created: boolean } {
    const volumeName = name === undefined ? randomVolumeName() : validateVolumeName(name);
    return this.lock(() => {
      this.sweep();
      const existing = this.get(volumeName);
      if (existing) return { volume: existing, created: false };
      const tmp = `${this.dir}/.creating-${crypto.randomUUID()}`;
      try {
        Deno.mkdirSync(tmp, { mode: 0o700 });
        Deno.mkdirSync(`${tmp}/_data`);
        Deno.chmodSync(`${tmp}/_data`, 0o755);
        const meta: VolumeMeta = { createdAt: new Date().toISOString(), labels };
        writeJsonAtomic(`${tmp}/meta.json`, meta);
        Deno.renameSync(tmp, `${this.dir}/${volumeName}`);
      } catch (err) {
        Deno.removeSync(tmp, { recursive: true });
        throw err;
      }
      return { volume: this.get(volumeName)!, created: true };
    });
  }

  /**
   * Removes the named volumes no container uses; refuses one in use (as Docker does, even
   * with `force`). `force` only makes a missing volume no error. Returns the errors.
   */
  remove(names: string[], users: VolumeUsers, force: boolean, removed: (name: string) => void): string[] {
    const errors: string[] = [];
    this.lock(() => {
      for (const name of names) {
        if (!this.get(name)) {
          if (!force) errors.push(`No such volume: ${name}`);
          continue;
        }
        const using = users(name);
        if (using.length) {
          errors.push(`remove ${name}: volume is in use - [${using.join(", ")}]`);
          continue;
        }
        this.discard(name);
        removed(name);
      }
      this.sweep();
    });
    return errors;
  }

  /** Removes every volume no container uses; returns their names and the bytes freed. */
  prune(users: VolumeUsers): { names: string[]; bytes: number } {
    return this.lock(() => {
      const names: string[] = [];
      let bytes = 0;
      for (const v of this.list()) {
        if (users(v.name).length) continue;
        bytes += diskUsage(v.mountpoint);
        this.discard(v.name);
        names.push(v.name);
      }
      this.sweep();
      return { names, bytes };
    });
  }

  /** Renames the volume out of sight, then deletes it (a crash in between is swept later). */
  private discard(name: string): void {
    const doomed = `${this.dir}/.removing-${name}-${crypto.randomUUID().slice(0, 8)}`;
    Deno.renameSync(`${this.dir}/${name}`, doomed);
    Deno.removeSync(doomed, { recursive: true });
  }

  /** Finishes what a killed Floka left: half-made and half-removed volumes. */
  private sweep(): void {
    for (const e of Deno.readDirSync(this.dir)) {
      if (e.name.startsWith(".removing-") || e.name.startsWith(".creating-")) {
        Deno.removeSync(`${this.dir}/${e.name}`, { recursive: true });
      }
    }
  }

  /**
   * Fills the volume from the image at `target` when its `_data` is empty (Docker's copy-up),
   * under the lock so two containers starting at once copy once.
   */
  fillFromImage(name: string, lowerDirs: readonly string[], target: string): void {
    this.lock(() => {
      const data = this.path(name);
      if ([...Deno.readDirSync(data)].length > 0) return;
      copyUp(lowerDirs, target, data);
    });
  }
}

export function randomVolumeName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes of the regular files under `dir` (symlinks not followed). */
export function diskUsage(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      return;
    }
    for (const e of entries) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.isFile) {
        try {
          total += Deno.lstatSync(p).size;
        } catch { /* gone meanwhile */ }
      }
    }
  };
  walk(dir);
  return total;
}

// ---------------------------------------------------------------------------------------
// Copy-up: the image's content at a path, read from its layers as overlayfs merges them.

/** An entry of the merged view: the layer's host path of it and its lstat. */
interface MergedEntry {
  path: string;
  info: Deno.FileInfo;
}

const isWhiteout = (info: Deno.FileInfo) => info.isCharDevice === true && info.rdev === 0;

function isOpaque(path: string): boolean {
  const value = libc.lgetxattr(path, "trusted.overlay.opaque");
  return value !== null && value.length === 1 && value[0] === 0x79;
}

/**
 * What overlayfs shows at `rel` (a cleaned path without the leading `/`) over `layers`
 * (top first): the topmost entry, unless a whiteout, a non-directory or an opaque directory
 * on its way in a higher layer hides the layers below.
 */
export function lookupMerged(layers: readonly string[], rel: string): MergedEntry | null {
  const parts = rel.split("/").filter(Boolean);
  for (const layer of layers) {
    // An ancestor in this layer that is not a directory (or a whiteout) hides everything below.
    let hidden = false;
    let opaque = false;
    for (let i = 1; i < parts.length; i++) {
      const ancestor = `${layer}/${parts.slice(0, i).join("/")}`;
      const info = lstatOrNull(ancestor);
      if (info === null) break;
      if (!info.isDirectory) {
        hidden = true;
        break;
      }
      if (isOpaque(ancestor)) opaque = true;
    }
    if (hidden) return null;
    const path = parts.length ? `${layer}/${parts.join("/")}` : layer;
    const info = lstatOrNull(path);
    if (info) return isWhiteout(info) ? null : { path, info };
    if (opaque) return null;
  }
  return null;
}

/** The names in the merged directory `rel`. */
function mergedNames(layers: readonly string[], rel: string): string[] {
  const names = new Set<string>();
  const hidden = new Set<string>();
  const suffix = rel ? `/${rel}` : "";
  for (const layer of layers) {
    const dir = `${layer}${suffix}`;
    const info = lstatOrNull(dir);
    if (info === null) continue;
    if (!info.isDirectory) break;
    for (const e of Deno.readDirSync(dir)) {
      if (hidden.has(e.name) || names.has(e.name)) continue;
      const child = lstatOrNull(`${dir}/${e.name}`);
      if (child && isWhiteout(child)) hidden.add(e.name);
      else names.add(e.name);
    }
    if (isOpaque(dir)) break;
  }
  return [...names].sort();
}

function copyOwnerAndMode(info: Deno.FileInfo, dest: string, symlink: boolean): void {
  if (info.uid !== null && info.gid !== null) libc.lchown(dest, info.uid, info.gid);
  if (!symlink && info.mode !== null) Deno.chmodSync(dest, info.mode & 0o7777);
}

/**
 * Copies what the image has at `target` into the empty directory `dest`. The target is
 * resolved as the container would (symlinks within the image, never the host's), nothing is
 * followed while copying (symlinks are copied as symlinks), and every file is created new,
 * so nothing outside `dest` is written. Owners, modes and times are kept; devices, FIFOs and
 * sockets are left out.
 */
export function copyUp(layers: readonly string[], target: string, dest: string): void {
  const lookup = {
    readlinkIfSymlink(path: string): string | null {
      const found = lookupMerged(layers, path.replace(/^\/+/, ""));
      return found?.info.isSymlink ? Deno.readLinkSync(found.path) : null;
    },
  };
  const rel = secureJoin("/", target, lookup).replace(/^\/+/, "");
  const top = lookupMerged(layers, rel);
  if (!top?.info.isDirectory) return;
  copyOwnerAndMode(top.info, dest, false);
  const copyDir = (srcRel: string, destDir: string) => {
    for (const name of mergedNames(layers, srcRel)) {
      const childRel = srcRel ? `${srcRel}/${name}` : name;
      const entry = lookupMerged(layers, childRel);
      if (!entry) continue;
      const out = `${destDir}/${name}`;
      const { info } = entry;
      if (info.isDirectory) {
        Deno.mkdirSync(out);
        copyDir(childRel, out);
        copyOwnerAndMode(info, out, false);
      } else if (info.isSymlink) {
        Deno.symlinkSync(Deno.readLinkSync(entry.path), out);
        copyOwnerAndMode(info, out, true);
        continue;
      } else if (info.isFile) {
        copyFile(entry.path, out);
        copyOwnerAndMode(info, out, false);
      } else {
        continue;
      }
      if (info.mtime && info.atime) Deno.utimeSync(out, info.atime, info.mtime);
    }
  };
  copyDir(rel, dest);
}

/** Copies a regular file's content into a new file (never through an existing one). */
function copyFile(from: string, to: string): void {
  using src = Deno.openSync(from, { read: true });
  using dst = Deno.openSync(to, { write: true, createNew: true, mode: 0o600 });
  const buf = new Uint8Array(1 << 16);
  for (;;) {
    const n = src.readSync(buf);
    if (n === null || n === 0) break;
    let done = 0;
    while (done < n) done += dst.writeSync(buf.subarray(done, n));
  }
}

/**
 * Fills in where each mount comes from on the host (a volume's `_data`) and checks what can
 * be checked without writing: `--mount type=bind` needs an existing source.
 */
export function resolveMountSources(mounts: MountSpec[], volumes: VolumeStore): MountSpec[] {
  return mounts.map((m) => {
    if (m.type === "volume") return { ...m, source: volumes.path(m.name!) };
    if (m.type === "bind" && !m.createSource && !pathExists(m.source)) {
      throw new FlokaError(
        `invalid mount config for type "bind": bind source path does not exist: ${m.source}`,
      );
    }
    return m;
  });
}

/**
 * Makes what the mounts need before the container starts: a missing `-v` bind source
 * directory (as Docker does), each named volume (made on first use), and a volume's first
 * content, copied from the image at its destination.
 */
export function prepareMounts(
  mounts: readonly MountSpec[],
  volumes: VolumeStore,
  lowerDirs: readonly string[],
): void {
  for (const m of mounts) {
    if (m.type === "bind" && m.createSource && !pathExists(m.source)) {
      Deno.mkdirSync(m.source, { recursive: true, mode: 0o755 });
    } else if (m.type === "volume") {
      volumes.create(m.name!);
      if (!m.noCopy) volumes.fillFromImage(m.name!, lowerDirs, m.target);
    }
  }
}

/**
 * The image's VOLUME paths that no mount of the container covers, as anonymous volumes
 * (Docker gives each such path a fresh volume, filled from the image).
 */
export function imageVolumes(
  volumes: Record<string, unknown> | undefined,
  mounts: readonly MountSpec[],
): MountSpec[] {
  const taken = new Set(mounts.map((m) => m.target));
  return Object.keys(volumes ?? {}).map(cleanPath).filter((path) => !taken.has(path)).map(anonymousVolume);
}

/** Removes a removed container's anonymous volumes (`rm -v`, `--rm`); others' are kept. */
export function removeAnonymousVolumes(store: StoreRoot, mounts: readonly MountSpec[] | undefined): void {
  const names = (mounts ?? []).filter((m) => m.anonymous && m.name).map((m) => m.name!);
  if (names.length) new VolumeStore(store).remove(names, () => [], true, () => {});
}
