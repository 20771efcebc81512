/**
 * Container start benchmark: `floka run --rm busybox /bin/true` against peers measured in the
 * same run, on the same busybox rootfs:
 *
 * - `runc run` of an OCI bundle that this script writes (the floor: no image store, no
 *   container record, no overlayfs),
 * - `podman run --rm` when podman is installed (the busybox rootfs is imported into podman).
 *
 * The tools take turns (round robin, rotating who goes first) so that noise on a shared
 * machine hits all of them alike. It prints medians, minimums and ratios as a markdown table,
 * then the targets: Floka's median at most 2.0x runc's and at most 0.3x Podman's, and the
 * host-side Floka process under 60 MB peak RSS.
 *
 *   deno task bench [--runs N]      (default 20 timed runs per tool, after 2 warm-up runs)
 *
 * A benchmark is not a test: it asserts nothing about time and exits 0 whatever the ratios.
 */

import { installBusybox, makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";

const WARMUP_RUNS = 2;
const TARGET_VS_RUNC = 2.0;
const TARGET_VS_PODMAN = 0.3;
const TARGET_RSS_MB = 60;
const PODMAN_IMAGE = "localhost/floka-bench-busybox";
/** On these machines crun refuses hybrid cgroups and podman's default rlimits exceed the hard limits. */
const PODMAN_GLOBAL = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];
const PODMAN_RUN_FLAGS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--network", "none"];

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** One row of the table: a way to start a container running /bin/true. */
interface Contender {
  name: string;
  /** The command line of run number `i` (runc needs a fresh container id each time). */
  argv(i: number): string[];
  times: number[];
}

function usage(message: string): never {
  console.error(`bench: ${message}\nusage: deno task bench [--runs N]`);
  Deno.exit(2);
}

function parseRuns(args: string[]): number {
  let runs = 20;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") continue;
    const value = arg === "--runs" ? args[++i] : arg.startsWith("--runs=") ? arg.slice(7) : undefined;
    if (value === undefined) usage(`unknown argument ${JSON.stringify(arg)}`);
    runs = Number(value);
    if (!Number.isInteger(runs) || runs < 1) usage(`--runs needs a positive integer, got ${value}`);
  }
  return runs;
}

const decoder = new TextDecoder();

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(argv: string[], opts: { stdin?: Uint8Array } = {}): Promise<Result> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: REPO,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(opts.stdin);
    await writer.close();
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Runs a setup command and throws with its output if it fails. */
async function must(argv: string[], opts: { stdin?: Uint8Array } = {}): Promise<string> {
  const res = await exec(argv, opts);
  if (res.code !== 0) {
    throw new Error(`${argv.join(" ")} exited ${res.code}: ${(res.stderr || res.stdout).trim()}`);
  }
  return res.stdout;
}

function onPath(program: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "").split(":");
  return dirs.some((dir) => {
    try {
      return Deno.statSync(`${dir}/${program}`).isFile;
    } catch {
      return false;
    }
  });
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** One timed start; aborts the benchmark when the tool fails, since its time would mean nothing. */
async function timeOnce(c: Contender, i: number, phase: string): Promise<number> {
  const argv = c.argv(i);
  const start = performance.now();
  const res = await exec(argv);
  const ms = performance.now() - start;
  if (res.code !== 0) {
    console.error(`bench: ${c.name} failed during ${phase} (exit ${res.code}): ${argv.join(" ")}`);
    console.error((res.stderr || res.stdout).trim());
    throw new Error(`${c.name} cannot run /bin/true; fix it or uninstall it to skip the row`);
  }
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
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

async function version(argv: string[]): Promise<string> {
  const res = await exec(argv).catch(() => null);
  return res?.code === 0 ? res.stdout.split("\n")[0].trim() : "?";
}

async function main(): Promise<void> {
  const runs = parseRuns(Deno.args);
  installBusybox();
  const work = await Deno.makeTempDir({ prefix: "floka-bench-" });
  const store = `${work}/store`;
  const imageDir = `${store}/images/busybox:latest`;
  makeBusyboxImage(imageDir);
  const rootfs = `${imageDir}/rootfs`;
  const runcState = `${work}/runc-state`;
  let podmanImported = false;

  try {
    const floka = ["run", "--rm", "busybox", "/bin/true"];
    const contenders: Contender[] = [{
      name: "floka (deno run main.ts)",
      argv: () => ["deno", "run", "--allow-all", "--quiet", `${REPO}/main.ts`, "--root", store, ...floka],
      times: [],
    }];
    if (exists(`${REPO}/floka`)) {
      contenders.push({
        name: "floka (compiled ./floka)",
        argv: () => [`${REPO}/floka`, "--root", store, ...floka],
        times: [],
      });
    } else {
      console.error("bench: no compiled ./floka (deno task compile); measuring `deno run main.ts` only");
    }

    let runc: Contender | undefined;
    if (onPath("runc")) {
      const bundle = `${work}/runc-bundle`;
      await writeRuncBundle(bundle, rootfs);
      runc = {
        name: "runc run",
        argv: (i) => ["runc", "--root", runcState, "run", "--bundle", bundle, `floka-bench-${i}`],
        times: [],
      };
      contenders.push(runc);
    } else {
      console.error("bench: runc is not installed; no runc row");
    }

    let podman: Contender | undefined;
    const podmanSkip = await importIntoPodman(rootfs);
    if (podmanSkip === null) {
      podmanImported = true;
      podman = {
        name: "podman run --rm",
        argv:
          () => ["podman", ...PODMAN_GLOBAL, "run", "--rm", ...PODMAN_RUN_FLAGS, PODMAN_IMAGE, "/bin/true"],
        times: [],
      };
      contenders.push(podman);
    } else {
      console.error(`bench: skipping podman: ${podmanSkip}`);
    }

    // Warm-up: fills page caches and Deno's module cache, and checks that every tool works.
    // Ids of the runs go on from the warm-up's so that each runc container is new.
    let id = 0;
    for (let w = 0; w < WARMUP_RUNS; w++) {
      for (const c of contenders) await timeOnce(c, id++, "warm-up");
    }
    console.error(`bench: ${runs} timed runs each of ${contenders.map((c) => c.name).join(", ")} ...`);
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(r + k) % contenders.length];
        c.times.push(await timeOnce(c, id++, `run ${r + 1}`));
      }
    }
    const leftover = runc ? (await must(["runc", "--root", runcState, "list", "-q"])).trim() : "";
    if (leftover) console.error(`bench: runc left containers behind: ${leftover.replace(/\n/g, " ")}`);

    const rss = await peakRssMb(contenders[0].argv(0), work);

    const fmt = (ms: number) => ms.toFixed(1);
    const ratio = (a: number, peer?: Contender) => peer ? `${(a / median(peer.times)).toFixed(2)}x` : "-";
    console.log(`\n## Container start: \`run --rm busybox /bin/true\`, ${runs} runs each\n`);
    console.log(
      `${await version(["deno", "--version"])}; ${await version(["runc", "--version"])}; ${await version([
        "podman",
        "--version",
      ])}; ${Deno.osRelease()}; ${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log("| tool | median ms | min ms | max ms | vs runc | vs podman |");
    console.log("|---|---:|---:|---:|---:|---:|");
    for (const c of contenders) {
      const med = median(c.times);
      console.log(
        `| ${c.name} | ${fmt(med)} | ${fmt(Math.min(...c.times))} | ${fmt(Math.max(...c.times))} | ${
          ratio(med, runc)
        } | ${ratio(med, podman)} |`,
      );
    }

    const flokaMedian = median(contenders[0].times);
    const verdict = (ok: boolean) => ok ? "met" : "NOT met";
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
    console.log(
      "RSS is GNU time's %M over 3 runs: the peak of the floka process and the children it reaps, " +
        "so an upper bound for the host side.",
    );
  } finally {
    if (podmanImported) await exec(["podman", "rmi", "--force", PODMAN_IMAGE]);
    try {
      await Deno.remove(work, { recursive: true });
    } catch (err) {
      console.error(`bench: could not remove ${work}: ${(err as Error).message}`);
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
