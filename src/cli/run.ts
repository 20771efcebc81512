/** `floka run`: create a container from an image and run its command in the foreground. */
import { Command, Option } from "@commander-js/extra-typings";
import { DEFAULT_PATH, envFileLines, envFromOption, envKey, mergeEnv } from "../../lib/env.ts";
import { FlokaError } from "../../lib/errors.ts";
import { formatImageName } from "../../lib/image_name.ts";
import { newContainerId, randomName, validateContainerName } from "../../lib/names.ts";
import { parseBytes } from "../../lib/units.ts";
import type { ContainerRecord, ContainerStore } from "../containers/store.ts";
import { findImage, type LocalImage } from "../images/local_store.ts";
import { CgroupManager } from "../runtime/cgroups.ts";
import { etcFiles } from "../runtime/etc_files.ts";
import { runContainer } from "../runtime/run.ts";
import { collect, type Globals, openStore, requireRoot, type SetExit } from "./context.ts";

export interface RunOptions {
  name?: string;
  rm?: boolean;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  network: string;
  memory?: string;
  cpuShares?: string;
  entrypoint?: string;
  interactive?: boolean;
  tty?: boolean;
}

/** Docker's minimum for --memory. */
const MIN_MEMORY = 6 * 1024 * 1024;

/** The container's environment: the image's (or a default PATH), HOSTNAME, then --env-file, then -e. */
function containerEnv(image: LocalImage, hostname: string, opts: RunOptions): string[] {
  const hostEnv = (key: string) => Deno.env.get(key);
  const fromFiles = opts.envFile.flatMap((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new FlokaError(`open ${file}: ${(err as Error).message}`);
    }
    return envFileLines(text);
  });
  const given = [...fromFiles, ...opts.env].map((e) => envFromOption(e, hostEnv)).filter((e) => e !== null);
  let env = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${hostname}`];
  const imageEnv = image.config?.config?.Env ?? [];
  env = mergeEnv(env, imageEnv.filter((e) => envKey(e) !== "HOSTNAME"));
  return mergeEnv(env, given);
}

/** Entrypoint and command as Docker combines them; `/bin/sh` when both are empty. */
function containerArgv(image: LocalImage, command: string[], opts: RunOptions) {
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

function networkMode(value: string): "none" | "host" {
  if (value === "none" || value === "host") return value;
  throw new FlokaError(
    `network ${JSON.stringify(value)} not found: this version supports --network none and --network host`,
  );
}

/** Turns the command line into a container record (nothing is written yet). */
export function containerRecord(
  store: ContainerStore,
  image: LocalImage,
  command: string[],
  opts: RunOptions,
): ContainerRecord {
  const id = newContainerId();
  const network = networkMode(opts.network);
  const hostname = opts.hostname ?? (network === "host" ? Deno.hostname() : id.slice(0, 12));
  const workingDir = opts.workdir ?? (image.config?.config?.WorkingDir || "/");
  if (!workingDir.startsWith("/")) {
    throw new FlokaError(`the working directory '${workingDir}' is invalid: it needs to be an absolute path`);
  }
  const memory = opts.memory ? parseBytes(opts.memory) : 0;
  if (memory > 0 && memory < MIN_MEMORY) throw new FlokaError("Minimum memory limit allowed is 6MB");
  const cpuShares = opts.cpuShares ? Number(opts.cpuShares) : 0;
  if (!Number.isInteger(cpuShares) || cpuShares < 0) {
    throw new FlokaError(
      `invalid --cpu-shares ${JSON.stringify(opts.cpuShares)}: a whole number is expected`,
    );
  }
  const taken = new Set(store.list().map((c) => c.record.name));
  let name = opts.name ? validateContainerName(opts.name) : randomName();
  while (!opts.name && taken.has(name)) name = `${randomName()}_${Math.floor(Math.random() * 10)}`;
  const { entrypoint, cmd, argv } = containerArgv(image, command, opts);
  return {
    id,
    name,
    created: new Date().toISOString(),
    image: formatImageName(image),
    lowerDirs: [image.rootfs],
    path: argv[0],
    args: argv.slice(1),
    config: {
      hostname,
      env: containerEnv(image, hostname, opts),
      workingDir,
      user: opts.user ?? image.config?.config?.User ?? "",
      entrypoint,
      cmd,
    },
    hostConfig: { autoRemove: !!opts.rm, networkMode: network, memory, cpuShares },
  };
}

/** Creates the container's directory: record, generated /etc files, overlay directories. */
function prepareContainerDir(record: ContainerRecord) {
  return (dir: string) => {
    for (const sub of ["upper", "work", "rootfs"]) Deno.mkdirSync(`${dir}/${sub}`, { mode: 0o755 });
    for (const [file, text] of Object.entries(etcFiles(record))) {
      Deno.writeTextFileSync(`${dir}/${file}`, text);
    }
  };
}

export function runCommand(globals: Globals, setExit: SetExit) {
  return new Command("run")
    .description("Create and run a new container from an image")
    .usage("[OPTIONS] IMAGE [COMMAND] [ARG...]")
    .helpOption("--help", "Print usage")
    .argument("<image>", "image in the store (name[:tag], tag defaults to latest)")
    .argument("[command...]", "command and arguments (default: the image's, else /bin/sh)")
    .passThroughOptions()
    .option("--name <name>", "Assign a name to the container")
    .option("--rm", "Automatically remove the container when it exits")
    .option(
      "-e, --env <KEY=VALUE>",
      "Set environment variables (KEY alone takes the host's value)",
      collect,
      [],
    )
    .option("--env-file <file>", "Read in a file of environment variables", collect, [])
    .option("-w, --workdir <dir>", "Working directory inside the container")
    .option("-u, --user <user>", "Username or UID (format: <name|uid>[:<group|gid>])")
    .option("-h, --hostname <name>", "Container host name")
    .addOption(
      new Option("--network <mode>", "Connect a container to a network").choices(["none", "host"]).default(
        "none",
      ),
    )
    .option("-m, --memory <bytes>", "Memory limit (e.g. 512m, 1g)")
    .option("-c, --cpu-shares <shares>", "CPU shares (relative weight)")
    .option("--entrypoint <command>", "Overwrite the default ENTRYPOINT of the image")
    .option("-i, --interactive", "Keep STDIN open (Floka always passes its stdin to the container)")
    .option("-t, --tty", "Use the terminal: the container gets Floka's own terminal as its stdio")
    .action(async (imageRef, command, opts) => {
      requireRoot("run");
      if (opts.tty && !Deno.stdin.isTerminal()) throw new FlokaError("the input device is not a TTY");
      const store = openStore(globals);
      const image = findImage(store.store, imageRef);
      const record = containerRecord(store, image, command, opts);
      const container = store.create(record, prepareContainerDir(record));
      setExit(await runContainer(store, container, new CgroupManager()));
    });
}
