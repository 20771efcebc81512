/**
 * The `floka` command line, Docker-style: `floka [OPTIONS] COMMAND`, global options before
 * the command, `--help` everywhere, one line on stderr for any failure, and Docker's exit
 * codes (125 for a failure of Floka itself or a bad flag).
 */
import { Command, CommanderError } from "@commander-js/extra-typings";
import { describeError, EXIT_FLOKA, FlokaError } from "../../lib/errors.ts";
import { setLogLevel } from "../log.ts";
import { VERSION } from "../version.ts";
import { imagesCommand } from "./images.ts";
import { inspectCommand } from "./inspect.ts";
import { psCommand } from "./ps.ts";
import { rmCommand } from "./rm.ts";
import { runCommand } from "./run.ts";

/** A command's outcome: the process exit code. */
export type ExitCode = number;

function buildProgram(setExit: (code: ExitCode) => void) {
  const program = new Command()
    .name("floka")
    .usage("[OPTIONS] COMMAND")
    .description("Run Linux containers: images, namespaces, overlayfs and cgroups in one small program.")
    .version(`Floka version ${VERSION}`, "-v, --version", "Print version information and quit")
    .helpOption("-h, --help", "Print usage")
    .option(
      "--root <dir>",
      "Root directory of Floka's store (env FLOKA_ROOT; default: the current directory)",
    )
    .option("--log-level <level>", 'Set the logging level ("debug", "info", "warn", "error")', "warn")
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .configureHelp({ sortSubcommands: true })
    .hook("preAction", (cmd) => setLogLevel(cmd.opts().logLevel));

  const globals = () => program.opts();
  for (const make of [runCommand, psCommand, imagesCommand, rmCommand, inspectCommand]) {
    program.addCommand(make(globals, setExit));
  }
  return program;
}

/** Makes commander report errors as `floka: ...` and throw instead of exiting. */
function configureErrors(cmd: Command<unknown[], Record<string, unknown>>): void {
  cmd.exitOverride().configureOutput({
    outputError: (text, write) => write(`floka: ${text.replace(/^error: /, "")}`),
  });
  for (const sub of cmd.commands) configureErrors(sub as Command<unknown[], Record<string, unknown>>);
}

/** Runs the CLI with `argv` and returns the exit code. */
export async function main(argv: string[]): Promise<ExitCode> {
  let exitCode: ExitCode = 0;
  const program = buildProgram((code) => exitCode = code);
  configureErrors(program as unknown as Command<unknown[], Record<string, unknown>>);
  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with code 0; a bad flag or argument is Floka's 125.
      if (err.exitCode === 0) return 0;
      const cmd = argv.find((a) => !a.startsWith("-")) ?? "";
      console.error(`See 'floka ${program.commands.some((c) => c.name() === cmd) ? cmd + " " : ""}--help'.`);
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
