/** `floka inspect`: a container's record and state as JSON, in `docker inspect`'s shape. */
import { describeError, FlokaError } from "../../lib/errors.ts";
import { type LogOptions, logPath } from "../containers/logs.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container, ContainerRecord, ContainerStore } from "../containers/store.ts";
import type { MountSpec } from "../containers/volumes.ts";
import { findImage, type Image, imageCreated, imageId } from "../images/images.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { formatObjects, parseTemplate } from "./format.ts";
import { writeStdout } from "./output.ts";

const ZERO_TIME = "0001-01-01T00:00:00Z";

/** `--log-opt` as Docker shows it: only what was set, in its own syntax. */
function logConfigShown(config: LogOptions | undefined): Record<string, string> {
  const shown: Record<string, string> = {};
  if (config?.maxSize) shown["max-size"] = String(config.maxSize);
  if (config && config.maxFile > 1) shown["max-file"] = String(config.maxFile);
  return shown;
}

/** The container's mounts as `docker inspect` shows them. */
function mountsShown(mounts: readonly MountSpec[]) {
  return mounts.map((m) => ({
    Type: m.type,
    ...(m.type === "volume" ? { Name: m.name, Driver: "local" } : {}),
    Source: m.source,
    Destination: m.target,
    Mode: m.readOnly ? "ro" : "",
    RW: !m.readOnly,
    Propagation: m.type === "bind" ? "rprivate" : "",
  }));
}

/** Docker's `NetworkSettings`: the address while the container runs, its published ports. */
function networkSettings(c: Container) {
  const net = c.state.status === "running" ? c.state.network : undefined;
  const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
  for (const p of c.record.hostConfig.portBindings ?? []) {
    const key = `${p.containerPort}/${p.protocol}`;
    ports[key] = net
      ? [...(ports[key] ?? []), { HostIp: p.hostIp || "0.0.0.0", HostPort: String(p.hostPort) }]
      : null;
  }
  const endpoint = {
    IPAddress: net?.ipAddress ?? "",
    IPPrefixLen: net?.prefixLen ?? 0,
    Gateway: net?.gateway ?? "",
    MacAddress: net?.macAddress ?? "",
  };
  const mode = c.record.hostConfig.networkMode;
  return {
    SandboxKey: net?.netns ?? "",
    Ports: ports,
    ...endpoint,
    Networks: { [mode]: { ...endpoint, NetworkID: net?.config.id ?? "" } },
  };
}

/** `--security-opt` as Docker lists it; a profile's JSON is shown as Docker stores it. */
function securityOptShown(hostConfig: ContainerRecord["hostConfig"]): string[] | null {
  const opts = [
    ...(hostConfig.noNewPrivileges ? ["no-new-privileges"] : []),
    ...(hostConfig.seccompProfile ? [`seccomp=${hostConfig.seccompProfile}`] : []),
  ];
  return opts.length ? opts : null;
}
export function inspectView(c: Container) {
  const { record, state } = c;
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: {
      Status: state.status,
      Running: state.status === "running",
      Paused: false,
      Restarting: state.status === "restarting",
      OOMKilled: state.oomKilled ?? false,
      Dead: false,
      Pid: state.pid,
      ExitCode: state.exitCode ?? 0,
      Error: state.error ?? "",
      StartedAt: state.startedAt ?? ZERO_TIME,
      FinishedAt: state.finishedAt ?? ZERO_TIME,
    },
    Image: record.image,
    Name: `/${record.name}`,
    RestartCount: state.restartCount ?? 0,
    LogPath: logPath(c.dir, record.id),
    HostnamePath: `${c.dir}/hostname`,
    HostsPath: `${c.dir}/hosts`,
    ResolvConfPath: `${c.dir}/resolv.conf`,
    HostConfig: {
      AutoRemove: record.hostConfig.autoRemove,
      NetworkMode: record.hostConfig.networkMode,
      PortBindings: Object.fromEntries(
        (record.hostConfig.portBindings ?? []).map((p) => [
          `${p.containerPort}/${p.protocol}`,
          [{ HostIp: p.hostIp, HostPort: String(p.hostPort) }],
        ]),
      ),
      Dns: record.hostConfig.dns ?? [],
      ExtraHosts: (record.hostConfig.extraHosts ?? []).map((h) => `${h.name}:${h.ip}`),
      Memory: record.hostConfig.memory,
      MemorySwap: record.hostConfig.memorySwap ?? 0,
      NanoCpus: record.hostConfig.nanoCpus ?? 0,
      CpuShares: record.hostConfig.cpuShares,
      CpuPeriod: record.hostConfig.cpuPeriod ?? 0,
      CpuQuota: record.hostConfig.cpuQuota ?? 0,
      CpusetCpus: record.hostConfig.cpusetCpus ?? "",
      // Docker shows no limit as null (0 and -1 both mean none).
      PidsLimit: record.hostConfig.pidsLimit ? record.hostConfig.pidsLimit : null,
      BlkioWeight: record.hostConfig.blkioWeight ?? 0,
      RestartPolicy: {
        Name: record.hostConfig.restartPolicy?.name ?? "no",
        MaximumRetryCount: record.hostConfig.restartPolicy?.maximumRetryCount ?? 0,
      },
      Init: record.hostConfig.init ?? false,
      ReadonlyRootfs: record.hostConfig.readOnly ?? false,
      Privileged: record.hostConfig.privileged ?? false,
      // Docker shows the names without CAP_, and no list as null.
      CapAdd: record.hostConfig.capAdd?.map((c) => c.replace(/^CAP_/, "")) ?? null,
      CapDrop: record.hostConfig.capDrop?.map((c) => c.replace(/^CAP_/, "")) ?? null,
      SecurityOpt: securityOptShown(record.hostConfig),
      LogConfig: {
        Type: "json-file",
        Config: logConfigShown(record.hostConfig.logConfig),
      },
    },
    Mounts: mountsShown(record.hostConfig.mounts ?? []),
    NetworkSettings: networkSettings(c),
    GraphDriver: {
      Name: "overlay2",
      Data: {
        LowerDir: record.lowerDirs.join(":"),
        UpperDir: `${c.dir}/upper`,
        WorkDir: `${c.dir}/work`,
        MergedDir: `${c.dir}/rootfs`,
      },
    },
    Config: {
      Hostname: record.config.hostname,
      User: record.config.user,
      Env: record.config.env,
      Cmd: record.config.cmd,
      Entrypoint: record.config.entrypoint,
      Image: record.image,
      WorkingDir: record.config.workingDir,
      ...(record.config.stopSignal ? { StopSignal: record.config.stopSignal } : {}),
    },
  };
}

/** An image in `docker image inspect`'s shape. */
async function imageView(image: Image) {
  return {
    Id: await imageId(image),
    RepoTags: image.tag === "<none>" ? [] : [`${image.repository}:${image.tag}`],
    RepoDigests: image.repoDigest ? [`${image.repository}@${image.repoDigest}`] : [],
    Created: imageCreated(image).toISOString(),
    Architecture: image.config?.architecture ?? "",
    Os: image.config?.os ?? "",
    Config: image.config?.config ?? {},
    RootFS: { Type: "layers", Layers: image.config?.rootfs?.diff_ids ?? [] },
    GraphDriver: { Name: "overlay2", Data: { LowerDir: image.lowerDirs.join(":") } },
  };
}

/** A container, else an image, by the name or ID given, as `docker inspect` looks them up. */
async function inspectOne(store: ContainerStore, ref: string) {
  try {
    const c = reconcile(store, store.find(ref));
    if (c) return inspectView(c);
  } catch (err) {
    if (!(err instanceof FlokaError) || !err.message.startsWith("No such container")) throw err;
  }
  const image = findImage(store.store, ref);
  if (image) return await imageView(image);
  throw new FlokaError(`No such object: ${ref}`);
}

export const inspectCommand = defineCommand(
  {
    name: "inspect",
    usage: "[OPTIONS] NAME|ID [NAME|ID...]",
    description: "Return low-level information on containers and images",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      format: {
        short: "f",
        long: "format",
        value: "string",
        help: "Format output using a template ('{{.State.Status}}', '{{json .Config}}'), or 'json'",
      },
    },
  },
  async ({ options, args, globals }) => {
    // A template that cannot be parsed fails before any lookup, as Docker's does.
    if (options.format && options.format.trim() !== "json") parseTemplate(options.format);
    const store = openStore(globals);
    const found = [];
    let exitCode = 0;
    for (const ref of args) {
      try {
        found.push(await inspectOne(store, ref));
      } catch (err) {
        console.error(`floka: ${describeError(err)}`);
        exitCode = 1;
      }
    }
    writeStdout(formatObjects(options.format, found));
    return exitCode;
  },
);
