/** `floka kill`: send a signal to running containers, as `docker kill`. */
import { killContainer, parseSignal } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { forEachContainer } from "./output.ts";

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
    return forEachContainer(args, (ref) => killContainer(store, ref, signal));
  },
);
