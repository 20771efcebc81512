/** `floka export`: a container's file system as a tar archive, as `docker export`. */
import { FlokaError } from "../../lib/errors.ts";
import { contentStore } from "../images/images.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { load } from "./lazy.ts";

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
    if (options.output === undefined || options.output === "-") {
      if (Deno.stdout.isTerminal()) {
        throw new FlokaError("cowardly refusing to save to a terminal. Use the -o flag or redirect");
      }
      await exportContainer(content, container, Deno.stdout);
      return 0;
    }
    const file = options.output;
    const tmp = `${file}.floka-${Deno.pid}.tmp`;
    let out: Deno.FsFile;
    try {
      out = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    } catch (err) {
      throw new FlokaError(`failed to export container: unable to create ${file}: ${(err as Error).message}`);
    }
    try {
      await exportContainer(content, container, out);
      await out.syncData();
      out.close();
      Deno.renameSync(tmp, file);
    } catch (err) {
      try {
        out.close();
      } catch { /* closed already */ }
      try {
        Deno.removeSync(tmp);
      } catch { /* gone */ }
      throw err;
    }
    return 0;
  },
);
