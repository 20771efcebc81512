/**
 * `floka build`: runs a parsed Flokafile, step by step, into an image in the store.
 *
 * Each stage starts from its base (an image, an earlier stage, or scratch) and every
 * instruction turns the state into the next: metadata instructions change the config;
 * RUN, COPY and ADD also add a layer (nothing, when they changed nothing). Before running a
 * step the build looks up its key in the cache (`cache.ts`), and a hit skips it. Stages are
 * built when something needs them: the target, a FROM of a stage, or a `COPY --from`.
 */
import type { Digest } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import {
  type Command,
  type CopyCommand,
  expandInstruction,
  expandWord,
  type ParsedFlokafile,
  parseTrigger,
  type RawInstruction,
  type RunCommand,
  runHeredocPlan,
  type Stage,
} from "../../lib/flokafile/index.ts";
import type { ImageConfig, ImageManifest } from "../../lib/oci.ts";
import { formatPlatform, hostPlatform } from "../../lib/platform.ts";
import { formatReference, parseReference } from "../../lib/reference.ts";
import type { ContainerStore } from "../containers/store.ts";
import type { ContentStore } from "../images/content_store.ts";
import { findImage, type Image, imageId } from "../images/images.ts";
import type { StoreRoot } from "../store/root.ts";
import { BuildCache } from "./cache.ts";
import { copyStep, copyStepKey } from "./copy_step.ts";
import type { BuildOutput } from "./output.ts";
import {
  applyMetadata,
  baseState,
  type BuildState,
  diffIds,
  envMap,
  scratchState,
  withHistory,
  withShell,
} from "./state.ts";
import { commitLayer, runFailed, runInContainer } from "./steps.ts";
import { makeInitLayer } from "../runtime/run.ts";

export interface BuildOptions {
  contextDir: string;
  /** The Flokafile as the user named it, for messages. */
  fileName: string;
  parsed: ParsedFlokafile;
  /** Full references to tag the result with; none leaves it untagged. */
  tags: string[];
  buildArgs: ReadonlyMap<string, string>;
  target?: string;
  noCache: boolean;
  /** The network of RUN steps without `--network`. */
  network: "none" | "host";
  output: BuildOutput;
  /** Pulls an image a FROM or `COPY --from` names that is not in the store. */
  pull: (reference: string, platform?: string) => Promise<Image>;
  signal: AbortSignal;
}

export interface BuildContext {
  store: StoreRoot;
  content: ContentStore;
  containers: ContainerStore;
}

/** A stage's result: its last state and the key it was reached by. */
interface StageResult {
  state: BuildState;
  key: string;
}

/** The build args every build has, as BuildKit defines them from the platform. */
function platformArgs(): Map<string, string> {
  const p = hostPlatform();
  const platform = formatPlatform(p);
  return new Map([
    ["TARGETPLATFORM", platform],
    ["TARGETOS", p.os],
    ["TARGETARCH", p.architecture],
    ["TARGETVARIANT", p.variant ?? ""],
    ["BUILDPLATFORM", platform],
    ["BUILDOS", p.os],
    ["BUILDARCH", p.architecture],
    ["BUILDVARIANT", p.variant ?? ""],
  ]);
}

/** Runs the build; returns the image ID (its config's digest). */
export async function build(ctx: BuildContext, opts: BuildOptions): Promise<Digest> {
  const { parsed } = opts;
  const cache = new BuildCache(ctx.content);
  const consumed = new Set<string>();
  const automatic = platformArgs();

  // ARGs before the first FROM: usable in FROM lines, and by stages that declare them again.
  const metaVars = new Map(automatic);
  for (const instr of parsed.metaArgs) {
    const command = expand(instr, metaVars);
    if (command.kind !== "ARG") continue;
    for (const arg of command.args) {
      consumed.add(arg.name);
      if (arg.value !== undefined) metaVars.set(arg.name, arg.value);
    }
  }

  const wanted = opts.target?.toLowerCase();
  const target = wanted === undefined
    ? parsed.stages[parsed.stages.length - 1]
    : parsed.stages.find((s) => s.name === wanted);
  if (!target) throw new FlokaError(`target stage "${opts.target}" could not be found`);

  const results = new Map<number, Promise<StageResult>>();
  const stageCount = target.index + 1;

  function expand(instr: RawInstruction, vars: ReadonlyMap<string, string>): Command {
    return expandInstruction(instr, vars, parsed.escape, { buildArgs: opts.buildArgs });
  }

  /** `stage` and the stages it builds on, through FROM and `COPY --from`, in file order. */
  function dependencies(stage: Stage): Stage[] {
    const needed = new Set<Stage>();
    const visit = (s: Stage) => {
      if (needed.has(s)) return;
      needed.add(s);
      const names = [
        expandWord(s.from.args[0] ?? "", metaVars, parsed.escape),
        ...s.instructions.map((i) => i.flags.from).filter((f): f is string => typeof f === "string"),
      ];
      for (const name of names) {
        const dep = stageByName(name, s.index);
        if (dep) visit(dep);
      }
    };
    visit(stage);
    return [...needed].sort((a, b) => a.index - b.index);
  }

  function stageByName(name: string, before: number): Stage | null {
    const lower = name.toLowerCase();
    const stage = /^\d+$/.test(name)
      ? parsed.stages[Number(name)]
      : parsed.stages.find((s) => s.name === lower);
    return stage && stage.index < before ? stage : null;
  }

  function buildStage(stage: Stage): Promise<StageResult> {
    let result = results.get(stage.index);
    if (!result) {
      result = runStage(stage);
      results.set(stage.index, result);
    }
    return result;
  }

  /** The state a FROM or `COPY --from` starts from: a stage, an image, or scratch. */
  async function resolveBase(name: string, before: number, platform?: string): Promise<StageResult> {
    const stage = stageByName(name, before);
    if (stage) return await buildStage(stage);
    if (name === "scratch") return { state: scratchState(), key: "scratch" };
    let image: Image;
    try {
      image = findImage(ctx.store, name) ?? await opts.pull(name, platform);
    } catch (err) {
      // Docker's wording: say which name could not be had (a misspelt stage reads as an image).
      const ref = (() => {
        try {
          return formatReference(parseReference(name));
        } catch {
          return name;
        }
      })();
      throw new FlokaError(
        `${name}: failed to resolve source metadata for ${ref}: ${(err as Error).message}`,
      );
    }
    return await imageState(image);
  }

  /** A store image as a build state; a hand-placed rootfs is first stored as a layer. */
  async function imageState(image: Image): Promise<StageResult> {
    if (image.manifestDigest && image.config) {
      const manifest = JSON.parse(
        new TextDecoder().decode(ctx.content.readBlob(image.manifestDigest)),
      ) as ImageManifest;
      return { state: baseState(image.config, manifest.layers), key: `image:${image.configDigest}` };
    }
    // A hand-placed rootfs can be edited in place: its key covers every entry's metadata.
    const key = await BuildCache.key("hand-placed", [
      await imageId(image),
      treeSignature(image.lowerDirs[0]),
    ]);
    const cached = cache.get(key);
    if (cached) return { state: cached, key };
    const layer = await commitLayer(ctx.content, image.lowerDirs[0]);
    const scratch = scratchState().config;
    let state = baseState(
      { ...scratch, ...image.config, config: image.config?.config ?? scratch.config },
      [],
    );
    state.config.rootfs = { type: "layers", diff_ids: [] };
    state.config.history = [];
    state = withHistory(state, `floka: ${image.repository}:${image.tag} placed by hand`, layer ?? undefined);
    cache.put(key, state);
    return { state, key };
  }

  async function runStage(stage: Stage): Promise<StageResult> {
    const total = stage.instructions.length + 1;
    const at = { index: stage.index, count: stageCount };
    const from = expand(stage.from, metaVars);
    if (from.kind !== "FROM") throw new FlokaError("a stage must start with FROM");
    opts.output.step(at, 1, total, stage.from.original);
    let { state, key } = await resolveBase(from.image, stage.index, from.platform);

    // ARGs declared in this stage, with their values; ENV of the image wins over them.
    const args = new Map<string, string>();
    let cmdSet = false;
    const vars = () => new Map([...args, ...envMap(state.config)]);

    state = { config: structuredClone(state.config), layers: state.layers };
    const instructions = [...onbuildTriggers(state.config, stage.from), ...stage.instructions];
    for (const [i, instr] of instructions.entries()) {
      opts.signal.throwIfAborted();
      const n = i + 2;
      const shownTotal = Math.max(total, instructions.length + 1);
      opts.output.step(at, n, shownTotal, instr.original);
      const started = performance.now();
      const command = expand(instr, vars());
      if (command.kind === "ARG") {
        for (const arg of command.args) {
          consumed.add(arg.name);
          const value = arg.value ?? metaVars.get(arg.name) ?? automatic.get(arg.name);
          if (value !== undefined) args.set(arg.name, value);
        }
      }
      if (command.kind === "CMD") cmdSet = true;

      const stepKey = await BuildCache.key(key, await stepIdentity(command, instr, args, stage.index));
      const cached = opts.noCache ? null : cache.get(stepKey);
      if (cached) {
        state = cached;
        opts.output.cached();
      } else {
        state = await execute(command, instr, state, args, stage.index, cmdSet);
        cache.put(stepKey, state);
        opts.output.done(performance.now() - started);
      }
      key = stepKey;
    }
    return { state, key };
  }

  /** What a step's result depends on besides its parent: the cache key's second half. */
  async function stepIdentity(
    command: Command,
    instr: RawInstruction,
    args: ReadonlyMap<string, string>,
    stageIndex: number,
  ): Promise<unknown> {
    if (command.kind === "RUN") {
      // As Docker: a RUN sees the build args, so they are part of what it is.
      return { command, args: [...args].sort(), network: command.network ?? opts.network };
    }
    if (command.kind === "COPY" || command.kind === "ADD") {
      const source = await copySource(command, stageIndex);
      return { command, source: await copyStepKey(opts.contextDir, command, source?.key, instr) };
    }
    return { command };
  }

  /** For `COPY --from`: the stage or image copied from. */
  async function copySource(command: CopyCommand, stageIndex: number): Promise<StageResult | null> {
    if (command.from === undefined) return null;
    return await resolveBase(command.from, stageIndex);
  }

  async function execute(
    command: Command,
    instr: RawInstruction,
    state: BuildState,
    args: ReadonlyMap<string, string>,
    stageIndex: number,
    cmdSet: boolean,
  ): Promise<BuildState> {
    const createdBy = instr.original;
    switch (command.kind) {
      case "RUN":
        return await runStep(command, state, args, createdBy);
      case "COPY":
      case "ADD": {
        const from = await copySource(command, stageIndex);
        const layer = await copyStep(ctx.content, {
          contextDir: opts.contextDir,
          command,
          state,
          from: from?.state ?? null,
          signal: opts.signal,
        });
        return withHistory(state, createdBy, layer ?? undefined);
      }
      case "FROM":
        throw new FlokaError(`${instr.location.file}:${instr.location.line}: FROM inside a stage`);
      default:
        return withHistory(applyMetadata(state, command, { cmdSet }), createdBy);
    }
  }

  async function runStep(
    command: RunCommand,
    state: BuildState,
    args: ReadonlyMap<string, string>,
    createdBy: string,
  ): Promise<BuildState> {
    const config = state.config.config ?? {};
    const work = ctx.content.tempPath("build");
    Deno.mkdirSync(work, { recursive: true });
    const init = makeInitLayer(`${work}/init`);
    const plan = runHeredocPlan(command);
    let script = plan?.command;
    if (plan?.script) {
      // A `#!` heredoc runs as a file: it lives in the init layer, so it is no change of the step.
      Deno.mkdirSync(`${init}/.floka`, { mode: 0o755 });
      script = `/.floka/${plan.script.path.split("/").pop()}`;
      Deno.writeTextFileSync(`${init}${script}`, plan.script.content, { mode: plan.script.mode });
    }
    const argv = script !== undefined
      ? withShell(state.config, [script], true)
      : withShell(state.config, command.command, command.shell);
    const env = [...(config.Env ?? [])];
    for (const [name, value] of args) {
      if (!env.some((e) => e.startsWith(`${name}=`))) env.push(`${name}=${value}`);
    }
    const network = command.network === undefined || command.network === "default"
      ? opts.network
      : command.network;
    let containerId: string | null = null;
    try {
      const layers = diffIds(state).map((d) => ctx.content.layerPath(d)).reverse();
      const run = await runInContainer({
        containers: ctx.containers,
        lowerDirs: [init, ...layers],
        argv,
        env,
        workingDir: config.WorkingDir || "/",
        user: config.User ?? "",
        network,
        output: opts.output,
        signal: opts.signal,
      });
      containerId = run.id;
      if (run.exitCode !== 0) throw runFailed(argv, run.exitCode);
      const layer = await commitLayer(ctx.content, `${ctx.containers.dir(run.id)}/upper`);
      return withHistory(state, createdBy, layer ?? undefined);
    } finally {
      if (containerId) ctx.containers.remove(containerId);
      Deno.removeSync(work, { recursive: true });
    }
  }

  function onbuildTriggers(config: ImageConfig, from: RawInstruction): RawInstruction[] {
    const triggers = config.config?.OnBuild ?? [];
    if (!triggers.length) return [];
    // Triggers run once, in the stage that builds FROM the image; they are not inherited.
    config.config!.OnBuild = null;
    return triggers.map((text) => parseTrigger(text, from.location));
  }

  // The stages the target needs are built first, in file order, so the output reads top
  // to bottom; a dependency this misses (a `--from` spelled with a variable) is still built
  // when its step asks for it.
  for (const stage of dependencies(target)) if (stage !== target) await buildStage(stage);
  const result = await buildStage(target);

  const unused = [...opts.buildArgs.keys()].filter((name) => !consumed.has(name));
  if (unused.length) {
    opts.output.warn(`one or more build-args [${unused.sort().join(" ")}] were not consumed`);
  }
  return await ctx.content.storeImage(
    result.state.config,
    result.state.layers,
    opts.tags.map(parseReference),
  );
}

/**
 * Names, types, modes, owners, sizes and mtimes of every entry under `root`: changes when
 * a file of a hand-placed image is edited, replaced or removed, for a stat walk's price.
 */
function treeSignature(root: string): string {
  const parts: string[] = [];
  const walk = (dir: string, rel: string) => {
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    for (const name of names) {
      const path = `${dir}/${name}`;
      const st = Deno.lstatSync(path);
      parts.push(`${rel}${name} ${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtime?.getTime()}`);
      if (st.isDirectory) walk(path, `${rel}${name}/`);
    }
  };
  walk(root, "");
  return parts.join("\n");
}
