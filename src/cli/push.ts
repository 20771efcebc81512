/** `floka push`: upload an image to a registry, as `docker push`. */
import { FlokaError } from "../../lib/errors.ts";
import { familiarReference, formatReference, parseReference } from "../../lib/reference.ts";
import { contentStore, findImage } from "../images/images.ts";
import type { PullProgress } from "../images/progress.ts";
import { storeRoot } from "../store/root.ts";
import { defineCommand } from "./command.ts";
import { type GlobalOptions, insecureRegistries } from "./context.ts";
import { load } from "./lazy.ts";

type PushModule = typeof import("../images/push.ts");

/**
 * Layer lines as Docker prints them: redrawn in place on a terminal (`Waiting`,
 * `Pushing [==>  ]`, then the outcome), elsewhere only each layer's outcome, one line each.
 */
async function progressFor(quiet: boolean, push: PushModule): Promise<PullProgress> {
  if (quiet) return { start() {}, layer() {}, note: (line) => console.error(line), done() {} };
  if (Deno.stdout.isTerminal()) {
    const encoder = new TextEncoder();
    let columns = 0;
    try {
      columns = Deno.consoleSize().columns;
    } catch { /* no size to be had */ }
    return await push.terminalPushProgress({
      write: (s: string) => Deno.stdout.writeSync(encoder.encode(s)),
      // A pseudo-terminal without a size (script, some CI) says 0: wrapping at 0 would put
      // each character on a line of its own.
      columns: columns > 0 ? columns : 80,
    });
  }
  return push.plainPushProgress((line) => console.log(line));
}

/**
 * Pushes `reference` from the store of `globals`. The registry client and the push code load
 * only here, as for `floka pull`.
 */
export async function push(
  globals: GlobalOptions,
  reference: string,
  opts: { quiet?: boolean } = {},
): Promise<void> {
  const ref = parseReference(reference);
  const store = storeRoot(globals.root);
  const content = contentStore(store);
  const named = { ...ref, tag: ref.tag ?? (ref.digest ? undefined : "latest") };
  if (!ref.digest && !content.lookup(formatReference(named)) && findImage(store, reference)?.dir) {
    throw new FlokaError(
      `${familiarReference(named)} was placed by hand (images/<name>:<tag>/rootfs) and has no manifest ` +
        "or layers to push: make an image of it with 'floka import' (a tarball of its rootfs) or 'floka build'",
    );
  }
  const say = (line: string) => opts.quiet || console.log(line);
  if (!ref.tag && !ref.digest) say("Using default tag: latest");
  const [pushModule, { RegistryClient }, { loadCredentials }] = await Promise.all([
    load<PushModule>("../images/push.ts"),
    load<typeof import("../registry/client.ts")>("../registry/client.ts"),
    load<typeof import("../registry/credentials.ts")>("../registry/credentials.ts"),
  ]);
  const chunkSize = pushModule.chunkSizeFromEnv(Deno.env.get("FLOKA_PUSH_CHUNK_SIZE"));
  if (!ref.digest) say(`The push refers to repository [${ref.registry}/${ref.repository}]`);
  const client = new RegistryClient({ credentials: await loadCredentials(), insecure: insecureRegistries() });
  const pushed = await pushModule.pushImage(client, content, reference, {
    progress: await progressFor(!!opts.quiet, pushModule),
    chunkSize,
  });
  if (opts.quiet) console.log(familiarReference(named));
  else console.log(pushModule.digestLine(pushed.tag, pushed.digest, pushed.size));
}

export const pushCommand = defineCommand(
  {
    name: "push",
    usage: "[OPTIONS] NAME[:TAG]",
    description: "Upload an image to a registry",
    minArgs: 1,
    maxArgs: 1,
    options: {
      quiet: { short: "q", long: "quiet", help: "Suppress verbose output" },
    },
  },
  async ({ options, args, globals }) => {
    await push(globals, args[0], { quiet: options.quiet });
    return 0;
  },
);
