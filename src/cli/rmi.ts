/**
 * `floka rmi`: remove image tags, then every blob and layer no image or container still
 * needs, as `docker rmi` does.
 */
import { describeError, FlokaError } from "../../lib/errors.ts";
import { familiarReference, formatReference, parseReference } from "../../lib/reference.ts";
import { contentStore, findImage } from "../images/images.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

export const rmiCommand = defineCommand(
  {
    name: "rmi",
    usage: "[OPTIONS] IMAGE [IMAGE...]",
    description: "Remove one or more images",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      force: { short: "f", long: "force", help: "Remove the image even if a container uses it" },
    },
  },
  ({ options, args, globals }) => {
    const containers = openStore(globals);
    const content = contentStore(containers.store);
    const inUse = containers.list();
    let exitCode = 0;
    for (const reference of args) {
      try {
        const image = findImage(containers.store, reference);
        if (!image) throw new FlokaError(`No such image: ${reference}`);
        if (image.dir) {
          throw new FlokaError(
            `${reference} was placed by hand in ${image.dir}: remove that directory to remove the image`,
          );
        }
        const user = inUse.find((c) => c.record.lowerDirs.join(":") === image.lowerDirs.join(":"));
        if (user && !options.force) {
          throw new FlokaError(
            `conflict: unable to remove repository reference "${reference}" (must force) - ` +
              `container ${user.record.id.slice(0, 12)} is using its referenced image`,
          );
        }
        const name = formatReference(parseReference(reference));
        content.untag(name);
        console.log(`Untagged: ${familiarReference(parseReference(name))}`);
      } catch (err) {
        console.error(`floka: ${describeError(err)}`);
        exitCode = 1;
      }
    }
    // Layers a container still stacks stay, tagged or not, until the container is removed.
    const keep = new Set(inUse.flatMap((c) => c.record.lowerDirs));
    for (const digest of content.collectGarbage(keep)) console.log(`Deleted: ${digest}`);
    return exitCode;
  },
);
