/** `floka commit`: a new image from a container's changes, as `docker commit`. */
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { load } from "./lazy.ts";

export const commitCommand = defineCommand(
  {
    name: "commit",
    usage: "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    description: "Create a new image from a container's changes",
    minArgs: 1,
    maxArgs: 2,
    options: {
      author: {
        short: "a",
        long: "author",
        value: "string",
        help: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")',
      },
      change: {
        short: "c",
        long: "change",
        value: "list",
        repeatable: true,
        help: "Apply Dockerfile instruction to the created image",
      },
      message: { short: "m", long: "message", value: "string", help: "Commit message" },
    },
  },
  async ({ options, args: [ref, reference], globals }) => {
    // Storing the layer unpacks it like a pulled one (owners, device nodes): that takes root.
    requireRoot("commit");
    const containers = openStore(globals);
    const container = containers.find(ref);
    const { commitContainer } = await load<typeof import("../images/commit.ts")>("../images/commit.ts");
    const id = await commitContainer(containers.store, container, {
      changes: options.change,
      message: options.message,
      author: options.author,
      reference,
    });
    console.log(id);
    return 0;
  },
);
