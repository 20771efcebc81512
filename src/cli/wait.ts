/** `floka wait`: block until containers stop, then print their exit codes, as `docker wait`. */
import { EXIT_UNKNOWN } from "../containers/reconcile.ts";
import { attachSocketPath, awaitExitCode } from "../runtime/attach.ts";
import { waitStopped } from "../runtime/lifecycle.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { forEachContainer } from "./output.ts";

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
    return await forEachContainer(args, async (ref) => {
      const { record } = store.find(ref);
      // A --rm container is gone once it has stopped, and its state with it: its supervisor
      // tells the exit code to whoever is attached.
      if (record.hostConfig.autoRemove) {
        const code = await awaitExitCode(attachSocketPath(record.id));
        if (code !== null) return code;
      }
      const state = await waitStopped(store, record.id);
      // A --rm container is gone once it has stopped, and its exit code with it.
      return state?.exitCode ?? (state ? 0 : EXIT_UNKNOWN);
    });
  },
);
