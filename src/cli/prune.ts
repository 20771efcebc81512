/**
 * Housekeeping: `floka container prune` and `floka image prune` (with `container ls|rm` and
 * `image ls|rm` as aliases of `ps`, `rm`, `images`, `rmi`), and the pieces `floka system`
 * shares with them: what each prune removes, and how much room that really frees.
 *
 * Reclaimed space is measured, not estimated: the bytes of the regular files that went,
 * a file with several hard links counted once (a layer's files are often linked).
 */
import { type CommandSpec, formatCommandHelp, parseCommandLine, UsageError } from "../../lib/argv.ts";
import type { Digest } from "../../lib/digest.ts";
import { describeError } from "../../lib/errors.ts";
import type { ImageManifest } from "../../lib/oci.ts";
import { familiarReference, parseReference } from "../../lib/reference.ts";
import { humanSize } from "../../lib/units.ts";
import { BuildCache } from "../build/cache.ts";
import { diffIds } from "../build/state.ts";
import { isAlive } from "../containers/liveness.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import type { ContentStore } from "../images/content_store.ts";
import { contentStore, type Image, listImages } from "../images/images.ts";
import { type CliCommand, defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { imagesCommand } from "./images.ts";
import { psCommand } from "./ps.ts";
import { removeContainer, rmCommand } from "./rm.ts";
import { rmiCommand } from "./rmi.ts";

// ---------------------------------------------------------------------------------------
// Sizes.

/**
 * Bytes of the regular files under `paths` (files or directories; symlinks not followed),
 * each inode counted once across all of them; `seen` carries inodes counted by earlier calls.
 */
export function treeSize(paths: Iterable<string>, seen = new Set<string>()): number {
  let total = 0;
  const visit = (path: string) => {
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(path);
    } catch {
      return; // gone meanwhile
    }
    if (st.isDirectory) {
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(path)];
      } catch {
        return;
      }
      for (const e of entries) visit(`${path}/${e.name}`);
    } else if (st.isFile) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
      total += st.size;
    }
  };
  for (const p of paths) visit(p);
  return total;
}

/** Everything the image store keeps of images and their build cache: blobs, layers, cache entries. */
function contentPaths(content: ContentStore): string[] {
  return [`${content.root}/blobs/sha256`, `${content.root}/layers/sha256`, new BuildCache(content).dir];
}

/** Docker's `Total reclaimed space: 1.2MB`. */
/** Docker's list of what a prune removed: a title line, one line each, a blank line; nothing when none. */
export function printDeleted(title: string, items: readonly string[]): void {
  if (items.length) console.log([`${title}:`, ...items, ""].join("\n"));
}

export function reclaimedLine(bytes: number): string {
  return `Total reclaimed space: ${humanSize(bytes)}`;
}

// ---------------------------------------------------------------------------------------
// What is in use.

/** True when `c` stacks `image`'s layers (the test rmi uses). */
export function usesImage(c: Container, image: Image): boolean {
  return c.record.lowerDirs.join(":") === image.lowerDirs.join(":");
}

/** An image's identity in the store: its manifest, or its directory when placed by hand. */
export function imageKey(image: Image): string {
  return image.manifestDigest ?? image.dir ?? image.lowerDirs.join(":");
}

/** The files an image occupies: its layers and blobs, or its directory when placed by hand. */
export function imageFootprint(content: ContentStore, image: Image): string[] {
  if (image.dir) return [image.dir];
  const paths = [...image.lowerDirs];
  for (const d of [image.manifestDigest, image.configDigest, image.repoDigest]) {
    if (d) paths.push(content.blobPath(d));
  }
  if (image.manifestDigest) {
    try {
      const manifest = JSON.parse(
        new TextDecoder().decode(content.readBlob(image.manifestDigest)),
      ) as ImageManifest;
      for (const l of manifest.layers ?? []) paths.push(content.blobPath(l.digest));
    } catch { /* a broken image: its layers are still listed */ }
  }
  return paths;
}

// ---------------------------------------------------------------------------------------
// Containers.

/** A container that is not running: what `container prune` removes. */
export function isStopped(c: Container): boolean {
  return c.state.status === "exited" || c.state.status === "created";
}

export interface ContainerPruneResult {
  ids: string[];
  bytes: number;
  errors: string[];
}

/** Removes every stopped container; a container that started meanwhile is left alone. */
export async function pruneContainers(store: ContainerStore): Promise<ContainerPruneResult> {
  const result: ContainerPruneResult = { ids: [], bytes: 0, errors: [] };
  for (const listed of store.list()) {
    const c = reconcile(store, listed);
    if (!c || !isStopped(c) || isAlive(c.state)) continue;
    const bytes = treeSize([c.dir]);
    try {
      // Without force: removeContainer refuses a container that started since it was listed.
      await removeContainer(store, c.record.id, false);
      result.ids.push(c.record.id);
      result.bytes += bytes;
    } catch (err) {
      result.errors.push(describeError(err));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Images and the build cache.

export interface ImagePruneResult {
  /** `untagged: NAME` and `deleted: sha256:…` lines, as Docker lists them. */
  lines: string[];
  bytes: number;
}

/** Garbage collection as `rmi` does it: what no image and no container (of any state) needs. */
function collectGarbage(containers: ContainerStore, content: ContentStore): Digest[] {
  // Listed just before: layers a container still stacks stay, tagged or not.
  return content.collectGarbage(new Set(containers.list().flatMap((c) => c.record.lowerDirs)));
}

/**
 * Removes the dangling images (untagged), or with `all` every image no container uses, then
 * every blob and layer nothing needs any more, and the build cache entries whose layers went
 * (as `rmi` does). Images placed by hand are never removed: they are the user's directories.
 * The images are chosen and untagged under the containers' lock, so no container is made
 * from one meanwhile; the garbage collection runs after it, as `rmi`'s does: it waits for
 * pulls and builds (its exclusive lease), and a build makes containers while holding its
 * shared lease, so holding the containers' lock there could deadlock.
 */
export function pruneImages(containers: ContainerStore, all: boolean): ImagePruneResult {
  const content = contentStore(containers.store);
  const before = treeSize(contentPaths(content));
  const lines: string[] = [];
  const configs = new Set<string>();
  containers.locked(() => {
    const inUse = containers.list();
    const doomed = new Map<Digest, Image>();
    const kept = new Set<Digest>();
    for (const image of listImages(containers.store)) {
      if (image.dir || !image.manifestDigest) continue;
      const wanted = all || image.repository === "<none>";
      if (!wanted || inUse.some((c) => usesImage(c, image))) kept.add(image.manifestDigest);
      else doomed.set(image.manifestDigest, image);
    }
    for (const [manifest, image] of doomed) {
      if (kept.has(manifest)) continue; // another name of it stays
      for (const name of content.removeManifest(manifest)) {
        lines.push(`untagged: ${familiarReference(parseReference(name))}`);
      }
      if (image.configDigest) {
        lines.push(`deleted: ${image.configDigest}`);
        configs.add(image.configDigest);
      }
    }
  });
  for (const digest of collectGarbage(containers, content)) {
    if (!configs.has(digest)) lines.push(`deleted: ${digest}`);
  }
  new BuildCache(content).prune();
  return { lines, bytes: Math.max(0, before - treeSize(contentPaths(content))) };
}

function cacheKeys(cache: BuildCache): string[] {
  try {
    return [...Deno.readDirSync(cache.dir)].filter((e) => e.name.endsWith(".json")).map((e) =>
      e.name.slice(0, -".json".length)
    );
  } catch {
    return [];
  }
}

export interface CachePruneResult {
  keys: string[];
  bytes: number;
}

/**
 * Removes build cache entries: those whose layers are gone, or with `all` every entry; then
 * the blobs and layers only the cache kept (none after an image prune's garbage collection).
 */
export function pruneBuildCache(containers: ContainerStore, all: boolean): CachePruneResult {
  const content = contentStore(containers.store);
  const cache = new BuildCache(content);
  const before = treeSize(contentPaths(content));
  const keys = cacheKeys(cache);
  if (all) {
    for (const key of keys) {
      try {
        Deno.removeSync(`${cache.dir}/${key}.json`);
      } catch { /* removed by another prune */ }
    }
  }
  collectGarbage(containers, content);
  cache.prune();
  const left = new Set(cacheKeys(cache));
  return {
    keys: keys.filter((k) => !left.has(k)),
    bytes: Math.max(0, before - treeSize(contentPaths(content))),
  };
}

/** The build cache's entries and the bytes only it holds (entries, and layers no image has). */
export function buildCacheUsage(content: ContentStore, imagePaths: ReadonlySet<string>) {
  const cache = new BuildCache(content);
  const keys = cacheKeys(cache);
  const paths = new Set<string>();
  for (const key of keys) {
    paths.add(`${cache.dir}/${key}.json`);
    const state = cache.get(key);
    if (!state) continue;
    for (const l of state.layers) paths.add(content.blobPath(l.digest));
    for (const d of diffIds(state)) paths.add(content.layerPath(d));
  }
  for (const p of imagePaths) paths.delete(p);
  return { count: keys.length, bytes: treeSize(paths) };
}

// ---------------------------------------------------------------------------------------
// The prompt.

/** Asks as Docker does before pruning, reading the answer from stdin (a pipe too); true for `y`/`yes`. */
export function confirm(warning: string): boolean {
  const encoder = new TextEncoder();
  Deno.stdout.writeSync(encoder.encode(`${warning}\nAre you sure you want to continue? [y/N] `));
  const bytes: number[] = [];
  const buf = new Uint8Array(1);
  while (bytes.length < 64) {
    let n: number | null;
    try {
      n = Deno.stdin.readSync(buf);
    } catch {
      n = null;
    }
    if (!n || buf[0] === 0x0a) break;
    bytes.push(buf[0]!);
  }
  const yes = /^y(es)?$/i.test(new TextDecoder().decode(new Uint8Array(bytes)).trim());
  if (!yes) Deno.stdout.writeSync(encoder.encode("\n"));
  return yes;
}

// ---------------------------------------------------------------------------------------
// Commands with subcommands: `floka container prune`, `floka image ls`.

/** A command whose first argument names a subcommand; the completion script lists them. */
export interface CommandGroup extends CliCommand {
  subcommands: readonly CliCommand[];
}

/** `cmd` under another name (`ps` as `container ls`). */
export function alias(name: string, cmd: CliCommand): CliCommand {
  return { spec: { ...cmd.spec, name }, action: cmd.action };
}

/**
 * `floka NAME SUBCOMMAND [OPTIONS] [ARG...]`: the subcommand's own flags, help and argument
 * checks, with lib/argv as for any command (`floka container prune --help`).
 */
export function commandGroup(
  name: string,
  description: string,
  subcommands: readonly CliCommand[],
): CommandGroup {
  const width = Math.max(...subcommands.map((s) => s.spec.name.length - name.length - 1));
  const spec: CommandSpec = {
    name,
    usage: "COMMAND\n\nCommands:\n" +
      subcommands.map((s) => `  ${s.spec.name.slice(name.length + 1).padEnd(width)}   ${s.spec.description}`)
        .join("\n") +
      `\n\nRun 'floka ${name} COMMAND --help' for more information on a command.`,
    description,
    options: {},
    minArgs: 1,
    maxArgs: Infinity,
    optionsBeforeArgsOnly: true,
  };
  return {
    spec,
    subcommands,
    action: ({ args, globals }) => {
      const [sub, ...rest] = args;
      const command = subcommands.find((s) => s.spec.name === `${name} ${sub}`);
      if (!command) throw new UsageError(`unknown ${name} command ${JSON.stringify(sub)}`, name);
      const parsed = parseCommandLine(command.spec, rest);
      if (parsed.help) {
        console.log(formatCommandHelp(command.spec));
        return 0;
      }
      return command.action({ options: parsed.options, args: parsed.args, globals });
    },
  };
}

const containerPrune = defineCommand(
  {
    name: "container prune",
    usage: "[OPTIONS]",
    description: "Remove all stopped containers",
    minArgs: 0,
    maxArgs: 0,
    options: {
      force: { short: "f", long: "force", help: "Do not prompt for confirmation" },
    },
  },
  async ({ options, globals }) => {
    if (!options.force && !confirm("WARNING! This will remove all stopped containers.")) return 0;
    const result = await pruneContainers(openStore(globals));
    printDeleted("Deleted Containers", result.ids);
    for (const e of result.errors) console.error(`floka: ${e}`);
    console.log(reclaimedLine(result.bytes));
    return result.errors.length ? 1 : 0;
  },
);

const imagePrune = defineCommand(
  {
    name: "image prune",
    usage: "[OPTIONS]",
    description: "Remove unused images",
    minArgs: 0,
    maxArgs: 0,
    options: {
      all: { short: "a", long: "all", help: "Remove all unused images, not just dangling ones" },
      force: { short: "f", long: "force", help: "Do not prompt for confirmation" },
    },
  },
  ({ options, globals }) => {
    const warning = options.all
      ? "WARNING! This will remove all images without at least one container associated to them."
      : "WARNING! This will remove all dangling images.";
    if (!options.force && !confirm(warning)) return 0;
    const result = pruneImages(openStore(globals), options.all);
    printDeleted("Deleted Images", result.lines);
    console.log(reclaimedLine(result.bytes));
    return 0;
  },
);

/** `floka container prune|ls|rm`. */
export const containerCommand: CommandGroup = commandGroup("container", "Manage containers", [
  alias("container ls", psCommand),
  containerPrune,
  alias("container rm", rmCommand),
]);

/** `floka image prune|ls|rm`. */
export const imageCommand: CommandGroup = commandGroup("image", "Manage images", [
  alias("image ls", imagesCommand),
  imagePrune,
  alias("image rm", rmiCommand),
]);
