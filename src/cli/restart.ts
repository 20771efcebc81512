/** `floka restart`: stop, then start containers again, as `docker restart`. */
import { describeError } from "../../lib/errors.ts";
import { stopContainer } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { startInBackground } from "./start.ts";
import { parseTimeout } from "./stop.ts";

export const restartCommand = defineCommand(
  {
    name: "restart",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Restart one or more containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      time: {
        short: "t",
        long: "time",
        value: "string",
        help: "Seconds to wait for stop before killing the container (default 10)",
      },
    },
  },
  async ({ options, args, globals }) => {
    requireRoot("restart");
    const store = openStore(globals);
    const timeout = parseTimeout(options.time);
    let exitCode = 0;
    for (const ref of args) {
      try {
        await stopContainer(store, ref, timeout);
        await startInBackground(store, ref);
        console.log(ref);
      } catch (err) {
        console.error(`floka: ${describeError(err)}`);
        exitCode = 1;
      }
    }
    return exitCode;
  },
);
