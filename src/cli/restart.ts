/** `floka restart`: stop, then start containers again, as `docker restart`. */
import { stopContainer } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { forEachContainer } from "./output.ts";
import { startInBackground } from "./start.ts";
import { parseTimeout, TIME_OPTION } from "./stop.ts";

export const restartCommand = defineCommand(
  {
    name: "restart",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Restart one or more containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      time: TIME_OPTION,
    },
  },
  async ({ options, args, globals }) => {
    requireRoot("restart");
    const store = openStore(globals);
    const timeout = parseTimeout(options.time);
    return await forEachContainer(args, async (ref) => {
      await stopContainer(store, ref, timeout);
      await startInBackground(store, ref);
    });
  },
);
