/** `floka load`: images from a tar archive (Docker's `docker save` format or an OCI archive). */
import { FlokaError } from "../../lib/errors.ts";
import { contentStore } from "../images/images.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { requireRoot } from "./context.ts";
import { load } from "./lazy.ts";

export const loadCommand = defineCommand(
  {
    name: "load",
    usage: "[OPTIONS]",
    description: "Load an image from a tar archive or STDIN",
    minArgs: 0,
    maxArgs: 0,
    options: {
      input: {
        short: "i",
        long: "input",
        value: "string",
        help: "Read from tar archive file, instead of STDIN",
      },
      quiet: { short: "q", long: "quiet", help: "Suppress the load output" },
    },
  },
  async ({ options, globals }) => {
    // Unpacking layers keeps the files' owners and device nodes, which takes root.
    requireRoot("load");
    let source: ReadableStream<Uint8Array>;
    if (options.input === undefined || options.input === "-") {
      if (Deno.stdin.isTerminal()) {
        throw new FlokaError("requested load from stdin, but stdin is empty");
      }
      source = Deno.stdin.readable;
    } else {
      try {
        source = (await Deno.open(options.input)).readable;
      } catch (err) {
        throw new FlokaError(`open ${options.input}: ${(err as Error).message}`);
      }
    }
    const archive = await load<typeof import("../images/archive.ts")>("../images/archive.ts");
    const loaded = await archive.loadArchive(contentStore(storeRoot(globals.root)), source);
    if (!options.quiet) { for (const line of archive.loadedLines(loaded)) console.log(line); }
    return 0;
  },
);
