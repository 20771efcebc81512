/**
 * COPY and ADD: the sources (the context, a stage or image for `--from`, inline heredocs,
 * and for ADD URLs and local tar archives) are copied through an overlay mount of the
 * step's state, so that the destination resolves through the image's own directories and
 * symlinks, and the mount's upper directory becomes the step's layer.
 */
import { sha256 } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import type { CopyCommand, RawInstruction } from "../../lib/flokafile/index.ts";
import { resolveUser } from "../../lib/passwd.ts";
import { secureJoin } from "../../lib/secure_join.ts";
import type { ContentStore } from "../images/content_store.ts";
import { unpackLayer } from "../images/unpack.ts";
import {
  checksumSources,
  copySources,
  loadIgnoreRules,
  resolveSources,
  type SourceEntry,
} from "./context.ts";
import { type MergedRoot, mountMerged } from "./overlay.ts";
import { type BuildState, diffIds } from "./state.ts";
import { commitLayer, type StoredLayer } from "./steps.ts";

const isUrl = (source: string) => /^https?:\/\//i.test(source);

/** The sources that are files of the context (or of the `--from` root). */
function pathSources(command: CopyCommand): string[] {
  const inline = new Set(command.heredocs.map((h) => h.name));
  return command.sources.filter((s) => !inline.has(s) && !(command.kind === "ADD" && isUrl(s)));
}

function checkDestination(command: CopyCommand, instr: RawInstruction): void {
  const wildcard = command.sources.some((s) => /[*?[]/.test(s));
  if ((command.sources.length > 1 || wildcard) && !command.dest.endsWith("/")) {
    throw new FlokaError(
      `${instr.location.file}:${instr.location.line}: When using ${command.kind} with more than one ` +
        `source file, the destination must be a directory and end with a /`,
    );
  }
}

/**
 * What the step's result depends on beyond its instruction: for the context, a checksum
 * of every file it copies; for `--from`, the key of the stage or image copied from.
 */
export async function copyStepKey(
  contextDir: string,
  command: CopyCommand,
  fromKey: string | undefined,
  instr: RawInstruction,
): Promise<unknown> {
  checkDestination(command, instr);
  if (fromKey !== undefined) return { from: fromKey };
  const paths = pathSources(command);
  if (paths.length === 0) return { inline: true };
  const entries = resolveSources(contextDir, paths, { ignore: loadIgnoreRules(contextDir) });
  return { context: await checksumSources(entries) };
}

export interface CopyStepOptions {
  contextDir: string;
  command: CopyCommand;
  state: BuildState;
  /** The stage or image of `--from`. */
  from: BuildState | null;
  signal: AbortSignal;
}

function lowerDirs(content: ContentStore, state: BuildState): string[] {
  return diffIds(state).map((d) => content.layerPath(d)).reverse();
}

/** Runs a COPY or ADD; returns its layer, or null when it changed nothing. */
export async function copyStep(content: ContentStore, opts: CopyStepOptions): Promise<StoredLayer | null> {
  const { command } = opts;
  const work = content.tempPath("build");
  Deno.mkdirSync(work, { recursive: true });
  const mounts: MergedRoot[] = [];
  try {
    const target = mountMerged(`${work}/target`, lowerDirs(content, opts.state));
    mounts.push(target);
    const entries: SourceEntry[] = [];
    const paths = pathSources(command);
    if (paths.length) {
      if (opts.from) {
        const from = mountMerged(`${work}/from`, lowerDirs(content, opts.from));
        mounts.push(from);
        entries.push(...resolveSources(from.path, paths));
      } else {
        entries.push(
          ...resolveSources(opts.contextDir, paths, { ignore: loadIgnoreRules(opts.contextDir) }),
        );
      }
    }
    entries.push(...inlineSources(`${work}/inline`, command));
    if (command.kind === "ADD") {
      for (const [i, url] of command.sources.filter(isUrl).entries()) {
        opts.signal.throwIfAborted();
        entries.push(await downloaded(`${work}/url-${i}`, url, command.checksum));
      }
    }
    const owner = command.chown ? chownIds(target.path, command.chown) : { uid: 0, gid: 0 };
    const copy = {
      ...owner,
      chmod: command.chmod ? parseChmod(command.chmod) : undefined,
      workdir: opts.state.config.config?.WorkingDir || "/",
    };
    const archives = command.kind === "ADD" ? entries.filter((e) => isLocalArchive(e, command)) : [];
    const plain = entries.filter((e) => !archives.includes(e));
    if (plain.length) copySources(plain, target.path, command.dest, copy);
    for (const [i, archive] of archives.entries()) {
      // ADD unpacks a local tar archive into the destination directory.
      const dir = `${work}/archive-${i}`;
      using file = await Deno.open(archive.items[0].hostPath);
      await unpackLayer(file.readable, archiveCompression(archive.items[0].hostPath), dir);
      const dest = command.dest.endsWith("/") ? command.dest : `${command.dest}/`;
      copySources(resolveSources(dir, ["."]), target.path, dest, copy);
    }
    for (const mount of mounts.reverse()) mount.unmount();
    return await commitLayer(content, target.upper);
  } finally {
    for (const mount of mounts) mount.unmount();
    Deno.removeSync(work, { recursive: true });
  }
}

/** The heredoc sources (`COPY <<EOF /path`) as files of their own. */
function inlineSources(dir: string, command: CopyCommand): SourceEntry[] {
  if (!command.heredocs.length) return [];
  Deno.mkdirSync(dir);
  for (const doc of command.heredocs) {
    Deno.writeTextFileSync(`${dir}/${doc.name}`, doc.content, { mode: 0o644 });
  }
  return resolveSources(dir, command.heredocs.map((h) => h.name));
}

/** An ADD URL, downloaded as Docker does: named after the URL's last path part, mode 0600. */
async function downloaded(dir: string, url: string, checksum: string | undefined): Promise<SourceEntry> {
  Deno.mkdirSync(dir);
  const name = decodeURIComponent(new URL(url).pathname.split("/").pop() || "") || "download";
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new FlokaError(`ADD ${url}: ${(err as Error).message}`);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new FlokaError(`ADD ${url}: the server answered ${response.status} ${response.statusText}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (checksum !== undefined) {
    const got = await sha256(bytes);
    if (got !== checksum) {
      throw new FlokaError(`ADD ${url}: checksum mismatch: expected ${checksum}, got ${got}`);
    }
  }
  const path = `${dir}/${name}`;
  Deno.writeFileSync(path, bytes, { mode: 0o600 });
  Deno.chmodSync(path, 0o600);
  const modified = response.headers.get("last-modified");
  if (modified && !isNaN(Date.parse(modified))) Deno.utimeSync(path, new Date(), new Date(modified));
  return resolveSources(dir, [name])[0];
}

/** `--chown=user[:group]` resolved against the image's own passwd and group files. */
function chownIds(root: string, spec: string): { uid: number; gid: number } {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(secureJoin(root, path));
    } catch {
      return "";
    }
  };
  const user = resolveUser(spec, read("/etc/passwd"), read("/etc/group"));
  // `--chown=user` alone takes the user's primary group only when the user is a name.
  return { uid: user.uid, gid: user.gid };
}

function parseChmod(text: string): number {
  if (!/^[0-7]{3,4}$/.test(text)) {
    throw new FlokaError(`invalid --chmod ${JSON.stringify(text)}: an octal mode such as 0755 is expected`);
  }
  return parseInt(text, 8);
}

function readHead(path: string, length: number): Uint8Array {
  using file = Deno.openSync(path);
  const head = new Uint8Array(length);
  const n = file.readSync(head) ?? 0;
  return head.subarray(0, n);
}

function archiveCompression(path: string): "gzip" | "zstd" | "none" {
  const head = readHead(path, 4);
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/** A local file source of ADD that is a tar archive (plain, gzip or zstd). */
function isLocalArchive(entry: SourceEntry, command: CopyCommand): boolean {
  if (isUrl(entry.source) || command.heredocs.some((h) => h.name === entry.source)) return false;
  const item = entry.items[0];
  if (item.kind !== "file") return false;
  if (archiveCompression(item.hostPath) !== "none") return true;
  if (item.size < 512) return false; // shorter than one tar header
  const head = readHead(item.hostPath, 265);
  return new TextDecoder().decode(head.subarray(257, 262)) === "ustar";
}
