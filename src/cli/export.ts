/** `floka export`: a container's file system as a tar archive, as `docker export`. */
import { contentStore } from "../images/images.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { load } from "./lazy.ts";
import { writeArchive } from "./archive_output.ts";

export const exportCommand = defineCommand(
  {
    name: "export",
    usage: "[OPTIONS] CONTAINER",
    description: "Export a container's filesystem as a tar archive",
    minArgs: 1,
    maxArgs: 1,
    options: {
      output: { short: "o", long: "output", value: "string", help: "Write to a file, instead of STDOUT" },
    },
  },
  async ({ options, args: [ref], globals }) => {
    // The container's layers are mounted (read-only, in a namespace of our own) to be read.
    requireRoot("export");
    const containers = openStore(globals);
    const container = containers.find(ref);
    const { exportContainer } = await load<typeof import("../images/commit.ts")>("../images/commit.ts");
    const content = contentStore(containers.store);
    await writeArchive(options.output, "export container", (out) => exportContainer(content, container, out));
    return 0;
  },
);
