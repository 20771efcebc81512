/** `floka exec`: run a command in a running container, as `docker exec` does. */
import type { CommandSpec, ParsedOptions } from "../../lib/argv.ts";
import { envFileLines, envFromOption } from "../../lib/env.ts";
import { FlokaError } from "../../lib/errors.ts";
import { execInContainer } from "../runtime/exec.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";

const EXEC_SPEC = {
  name: "exec",
  usage: "[OPTIONS] CONTAINER COMMAND [ARG...]",
  description: "Execute a command in a running container",
  minArgs: 2,
  maxArgs: Infinity,
  optionsBeforeArgsOnly: true,
  options: {
    detach: {
      short: "d",
      long: "detach",
      help: "Detached mode: run command in the background (stdio /dev/null, no terminal)",
    },
    env: {
      short: "e",
      long: "env",
      value: "list",
      repeatable: true,
      help: "Set environment variables (KEY alone takes the host's value)",
    },
    envFile: {
      long: "env-file",
      value: "list",
      repeatable: true,
      help: "Read in a file of environment variables",
    },
    interactive: {
      short: "i",
      long: "interactive",
      help: "Keep STDIN open (the command reads Floka's stdin)",
    },
    tty: { short: "t", long: "tty", help: "Allocate a pseudo-TTY" },
    user: {
      short: "u",
      long: "user",
      value: "string",
      help: "Username or UID (format: <name|uid>[:<group|gid>])",
    },
    workdir: {
      short: "w",
      long: "workdir",
      value: "string",
      help: "Working directory inside the container",
    },
  },
} as const satisfies CommandSpec;

export type ExecOptions = ParsedOptions<typeof EXEC_SPEC>;

/** `--env-file` lines, then `-e`, as `KEY=VALUE` (a bare KEY takes the host's value or is dropped). */
export function execEnv(opts: Pick<ExecOptions, "env" | "envFile">): string[] {
  const fromFiles = opts.envFile.flatMap((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new FlokaError(`open ${file}: ${(err as Error).message}`);
    }
    return envFileLines(text);
  });
  return [...fromFiles, ...opts.env]
    .map((e) => envFromOption(e, (key) => Deno.env.get(key)))
    .filter((e) => e !== null);
}

export const execCommand = defineCommand(EXEC_SPEC, async ({ options, args, globals }) => {
  requireRoot("exec");
  const [ref, ...command] = args;
  return await execInContainer(openStore(globals), ref, {
    args: command,
    env: execEnv(options),
    workdir: options.workdir,
    user: options.user,
    interactive: options.interactive,
    tty: options.tty,
    detach: options.detach,
  });
});
