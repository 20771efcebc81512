/**
 * `floka rmi`: remove image tags, then every blob and layer no image or container still
 * needs, as `docker rmi` does.
 */
import { describeError, FlokaError } from "../../lib/errors.ts";
import { familiarReference, formatReference, parseReference } from "../../lib/reference.ts";
import { BuildCache } from "../build/cache.ts";
import { contentStore, findImage, type Image } from "../images/images.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

/** `reference` names the image by its ID (a prefix of its config digest). */
function isImageId(reference: string, image: Image): boolean {
  const hex = reference.replace(/^sha256:/, "");
  return /^[0-9a-f]{12,64}$/.test(hex) && !!image.configDigest?.slice("sha256:".length).startsWith(hex);
}

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
        if (image.repository === "<none>" || isImageId(reference, image)) {
          // By ID, as `docker rmi 3f2a1b9c8d7e`: every tag of the image goes with it.
          const names = content.index().manifests.filter((m) => m.digest === image.manifestDigest);
          if (names.length > 1 && !options.force) {
            throw new FlokaError(
              `conflict: unable to delete ${reference} (must be forced) - image is referenced in multiple repositories`,
            );
          }
          for (const name of content.removeManifest(image.manifestDigest!)) {
            console.log(`Untagged: ${familiarReference(parseReference(name))}`);
          }
          continue;
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
    // Build steps whose layers are gone can never be reused: their cache entries go too.
    new BuildCache(content).prune();
    return exitCode;
  },
);
