/**
 * Push benchmark: `floka push` against `skopeo copy oci:LAYOUT docker://...` of the pull
 * benchmark's image (~100 MB in five gzip layers) to a local docker-registry.
 *
 * skopeo, not `podman push`: Floka keeps the compressed blobs it pulled and uploads them as
 * they are, and so does skopeo from the OCI layout the image was made in, while podman keeps
 * layers uncompressed and would gzip them again on every push (timing gzip, not the upload).
 *
 * Every run pushes to a registry of its own, started (untimed) just before it with empty
 * storage and stopped after it, so every blob is really uploaded: in a registry that had
 * the blobs, in any repository, both tools would mount them across repositories instead
 * (Floka from the images its store names after that registry, skopeo from its blob-info
 * cache). Floka pushes from a store that pulled the image once; before each run the image is
 * tagged there with the run's registry, and untagged after it. The tools alternate run by
 * run; `sync` before each run writes back the previous run's uploads.
 */
import { startRegistry, type TestRegistry } from "../tests/integration/registry_harness.ts";
import {
  type Contender,
  flokaCommands,
  measure,
  must,
  NO_TARGET,
  printTable,
  recordRatio,
  tempDir,
  version,
} from "./common.ts";
import { imageToolsMissing, serveBenchImage, skopeoCopy } from "./pull.ts";

const WARMUP_RUNS = 1;
const FIGURE = "push vs skopeo copy";

export async function benchPush(runs: number): Promise<void> {
  if (imageToolsMissing("push", [{ figure: FIGURE, target: NO_TARGET }])) return;
  const work = await tempDir("floka-bench-push-");
  const { layout, ref, about } = await serveBenchImage(work);
  const store = `${work}/floka-store`;
  await must([...flokaCommands()[0].argv, "--root", store, "pull", "-q", ref]);

  // Run i's registry, and the image's name in it.
  const registries = new Map<number, TestRegistry>();
  const target = (i: number) => `${registries.get(i)!.host}/bench:latest`;
  const startOne = async (i: number) => {
    registries.set(i, await startRegistry());
  };
  const stopOne = async (i: number) => {
    await registries.get(i)!.stop();
    registries.delete(i);
  };

  const contenders: Contender[] = flokaCommands().map(({ name, argv }) => ({
    name: `${name} push`,
    argv: (i) => [...argv, "--root", store, "push", "-q", target(i)],
    prepare: async (i) => {
      await startOne(i);
      await must([...argv, "--root", store, "tag", ref, target(i)]);
    },
    finish: async (i) => {
      await must([...argv, "--root", store, "rmi", target(i)]);
      await stopOne(i);
    },
    times: [],
  }));
  const skopeo: Contender = {
    name: "skopeo copy oci: docker://",
    argv: (i) => skopeoCopy(`oci:${layout}:latest`, target(i)),
    prepare: startOne,
    finish: stopOne,
    times: [],
  };
  contenders.push(skopeo);

  try {
    await measure(contenders, { warmups: WARMUP_RUNS, runs, sync: true, alternate: true });
  } finally {
    // A failed run leaves its registry up.
    for (const i of [...registries.keys()]) await stopOne(i);
  }

  console.log(`\n## Push: to an empty docker-registry, ${runs} runs each\n`);
  console.log(
    `${about}; docker-registry on 127.0.0.1 over HTTP, a new one for every run; ` +
      `${await version(["skopeo", "--version"])}; the tools alternate; \`sync\` before each run.\n`,
  );
  printTable(contenders, [{ label: "skopeo", peer: skopeo }]);
  console.log(`\nTarget: none (${NO_TARGET}).`);
  recordRatio(FIGURE, contenders[0], skopeo, null);
}
