/** `floka save`: one or more images as a tar archive that `docker load` and `podman load` read. */
import { FlokaError } from "../../lib/errors.ts";
import { formatReference, parseReference } from "../../lib/reference.ts";
import type { SaveImage } from "../images/archive.ts";
import { contentStore, findImage, IMAGE_ID } from "../images/images.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { load } from "./lazy.ts";
import { writeArchive } from "./archive_output.ts";

export const saveCommand = defineCommand(
  {
    name: "save",
    usage: "[OPTIONS] IMAGE [IMAGE...]",
    description: "Save one or more images to a tar archive (streamed to STDOUT by default)",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      output: { short: "o", long: "output", value: "string", help: "Write to a file, instead of STDOUT" },
    },
  },
  async ({ options, args, globals }) => {
    const store = storeRoot(globals.root);
    const content = contentStore(store);
    const archive = await load<typeof import("../images/archive.ts")>("../images/archive.ts");
    const byManifest = new Map<string, SaveImage>();
    for (const reference of args) {
      const image = findImage(store, reference);
      if (!image) throw new FlokaError(`No such image: ${reference}`);
      if (!image.manifestDigest) {
        throw new FlokaError(
          `${reference} was placed by hand in ${image.dir}: only pulled, built, imported or loaded images can be saved`,
        );
      }
      const byId = IMAGE_ID.test(reference) &&
        image.configDigest!.slice("sha256:".length).startsWith(reference.replace(/^sha256:/, ""));
      let entry = byManifest.get(image.manifestDigest);
      if (!entry) {
        entry = {
          manifestDigest: image.manifestDigest,
          manifest: archive.readManifest(content, image.manifestDigest),
          manifestSize: Deno.statSync(content.blobPath(image.manifestDigest)).size,
          mediaType: content.index().manifests.find((m) => m.digest === image.manifestDigest)?.mediaType ??
            "application/vnd.oci.image.manifest.v1+json",
          names: [],
          created: image.config?.created,
        };
        byManifest.set(image.manifestDigest, entry);
      }
      // By ID, as `docker save 3f2a1b9c8d7e`: the image goes without a name.
      if (!byId && image.repository !== "<none>") {
        const name = formatReference(parseReference(reference));
        if (!entry.names.includes(name)) entry.names.push(name);
      }
    }
    const images = [...byManifest.values()];
    await writeArchive(options.output, "save image", (out) => archive.saveImages(content, images, out));
    return 0;
  },
);
