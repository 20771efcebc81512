/**
 * The steps that change files: RUN (a container made by Floka's runtime on the state's
 * layers) and COPY/ADD (written through an overlay mount on the host). Each leaves its
 * changes in an overlay upper directory, which `commitLayer` turns into a stored layer.
 */
import * as libc from "../../ffi/libc.ts";
import type { Digest } from "../../lib/digest.ts";
import { FlokaError } from "../../lib/errors.ts";
import { O_CLOEXEC, O_RDONLY } from "../../lib/linux.ts";
import { newContainerId } from "../../lib/names.ts";
import type { Descriptor } from "../../lib/oci.ts";
import { MediaType } from "../../lib/oci.ts";
import type { ContainerRecord, ContainerStore } from "../containers/store.ts";
import type { ContentStore } from "../images/content_store.ts";
import { unpackLayer } from "../images/unpack.ts";
import { CgroupManager } from "../runtime/cgroups.ts";
import { prepareContainerDir, runContainer } from "../runtime/run.ts";
import { isEmptyDiff, writeLayerBlob } from "./layer_diff.ts";
import type { BuildOutput } from "./output.ts";

export interface StoredLayer {
  descriptor: Descriptor;
  diffId: Digest;
}

/**
 * Stores the changes in `upper` as a gzip layer blob and unpacks it like a pulled layer;
 * null when the step changed nothing.
 */
export async function commitLayer(content: ContentStore, upper: string): Promise<StoredLayer | null> {
  if (isEmptyDiff(upper)) return null;
  const tmp = content.tempPath("blob");
  try {
    const { digest, size, diffId } = await writeLayerBlob(upper, tmp);
    const descriptor: Descriptor = { mediaType: MediaType.OciLayerGzip, digest, size };
    // writeBlob hashes the file again on the way in: what is stored is always verified.
    using blob = await Deno.open(tmp);
    await content.writeBlob(descriptor, blob.readable);
    await content.addLayer(diffId, async (target) => {
      using file = await Deno.open(content.blobPath(digest));
      return (await unpackLayer(file.readable, "gzip", target)).diffId;
    });
    return { descriptor, diffId };
  } finally {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
  }
}

export interface RunStepOptions {
  containers: ContainerStore;
  /** Lower directories, top first, the init layer included. */
  lowerDirs: string[];
  argv: string[];
  env: string[];
  workingDir: string;
  user: string;
  network: "none" | "host";
  output: BuildOutput;
  /** Kills the container when aborted (Ctrl-C). */
  signal: AbortSignal;
}

/**
 * Runs one RUN step's command in a container whose stdin is /dev/null and whose stdout
 * and stderr go, indented, to the build's output. Returns the container's ID and exit
 * code; the caller reads its upper directory and removes it.
 */
export async function runInContainer(opts: RunStepOptions): Promise<{ id: string; exitCode: number }> {
  const id = newContainerId();
  const record: ContainerRecord = {
    id,
    name: `floka-build-${id.slice(0, 12)}`,
    created: new Date().toISOString(),
    image: "(build step)",
    lowerDirs: opts.lowerDirs,
    path: opts.argv[0],
    args: opts.argv.slice(1),
    config: {
      hostname: id.slice(0, 12),
      env: opts.env,
      workingDir: opts.workingDir,
      user: opts.user,
      entrypoint: null,
      cmd: null,
    },
    hostConfig: { autoRemove: false, networkMode: opts.network, memory: 0, cpuShares: 0 },
  };
  const devNull = libc.open("/dev/null", O_RDONLY | O_CLOEXEC);
  const [readEnd, writeEnd] = libc.pipe(O_CLOEXEC);
  let writeOpen = true;
  const closeWriteEnd = () => {
    if (writeOpen) libc.close(writeEnd);
    writeOpen = false;
  };
  const copying = libc.readChunks(readEnd, (chunk) => opts.output.runOutput(chunk));
  try {
    const exitCode = await runContainer(
      opts.containers,
      () => ({ record, prepare: prepareContainerDir(record) }),
      new CgroupManager(),
      { stdio: [devNull, writeEnd, writeEnd], signal: opts.signal },
    );
    // Every process of the container has ended with its PID 1, so the pipe reaches its end.
    closeWriteEnd();
    await copying;
    return { id, exitCode };
  } finally {
    closeWriteEnd();
    await copying.catch(() => {});
    opts.output.endRunOutput();
    libc.close(readEnd);
    libc.close(devNull);
  }
}

/** The failure of a RUN step: Docker's wording, and the command's exit code for Floka's. */
export function runFailed(argv: string[], exitCode: number): FlokaError {
  return new FlokaError(
    `process "${argv.join(" ")}" did not complete successfully: exit code: ${exitCode}`,
    exitCode,
  );
}
