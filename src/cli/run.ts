/** `floka run`: create a container from an image and run its command in the foreground. */
import { DEFAULT_PATH, envKey, mergeEnv } from "../../lib/env.ts";
import { FlokaError } from "../../lib/errors.ts";
import { newContainerId, randomName, validateContainerName } from "../../lib/names.ts";
import type { ContainerRecord, ContainerStore, RestartPolicy } from "../containers/store.ts";
import { findImage, type Image } from "../images/images.ts";
import { pullMissing } from "./pull.ts";
import { CgroupManager, type ResolvedLimits, resolveLimits } from "../runtime/cgroups.ts";
import { parseLogOptions } from "../containers/logs.ts";
import {
  imageVolumes,
  parseMountOptions,
  prepareMounts,
  resolveMountSources,
  VolumeStore,
} from "../containers/volumes.ts";
import { startDetached } from "../runtime/detach.ts";
import { parseDetachKeys } from "../runtime/attach.ts";
import { getWindowSize } from "../runtime/pty.ts";
import { attachTo, DETACH_KEYS_OPTION } from "./attach.ts";
import { findInitBinary } from "../runtime/init.ts";
import { prepareContainerDir, StartError } from "../runtime/run.ts";
import { supervise } from "../runtime/supervise.ts";
import type { CommandSpec, ParsedOptions } from "../../lib/argv.ts";
import { exposedPorts, isIPv4, parseAddHost, parsePublish, type PortBinding } from "../../lib/network.ts";
import { checkPortsFree, freeHostPort, ownNetwork } from "../network/attach.ts";
import { CNI_PATH, cniAvailable } from "../network/cni.ts";
import { NetworkStore } from "../network/networks.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { ENV_OPTIONS, givenEnv } from "./env_options.ts";
import { securityConfig } from "./security_options.ts";

const RUN_SPEC = {
  name: "run",
  usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
  description: "Create and run a new container from an image",
  minArgs: 1,
  maxArgs: Infinity,
  optionsBeforeArgsOnly: true,
  options: {
    name: { long: "name", value: "string", help: "Assign a name to the container" },
    rm: { long: "rm", help: "Automatically remove the container when it exits" },
    ...ENV_OPTIONS,
    workdir: {
      short: "w",
      long: "workdir",
      value: "string",
      help: "Working directory inside the container",
    },
    user: {
      short: "u",
      long: "user",
      value: "string",
      help: "Username or UID (format: <name|uid>[:<group|gid>])",
    },
    hostname: { short: "h", long: "hostname", value: "string", help: "Container host name" },
    network: {
      long: "network",
      value: "string",
      help:
        "Connect the container to a network: bridge (the default, network floka), a user-defined network, none (loopback only) or host",
    },
    publish: {
      short: "p",
      long: "publish",
      value: "list",
      repeatable: true,
      help: "Publish a container's port(s) to the host ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO])",
    },
    publishAll: { short: "P", long: "publish-all", help: "Publish all exposed ports to random ports" },
    dns: { long: "dns", value: "list", repeatable: true, help: "Set custom DNS servers" },
    addHost: {
      long: "add-host",
      value: "list",
      repeatable: true,
      help: "Add a custom host-to-IP mapping (host:ip)",
    },
    memory: { short: "m", long: "memory", value: "bytes", help: "Memory limit (e.g. 512m, 1g)" },
    memorySwap: {
      long: "memory-swap",
      value: "bytes",
      help: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
    },
    cpuShares: { short: "c", long: "cpu-shares", value: "int", help: "CPU shares (relative weight)" },
    cpus: { long: "cpus", value: "decimal", help: "Number of CPUs" },
    cpuPeriod: { long: "cpu-period", value: "int", help: "Limit CPU CFS (Completely Fair Scheduler) period" },
    cpuQuota: { long: "cpu-quota", value: "int", help: "Limit CPU CFS (Completely Fair Scheduler) quota" },
    cpusetCpus: { long: "cpuset-cpus", value: "string", help: "CPUs in which to allow execution (0-3, 0,1)" },
    pidsLimit: { long: "pids-limit", value: "int", help: "Tune container pids limit (set -1 for unlimited)" },
    blkioWeight: {
      long: "blkio-weight",
      value: "uint16",
      help: "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)",
    },
    entrypoint: {
      long: "entrypoint",
      value: "string",
      help: "Overwrite the default ENTRYPOINT of the image",
    },
    interactive: {
      short: "i",
      long: "interactive",
      help: "Keep STDIN open (else the container's is /dev/null)",
    },
    tty: {
      short: "t",
      long: "tty",
      help: "Allocate a pseudo-TTY",
    },
    detach: { short: "d", long: "detach", help: "Run container in background and print container ID" },
    detachKeys: DETACH_KEYS_OPTION,
    restart: {
      long: "restart",
      value: "string",
      default: "no",
      help: "Restart policy when the container exits: no, on-failure[:max-retries], always, unless-stopped",
    },
    init: {
      long: "init",
      help: "Run an init (the host's catatonit or tini) as PID 1 that forwards signals and reaps processes",
    },
    logOpt: {
      long: "log-opt",
      value: "list",
      repeatable: true,
      help: "Log options: max-size=SIZE (e.g. 10m), max-file=N",
    },
    volume: {
      short: "v",
      long: "volume",
      value: "list",
      repeatable: true,
      help: "Bind mount a host path or a named volume (/host/path:/path[:ro], NAME:/path[:ro])",
    },
    mount: {
      long: "mount",
      value: "mount",
      repeatable: true,
      help: "Attach a filesystem mount (type=bind|volume|tmpfs,source=...,target=...[,readonly])",
    },
    tmpfs: {
      long: "tmpfs",
      value: "list",
      repeatable: true,
      help: "Mount a tmpfs directory (/path[:size=64m,mode=1777])",
    },
    readOnly: { long: "read-only", help: "Mount the container's root filesystem as read only" },
    capAdd: {
      long: "cap-add",
      value: "list",
      repeatable: true,
      help: "Add Linux capabilities (NET_ADMIN or CAP_NET_ADMIN, ALL)",
    },
    capDrop: {
      long: "cap-drop",
      value: "list",
      repeatable: true,
      help: "Drop Linux capabilities (CHOWN or CAP_CHOWN, ALL)",
    },
    privileged: {
      long: "privileged",
      help: "Give extended privileges: every capability, the host's devices, no masked paths, no seccomp",
    },
    securityOpt: {
      long: "security-opt",
      value: "list",
      repeatable: true,
      help: "Security options: no-new-privileges[=true], seccomp=unconfined, seccomp=PROFILE.json",
    },
  },
} as const satisfies CommandSpec;

export type RunOptions = ParsedOptions<typeof RUN_SPEC>;

/** The container's environment: the image's (or a default PATH), HOSTNAME, then --env-file, then -e. */
function containerEnv(image: Image, hostname: string, opts: RunOptions): string[] {
  const given = givenEnv(opts);
  let env = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`];
  const imageEnv = image.config?.config?.Env ?? [];
  env = mergeEnv(env, imageEnv.filter((e) => envKey(e) !== "HOSTNAME"));
  // As Docker: a terminal comes with TERM, unless the image or -e says otherwise.
  if (opts.tty && !env.some((e) => envKey(e) === "TERM")) env = mergeEnv(env, ["TERM=xterm"]);
  return mergeEnv(env, given);
}

/** Entrypoint and command as Docker combines them; `/bin/sh` when both are empty. */
function containerArgv(image: Image, command: string[], opts: RunOptions) {
  const cfg = image.config?.config ?? {};
  const entrypoint = opts.entrypoint !== undefined
    ? (opts.entrypoint ? [opts.entrypoint] : [])
    : cfg.Entrypoint ?? [];
  // A new entrypoint drops the image's Cmd, as in Docker.
  const cmd = command.length ? command : opts.entrypoint !== undefined ? [] : cfg.Cmd ?? [];
  const argv = [...entrypoint, ...cmd];
  return {
    entrypoint: entrypoint.length ? entrypoint : null,
    cmd: cmd.length ? cmd : null,
    argv: argv.length ? argv : ["/bin/sh"],
  };
}

/** `--restart` in Docker's syntax. */
export function parseRestartPolicy(value: string): RestartPolicy {
  const [name, count, ...rest] = value.split(":");
  const invalid = () => new FlokaError(`invalid restart policy: ${JSON.stringify(value)}`);
  if (rest.length) throw invalid();
  if (name === "on-failure") {
    if (count !== undefined && !/^\d+$/.test(count)) throw invalid();
    return { name, maximumRetryCount: Number(count ?? 0) };
  }
  if (count !== undefined) {
    throw new FlokaError(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  }
  if (name === "no" || name === "always" || name === "unless-stopped") return { name, maximumRetryCount: 0 };
  throw invalid();
}

/**
 * `--network`: as Docker, the default is `bridge` (Floka's network `floka`), when the CNI
 * plugins are installed; without them it is `none`, said once on stderr. A named network
 * must exist.
 */
function networkMode(store: ContainerStore, value: string | undefined): string {
  if (value === undefined) {
    if (cniAvailable()) return "bridge";
    console.error(`floka: the CNI plugins are not installed (${CNI_PATH}/bridge): using --network none`);
    return "none";
  }
  if (value === "none" || value === "host") return value;
  if (!cniAvailable()) throw new FlokaError(`network ${value} needs the CNI plugins in ${CNI_PATH}`);
  new NetworkStore(store.store).resolve(value); // an unknown network fails here
  return value;
}

/**
 * `-p` and `-P`, with a free host port chosen for each port that has none, checked against
 * the ports the host's processes and the running containers use.
 */
export function portBindings(
  store: ContainerStore,
  image: Image,
  opts: RunOptions,
  network: string,
): PortBinding[] {
  const requests = opts.publish.flatMap(parsePublish);
  if (opts.publishAll) {
    const exposed = exposedPorts(image.config?.config?.ExposedPorts as Record<string, unknown> | undefined);
    requests.push(
      ...exposed.filter((e) =>
        !requests.some((r) => r.containerPort === e.containerPort && r.protocol === e.protocol)
      ),
    );
  }
  if (!requests.length) return [];
  if (!ownNetwork(network)) {
    console.error("WARNING: Published ports are discarded when using host network mode or none");
    return [];
  }
  const bindings = requests.map((r) => r.hostPort ? r : { ...r, hostPort: freeHostPort(r.hostIp) });
  const inUse = store.list().filter((c) => c.state.status === "running")
    .flatMap((c) => c.state.network?.ports ?? []);
  for (const b of bindings) {
    const clash = [...inUse, ...bindings.filter((o) => o !== b)].find((o) =>
      o.hostPort === b.hostPort && o.protocol === b.protocol &&
      (!o.hostIp || !b.hostIp || o.hostIp === b.hostIp)
    );
    if (clash) {
      throw new FlokaError(
        `driver failed programming external connectivity: Bind for ${
          b.hostIp || "0.0.0.0"
        }:${b.hostPort} failed: port is already allocated`,
      );
    }
  }
  checkPortsFree(bindings);
  return bindings;
}

/**
 * The resource limits of the command line, checked with Docker's rules against what the
 * kernel offers; Docker's warnings for limits it cannot apply go to stderr.
 */
export function resourceLimits(opts: RunOptions, cgroups = new CgroupManager()): ResolvedLimits {
  const { limits, warnings } = resolveLimits(opts, () => cgroups.support());
  for (const warning of warnings) console.error(`WARNING: ${warning}`);
  return limits;
}

/** Turns the command line into a container record (nothing is written yet). */
export function containerRecord(
  store: ContainerStore,
  image: Image,
  command: string[],
  opts: RunOptions,
  limits: ResolvedLimits = resourceLimits(opts),
): ContainerRecord {
  const id = newContainerId();
  const network = networkMode(store, opts.network);
  const ports = portBindings(store, image, opts, network);
  const extraHosts = opts.addHost.map(parseAddHost);
  for (const dns of opts.dns) {
    if (!isIPv4(dns) && !dns.includes(":")) throw new FlokaError(`${dns} is not an ip address`);
  }
  const hostname = opts.hostname ?? (network === "host" ? Deno.hostname() : id.slice(0, 12));
  const workingDir = opts.workdir ?? (image.config?.config?.WorkingDir || "/");
  if (!workingDir.startsWith("/")) {
    throw new FlokaError(`the working directory '${workingDir}' is invalid: it needs to be an absolute path`);
  }
  let name = opts.name ? validateContainerName(opts.name) : randomName();
  while (!opts.name && store.nameInUse(name)) name = `${randomName()}_${Math.floor(Math.random() * 10)}`;
  const { entrypoint, cmd, argv } = containerArgv(image, command, opts);
  const restartPolicy = parseRestartPolicy(opts.restart);
  if (opts.rm && restartPolicy.name !== "no") throw new FlokaError("Conflicting options: --restart and --rm");
  if (opts.init) findInitBinary(); // fail now, not at every start
  const security = securityConfig(opts);
  const given = parseMountOptions(opts);
  const mounts = resolveMountSources(
    [...given, ...imageVolumes(image.config?.config?.Volumes, given)],
    new VolumeStore(store.store),
  );
  return {
    id,
    name,
    created: new Date().toISOString(),
    image: `${image.repository}:${image.tag}`,
    lowerDirs: image.lowerDirs,
    path: argv[0],
    args: argv.slice(1),
    config: {
      hostname,
      env: containerEnv(image, hostname, opts),
      workingDir,
      user: opts.user ?? image.config?.config?.User ?? "",
      entrypoint,
      cmd,
      stopSignal: image.config?.config?.StopSignal,
      tty: opts.tty,
      openStdin: opts.interactive,
    },
    hostConfig: {
      autoRemove: !!opts.rm,
      networkMode: network,
      ...(ports.length ? { portBindings: ports } : {}),
      ...(opts.dns.length ? { dns: opts.dns } : {}),
      ...(extraHosts.length ? { extraHosts } : {}),
      ...limits,
      restartPolicy,
      init: opts.init,
      logConfig: parseLogOptions(opts.logOpt),
      ...(mounts.length ? { mounts } : {}),
      ...(opts.readOnly ? { readOnly: true } : {}),
      ...security,
    },
  };
}

export const runCommand = defineCommand(
  RUN_SPEC,
  async ({ options, args, globals }) => {
    requireRoot("run");
    // Docker's rule: a terminal to type into is needed only when stdin goes to the container.
    if (options.tty && options.interactive && !options.detach && !Deno.stdin.isTerminal()) {
      throw new FlokaError("the input device is not a TTY");
    }
    // Bad limits fail before an image is pulled or anything is made.
    const limits = resourceLimits(options);
    const store = openStore(globals);
    const [imageRef, ...command] = args;
    // As `docker run`: an image that is not here is pulled first.
    const image = findImage(store.store, imageRef) ?? await pullMissing(globals, imageRef);
    const record = containerRecord(store, image, command, options, limits);
    prepareMounts(record.hostConfig.mounts ?? [], new VolumeStore(store.store), record.lowerDirs);
    // `-it` in the foreground is a detached container this command attaches to, as Docker
    // does it: the detach keys leave it running.
    const attach = options.tty && options.interactive && !options.detach;
    const keys = parseDetachKeys(options.detachKeys);
    if (options.detach || attach) {
      const container = store.create(record, prepareContainerDir(record));
      const terminal = attach ? getWindowSize(0) ?? { rows: 24, cols: 80 } : undefined;
      try {
        await startDetached(store.store.root, container.dir, record.id, terminal);
      } catch (err) {
        if (err instanceof StartError) store.remove(record.id);
        throw err;
      }
      if (!attach) {
        console.log(record.id);
        return 0;
      }
      // Detached with the keys, the container runs on and this command succeeds.
      return await attachTo(record.id, true, true, keys) ?? 0;
    }
    let created = false;
    try {
      return await supervise(
        store,
        () => {
          const container = store.create(record, prepareContainerDir(record));
          created = true;
          return container;
        },
        new CgroupManager(),
        {
          foreground: true,
          stdin: options.interactive,
          terminal: options.tty,
        },
      );
    } catch (err) {
      // As before the command ran: a container that never started is not kept.
      if (created && err instanceof StartError) store.remove(record.id);
      throw err;
    }
  },
);
