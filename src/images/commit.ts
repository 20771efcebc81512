/**
 * A container's file system out of the container: as a new image on top of the container's
 * image (`floka commit`), or as one plain tar of the whole merged root (`floka export`).
 *
 * Commit: the container's writable layer (its overlay `upper/` directory, whiteouts
 * included) becomes one more layer, made and stored as a build step's is (`commitLayer`);
 * the config is the image's, with the container's command, environment, working directory
 * and user (as `docker commit` takes them from the container), then the `--change`
 * instructions, parsed as Flokafile lines and applied as a build applies them. A running
 * container is committed live, without pausing it: a file it changes while the layer is
 * written makes the commit fail rather than store a torn file.
 *
 * Export: the container's root as its processes see it (its image's layers with its own
 * layer on top) is mounted read-only, with the upper directory as one more lower directory
 * of a new overlay, so nothing of the container is ever written. The mount is made in a
 * private mount namespace of the calling thread: nothing else sees it, and it disappears
 * with the process whatever happens (even SIGKILL). Everything that reads through it runs
 * synchronously on that thread (`diffTar` does), since Deno's other threads stay in the
 * host's namespace.
 */
import * as libc from "../../ffi/libc.ts";
import type { Digest } from "../../lib/digest.ts";
import { envKey } from "../../lib/env.ts";
import { describeError, FlokaError } from "../../lib/errors.ts";
import { type Command, expandInstruction, parseFlokafile } from "../../lib/flokafile/index.ts";
import { CLONE_NEWNS, MNT_DETACH, MS_PRIVATE, MS_RDONLY, MS_REC } from "../../lib/linux.ts";
import type { ImageManifest } from "../../lib/oci.ts";
import { parseReference } from "../../lib/reference.ts";
import { diffTar } from "../build/layer_diff.ts";
import {
  applyMetadata,
  baseState,
  type BuildState,
  envMap,
  scratchState,
  withHistory,
} from "../build/state.ts";
import { commitLayer } from "../build/steps.ts";
import type { Container } from "../containers/store.ts";
import { LAYER_LINKS } from "../runtime/spec.ts";
import type { StoreRoot } from "../store/root.ts";
import type { Sink } from "./archive.ts";
import type { ContentStore } from "./content_store.ts";
import { contentStore, type Image, listImages } from "./images.ts";

/** The instructions `--change` accepts, as `docker commit --change` does. */
export const CHANGE_INSTRUCTIONS: readonly string[] = [
  "CMD",
  "ENTRYPOINT",
  "ENV",
  "EXPOSE",
  "HEALTHCHECK",
  "LABEL",
  "ONBUILD",
  "USER",
  "VOLUME",
  "WORKDIR",
  "STOPSIGNAL",
];

/**
 * The image a container was made from: the one whose layers it stacks (its tag may have
 * moved since), the one of its recorded name first.
 */
export function containerImage(store: StoreRoot, container: Container): Image {
  const wanted = container.record.lowerDirs.join(":");
  const candidates = listImages(store).filter((i) => i.lowerDirs.join(":") === wanted);
  const named = candidates.find((i) => `${i.repository}:${i.tag}` === container.record.image);
  const image = named ?? candidates[0];
  if (!image) {
    throw new FlokaError(
      `the image of container ${
        container.record.id.slice(0, 12)
      } (${container.record.image}) is no longer in the store`,
    );
  }
  return image;
}

/** The image as a build state; a hand-placed rootfs is first stored as a layer (as a build's FROM does). */
async function imageState(content: ContentStore, image: Image): Promise<BuildState> {
  if (image.manifestDigest && image.config) {
    const manifest = JSON.parse(
      new TextDecoder().decode(content.readBlob(image.manifestDigest)),
    ) as ImageManifest;
    return baseState(image.config, manifest.layers);
  }
  const layer = await commitLayer(content, image.lowerDirs[0]);
  const scratch = scratchState().config;
  const state = baseState(
    { ...scratch, ...image.config, config: image.config?.config ?? scratch.config },
    [],
  );
  state.config.rootfs = { type: "layers", diff_ids: [] };
  state.config.history = [];
  return withHistory(state, `floka: ${image.repository}:${image.tag} placed by hand`, layer ?? undefined);
}

/** One `--change` line as a parsed instruction, refusing what `docker commit` refuses. */
export function parseChange(change: string, config: BuildState["config"]): Command {
  const parsed = parseFlokafile(`FROM scratch\n${change}\n`, "--change");
  const instructions = parsed.stages[0]?.instructions ?? [];
  if (parsed.stages.length !== 1 || instructions.length !== 1) {
    throw new FlokaError(`--change ${JSON.stringify(change)}: give exactly one instruction per --change`);
  }
  const instr = instructions[0];
  if (!CHANGE_INSTRUCTIONS.includes(instr.name.toUpperCase())) {
    throw new FlokaError(`${instr.name.toLowerCase()} is not a valid change command`);
  }
  return expandInstruction(instr, envMap(config), parsed.escape);
}

/** The config with the container's own command, environment, working directory and user. */
function withContainerConfig(state: BuildState, container: Container): BuildState {
  const config = structuredClone(state.config);
  const c = config.config ??= {};
  const r = container.record.config;
  // HOSTNAME is the container's own, set at each start: not part of an image.
  c.Env = r.env.filter((e) => envKey(e) !== "HOSTNAME");
  c.Entrypoint = r.entrypoint;
  c.Cmd = r.cmd;
  if (r.workingDir) c.WorkingDir = r.workingDir;
  if (r.user) c.User = r.user;
  else delete c.User;
  return { config, layers: state.layers };
}

export interface CommitOptions {
  /** `--change` lines, in order. */
  changes: string[];
  message?: string;
  author?: string;
  /** The name to tag the image with; untagged without. */
  reference?: string;
}

/** Commits the container as a new image; returns its ID. */
export async function commitContainer(
  store: StoreRoot,
  container: Container,
  opts: CommitOptions,
): Promise<Digest> {
  // Everything the user typed is checked before anything is stored.
  const ref = opts.reference === undefined ? null : parseReference(opts.reference);
  if (ref?.digest) {
    throw new FlokaError(`refusing to create a tag with a digest reference: ${opts.reference}`);
  }
  const image = containerImage(store, container);
  const probe = image.config ?? scratchState().config;
  for (const change of opts.changes) parseChange(change, probe);

  const content = contentStore(store);
  content.init();
  return await content.withPullLease(async () => {
    let state = withContainerConfig(await imageState(content, image), container);
    let cmdSet = false;
    for (const change of opts.changes) {
      // Each change sees the environment the ones before it made (as a Flokafile's lines do).
      const command = parseChange(change, state.config);
      if (command.kind === "CMD") cmdSet = true;
      state = applyMetadata(state, command, { cmdSet });
    }
    const layer = await commitLayer(content, `${container.dir}/upper`);
    const record = container.record;
    const createdBy = [record.path, ...record.args].join(" ");
    state = withHistory(state, createdBy, layer ?? undefined);
    const last = state.config.history!.at(-1)!;
    if (opts.message) last.comment = opts.message;
    if (opts.author) {
      last.author = opts.author;
      state.config.author = opts.author;
    }
    return await content.storeImage(state.config, state.layers, ref ? [ref] : []);
  });
}

/** Where export writes: a file or stdout. */

/**
 * Writes the container's merged root file system to `sink` as a tar, streamed. Leaves this
 * process's main thread in a private mount namespace (the command ends right after).
 */
export async function exportContainer(
  content: ContentStore,
  container: Container,
  sink: Sink,
): Promise<void> {
  content.init();
  const dir = content.tempPath("export");
  const merged = `${dir}/merged`;
  Deno.mkdirSync(merged, { recursive: true, mode: 0o700 });
  Deno.mkdirSync(`${dir}/empty`, { mode: 0o700 });
  let mounted = false;
  const cwd = Deno.cwd();
  try {
    // This thread alone from here: the mount below is seen by no one else, and dies with us.
    libc.unshare(CLONE_NEWNS);
    libc.mount(null, "/", null, MS_REC | MS_PRIVATE, null);
    // The container's layer links (`layers/<i>`, top first) keep mount(2)'s options short.
    const lowers = ["upper", ...container.record.lowerDirs.map((_, i) => `${LAYER_LINKS}/${i}`)];
    if (lowers.length < 2) lowers.push(`${dir}/empty`); // overlayfs wants two lower dirs without an upper
    Deno.chdir(container.dir);
    try {
      libc.mount("overlay", merged, "overlay", MS_RDONLY, `lowerdir=${lowers.join(":")}`);
      mounted = true;
    } catch (err) {
      throw new FlokaError(
        `cannot mount the file system of container ${container.record.id.slice(0, 12)}: ${
          describeError(err)
        }`,
      );
    } finally {
      Deno.chdir(cwd);
    }
    const reader = diffTar(merged).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (let n = 0; n < value.length;) n += await sink.write(value.subarray(n));
      }
    } catch (err) {
      reader.cancel().catch(() => {});
      throw err;
    }
  } finally {
    if (mounted) {
      try {
        libc.umount2(merged, 0);
      } catch {
        libc.umount2(merged, MNT_DETACH);
      }
    }
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* the error that got us here matters more */ }
  }
}
