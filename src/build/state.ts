/**
 * What a build has made after each step: an image config and its layer blobs. A step turns
 * one state into the next; the build cache maps a step's key to the state it produced.
 */
import type { Digest } from "../../lib/digest.ts";
import { DEFAULT_PATH, envKey } from "../../lib/env.ts";
import { FlokaError } from "../../lib/errors.ts";
import { type Descriptor, type ImageConfig, MediaType } from "../../lib/oci.ts";
import { hostPlatform } from "../../lib/platform.ts";
import type { Command } from "../../lib/flokafile/index.ts";

export interface BuildState {
  config: ImageConfig;
  /** The layer blobs, bottom first, as the manifest lists them. */
  layers: Descriptor[];
}

/** The start of `FROM scratch`: no layer, the host's platform, Docker's default PATH. */
export function scratchState(): BuildState {
  const platform = hostPlatform();
  return {
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [`PATH=${DEFAULT_PATH}`] },
      rootfs: { type: "layers", diff_ids: [] },
      history: [],
    },
    layers: [],
  };
}

/** Docker's layer media types in OCI spelling: a built image's manifest is an OCI one. */
function ociLayerType(mediaType: string): string {
  if (mediaType === MediaType.DockerLayerGzip) return MediaType.OciLayerGzip;
  return mediaType;
}

/** A base image as the first state of a stage; `ONBUILD` triggers are left to the caller. */
export function baseState(config: ImageConfig, layers: Descriptor[]): BuildState {
  const copy = structuredClone(config);
  copy.config ??= {};
  copy.rootfs ??= { type: "layers", diff_ids: [] };
  copy.history ??= [];
  return { config: copy, layers: layers.map((l) => ({ ...l, mediaType: ociLayerType(l.mediaType) })) };
}

/** The diff_ids of the state's layers, bottom first. */
export function diffIds(state: BuildState): Digest[] {
  return state.config.rootfs?.diff_ids ?? [];
}

/** The variables of the image's Env, for expanding instructions. */
export function envMap(config: ImageConfig): Map<string, string> {
  const vars = new Map<string, string>();
  for (const entry of config.config?.Env ?? []) {
    const eq = entry.indexOf("=");
    if (eq > 0) vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return vars;
}

function setEnv(env: string[] | undefined, key: string, value: string): string[] {
  const rest = (env ?? []).filter((e) => envKey(e) !== key);
  return [...rest, `${key}=${value}`];
}

/** A shell-form command as the image's SHELL (default `/bin/sh -c`) runs it. */
export function withShell(config: ImageConfig, command: string[], shell: boolean): string[] {
  return shell ? [...(config.config?.Shell ?? ["/bin/sh", "-c"]), ...command] : command;
}

/**
 * The next state after a step that changes only the config (no layer): ENV, CMD, LABEL and
 * the like. Returns the state unchanged in kind for a command that is not metadata.
 */
export function applyMetadata(state: BuildState, command: Command, opts: { cmdSet: boolean }): BuildState {
  const config = structuredClone(state.config);
  const c = config.config ??= {};
  switch (command.kind) {
    case "ENV":
      for (const [key, value] of command.pairs) c.Env = setEnv(c.Env, key, value);
      break;
    case "CMD":
      c.Cmd = withShell(config, command.command, command.shell);
      break;
    case "ENTRYPOINT":
      c.Entrypoint = withShell(config, command.command, command.shell);
      // As Docker: a new ENTRYPOINT drops a Cmd that this stage did not set itself.
      if (!opts.cmdSet) c.Cmd = null;
      break;
    case "SHELL":
      c.Shell = command.command;
      break;
    case "WORKDIR":
      c.WorkingDir = resolveWorkdir(c.WorkingDir, command.path);
      break;
    case "USER":
      c.User = command.user;
      break;
    case "LABEL":
      c.Labels = { ...c.Labels, ...Object.fromEntries(command.pairs) };
      break;
    case "EXPOSE":
      c.ExposedPorts = { ...c.ExposedPorts, ...Object.fromEntries(command.ports.map((p) => [p, {}])) };
      break;
    case "VOLUME":
      c.Volumes = { ...c.Volumes, ...Object.fromEntries(command.paths.map((p) => [p, {}])) };
      break;
    case "STOPSIGNAL":
      c.StopSignal = command.signal;
      break;
    case "HEALTHCHECK":
      c.Healthcheck = command.test === null ? { Test: ["NONE"] } : {
        Test: command.test,
        ...(command.interval ? { Interval: command.interval } : {}),
        ...(command.timeout ? { Timeout: command.timeout } : {}),
        ...(command.startPeriod ? { StartPeriod: command.startPeriod } : {}),
        ...(command.startInterval ? { StartInterval: command.startInterval } : {}),
        ...(command.retries ? { Retries: command.retries } : {}),
      };
      break;
    case "ONBUILD":
      c.OnBuild = [...(c.OnBuild ?? []), command.instruction];
      break;
    case "MAINTAINER":
      config.author = command.name;
      break;
    case "ARG":
      break; // build-time only: nothing in the image
    default:
      throw new FlokaError(`${command.kind} is not a metadata instruction`);
  }
  return { config, layers: state.layers };
}

/** WORKDIR as Docker resolves it: a relative path continues the current one. */
export function resolveWorkdir(current: string | undefined, path: string): string {
  const joined = path.startsWith("/") ? path : `${current || "/"}/${path}`;
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return "/" + parts.join("/");
}

/** The state with one more history entry (and, for a step that made one, its layer). */
export function withHistory(
  state: BuildState,
  createdBy: string,
  layer?: { descriptor: Descriptor; diffId: Digest },
): BuildState {
  const config = structuredClone(state.config);
  const created = new Date().toISOString();
  config.created = created;
  config.history = [
    ...(config.history ?? []),
    { created, created_by: createdBy, ...(layer ? {} : { empty_layer: true }) },
  ];
  if (!layer) return { config, layers: state.layers };
  config.rootfs = { type: "layers", diff_ids: [...diffIds(state), layer.diffId] };
  return { config, layers: [...state.layers, layer.descriptor] };
}
