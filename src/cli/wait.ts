/** `floka wait`: block until containers stop, then print their exit codes, as `docker wait`. */
import { describeError } from "../../lib/errors.ts";
import { EXIT_UNKNOWN } from "../containers/reconcile.ts";
import { waitStopped } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

export const waitCommand = defineCommand(
  {
    name: "wait",
    usage: "CONTAINER [CONTAINER...]",
    description: "Block until one or more containers stop, then print their exit codes",
    minArgs: 1,
    maxArgs: Infinity,
    options: {},
  },
  async ({ args, globals }) => {
    const store = openStore(globals);
    let exitCode = 0;
    for (const ref of args) {
      try {
        const id = store.find(ref).record.id;
        const state = await waitStopped(store, id);
        // A --rm container is gone by the time it stopped; Docker prints its code all the same.
        console.log(state?.exitCode ?? (state ? 0 : EXIT_UNKNOWN));
      } catch (err) {
        console.error(`floka: ${describeError(err)}`);
        exitCode = 1;
      }
    }
    return exitCode;
  },
);
