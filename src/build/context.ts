/**
 * The sources of COPY and ADD: finding them in the build context (or, for `COPY --from`, in
 * another stage's root filesystem), checksumming them for the build cache, and copying them
 * into the merged root filesystem of the step being built, with Docker's (BuildKit's)
 * semantics.
 *
 * Finding. Sources are relative to the root; a leading `/` means the root too, `../x` is
 * refused. Wildcards follow Go's filepath.Match one path component at a time. Paths the
 * ignore rules leave out do not exist, except that an ignored directory holding an
 * exception exists with just what the exceptions keep, as in the context BuildKit sends.
 * A source named directly (or matched) that is a symlink is followed, inside the root;
 * symlinks below a directory source are copied as symlinks.
 *
 * Copying. Nothing may be written outside `destRoot`, whatever symlinks the image holds
 * (DESIGN section 6). The destination is resolved with secureJoin, so `/etc -> /` makes
 * `/etc/passwd` mean `destRoot/passwd`. Below it, every name is checked with lstat before
 * it is written: an existing file or symlink is removed, never followed, and files are
 * created with O_EXCL; a directory is only ever entered if it is a real one. Metadata
 * calls (lchown, utimensat) act on the name itself, and chmod is never applied to a link.
 */
import { createHash } from "node:crypto";
import * as libc from "../../ffi/libc.ts";
import { type Digest, digestFromBytes } from "../../lib/digest.ts";
import {
  cleanPath,
  globMatch,
  hasWildcards,
  type IgnoreRules,
  matchPath,
  type MatchState,
  mayContainExceptions,
  parseIgnore,
} from "../../lib/dockerignore.ts";
import { describeError, FlokaError, oneLine } from "../../lib/errors.ts";
import { type PathLookup, secureJoin } from "../../lib/secure_join.ts";
import { lstatOrNull } from "../store/files.ts";

export type SourceKind = "file" | "dir" | "symlink" | "fifo" | "chardev" | "blockdev";

/** One thing a COPY writes: a source itself, or something below a directory source. */
export interface SourceItem {
  /** Path below the source, `/`-separated; "" for the source itself. Parents come first. */
  readonly rel: string;
  /** Where to read it on the host. */
  readonly hostPath: string;
  readonly kind: SourceKind;
  /** Permission bits, with setuid, setgid and sticky (07777). */
  readonly mode: number;
  readonly size: number;
  readonly mtime: Date | null;
  readonly atime: Date | null;
  /** A symlink's target, as written. */
  readonly linkTarget?: string;
  /** A device's number (st_rdev). */
  readonly rdev?: number;
}

/** One match of a COPY source. */
export interface SourceEntry {
  /** The source as written in the instruction. */
  readonly source: string;
  /** Its name in a destination directory: the last component as named or matched. */
  readonly name: string;
  /** Found through a wildcard. */
  readonly wildcard: boolean;
  /** `items[0]` is the source itself; for a directory, the rest is its tree. */
  readonly items: readonly SourceItem[];
}

export interface ResolveOptions {
  /** The context's ignore rules; none for a stage's or image's root filesystem. */
  ignore?: IgnoreRules;
}

export interface CopyOptions {
  /** Owner of everything written (`--chown`); 0:0 by default. */
  uid?: number;
  gid?: number;
  /** Permission bits for every copied file and directory (`--chmod`), not for symlinks. */
  chmod?: number;
  /** The step's working directory, against which a relative `dest` is resolved; `/` by default. */
  workdir?: string;
}

/** The ignore file names, in order of preference. */
const IGNORE_FILES = [".flokaignore", ".dockerignore"];

/** The rules of the context's `.flokaignore`, else its `.dockerignore`, else undefined. */
export function loadIgnoreRules(contextDir: string): IgnoreRules | undefined {
  for (const name of IGNORE_FILES) {
    let text: string;
    try {
      text = Deno.readTextFileSync(`${contextDir}/${name}`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw new FlokaError(`cannot read ${name}: ${oneLine(describeError(err))}`);
    }
    try {
      return parseIgnore(text);
    } catch (err) {
      throw new FlokaError(`${name}: ${oneLine(describeError(err))}`);
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Finding sources.

/**
 * The entries the COPY sources name under `root`, in order (a wildcard's matches sorted by
 * name). Throws a FlokaError for a source that escapes the root, one that matches nothing,
 * or when every source is a wildcard that matches nothing.
 */
export function resolveSources(
  root: string,
  sources: readonly string[],
  opts: ResolveOptions = {},
): SourceEntry[] {
  const finder = new Finder(root.replace(/\/+$/, ""), opts.ignore);
  const entries: SourceEntry[] = [];
  for (const source of sources) {
    try {
      entries.push(...finder.find(source));
    } catch (err) {
      if (err instanceof FlokaError) throw err;
      throw new FlokaError(`COPY failed: ${source}: ${oneLine(describeError(err))}`);
    }
  }
  if (entries.length === 0 && sources.length > 0) {
    throw new FlokaError("COPY failed: no source files were specified");
  }
  return entries;
}

/** A source as a clean path relative to the root ("" for the root), or the refusal. */
function sourcePath(source: string): string {
  const path = cleanPath(source);
  if (path === ".." || path.startsWith("../")) {
    throw new FlokaError(`forbidden path outside the build context: ${source}`);
  }
  if (path === "." || path === "/") return "";
  return path.replace(/^\/+/, "");
}

function notFound(path: string): FlokaError {
  return new FlokaError(
    `COPY failed: file not found in build context or excluded by .dockerignore: stat ${
      path || "."
    }: file does not exist`,
  );
}

/** Looks sources up under one root, with its ignore rules. */
class Finder {
  constructor(readonly root: string, readonly rules: IgnoreRules | undefined) {}

  /** The entries of one source: one, or a wildcard's matches (maybe none). */
  find(source: string): SourceEntry[] {
    const path = sourcePath(source);
    if (hasWildcards(path)) return this.expand(source, path);
    const entry = this.entry(source, path, path === "" ? "" : basename(path), false);
    if (!entry) throw notFound(path);
    return [entry];
  }

  /** The entry for `path` (relative to the root), following symlinks; null if it does not exist. */
  entry(source: string, path: string, name: string, wildcard: boolean): SourceEntry | null {
    const links: string[] = [];
    const hostPath = this.resolve(path, links);
    const stat = lstatOrNull(hostPath);
    if (!stat || stat.isSymlink) return null;
    const rel = this.relOf(hostPath);
    let state: MatchState | undefined;
    let ignored = false;
    if (this.rules) {
      // A symlink the rules leave out is not in the context, so neither is what it leads to.
      if (this.anyIgnored(links)) return null;
      ({ ignored, state } = matchPath(this.rules, rel));
      if (ignored && !(stat.isDirectory && mayContainExceptions(this.rules, rel))) return null;
    }
    const top = itemOf("", hostPath, stat);
    if (!top) return null;
    const items = [top];
    if (stat.isDirectory) this.walk(hostPath, rel, "", state, items);
    if (ignored && items.length === 1) return null; // an ignored directory that kept nothing
    return { source, name, wildcard, items };
  }

  /** The matches of a wildcard source, sorted by name. */
  expand(source: string, path: string): SourceEntry[] {
    const parts = path.split("/");
    const first = parts.findIndex(hasWildcards);
    const links: string[] = [];
    const base = this.resolve(parts.slice(0, first).join("/"), links);
    if (!lstatOrNull(base)?.isDirectory || this.anyIgnored(links)) return [];
    const baseRel = this.relOf(base);
    const state = this.rules ? matchPath(this.rules, baseRel).state : undefined;
    const matches: string[] = [];
    this.matchLevel(base, baseRel, state, parts.slice(first), matches);
    const entries: SourceEntry[] = [];
    for (const rel of matches) {
      const entry = this.entry(source, rel, basename(rel), true);
      if (!entry) throw notFound(rel);
      entries.push(entry);
    }
    return entries;
  }

  /** Collects the context paths below `dir` that match `patterns`, one component each. */
  private matchLevel(
    dir: string,
    rel: string,
    state: MatchState | undefined,
    patterns: readonly string[],
    out: string[],
  ): void {
    const [pattern, ...rest] = patterns;
    for (const name of sortedNames(dir)) {
      if (!globMatch(pattern, name)) continue;
      const childRel = join(rel, name);
      const stat = lstatOrNull(`${dir}/${name}`);
      if (!stat) continue;
      let childState = state;
      if (this.rules) {
        const match = matchPath(this.rules, childRel, state);
        childState = match.state;
        // Whether an ignored match still exists (a directory keeping exceptions) is for entry().
        const mayHoldKept = stat.isDirectory && mayContainExceptions(this.rules, childRel);
        if (match.ignored && !mayHoldKept) continue;
      }
      if (rest.length === 0) out.push(childRel);
      else if (stat.isDirectory) this.matchLevel(`${dir}/${name}`, childRel, childState, rest, out);
    }
  }

  /**
   * Appends the tree below the directory `dir` (context path `rel`, `below` inside the
   * source) to `items`, leaving out ignored paths. An ignored directory is walked only when
   * an exception may keep something in it, and listed only if something was kept.
   */
  private walk(dir: string, rel: string, below: string, state: MatchState | undefined, items: SourceItem[]) {
    for (const name of sortedNames(dir)) {
      const hostPath = `${dir}/${name}`;
      const childRel = join(rel, name);
      const stat = Deno.lstatSync(hostPath);
      let childState = state;
      let ignored = false;
      if (this.rules) {
        ({ ignored, state: childState } = matchPath(this.rules, childRel, state));
        if (ignored && !(stat.isDirectory && mayContainExceptions(this.rules, childRel))) continue;
      }
      const item = itemOf(join(below, name), hostPath, stat);
      if (!item) continue;
      const at = items.length;
      items.push(item);
      if (stat.isDirectory) this.walk(hostPath, childRel, item.rel, childState, items);
      if (ignored && items.length === at + 1) items.pop();
    }
  }

  /** `path` under the root with symlinks followed inside it; `links` gets the symlinks passed. */
  private resolve(path: string, links: string[]): string {
    const lookup: PathLookup = {
      readlinkIfSymlink(candidate) {
        const stat = lstatOrNull(candidate);
        if (!stat?.isSymlink) return null;
        links.push(candidate);
        return Deno.readLinkSync(candidate);
      },
    };
    try {
      return secureJoin(this.root, path, lookup);
    } catch (err) {
      throw new FlokaError(`COPY failed: ${path}: ${oneLine(describeError(err))}`);
    }
  }

  /** Whether the rules leave out one of `hostPaths`. */
  private anyIgnored(hostPaths: readonly string[]): boolean {
    const rules = this.rules;
    return rules !== undefined && hostPaths.some((path) => matchPath(rules, this.relOf(path)).ignored);
  }

  /** A host path below the root as a context path ("" for the root). */
  private relOf(hostPath: string): string {
    return hostPath === this.root ? "" : hostPath.slice(this.root.length + 1);
  }
}

/** The item for one file system object, or null for a socket (which cannot be copied). */
function itemOf(rel: string, hostPath: string, stat: Deno.FileInfo): SourceItem | null {
  const kind = kindOf(stat);
  if (!kind) return null;
  return {
    rel,
    hostPath,
    kind,
    mode: (stat.mode ?? 0o644) & 0o7777,
    size: stat.size,
    mtime: stat.mtime,
    atime: stat.atime,
    linkTarget: kind === "symlink" ? Deno.readLinkSync(hostPath) : undefined,
    rdev: kind === "chardev" || kind === "blockdev" ? stat.rdev ?? 0 : undefined,
  };
}

function kindOf(stat: Deno.FileInfo): SourceKind | null {
  if (stat.isFile) return "file";
  if (stat.isDirectory) return "dir";
  if (stat.isSymlink) return "symlink";
  if (stat.isFifo) return "fifo";
  if (stat.isCharDevice) return "chardev";
  if (stat.isBlockDevice) return "blockdev";
  return null;
}

// ---------------------------------------------------------------------------------------
// Checksum.

/** Files at most this big are read whole; bigger ones are streamed. */
const SMALL_FILE = 1024 * 1024;

/**
 * A checksum of everything the entries would copy: names, kinds, permission bits, symlink
 * targets, device numbers and contents. Times and owners are left out, as BuildKit leaves
 * them out of its cache keys (COPY sets the owner itself).
 */
export async function checksumSources(entries: readonly SourceEntry[]): Promise<Digest> {
  const hash = createHash("sha256");
  for (const entry of entries) {
    const top = entry.items[0];
    // A directory's contents are copied, not the directory: its own name and mode do not matter.
    const name = top.kind === "dir" ? "" : entry.name;
    hash.update(`entry ${JSON.stringify(name)} ${entry.wildcard}\n`);
    for (const item of entry.items) {
      if (item === top && top.kind === "dir") continue;
      hash.update(
        `${item.kind} ${item.mode.toString(8)} ${JSON.stringify(item.rel)} ${await itemData(item)}\n`,
      );
    }
  }
  return digestFromBytes(hash.digest());
}

/** What, besides name and mode, makes an item what it is. */
async function itemData(item: SourceItem): Promise<string> {
  switch (item.kind) {
    case "file":
      return await fileHash(item.hostPath, item.size);
    case "symlink":
      return JSON.stringify(item.linkTarget);
    case "chardev":
    case "blockdev":
      return String(item.rdev);
    default:
      return "";
  }
}

async function fileHash(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  if (size <= SMALL_FILE) {
    hash.update(Deno.readFileSync(path));
    return hash.digest("hex");
  }
  const file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk); // the stream closes the file
  return hash.digest("hex");
}

// ---------------------------------------------------------------------------------------
// Copying.

/** Mode of the directories a COPY creates on the way to its destination. */
const CREATED_DIR_MODE = 0o755;

/**
 * Copies the entries to `dest` inside `destRoot`, as COPY does: a directory's contents are
 * merged into the destination directory; a file goes to `dest` itself, or into it when
 * `dest` ends with `/`, is an existing directory, or there are several entries or a
 * wildcard. Missing directories on the way are created (0755, owned by uid:gid).
 */
export function copySources(
  entries: readonly SourceEntry[],
  destRoot: string,
  dest: string,
  opts: CopyOptions = {},
): void {
  const root = destRoot.replace(/\/+$/, "");
  if (!lstatOrNull(root || "/")?.isDirectory) {
    throw new FlokaError(`COPY failed: the root filesystem ${destRoot} is not a directory`);
  }
  const copier = new Copier(root, opts);
  const destPath = destinationPath(dest, opts.workdir ?? "/");
  const intoDir = destPath.endsWith("/") || entries.length > 1 || entries.some((e) => e.wildcard);
  try {
    const target = copier.resolve(destPath);
    for (const entry of entries) copier.copyEntry(entry, target, intoDir);
  } catch (err) {
    const message = oneLine(copier.hideRoot(describeError(err)));
    throw message.startsWith("COPY failed") ? err : new FlokaError(`COPY failed: ${message}`);
  }
}

/** `dest` as an absolute path in the image; a trailing `/` (meaning a directory) is kept. */
function destinationPath(dest: string, workdir: string): string {
  const full = dest.startsWith("/") ? dest : `${workdir}/${dest}`;
  const dir = dest === "" || dest === "." || /\/\.?$/.test(dest);
  const clean = cleanPath("/" + full);
  return dir && clean !== "/" ? clean + "/" : clean;
}

class Copier {
  private readonly uid: number;
  private readonly gid: number;

  constructor(readonly root: string, readonly opts: CopyOptions) {
    this.uid = opts.uid ?? 0;
    this.gid = opts.gid ?? 0;
  }

  /** The host path of the image path `path`, symlinks resolved inside the root. */
  resolve(path: string): string {
    try {
      return secureJoin(this.root, path);
    } catch (err) {
      throw new FlokaError(`COPY failed: ${path}: ${oneLine(describeError(err))}`);
    }
  }

  copyEntry(entry: SourceEntry, target: string, intoDir: boolean): void {
    const [top, ...below] = entry.items;
    if (top.kind === "dir") {
      const created = this.ensureDir(target);
      const dirs: [SourceItem, string][] = created ? [[top, target]] : [];
      const fresh = new Set(created ? [target] : []);
      for (const item of below) this.place(item, `${target}/${item.rel}`, dirs, fresh);
      this.setDirTimes(dirs);
      return;
    }
    let file = target;
    if (intoDir) {
      this.ensureDir(target);
      file = `${target}/${entry.name}`;
    } else if (lstatOrNull(target)?.isDirectory) {
      file = `${target}/${entry.name}`;
    } else {
      this.ensureDir(parentOf(target, this.root));
    }
    this.place(top, file, [], new Set());
  }

  /**
   * Makes `dir` (a resolved path inside the root) a directory, creating what is missing
   * from the root down. Returns whether `dir` itself was created.
   */
  private ensureDir(dir: string): boolean {
    let path = this.root;
    let created = false;
    for (const part of dir.slice(this.root.length).split("/")) {
      if (part === "") continue;
      path += "/" + part;
      const stat = lstatOrNull(path);
      created = !stat;
      if (stat?.isDirectory) continue;
      if (stat) throw this.notDirectory(path);
      Deno.mkdirSync(path, { mode: 0o700 });
      libc.lchown(path, this.uid, this.gid);
      Deno.chmodSync(path, CREATED_DIR_MODE); // not mkdir's mode: the umask would reduce it
    }
    return created;
  }

  /**
   * Writes one item at `target`, whose parent is a real directory inside the root. `fresh`
   * holds the directories this entry created: nothing can exist in them yet, which saves a
   * failing lstat per file (the costliest call when copying many small files).
   */
  private place(item: SourceItem, target: string, dirs: [SourceItem, string][], fresh: Set<string>): void {
    const existing = fresh.has(target.slice(0, target.lastIndexOf("/"))) ? null : lstatOrNull(target);
    if (item.kind === "dir") {
      if (existing && !existing.isDirectory) throw this.notDirectory(target);
      if (!existing) {
        Deno.mkdirSync(target, { mode: 0o700 });
        fresh.add(target);
      }
      this.setOwnerAndMode(item, target);
      dirs.push([item, target]); // its times once its contents are written
      return;
    }
    if (existing?.isDirectory) {
      throw new FlokaError(`COPY failed: cannot replace directory ${this.shown(target)} with a file`);
    }
    if (existing) Deno.removeSync(target); // unlinks a symlink, never follows it
    this.create(item, target);
    this.setOwnerAndMode(item, target);
    setTimes(item, target);
  }

  /** Creates `target`, which does not exist, as a copy of `item`. */
  private create(item: SourceItem, target: string): void {
    switch (item.kind) {
      case "file":
        return copyFileExclusive(item, target);
      case "symlink":
        return Deno.symlinkSync(item.linkTarget!, target);
      case "fifo":
        return libc.mknod(target, S_IFIFO | 0o600, 0, 0);
      case "chardev":
      case "blockdev": {
        const type = item.kind === "chardev" ? S_IFCHR : S_IFBLK;
        const [major, minor] = splitDev(item.rdev ?? 0);
        return libc.mknod(target, type | 0o600, major, minor);
      }
      case "dir":
        throw new Error("unreachable: directories are made by place()");
    }
  }

  /** chown before chmod: chown clears setuid and setgid. A symlink has no mode of its own. */
  private setOwnerAndMode(item: SourceItem, target: string): void {
    libc.lchown(target, this.uid, this.gid);
    if (item.kind !== "symlink") Deno.chmodSync(target, this.opts.chmod ?? item.mode);
  }

  /** Directory times last and deepest first: writing inside a directory changes its mtime. */
  private setDirTimes(dirs: readonly [SourceItem, string][]): void {
    for (let i = dirs.length - 1; i >= 0; i--) setTimes(dirs[i][0], dirs[i][1]);
  }

  private notDirectory(path: string): FlokaError {
    return new FlokaError(`COPY failed: cannot copy to non-directory: ${this.shown(path)}`);
  }

  /** A host path inside the root as the image sees it. */
  shown(path: string): string {
    return path === this.root ? "/" : path.slice(this.root.length);
  }

  /** `text` with the root's host path taken out of the paths it names. */
  hideRoot(text: string): string {
    return this.root ? text.replaceAll(this.root + "/", "/") : text;
  }
}

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Linux's major and minor numbers of a dev_t. */
function splitDev(rdev: number): [number, number] {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [Number(major), Number(minor)];
}

/**
 * Copies a regular file to `target` through a file this process creates with O_EXCL, so a
 * symlink planted at `target` can never be written through.
 */
function copyFileExclusive(item: SourceItem, target: string): void {
  if (item.size <= SMALL_FILE) {
    Deno.writeFileSync(target, Deno.readFileSync(item.hostPath), { createNew: true, mode: 0o600 });
    return;
  }
  Deno.openSync(target, { write: true, createNew: true, mode: 0o600 }).close();
  Deno.copyFileSync(item.hostPath, target); // the file made above: copy_file_range, reflinks
}

function setTimes(item: SourceItem, target: string): void {
  if (!item.mtime) return;
  libc.lutimens(target, timespec(item.atime ?? item.mtime), timespec(item.mtime));
}

function timespec(date: Date): libc.Timespec {
  const ms = date.getTime();
  const sec = Math.floor(ms / 1000);
  return { sec, nsec: (ms - sec * 1000) * 1_000_000 };
}

/** The parent of a resolved path inside `root` (the root for its own children). */
function parentOf(path: string, root: string): string {
  const at = path.lastIndexOf("/");
  return at <= root.length ? root : path.slice(0, at);
}

// ---------------------------------------------------------------------------------------
// Small helpers.

function sortedNames(dir: string): string[] {
  const names: string[] = [];
  for (const entry of Deno.readDirSync(dir)) names.push(entry.name);
  return names.sort();
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

function join(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}
