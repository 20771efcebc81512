/** `floka pull`: download an image from a registry, as `docker pull`. */
import { FlokaError } from "../../lib/errors.ts";
import { familiarReference, parseReference } from "../../lib/reference.ts";
import { contentStore, findImage, type Image } from "../images/images.ts";
import type { PullProgress } from "../images/progress.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { load } from "./lazy.ts";
import { type GlobalOptions, insecureRegistries, requireRoot } from "./context.ts";

async function progressFor(quiet: boolean): Promise<PullProgress> {
  const { plainProgress, terminalProgress } = await load<typeof import("../images/progress.ts")>(
    "../images/progress.ts",
  );
  const err = (line: string) => console.error(line);
  if (quiet) return { start() {}, layer() {}, note: err, done() {} };
  if (Deno.stderr.isTerminal()) {
    const encoder = new TextEncoder();
    return terminalProgress({
      write: (s: string) => Deno.stderr.writeSync(encoder.encode(s)),
      columns: Deno.consoleSize().columns,
    });
  }
  return plainProgress(err);
}

/**
 * Pulls `reference` into the store of `globals`, reporting on stderr as Docker does. The
 * registry client, tar and progress modules load only here: `floka run` of an image that is
 * present must not pay for them (tar-stream brings in Deno's Node layer).
 */
export async function pull(
  globals: GlobalOptions,
  reference: string,
  opts: { platform?: string; quiet?: boolean } = {},
): Promise<string> {
  const ref = parseReference(reference);
  const say = (line: string) => opts.quiet || console.error(line);
  if (!ref.tag && !ref.digest) say("Using default tag: latest");
  say(`${ref.tag ?? ref.digest}: Pulling from ${ref.repository}`);
  const [{ pullImage }, { RegistryClient }, { loadCredentials }] = await Promise.all([
    load<typeof import("../images/pull.ts")>("../images/pull.ts"),
    load<typeof import("../registry/client.ts")>("../registry/client.ts"),
    load<typeof import("../registry/credentials.ts")>("../registry/credentials.ts"),
  ]);
  const client = new RegistryClient({ credentials: await loadCredentials(), insecure: insecureRegistries() });
  const pulled = await pullImage(client, contentStore(storeRoot(globals.root)), reference, {
    platform: opts.platform,
    progress: await progressFor(!!opts.quiet),
  });
  say(`Digest: ${pulled.repoDigest}`);
  say(
    `Status: ${pulled.changed ? "Downloaded newer image" : "Image is up to date"} for ${
      familiarReference(ref)
    }`,
  );
  return pulled.name;
}

/** For `floka run` and `floka build`: pulls a missing image and returns it. */
export async function pullMissing(
  globals: GlobalOptions,
  reference: string,
  opts: { platform?: string } = {},
): Promise<Image> {
  console.error(`Unable to find image '${familiarReference(parseReference(reference))}' locally`);
  await pull(globals, reference, opts);
  const image = findImage(storeRoot(globals.root), reference);
  if (!image) throw new FlokaError(`image ${reference} was pulled but cannot be found in the store`);
  return image;
}

export const pullCommand = defineCommand(
  {
    name: "pull",
    usage: "[OPTIONS] NAME[:TAG|@DIGEST]",
    description: "Download an image from a registry",
    minArgs: 1,
    maxArgs: 1,
    options: {
      platform: {
        long: "platform",
        value: "string",
        help: "Set platform if server is multi-platform capable",
      },
      quiet: { short: "q", long: "quiet", help: "Suppress verbose output" },
    },
  },
  async ({ options, args, globals }) => {
    // Unpacking keeps the layers' owners and device files, which takes root.
    requireRoot("pull");
    console.log(await pull(globals, args[0], { platform: options.platform, quiet: options.quiet }));
    return 0;
  },
);
