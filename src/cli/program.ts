/**
 * The `floka` command line, Docker-style: `floka [OPTIONS] COMMAND`, global options before
 * the command, `--help` on every command, one line on stderr for any failure, and Docker's
 * exit codes (125 for a failure of Floka itself or a bad flag).
 */
import {
  type CommandSpec,
  formatCommandHelp,
  formatOptions,
  parseCommandLine,
  UsageError,
} from "../../lib/argv.ts";
import { describeError, EXIT_FLOKA, FlokaError } from "../../lib/errors.ts";
import { setLogLevel } from "../log.ts";
import { VERSION } from "../version.ts";
import type { CliCommand } from "./command.ts";
import { load } from "./lazy.ts";
import type { GlobalOptions } from "./context.ts";

/**
 * Each command's module and the name it exports the command under. A command's module is
 * loaded only when it runs (all of them for the help): loading every command's graph cost
 * each `floka run` several milliseconds.
 */
const COMMAND_MODULES: Readonly<Record<string, readonly [module: string, exported: string]>> = {
  attach: ["./attach.ts", "attachCommand"],
  build: ["./build.ts", "buildCommand"],
  commit: ["./commit.ts", "commitCommand"],
  completion: ["./completion.ts", "completionCommand"],
  container: ["./prune.ts", "containerCommand"],
  exec: ["./exec.ts", "execCommand"],
  export: ["./export.ts", "exportCommand"],
  generate: ["./generate.ts", "generateCommand"],
  image: ["./prune.ts", "imageCommand"],
  images: ["./images.ts", "imagesCommand"],
  import: ["./import.ts", "importCommand"],
  inspect: ["./inspect.ts", "inspectCommand"],
  kill: ["./kill.ts", "killCommand"],
  load: ["./load.ts", "loadCommand"],
  login: ["./login.ts", "loginCommand"],
  logout: ["./login.ts", "logoutCommand"],
  logs: ["./logs.ts", "logsCommand"],
  network: ["./network.ts", "networkCommand"],
  port: ["./port.ts", "portCommand"],
  ps: ["./ps.ts", "psCommand"],
  pull: ["./pull.ts", "pullCommand"],
  push: ["./push.ts", "pushCommand"],
  restart: ["./restart.ts", "restartCommand"],
  rm: ["./rm.ts", "rmCommand"],
  rmi: ["./rmi.ts", "rmiCommand"],
  run: ["./run.ts", "runCommand"],
  save: ["./save.ts", "saveCommand"],
  start: ["./start.ts", "startCommand"],
  stats: ["./stats.ts", "statsCommand"],
  stop: ["./stop.ts", "stopCommand"],
  system: ["./system.ts", "systemCommand"],
  tag: ["./tag.ts", "tagCommand"],
  volume: ["./volume.ts", "volumeCommand"],
  wait: ["./wait.ts", "waitCommand"],
};

/** The command called `name`, loaded; null when there is none. */
export async function findCommand(name: string): Promise<CliCommand | null> {
  if (!Object.hasOwn(COMMAND_MODULES, name)) return null;
  const [module, exported] = COMMAND_MODULES[name];
  const command = (await load<Record<string, CliCommand>>(module))[exported];
  if (!command) throw new FlokaError(`${module} does not export ${exported}`);
  return command;
}

/** Every command, in alphabetical order (for the help and shell completion). */
export async function allCommands(): Promise<CliCommand[]> {
  const names = Object.keys(COMMAND_MODULES).sort();
  return await Promise.all(names.map(async (name) => (await findCommand(name))!));
}

const GLOBAL = {
  name: "",
  usage: "[OPTIONS] COMMAND",
  description: "Run Linux containers: images, namespaces, overlayfs and cgroups in one small program.",
  options: {
    root: {
      long: "root",
      value: "string",
      help: "Root directory of Floka's store (env FLOKA_ROOT; default: the current directory)",
    },
    logLevel: {
      long: "log-level",
      value: "string",
      default: "warn",
      choices: ["debug", "info", "warn", "error"],
      help: 'Set the logging level ("debug", "info", "warn", "error")',
    },
    version: { short: "v", long: "version", help: "Print version information and quit" },
  },
  minArgs: 0,
  maxArgs: Infinity,
  optionsBeforeArgsOnly: true,
} as const satisfies CommandSpec;

async function programHelp(): Promise<string> {
  const commands = await allCommands();
  const width = Math.max(...commands.map((c) => c.spec.name.length));
  return [
    `Usage:  floka ${GLOBAL.usage}`,
    "",
    GLOBAL.description,
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.spec.name.padEnd(width)}   ${c.spec.description}`),
    "",
    "Global Options:",
    formatOptions([...Object.values(GLOBAL.options), { short: "h", long: "help", help: "Print usage" }]),
    "",
    "Run 'floka COMMAND --help' for more information on a command.",
    "",
  ].join("\n");
}

async function dispatch(argv: string[]): Promise<number> {
  const global = parseCommandLine(GLOBAL, argv);
  const [name, ...rest] = global.args;
  if (global.options.version) {
    console.log(`Floka version ${VERSION}`);
    return 0;
  }
  if (global.help || name === undefined || name === "help") {
    console.log(await programHelp());
    return 0;
  }
  const command = await findCommand(name);
  if (!command) throw new UsageError(`'${name}' is not a floka command.`, "");
  setLogLevel(global.options.logLevel);
  const parsed = parseCommandLine(command.spec, rest);
  if (parsed.help) {
    console.log(formatCommandHelp(command.spec));
    return 0;
  }
  const globals: GlobalOptions = { root: global.options.root, logLevel: global.options.logLevel };
  return await command.action({ options: parsed.options, args: parsed.args, globals });
}

/** Runs the CLI with `argv` and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`floka: ${err.message}\nSee 'floka ${err.command ? err.command + " " : ""}--help'.`);
      return EXIT_FLOKA;
    }
    console.error(`floka: ${describeError(err)}`);
    // An unexpected failure is a bug: keep the stack for the report. An error of the
    // system's (a full or read-only disk: Deno's errors carry the errno's name) is not.
    const systemError = typeof (err as { code?: unknown }).code === "string";
    if (!(err instanceof FlokaError) && !systemError && err instanceof Error && err.stack) {
      console.error(err.stack);
    }
    return err instanceof FlokaError ? err.exitCode : EXIT_FLOKA;
  }
}
