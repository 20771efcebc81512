/** `floka images`: list the images in the store as `docker images` does. */
import { formatTable } from "../../lib/table.ts";
import { humanDuration, humanSize } from "../../lib/units.ts";
import { imageCreated, imageId, imageSize, listImages } from "../images/local_store.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { writeStdout } from "./output.ts";

export const imagesCommand = defineCommand(
  {
    name: "images",
    usage: "[OPTIONS]",
    description: "List images",
    minArgs: 0,
    maxArgs: 0,
    options: {
      quiet: { short: "q", long: "quiet", help: "Only show image IDs" },
      noTrunc: { long: "no-trunc", help: "Don't truncate output" },
    },
  },
  async ({ options, globals }) => {
    const images = listImages(storeRoot(globals.root));
    const ids = await Promise.all(images.map(imageId));
    const shortId = (id: string) => options.noTrunc ? id : id.slice("sha256:".length, "sha256:".length + 12);
    if (options.quiet) {
      for (const id of new Set(ids.map(shortId))) console.log(id);
      return 0;
    }
    const now = Date.now();
    const rows = images.map((image, i) => [
      image.name,
      image.tag,
      shortId(ids[i]),
      `${humanDuration(now - imageCreated(image).getTime())} ago`,
      humanSize(imageSize(image)),
    ]);
    writeStdout(formatTable(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows));
    return 0;
  },
);
