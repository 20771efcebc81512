/** `floka tag`: give a pulled image another name, as `docker tag`. */
import { FlokaError } from "../../lib/errors.ts";
import { formatReference, parseReference } from "../../lib/reference.ts";
import { contentStore, findImage } from "../images/images.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";

export const tagCommand = defineCommand(
  {
    name: "tag",
    usage: "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    description: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    minArgs: 2,
    maxArgs: 2,
    options: {},
  },
  ({ args: [source, target], globals }) => {
    const store = storeRoot(globals.root);
    const content = contentStore(store);
    const image = findImage(store, source);
    if (!image) throw new FlokaError(`No such image: ${source}`);
    if (image.dir) {
      throw new FlokaError(`${source} was placed by hand: copy its directory to name it ${target}`);
    }
    const from = content.lookup(formatReference(parseReference(source)));
    const to = parseReference(target);
    if (!from) throw new FlokaError(`No such image: ${source}`);
    if (to.digest) throw new FlokaError(`refusing to create a tag with a digest reference: ${target}`);
    content.tag(formatReference(to), to.tag ?? "latest", from, image.repoDigest);
    return 0;
  },
);
