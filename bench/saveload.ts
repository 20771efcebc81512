/**
 * Save/load benchmark, on the pull benchmark's image (~100 MB in five gzip layers), which
 * each tool pulls once, untimed, into a store of its own:
 *
 * - save: `floka save -o FILE IMAGE` against `podman save -o FILE IMAGE` (a docker-archive,
 *   podman's default), each to a new file, removed after the run. The archives differ:
 *   Floka writes the layers as stored (gzip), podman writes them uncompressed.
 * - load: `floka load -i FILE` against `podman load -i FILE` of the same archive, the one
 *   `podman save` wrote (Floka's own when podman is not installed), each into a new empty
 *   store: Floka a fresh `--root`, podman a fresh `--root`/`--runroot` (initialised, untimed).
 *   No store is removed before the section ends, for the reason the pull benchmark gives
 *   (ext4 makes files slowly right after many deletions).
 *
 * The tools alternate run by run; `sync` before each run writes back the previous run's files.
 */
import {
  type Contender,
  flokaCommands,
  freshPodman,
  mb,
  measure,
  must,
  NO_TARGET,
  onPath,
  printTable,
  recordRatio,
  skip,
  tempDir,
  version,
} from "./common.ts";
import { imageToolsMissing, serveBenchImage } from "./pull.ts";

const WARMUP_RUNS = 1;
const SAVE = "save vs podman save";
const LOAD = "load vs podman load";

export async function benchSaveLoad(runs: number): Promise<void> {
  const figures = [SAVE, LOAD].map((figure) => ({ figure, target: NO_TARGET }));
  if (imageToolsMissing("saveload", figures)) return;
  const work = await tempDir("floka-bench-saveload-");
  const { ref, about } = await serveBenchImage(work);
  const flokaRuns = flokaCommands();
  const store = `${work}/floka-store`;
  await must([...flokaRuns[0].argv, "--root", store, "pull", "-q", ref]);
  let podman: string[] | undefined;
  if (onPath("podman")) {
    podman = await freshPodman(`${work}/podman-store`);
    await must([...podman, "pull", "--quiet", "--tls-verify=false", ref]);
  } else {
    console.error("bench: podman is not installed; no podman rows");
    skip("saveload", "podman");
  }

  const archive = (i: number) => `${work}/save-${i}.tar`;
  const removeArchive = (i: number) => Deno.remove(archive(i));
  const save: Contender[] = flokaRuns.map(({ name, argv }) => ({
    name: `${name} save`,
    argv: (i) => [...argv, "--root", store, "save", "-o", archive(i), ref],
    finish: removeArchive,
    times: [],
  }));
  let podmanSave: Contender | undefined;
  if (podman) {
    podmanSave = {
      name: "podman save",
      argv: (i) => [...podman, "save", "--quiet", "-o", archive(i), ref],
      finish: removeArchive,
      times: [],
    };
    save.push(podmanSave);
  }
  console.error("bench: saves ...");
  await measure(save, { warmups: WARMUP_RUNS, runs, sync: true, alternate: true });
  // Each tool's archive once more, untimed, for its size; the last, podman's, is the load input.
  const sizes: string[] = [];
  const input = `${work}/input.tar`;
  for (const c of save) {
    await must(c.argv(-1));
    sizes.push(`${c.name} ${mb(Deno.statSync(archive(-1)).size)}`);
    await Deno.rename(archive(-1), input);
  }

  const load: Contender[] = flokaRuns.map(({ name, argv }) => ({
    name: `${name} load`,
    argv: (i) => [...argv, "--root", `${work}/load-${i}`, "load", "-q", "-i", input],
    prepare: (i) => Deno.mkdir(`${work}/load-${i}`),
    times: [],
  }));
  let podmanLoad: Contender | undefined;
  if (podman) {
    const stores: string[][] = [];
    podmanLoad = {
      name: "podman load",
      argv: (i) => [...stores[i], "load", "--quiet", "-i", input],
      prepare: async (i) => {
        stores[i] = await freshPodman(`${work}/podman-load-${i}`);
      },
      times: [],
    };
    load.push(podmanLoad);
  }
  console.error("bench: loads ...");
  await measure(load, { warmups: WARMUP_RUNS, runs, sync: true, alternate: true });

  const versions = `${await version(["podman", "--version"])}; the tools alternate; \`sync\` before each run`;
  console.log(`\n## Save: \`save -o FILE ${ref}\`, ${runs} runs each\n`);
  console.log(`${about}; archives: ${sizes.join(", ")}; ${versions}.\n`);
  printTable(save, [{ label: "podman", peer: podmanSave }]);
  console.log(`\nTarget: none (${NO_TARGET}).`);
  console.log(`\n## Load: \`load -i FILE\` into an empty store, ${runs} runs each\n`);
  console.log(`The archive \`${podman ? "podman" : "floka"} save\` wrote; ${versions}.\n`);
  printTable(load, [{ label: "podman", peer: podmanLoad }]);
  console.log(`\nTarget: none (${NO_TARGET}).`);
  recordRatio(SAVE, save[0], podmanSave, null);
  recordRatio(LOAD, load[0], podmanLoad, null);
}
