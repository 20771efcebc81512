/**
 * Pull benchmark: `floka pull` against `podman pull` of the same image from a local
 * docker-registry, both from an empty local store, so both download and unpack every layer.
 *
 * The image (made once by umoci, pushed once by skopeo) is the busybox rootfs plus four
 * layers of generated files: large random "binaries", many small text files, a mix of both,
 * and two big random files; about 100 MB uncompressed in five gzip layers. The push and
 * save/load benchmarks use the same image (`serveBenchImage`).
 *
 * Each run pulls into a store of its own, new and empty: Floka a fresh `--root`, podman a
 * fresh `--root`/`--runroot` (initialised, untimed, before the run). The tools alternate run
 * by run (A B A B ...), and no store is deleted before the section ends: on ext4, files made
 * right after many deletions are slow to make (the kernel skips recently freed inodes), which
 * would penalise whichever tool ran right after the other's store was removed. Before each
 * run, untimed, `sync` writes back the previous run's dirty pages. Times are wall-clock times
 * of the whole command.
 */
import { makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import { REGISTRY_BIN, startRegistry } from "../tests/integration/registry_harness.ts";
import {
  atCleanup,
  type Contender,
  exists,
  flokaCommands,
  freshPodman,
  mb,
  measure,
  must,
  onPath,
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

/**
 * Whether the tools that make and serve the bench image are missing: if so, records a row
 * for each of `figures` saying so, notes the missing tools as skipped, and returns true.
 */
export function imageToolsMissing(section: string, figures: { figure: string; target: string }[]): boolean {
  const missing = [REGISTRY_BIN, "/usr/bin/umoci", "/usr/bin/skopeo"].filter((p) => !exists(p));
  if (!missing.length) return false;
  console.error(`bench: skipping the ${section} benchmark: needs ${missing.join(", ")}`);
  for (const path of missing) skip(section, path);
  for (const { figure, target } of figures) {
    record({ figure, floka: "-", peer: `not measured (needs ${missing.join(", ")})`, ratio: "-", target });
  }
  return true;
}

export interface BenchImage {
  /** The OCI layout umoci made it in (tag `latest`). */
  layout: string;
  /** `127.0.0.1:PORT/bench:latest` in a docker-registry that runs until cleanup. */
  ref: string;
  /** Its layers, sizes and compression, for the line under a table. */
  about: string;
}

/** Makes the ~100 MB five-layer image in `work` and serves it from a local docker-registry. */
export async function serveBenchImage(work: string): Promise<BenchImage> {
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
  await must(skopeoCopy(`oci:${layout}:latest`, ref));
  const about = `${layers.length} gzip layers (busybox rootfs, then random and text files), ` +
    `${mb(uncompressed)} uncompressed, ${mb(compressed)} compressed`;
  return { layout, ref, about };
}

/** The argv of skopeo copying `source` to `ref` in a local registry over plain HTTP. */
export function skopeoCopy(source: string, ref: string): string[] {
  return [
    "skopeo",
    "--insecure-policy",
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    "--dest-no-creds",
    source,
    `docker://${ref}`,
  ];
}

export async function benchPull(runs: number): Promise<void> {
  if (imageToolsMissing("pull", [{ figure: "pull vs podman pull", target: `<= ${TARGET_VS_PODMAN}x` }])) {
    return;
  }
  const work = await tempDir("floka-bench-pull-");
  const { ref, about } = await serveBenchImage(work);

  const contenders: Contender[] = flokaCommands().map(({ name, argv }) => ({
    name,
    argv: (i) => [...argv, "--root", `${work}/store-${i}`, "pull", ref],
    prepare: (i) => Deno.mkdir(`${work}/store-${i}`),
    times: [],
  }));
  let podman: Contender | undefined;
  if (onPath("podman")) {
    const stores: string[][] = [];
    podman = {
      name: "podman pull",
      argv: (i) => [...stores[i], "pull", "--tls-verify=false", ref],
      prepare: async (i) => {
        stores[i] = await freshPodman(`${work}/podman-${i}`);
      },
      times: [],
    };
    contenders.push(podman);
  } else {
    console.error("bench: podman is not installed; no podman row");
    skip("pull", "podman");
  }

  await measure(contenders, { warmups: WARMUP_RUNS, runs, sync: true, alternate: true });

  const podmanVersion = await version(["podman", "--version"]);
  console.log(`\n## Pull: \`pull ${ref}\` into an empty store, ${runs} runs each\n`);
  console.log(
    `${about}; docker-registry on 127.0.0.1 over HTTP; ${podmanVersion}; a new store for every run, ` +
      "none removed before the section ends; the tools alternate; `sync` before each run.\n",
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
