/** `floka images`: list the images in the store as `docker images` does. */
import { Command } from "@commander-js/extra-typings";
import { formatTable } from "../../lib/table.ts";
import { humanDuration, humanSize } from "../../lib/units.ts";
import { imageCreated, imageId, imageSize, listImages } from "../images/local_store.ts";
import { storeRoot } from "../store/root.ts";
import type { Globals } from "./context.ts";

export function imagesCommand(globals: Globals) {
  return new Command("images")
    .description("List images")
    .helpOption("-h, --help", "Print usage")
    .option("-q, --quiet", "Only show image IDs")
    .option("--no-trunc", "Don't truncate output")
    .action(async (opts) => {
      const images = listImages(storeRoot(globals().root));
      const ids = await Promise.all(images.map(imageId));
      const shortId = (id: string) => opts.trunc ? id.slice("sha256:".length, "sha256:".length + 12) : id;
      if (opts.quiet) {
        for (const id of new Set(ids.map(shortId))) console.log(id);
        return;
      }
      const now = Date.now();
      const rows = images.map((image, i) => [
        image.name,
        image.tag,
        shortId(ids[i]),
        `${humanDuration(now - imageCreated(image).getTime())} ago`,
        humanSize(imageSize(image)),
      ]);
      const header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"];
      Deno.stdout.writeSync(new TextEncoder().encode(formatTable(header, rows)));
    });
}
