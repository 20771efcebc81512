/** `floka images`: list the images in the store as `docker images` does. */
import type { Digest } from "../../lib/digest.ts";
import { formatTable } from "../../lib/table.ts";
import { humanDuration, humanSize } from "../../lib/units.ts";
import { imageCreated, imageId, imageSize, listImages, shortImageId } from "../images/images.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { dockerTime, formatList } from "./format.ts";
import { writeStdout } from "./output.ts";

/** Headers of `images --format 'table ...'`, by field. */
const IMAGE_HEADERS: Readonly<Record<string, string>> = {
  Containers: "CONTAINERS",
  CreatedAt: "CREATED AT",
  CreatedSince: "CREATED",
  Digest: "DIGEST",
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  SharedSize: "SHARED SIZE",
  Size: "SIZE",
  Tag: "TAG",
  UniqueSize: "UNIQUE SIZE",
  VirtualSize: "SIZE",
};

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
      format: {
        long: "format",
        value: "string",
        help: "Format output: 'table', 'table TEMPLATE', 'json', or a template ('{{.Repository}}:{{.Tag}}')",
      },
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
    const sizes = images.map(imageSize);
    const rows = images.map((image, i) => [
      image.repository,
      image.tag,
      ...(options.digests ? [image.repoDigest ?? "<none>"] : []),
      shown(ids[i]),
      `${humanDuration(now - imageCreated(image).getTime())} ago`,
      humanSize(sizes[i]),
    ]);
    const header = [
      "REPOSITORY",
      "TAG",
      ...(options.digests ? ["DIGEST"] : []),
      "IMAGE ID",
      "CREATED",
      "SIZE",
    ];
    const view = (i: number) => ({
      Containers: "N/A",
      CreatedAt: dockerTime(imageCreated(images[i])),
      CreatedSince: `${humanDuration(now - imageCreated(images[i]).getTime())} ago`,
      Digest: images[i].repoDigest ?? "<none>",
      ID: shown(ids[i]),
      Repository: images[i].repository,
      SharedSize: "N/A",
      Size: humanSize(sizes[i]),
      Tag: images[i].tag,
      UniqueSize: "N/A",
      VirtualSize: humanSize(sizes[i]),
    });
    writeStdout(formatList(options.format, {
      items: images.map((_, i) => i),
      view,
      headers: IMAGE_HEADERS,
      sample: Object.fromEntries(Object.keys(IMAGE_HEADERS).map((k) => [k, ""])),
      defaultTable: () => formatTable(header, rows),
    }));
    return 0;
  },
);
