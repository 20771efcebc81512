/** `floka exec`: run a command in a running container, as `docker exec` does. */
import type { CommandSpec, ParsedOptions } from "../../lib/argv.ts";
import { execInContainer } from "../runtime/exec.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { ENV_OPTIONS, givenEnv } from "./env_options.ts";

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
    ...ENV_OPTIONS,
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

export const execCommand = defineCommand(EXEC_SPEC, async ({ options, args, globals }) => {
  requireRoot("exec");
  const [ref, ...command] = args;
  return await execInContainer(openStore(globals), ref, {
    args: command,
    env: givenEnv(options),
    workdir: options.workdir,
    user: options.user,
    interactive: options.interactive,
    tty: options.tty,
    detach: options.detach,
  });
});
