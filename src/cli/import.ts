/** `floka import`: make an image from a root filesystem tarball, as `docker import`. */
import { FlokaError } from "../../lib/errors.ts";
import { contentStore } from "../images/images.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { load } from "./lazy.ts";
import { requireRoot } from "./context.ts";

export const importCommand = defineCommand(
  {
    name: "import",
    usage: "[OPTIONS] file|- [REPOSITORY[:TAG]]",
    description: "Import the contents from a tarball to create a filesystem image",
    minArgs: 1,
    maxArgs: 2,
    options: {},
  },
  async ({ args: [file, reference], globals }) => {
    // Unpacking keeps the files' owners and device nodes, which takes root.
    requireRoot("import");
    let source: ReadableStream<Uint8Array>;
    try {
      source = file === "-" ? Deno.stdin.readable : (await Deno.open(file)).readable;
    } catch (err) {
      throw new FlokaError(`open ${file}: ${(err as Error).message}`);
    }
    const { importImage } = await load<typeof import("../images/import.ts")>("../images/import.ts");
    console.log(await importImage(contentStore(storeRoot(globals.root)), source, reference));
    return 0;
  },
);
