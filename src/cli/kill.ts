/** `floka kill`: send a signal to running containers, as `docker kill`. */
import { describeError } from "../../lib/errors.ts";
import { killContainer, parseSignal } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

export const killCommand = defineCommand(
  {
    name: "kill",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Kill one or more running containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      signal: {
        short: "s",
        long: "signal",
        value: "string",
        default: "KILL",
        help: "Signal to send to the container (a name such as KILL or SIGHUP, or a number)",
      },
    },
  },
  ({ options, args, globals }) => {
    const store = openStore(globals);
    const signal = parseSignal(options.signal);
    let exitCode = 0;
    for (const ref of args) {
      try {
        killContainer(store, ref, signal);
        console.log(ref);
      } catch (err) {
        console.error(`floka: ${describeError(err)}`);
        exitCode = 1;
      }
    }
    return exitCode;
  },
);
