/**
 * Floka's benchmark, in ten sections, each against peers measured in the same run (in the
 * order they run: start, security, detach, exec, network, unpack, pull, push, saveload, build):
 *
 * 1. start: `floka run --rm --network none busybox /bin/true` (the peers have no network either) against
 *    - `runc run` of an OCI bundle that this script writes (the floor: no image store, no
 *      container record, no overlayfs),
 *    - `podman run --rm` when podman is installed (the busybox rootfs is imported into podman).
 *    Targets: Floka's median at most 2.0x runc's and at most 0.3x Podman's, and the host-side
 *    Floka process under 60 MB peak RSS.
 * 2. security: `run --rm busybox true` with the default security profile against
 *    `--security-opt seccomp=unconfined`, alternating (bench/security.ts); skipped, saying
 *    so, while Floka has no `--security-opt`. Target: the profile adds at most 10% (<= 1.1x).
 * 3. detach: `run -d --rm` against a foreground `run --rm`, and the RSS of a supervisor at rest
 *    (bench/detach.ts). Targets: at most 1.5x the foreground run; the supervisor under 60 MB.
 * 4. exec: `floka exec` into a running container against `runc exec` (bench/exec.ts).
 *    Target: at most 2.0x runc's.
 * 5. network: `run --rm --network bridge` against `--network none`, and TCP throughput
 *    through a published port against the container's address (bench/network.ts). Targets:
 *    networking adds at most 60 ms at the median; the published port at least 0.8x direct.
 * 6. unpack: Floka's unpackLayer against `tar -xzf` on one ~50 MB gzip layer
 *    (bench/unpack.ts). Target: at most 1.5x tar's.
 * 7. pull: `floka pull` against `podman pull` of a ~100 MB five-layer image from a local
 *    docker-registry, into an empty store (bench/pull.ts). Target: at most 1.0x Podman's.
 * 8. push: `floka push` of that image against `skopeo copy` from its OCI layout, each to an
 *    empty local docker-registry (bench/push.ts). No target.
 * 9. saveload: `floka save -o` against `podman save -o`, and `floka load -i` against
 *    `podman load -i` of one archive into an empty store, on that image (bench/saveload.ts).
 *    No target.
 * 10. build: `floka build` against `podman build` of one 10-step Flokafile from the same
 *    busybox base, cold (nothing cached) and fully cached (bench/build.ts). Targets: at
 *    most 0.5x Podman's cold and 0.25x Podman's cached.
 *
 * The tools take turns (round robin, rotating who goes first) so that noise on a shared
 * machine hits all of them alike. Each section prints medians, minimums and ratios as a
 * markdown table, then its targets. Each section also records one row per figure (common.ts's
 * `record`, `recordRatio`), and at the end, also when a section failed, all the rows go to one
 * markdown file, bench/RESULTS.md (or `--results FILE`), written atomically: Floka's median, the
 * peer's, the ratio, the target and whether it is met, under notes on the machine, the peers'
 * versions and the sections that ran, and over a line for each peer skipped as not installed.
 * A partial run (`--only`) prints that markdown instead of writing it, so it never replaces
 * the full run's file, unless `--write` (to bench/RESULTS.md) or `--results FILE` is given.
 *
 *   deno task bench [--only SECTION] [--runs N] [--pull-runs N] [--push-runs N] [--saveload-runs N]
 *                   [--unpack-runs N] [--build-runs N] [--results FILE] [--write]
 *
 * (default: every section; 20 timed start runs per tool after 2 warm-up runs, as many for
 * security, detach, exec and network, 5 pulls, 5 pushes, 5 saves and 5 loads, 7 unpacks, 5
 * cold and 5 cached builds). A benchmark is not a test: it asserts nothing about
 * time and exits 0 whatever the ratios. Everything it makes (temporary directories, the registry, podman images) is
 * removed when it ends, fails, or is interrupted.
 */

import { installBusybox, makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import {
  atCleanup,
  cleanUp,
  type Contender,
  exec,
  exists,
  flokaCommands,
  measure,
  median,
  must,
  onPath,
  PODMAN_GLOBAL,
  printTable,
  record,
  recordRatio,
  REPO,
  resultsMarkdown,
  skip,
  tempDir,
  verdict,
  version,
  writeAtomically,
} from "./common.ts";
import { benchBuild } from "./build.ts";
import { benchDetach } from "./detach.ts";
import { benchExec } from "./exec.ts";
import { benchNetwork } from "./network.ts";
import { benchPull } from "./pull.ts";
import { benchPush } from "./push.ts";
import { benchSaveLoad } from "./saveload.ts";
import { benchSecurity } from "./security.ts";
import { benchUnpack } from "./unpack.ts";

const WARMUP_RUNS = 2;
const TARGET_VS_RUNC = 2.0;
const TARGET_VS_PODMAN = 0.3;
const TARGET_RSS_MB = 60;
const PODMAN_IMAGE = "localhost/floka-bench-busybox";
const PODMAN_RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"];

const SECTIONS = [
  "start",
  "security",
  "detach",
  "exec",
  "network",
  // Before the sections whose image stores are deleted when they end: this disk's ext4
  // creates files slowly right after many deletions, which would weigh on both tools here.
  "unpack",
  "pull",
  "push",
  "saveload",
  "build",
] as const;
type Section = typeof SECTIONS[number];

interface Options {
  only?: Section;
  /** Where the results table goes; undefined: printed, not written (a partial run). */
  results?: string;
  runs: number;
  pullRuns: number;
  pushRuns: number;
  saveloadRuns: number;
  unpackRuns: number;
  buildRuns: number;
}

const USAGE = `usage: deno task bench [--only ${SECTIONS.join("|")}] [--runs N] [--pull-runs N] ` +
  "[--push-runs N] [--saveload-runs N] [--unpack-runs N] [--build-runs N] [--results FILE] [--write]";
const DEFAULT_RESULTS = `${REPO}/bench/RESULTS.md`;

function usage(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  Deno.exit(2);
}

function parseArgs(args: string[]): Options {
  const opts: Options = { runs: 20, pullRuns: 5, pushRuns: 5, saveloadRuns: 5, unpackRuns: 7, buildRuns: 5 };
  let write = false;
  const counts = {
    "--runs": "runs",
    "--pull-runs": "pullRuns",
    "--push-runs": "pushRuns",
    "--saveload-runs": "saveloadRuns",
    "--unpack-runs": "unpackRuns",
    "--build-runs": "buildRuns",
  } as const;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") continue;
    if (args[i] === "--write") {
      write = true;
      continue;
    }
    const [flag, inline] = args[i].split(/=(.*)/s, 2);
    const value = inline ?? args[++i];
    if (flag === "--only") {
      if (!SECTIONS.includes(value as Section)) usage(`--only needs one of ${SECTIONS.join(", ")}`);
      opts.only = value as Section;
    } else if (flag === "--results") {
      if (!value) usage("--results needs a file name");
      opts.results = value;
    } else if (flag in counts) {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) usage(`${flag} needs a positive integer, got ${value}`);
      opts[counts[flag as keyof typeof counts]] = n;
    } else {
      usage(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  // A full run writes bench/RESULTS.md; a partial one only when asked to.
  if (!opts.results && (write || !opts.only)) opts.results = DEFAULT_RESULTS;
  return opts;
}

/** Writes an OCI bundle whose rootfs is the busybox image's, read-only, running /bin/true. */
async function writeRuncBundle(bundle: string, rootfs: string): Promise<void> {
  await Deno.mkdir(bundle, { recursive: true });
  await must(["runc", "spec", "--bundle", bundle]);
  const spec = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
  spec.root = { path: rootfs, readonly: true };
  spec.process.terminal = false;
  spec.process.args = ["/bin/true"];
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(spec, null, 2) + "\n");
}

/** Imports the busybox rootfs into podman's store; returns why podman is skipped, or null. */
async function importIntoPodman(rootfs: string): Promise<string | null> {
  if (!onPath("podman")) return "podman is not installed";
  try {
    const tar = await new Deno.Command("tar", { args: ["-C", rootfs, "-c", "."], stdout: "piped" }).output();
    if (!tar.success) return "tar of the busybox rootfs failed";
    atCleanup(() => exec(["podman", "rmi", "--force", PODMAN_IMAGE]));
    await must(["podman", ...PODMAN_GLOBAL, "import", "--quiet", "-", PODMAN_IMAGE], { stdin: tar.stdout });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Peak RSS in MB via GNU time's %M. It reports the largest RSS of the process it waited for
 * and of that process's waited-for descendants (the `containerize` child, whose Deno peak is
 * kept across its execve), so it is an upper bound for the host-side Floka process.
 */
async function peakRssMb(argv: string[], work: string): Promise<number | string> {
  if (!exists("/usr/bin/time")) {
    const out = await new Deno.Command("apt-get", {
      args: ["install", "-y", "-qq", "time"],
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "null",
    }).output();
    if (!out.success || !exists("/usr/bin/time")) return "n/a (no GNU time: apt-get install time)";
  }
  const file = `${work}/rss.txt`;
  let peakKb = 0;
  for (let i = 0; i < 3; i++) {
    await must(["/usr/bin/time", "-f", "%M", "-o", file, ...argv]);
    peakKb = Math.max(peakKb, Number((await Deno.readTextFile(file)).trim()));
  }
  return peakKb / 1024;
}

async function benchStart(runs: number): Promise<void> {
  installBusybox();
  const work = await tempDir("floka-bench-");
  const store = `${work}/store`;
  const imageDir = `${store}/images/busybox:latest`;
  makeBusyboxImage(imageDir);
  const rootfs = `${imageDir}/rootfs`;
  const runcState = `${work}/runc-state`;

  const floka = ["--root", store, "run", "--rm", "--network", "none", "busybox", "/bin/true"];
  const contenders: Contender[] = flokaCommands().map(({ name, argv }) => ({
    name,
    argv: () => [...argv, ...floka],
    times: [],
  }));
  if (contenders.length === 1) {
    console.error("bench: no compiled ./floka (deno task compile); measuring `deno run main.ts` only");
  }

  let runc: Contender | undefined;
  if (onPath("runc")) {
    const bundle = `${work}/runc-bundle`;
    await writeRuncBundle(bundle, rootfs);
    runc = {
      // runc needs a fresh container id each time.
      name: "runc run",
      argv: (i) => ["runc", "--root", runcState, "run", "--bundle", bundle, `floka-bench-${i}`],
      times: [],
    };
    contenders.push(runc);
  } else {
    console.error("bench: runc is not installed; no runc row");
    skip("start", "runc");
  }

  let podman: Contender | undefined;
  const podmanSkip = await importIntoPodman(rootfs);
  if (podmanSkip === null) {
    podman = {
      name: "podman run --rm",
      argv: () => ["podman", ...PODMAN_GLOBAL, "run", "--rm", ...PODMAN_RUN_FLAGS, PODMAN_IMAGE, "/bin/true"],
      times: [],
    };
    contenders.push(podman);
  } else {
    console.error(`bench: skipping podman: ${podmanSkip}`);
    if (!onPath("podman")) skip("start", "podman");
  }

  await measure(contenders, { warmups: WARMUP_RUNS, runs });
  const leftover = runc ? (await must(["runc", "--root", runcState, "list", "-q"])).trim() : "";
  if (leftover) console.error(`bench: runc left containers behind: ${leftover.replace(/\n/g, " ")}`);

  const rss = await peakRssMb(contenders[0].argv(0), work);

  console.log(`\n## Container start: \`run --rm busybox /bin/true\`, ${runs} runs each\n`);
  console.log(
    `${await version(["deno", "--version"])}; ${await version(["runc", "--version"])}; ${await version([
      "podman",
      "--version",
    ])}; ${Deno.osRelease()}; ${navigator.hardwareConcurrency} CPUs\n`,
  );
  printTable(contenders, [{ label: "runc", peer: runc }, { label: "podman", peer: podman }]);

  const flokaMedian = median(contenders[0].times);
  const targets: string[] = [];
  if (runc) {
    const r = flokaMedian / median(runc.times);
    targets.push(`<= ${TARGET_VS_RUNC}x runc: ${r.toFixed(2)}x, ${verdict(r <= TARGET_VS_RUNC)}`);
  } else targets.push(`<= ${TARGET_VS_RUNC}x runc: not measured (no runc)`);
  if (podman) {
    const r = flokaMedian / median(podman.times);
    targets.push(`<= ${TARGET_VS_PODMAN}x podman: ${r.toFixed(2)}x, ${verdict(r <= TARGET_VS_PODMAN)}`);
  } else targets.push(`<= ${TARGET_VS_PODMAN}x podman: not measured (${podmanSkip})`);
  targets.push(
    typeof rss === "number"
      ? `host peak RSS < ${TARGET_RSS_MB} MB: ${rss.toFixed(1)} MB, ${verdict(rss < TARGET_RSS_MB)}`
      : `host peak RSS < ${TARGET_RSS_MB} MB: ${rss}`,
  );
  console.log(`\nTargets (first floka row): ${targets.join("; ")}.`);
  recordRatio("start vs runc", contenders[0], runc, TARGET_VS_RUNC);
  const podmanWhy = podmanSkip && onPath("podman") ? podmanSkip : undefined; // else "not installed"
  recordRatio("start vs podman", contenders[0], podman, TARGET_VS_PODMAN, podmanWhy);
  record({
    figure: "host peak RSS (start)",
    floka: typeof rss === "number" ? `${rss.toFixed(1)} MB` : rss,
    peer: "-",
    ratio: "-",
    target: `< ${TARGET_RSS_MB} MB`,
    met: typeof rss === "number" ? rss < TARGET_RSS_MB : undefined,
  });
  console.log(
    "RSS is GNU time's %M over 3 runs: the peak of the floka process and the children it reaps, " +
      "so an upper bound for the host side.",
  );
}

function runsOf(name: Section, opts: Options): number {
  const counts: Partial<Record<Section, number>> = {
    pull: opts.pullRuns,
    push: opts.pushRuns,
    saveload: opts.saveloadRuns,
    unpack: opts.unpackRuns,
    build: opts.buildRuns,
  };
  return counts[name] ?? opts.runs;
}

/** The header of the results file: when, on what, with which peers, and which sections ran. */
async function machineNotes(ran: Section[], failed: Section | undefined, opts: Options): Promise<string[]> {
  const deno = (await exec(["deno", "--version"]).catch(() => null))?.stdout.trim().split("\n").join(", ");
  const peers: string[] = [];
  for (
    const argv of [["runc", "--version"], ["podman", "--version"], ["skopeo", "--version"], [
      "tar",
      "--version",
    ]]
  ) {
    if (onPath(argv[0])) peers.push(await version(argv));
  }
  const notes = [
    `date: ${new Date().toISOString()}`,
    `deno: ${deno || "?"}`,
    `kernel: ${Deno.osRelease()}; ${navigator.hardwareConcurrency} CPUs`,
    `peers: ${peers.join("; ") || "none installed"}`,
    `Floka: ${flokaCommands()[0].name} (the first floka row of each section)`,
    `sections run: ${ran.join(", ") || "none"}${opts.only ? ` (--only ${opts.only})` : " (all)"}`,
    `timed runs per tool: ${ran.map((name) => `${name} ${runsOf(name, opts)}`).join(", ") || "-"}`,
  ];
  if (failed) {
    notes.push(`**the ${failed} section failed**: its rows are missing, and any later sections did not run`);
  }
  return notes;
}

async function main(): Promise<void> {
  const opts = parseArgs(Deno.args);
  const sections: Record<Section, () => Promise<void>> = {
    start: () => benchStart(opts.runs),
    security: () => benchSecurity(opts.runs),
    detach: () => benchDetach(opts.runs),
    exec: () => benchExec(opts.runs),
    network: () => benchNetwork(opts.runs),
    pull: () => benchPull(opts.pullRuns),
    push: () => benchPush(opts.pushRuns),
    saveload: () => benchSaveLoad(opts.saveloadRuns),
    unpack: () => benchUnpack(opts.unpackRuns),
    build: () => benchBuild(opts.buildRuns),
  };
  // Ctrl-C or a kill: tear down what the section under way made, then stop.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => cleanUp().finally(() => Deno.exit(130)));
  }
  const ran: Section[] = [];
  let failed: Section | undefined;
  try {
    for (const name of SECTIONS) {
      if (opts.only && opts.only !== name) continue;
      failed = name;
      try {
        await sections[name]();
      } finally {
        await cleanUp();
      }
      ran.push(name);
      failed = undefined;
    }
  } finally {
    // Even when a section failed: the rows of those before it.
    const markdown = resultsMarkdown(await machineNotes(ran, failed, opts));
    if (opts.results) {
      await writeAtomically(opts.results, markdown);
      console.error(`bench: wrote ${opts.results}`);
    } else {
      console.log(`\n${markdown}`);
      console.error("bench: a partial run (--only): results printed, not written (--write writes them)");
    }
  }
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
