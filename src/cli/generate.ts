/** `floka generate kube [--service] CONTAINER...`: a Kubernetes Pod manifest, as `podman generate kube` prints one. */
import { FlokaError } from "../../lib/errors.ts";
import { formatReference, parseReference } from "../../lib/reference.ts";
import { generateKube, type KubeContainer, type KubeImage } from "../containers/kube.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import { findImage } from "../images/images.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { writeStdout } from "./output.ts";

const SUBCOMMANDS = ["kube"] as const;

/** The container's image as a cluster could pull it; null when it is gone from the store. */
function imageOf(containers: ContainerStore, c: Container): KubeImage | null {
  let image;
  try {
    image = findImage(containers.store, c.record.image);
  } catch {
    return null;
  }
  if (!image) return null;
  let reference = c.record.image;
  try {
    reference = formatReference(parseReference(c.record.image));
  } catch { /* an image ID: keep it */ }
  // Only a pulled image has a registry that serves it; a built or hand-placed one is local.
  return { pulled: Boolean(image.repoDigest), reference, config: image.config?.config ?? null };
}

/** What each bind source is on the host now. */
function bindKinds(c: Container): Record<string, "Directory" | "File" | "missing"> {
  const kinds: Record<string, "Directory" | "File" | "missing"> = {};
  for (const m of c.record.hostConfig.mounts ?? []) {
    if (m.type !== "bind") continue;
    try {
      kinds[m.source] = Deno.statSync(m.source).isDirectory ? "Directory" : "File";
    } catch {
      kinds[m.source] = "missing";
    }
  }
  return kinds;
}

export const generateCommand = defineCommand(
  {
    name: "generate",
    usage: "COMMAND [OPTIONS] CONTAINER...\n\nCommands:\n" +
      "  kube [--service] CONTAINER...   Print a Kubernetes Pod manifest (YAML) for the containers",
    description: "Generate structured data from containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      service: {
        short: "s",
        long: "service",
        help: "kube: also print a NodePort Service for the published ports",
      },
    },
  },
  ({ options, args, globals }) => {
    const [sub, ...refs] = args;
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new FlokaError(
        `unknown generate command ${JSON.stringify(sub)}: expected one of ${SUBCOMMANDS.join(", ")}`,
      );
    }
    if (!refs.length) throw new FlokaError(`"generate kube" requires at least 1 argument`);
    const store = openStore(globals);
    const containers: KubeContainer[] = refs.map((ref) => {
      const c = store.find(ref);
      return { record: c.record, image: imageOf(store, c), bindKinds: bindKinds(c) };
    });
    writeStdout(generateKube(containers, { service: options.service }));
    return 0;
  },
);
