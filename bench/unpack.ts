/**
 * Unpack benchmark: Floka's `unpackLayer` against GNU `tar -xzf` on one gzip layer of about
 * 50 MB uncompressed (3000 files, random and text, made into a layer by umoci), each into a
 * fresh empty directory in the bench's temporary directory (one file system for both).
 *
 * Floka runs as a subprocess, `deno run bench/unpack_layer.ts BLOB DIR`, so its time includes
 * Deno's start-up and module load, as tar's includes its own (and its gzip child's). `sync`
 * before each run writes back the previous run's files; removing them is not timed.
 */
import {
  type Contender,
  mb,
  measure,
  must,
  printTable,
  recordRatio,
  REPO,
  target,
  tempDir,
  version,
} from "./common.ts";
import { blobPath, buildImage, gunzippedSize, writeFiles } from "./layers.ts";

const TARGET_VS_TAR = 1.5;
const WARMUP_RUNS = 1;

export async function benchUnpack(runs: number): Promise<void> {
  const work = await tempDir("floka-bench-unpack-");
  console.error("bench: making a ~50 MB layer with umoci ...");
  const layout = `${work}/layout`;
  const [layer] = await buildImage(layout, "latest", [
    (rootfs) => writeFiles(`${rootfs}/srv/data`, 3000, 50e6, "mixed"),
  ]);
  const blob = blobPath(layout, layer.digest);
  const entries = (await must(["tar", "-tzf", blob])).split("\n").filter(Boolean).length;

  const out = (i: number) => `${work}/out-${i}`;
  const fresh = (i: number) => Deno.mkdir(out(i));
  const floka: Contender = {
    name: "floka unpackLayer (deno run, subprocess)",
    argv: (i) => ["deno", "run", "--allow-all", "--quiet", `${REPO}/bench/unpack_layer.ts`, blob, out(i)],
    prepare: fresh,
    times: [],
  };
  const tar: Contender = {
    name: "tar -xzf",
    argv: (i) => ["tar", "-xzf", blob, "-C", out(i)],
    prepare: fresh,
    times: [],
  };
  // As in the pull section: no output is removed before the section ends (with the work
  // directory), and the tools alternate, so that neither creates its files right after a
  // deletion of the other's (this disk's ext4 skips recently freed inodes one by one).
  await measure([floka, tar], { warmups: WARMUP_RUNS, runs, sync: true, alternate: true });

  const about = `${mb(await gunzippedSize(blob))} uncompressed, ${mb(layer.size)} gzip, ${entries} entries`;
  const tarVersion = await version(["tar", "--version"]);
  console.log(`\n## Unpack: one gzip layer into an empty directory, ${runs} runs each\n`);
  console.log(
    `${about}; ${tarVersion}; \`sync\` before each run; outputs kept until the end, tools alternating.\n`,
  );
  printTable([floka, tar], [{ label: "tar", peer: tar }]);
  console.log(`\nTarget: ${target(floka, tar, TARGET_VS_TAR, "tar -xzf")}.`);
  recordRatio("unpack vs tar -xzf", floka, tar, TARGET_VS_TAR);
}
