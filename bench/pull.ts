/**
 * Pull benchmark: `floka pull` against `podman pull` of the same image from a local
 * docker-registry, both from an empty local store, so both download and unpack every layer.
 *
 * The image (made once by umoci, pushed once by skopeo) is the busybox rootfs plus four
 * layers of generated files: large random "binaries", many small text files, a mix of both,
 * and two big random files; about 100 MB uncompressed in five gzip layers.
 *
 * Before each run, untimed: Floka gets a fresh empty `--root` in the bench's temporary
 * directory; the image is removed from podman's store (`podman rmi -f`); `sync` writes back
 * the previous run's dirty pages. Times are wall-clock times of the whole command.
 */
import { makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import { REGISTRY_BIN, startRegistry } from "../tests/integration/registry_harness.ts";
import {
  atCleanup,
  type Contender,
  exists,
  flokaCommands,
  mb,
  measure,
  must,
  onPath,
  PODMAN_GLOBAL,
  printTable,
  record,
  recordRatio,
  skip,
  target,
  tempDir,
  version,
} from "./common.ts";
import { blobPath, buildImage, type Content, gunzippedSize, writeFiles } from "./layers.ts";

const TARGET_VS_PODMAN = 1.0;
const WARMUP_RUNS = 1;

/** The generated layers on top of busybox: where, how many files, how many bytes, what kind. */
const LAYERS: [path: string, files: number, bytes: number, content: Content][] = [
  ["opt/app/bin", 6, 30e6, "random"],
  ["usr/share/doc/app", 1200, 20e6, "text"],
  ["var/lib/app", 800, 24e6, "mixed"],
  ["opt/models", 2, 24e6, "random"],
];

export async function benchPull(runs: number): Promise<void> {
  const missing = [REGISTRY_BIN, "/usr/bin/umoci", "/usr/bin/skopeo"].filter((p) => !exists(p));
  if (missing.length) {
    console.error(`bench: skipping the pull benchmark: needs ${missing.join(", ")}`);
    for (const path of missing) skip("pull", path);
    record({
      figure: "pull vs podman pull",
      floka: "-",
      peer: `not measured (needs ${missing.join(", ")})`,
      ratio: "-",
      target: `<= ${TARGET_VS_PODMAN}x`,
    });
    return;
  }
  const work = await tempDir("floka-bench-pull-");

  console.error("bench: making a ~100 MB image with umoci ...");
  makeBusyboxImage(`${work}/busybox`);
  const layout = `${work}/layout`;
  const layers = await buildImage(layout, "latest", [
    (rootfs) => must(["cp", "-a", `${work}/busybox/rootfs/.`, rootfs]),
    ...LAYERS.map(([path, files, bytes, content]) => (rootfs: string) =>
      writeFiles(`${rootfs}/${path}`, files, bytes, content)
    ),
  ]);
  let compressed = 0, uncompressed = 0;
  for (const layer of layers) {
    compressed += layer.size;
    uncompressed += await gunzippedSize(blobPath(layout, layer.digest));
  }

  const registry = await startRegistry();
  atCleanup(() => registry.stop());
  const ref = `${registry.host}/bench:latest`;
  await must([
    "skopeo",
    "--insecure-policy",
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    "--dest-no-creds",
    `oci:${layout}:latest`,
    `docker://${ref}`,
  ]);

  const contenders: Contender[] = flokaCommands().map(({ name, argv }) => ({
    name,
    argv: (i) => [...argv, "--root", `${work}/store-${i}`, "pull", ref],
    prepare: (i) => Deno.mkdir(`${work}/store-${i}`),
    finish: (i) => Deno.remove(`${work}/store-${i}`, { recursive: true }),
    times: [],
  }));
  let podman: Contender | undefined;
  if (onPath("podman")) {
    const rmi = () => must(["podman", ...PODMAN_GLOBAL, "rmi", "--force", "--ignore", ref]);
    atCleanup(rmi);
    podman = {
      name: "podman pull",
      argv: () => ["podman", ...PODMAN_GLOBAL, "pull", "--tls-verify=false", ref],
      prepare: async () => {
        await rmi();
      },
      times: [],
    };
    contenders.push(podman);
  } else {
    console.error("bench: podman is not installed; no podman row");
    skip("pull", "podman");
  }

  await measure(contenders, { warmups: WARMUP_RUNS, runs, sync: true });

  const about = `${layers.length} gzip layers (busybox rootfs, then random and text files), ` +
    `${mb(uncompressed)} uncompressed, ${mb(compressed)} compressed`;
  const podmanVersion = await version(["podman", "--version"]);
  console.log(`\n## Pull: \`pull ${ref}\` into an empty store, ${runs} runs each\n`);
  console.log(
    `${about}; docker-registry on 127.0.0.1 over HTTP; ${podmanVersion}; \`sync\` before each run.\n`,
  );
  printTable(contenders, [{ label: "podman", peer: podman }]);
  console.log(
    `\nTarget (first floka row): ${
      podman
        ? target(contenders[0], podman, TARGET_VS_PODMAN, "podman pull")
        : `<= ${TARGET_VS_PODMAN.toFixed(1)}x podman pull: not measured (no podman)`
    }.`,
  );
  recordRatio("pull vs podman pull", contenders[0], podman, TARGET_VS_PODMAN);
}
