/** `floka images`: list the images in the store as `docker images` does. */
import type { Digest } from "../../lib/digest.ts";
import { formatTable } from "../../lib/table.ts";
import { humanDuration, humanSize } from "../../lib/units.ts";
import { imageCreated, imageId, imageSize, listImages, shortImageId } from "../images/images.ts";
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
      digests: { long: "digests", help: "Show digests" },
    },
  },
  async ({ options, globals }) => {
    const images = listImages(storeRoot(globals.root));
    const ids = await Promise.all(images.map(imageId));
    const shown = (id: Digest) => options.noTrunc ? id : shortImageId(id);
    if (options.quiet) {
      for (const id of new Set(ids.map(shown))) console.log(id);
      return 0;
    }
    const now = Date.now();
    const rows = images.map((image, i) => [
      image.repository,
      image.tag,
      ...(options.digests ? [image.repoDigest ?? "<none>"] : []),
      shown(ids[i]),
      `${humanDuration(now - imageCreated(image).getTime())} ago`,
      humanSize(imageSize(image)),
    ]);
    const header = [
      "REPOSITORY",
      "TAG",
      ...(options.digests ? ["DIGEST"] : []),
      "IMAGE ID",
      "CREATED",
      "SIZE",
    ];
    writeStdout(formatTable(header, rows));
    return 0;
  },
);
