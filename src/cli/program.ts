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
import { attachCommand } from "./attach.ts";
import { buildCommand } from "./build.ts";
import { commitCommand } from "./commit.ts";
import { exportCommand } from "./export.ts";
import { loadCommand } from "./load.ts";
import { saveCommand } from "./save.ts";
import { completionCommand } from "./completion.ts";
import { containerCommand, imageCommand } from "./prune.ts";
import { systemCommand } from "./system.ts";
import type { CliCommand } from "./command.ts";
import type { GlobalOptions } from "./context.ts";
import { execCommand } from "./exec.ts";
import { imagesCommand } from "./images.ts";
import { importCommand } from "./import.ts";
import { inspectCommand } from "./inspect.ts";
import { killCommand } from "./kill.ts";
import { loginCommand, logoutCommand } from "./login.ts";
import { logsCommand } from "./logs.ts";
import { networkCommand } from "./network.ts";
import { portCommand } from "./port.ts";
import { psCommand } from "./ps.ts";
import { pullCommand } from "./pull.ts";
import { pushCommand } from "./push.ts";
import { restartCommand } from "./restart.ts";
import { rmCommand } from "./rm.ts";
import { rmiCommand } from "./rmi.ts";
import { runCommand } from "./run.ts";
import { startCommand } from "./start.ts";
import { statsCommand } from "./stats.ts";
import { stopCommand } from "./stop.ts";
import { tagCommand } from "./tag.ts";
import { volumeCommand } from "./volume.ts";
import { waitCommand } from "./wait.ts";

export const COMMANDS: readonly CliCommand[] = [
  attachCommand,
  buildCommand,
  commitCommand,
  completionCommand,
  containerCommand,
  execCommand,
  exportCommand,
  imageCommand,
  imagesCommand,
  importCommand,
  inspectCommand,
  killCommand,
  loadCommand,
  loginCommand,
  logoutCommand,
  logsCommand,
  networkCommand,
  portCommand,
  psCommand,
  pullCommand,
  pushCommand,
  restartCommand,
  rmCommand,
  rmiCommand,
  runCommand,
  saveCommand,
  startCommand,
  statsCommand,
  stopCommand,
  systemCommand,
  tagCommand,
  volumeCommand,
  waitCommand,
];

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

function programHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.spec.name.length));
  return [
    `Usage:  floka ${GLOBAL.usage}`,
    "",
    GLOBAL.description,
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(width)}   ${c.spec.description}`),
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
    console.log(programHelp());
    return 0;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
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
    if (!(err instanceof FlokaError) && err instanceof Error && err.stack) {
      // An unexpected failure is a bug: keep the stack for the report.
      console.error(err.stack);
    }
    return err instanceof FlokaError ? err.exitCode : EXIT_FLOKA;
  }
}
