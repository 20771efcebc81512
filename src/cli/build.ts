/** `floka build`: build an image from a Flokafile (Dockerfile syntax), as `docker build`. */
import { FlokaError } from "../../lib/errors.ts";
import { familiarReference, formatReference, parseReference } from "../../lib/reference.ts";
import { defineCommand } from "./command.ts";
import { openStore, requireRoot } from "./context.ts";
import { load } from "./lazy.ts";
import { pullMissing } from "./pull.ts";

/** Where the Flokafile is: `-f` as given (relative to the working directory), else in the context. */
function flokafilePath(contextDir: string, file: string | undefined): string {
  if (file !== undefined) return file === "-" ? "-" : file;
  for (const name of ["Flokafile", "Dockerfile"]) {
    try {
      if (Deno.statSync(`${contextDir}/${name}`).isFile) return `${contextDir}/${name}`;
    } catch { /* try the next name */ }
  }
  throw new FlokaError(
    `no Flokafile or Dockerfile in ${contextDir}: add one, or name one with -f`,
  );
}

function readFlokafile(path: string): string {
  try {
    if (path === "-") return new TextDecoder().decode(readAllStdin());
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new FlokaError(`cannot read ${path}: no such file`);
    throw new FlokaError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

function readAllStdin(): Uint8Array {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (let n; (n = Deno.stdin.readSync(buf)) !== null && n > 0;) parts.push(buf.slice(0, n));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

/** `--build-arg KEY=VALUE`, or `KEY` alone for the value of KEY in Floka's environment. */
function buildArgs(given: string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (const arg of given) {
    const eq = arg.indexOf("=");
    if (eq === 0) throw new FlokaError(`invalid build argument ${JSON.stringify(arg)}: it has no name`);
    if (eq > 0) {
      args.set(arg.slice(0, eq), arg.slice(eq + 1));
    } else {
      const value = Deno.env.get(arg);
      if (value !== undefined) args.set(arg, value);
    }
  }
  return args;
}

export const buildCommand = defineCommand(
  {
    name: "build",
    usage: "[OPTIONS] PATH",
    description: "Build an image from a Flokafile",
    minArgs: 1,
    maxArgs: 1,
    options: {
      tag: {
        short: "t",
        long: "tag",
        value: "list",
        repeatable: true,
        help: 'Name and optionally a tag in the "name:tag" format',
      },
      file: {
        short: "f",
        long: "file",
        value: "string",
        help: "Name of the Flokafile (default: PATH/Flokafile, then PATH/Dockerfile)",
      },
      buildArg: { long: "build-arg", value: "list", repeatable: true, help: "Set build-time variables" },
      target: { long: "target", value: "string", help: "Set the target build stage to build" },
      noCache: { long: "no-cache", help: "Do not use cache when building the image" },
      network: {
        long: "network",
        value: "string",
        default: "host",
        choices: ["none", "host"],
        help: "Network of the RUN steps: host (default) or none",
      },
      quiet: { short: "q", long: "quiet", help: "Suppress the build output and print image ID on success" },
      dryRun: {
        long: "dry-run",
        help: "Print the parsed Flokafile as JSON, one object per instruction, without building",
      },
    },
  },
  async ({ options, args, globals }) => {
    const contextDir = args[0];
    try {
      if (!Deno.statSync(contextDir).isDirectory) throw new Error();
    } catch {
      throw new FlokaError(`unable to prepare context: path "${contextDir}" not found`);
    }
    const path = flokafilePath(contextDir, options.file);
    const fileName = options.file ?? path.slice(contextDir.length).replace(/^\/+/, "");
    const tags = options.tag.map((t) => formatReference(parseReference(t)));
    const { parseFlokafile } = await load<typeof import("../../lib/flokafile/index.ts")>(
      "../../lib/flokafile/index.ts",
    );
    const parsed = parseFlokafile(readFlokafile(path), fileName);
    const buildArgsGiven = buildArgs(options.buildArg);

    if (options.dryRun) {
      const { dryRun } = await load<typeof import("../build/dry_run.ts")>("../build/dry_run.ts");
      console.log(JSON.stringify(dryRun(parsed, buildArgsGiven, options.target), null, 2));
      return 0;
    }

    requireRoot("build");
    const containers = openStore(globals);
    const [{ build }, { buildOutput }, { contentStore }] = await Promise.all([
      load<typeof import("../build/builder.ts")>("../build/builder.ts"),
      load<typeof import("../build/output.ts")>("../build/output.ts"),
      load<typeof import("../images/images.ts")>("../images/images.ts"),
    ]);
    const content = contentStore(containers.store);
    content.init();
    const encoder = new TextEncoder();
    const output = buildOutput((text) => Deno.stdout.writeSync(encoder.encode(text)), options.quiet);

    // Ctrl-C stops the build after the step under way (a RUN's processes get the signal
    // themselves), and every step cleans up after itself before the error is reported.
    const abort = new AbortController();
    const interrupted = () => abort.abort(new FlokaError("build interrupted", 130));
    Deno.addSignalListener("SIGINT", interrupted);
    Deno.addSignalListener("SIGTERM", interrupted);
    let id;
    try {
      id = await content.withPullLease(() =>
        build({ store: containers.store, content, containers }, {
          contextDir,
          fileName,
          parsed,
          tags,
          buildArgs: buildArgsGiven,
          target: options.target,
          noCache: options.noCache,
          network: options.network as "none" | "host",
          output,
          pull: (ref, platform) => pullMissing(globals, ref, { platform }),
          signal: abort.signal,
        })
      );
    } catch (err) {
      if (abort.signal.aborted) throw abort.signal.reason;
      throw err;
    } finally {
      Deno.removeSignalListener("SIGINT", interrupted);
      Deno.removeSignalListener("SIGTERM", interrupted);
    }
    if (options.quiet) {
      console.log(id);
    } else {
      console.log(`Successfully built ${id.slice("sha256:".length, "sha256:".length + 12)}`);
      for (const tag of tags) console.log(`Successfully tagged ${familiarReference(parseReference(tag))}`);
    }
    return 0;
  },
);
