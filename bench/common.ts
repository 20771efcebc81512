/**
 * What the benchmark's sections share: running commands, timing contenders in turns,
 * medians, markdown tables, and the teardown steps that run however the benchmark ends.
 */

export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** On these machines crun refuses hybrid cgroups and podman's default rlimits exceed the hard limits. */
export const PODMAN_GLOBAL = ["--runtime", "runc", "--cgroup-manager", "cgroupfs"];

const decoder = new TextDecoder();

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export async function exec(argv: string[], opts: { stdin?: Uint8Array } = {}): Promise<Result> {
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
export async function must(argv: string[], opts: { stdin?: Uint8Array } = {}): Promise<string> {
  const res = await exec(argv, opts);
  if (res.code !== 0) {
    throw new Error(`${argv.join(" ")} exited ${res.code}: ${(res.stderr || res.stdout).trim()}`);
  }
  return res.stdout;
}

/**
 * The argv that starts podman with a store of its own in `dir` (`--root`; `--runroot` too,
 * unless given), so a benchmark never touches the machine's images.
 */
export function podmanIn(dir: string, runroot = `${dir}/run`): string[] {
  return ["podman", "--root", `${dir}/storage`, "--runroot", runroot, ...PODMAN_GLOBAL];
}

/**
 * A new, empty podman store in `dir`, initialised (untimed) so no timed run pays for that.
 * Its runroot is a temporary directory of its own: podman refuses one over 50 characters.
 */
export async function freshPodman(dir: string): Promise<string[]> {
  const podman = podmanIn(dir, await tempDir("floka-bench-run-"));
  await must([...podman, "images", "--quiet"]);
  return podman;
}

export function onPath(program: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "").split(":");
  return dirs.some((dir) => exists(`${dir}/${program}`));
}

export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

export async function version(argv: string[]): Promise<string> {
  const res = await exec(argv).catch(() => null);
  return res?.code === 0 ? res.stdout.split("\n")[0].trim() : "?";
}

/** How Floka is started: `deno run main.ts`, and the compiled `./floka` when there is one. */
export function flokaCommands(): { name: string; argv: string[] }[] {
  const commands = [{
    name: "floka (deno run main.ts)",
    argv: ["deno", "run", "--allow-all", "--quiet", `${REPO}/main.ts`],
  }];
  if (exists(`${REPO}/floka`)) commands.push({ name: "floka (compiled ./floka)", argv: [`${REPO}/floka`] });
  return commands;
}

// --- teardown ---------------------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];

/** Registers a teardown step; `cleanUp` runs them newest first. */
export function atCleanup(step: () => Promise<unknown>): void {
  cleanups.push(step);
}

/** Runs every registered teardown step, reporting (not throwing) the ones that fail. */
export async function cleanUp(): Promise<void> {
  for (let step = cleanups.pop(); step; step = cleanups.pop()) {
    try {
      await step();
    } catch (err) {
      console.error(`bench: cleanup: ${(err as Error).message}`);
    }
  }
}

/** A temporary directory that is removed at cleanup. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  atCleanup(() => Deno.remove(dir, { recursive: true }));
  return dir;
}

// --- timing ------------------------------------------------------------------------------

/** One row of a table: a command that is timed, run after run. */
export interface Contender {
  name: string;
  /** The command line of run number `i`. */
  argv(i: number): string[];
  /** Untimed preparation before run `i` (a fresh store, an image removed, ...). */
  prepare?(i: number): Promise<void>;
  /** Untimed tidying after run `i`. */
  finish?(i: number): Promise<void>;
  times: number[];
}

/** One timed run; aborts the benchmark when the tool fails, since its time would mean nothing. */
async function timeOnce(c: Contender, i: number, phase: string): Promise<number> {
  await c.prepare?.(i);
  const argv = c.argv(i);
  const start = performance.now();
  const res = await exec(argv);
  const ms = performance.now() - start;
  if (res.code !== 0) {
    console.error(`bench: ${c.name} failed during ${phase} (exit ${res.code}): ${argv.join(" ")}`);
    console.error((res.stderr || res.stdout).trim());
    throw new Error(`${c.name} failed; fix it or uninstall it to skip the row`);
  }
  await c.finish?.(i);
  return ms;
}

/**
 * Warm-up runs (untimed: they fill caches and check that every tool works), then `runs` timed
 * rounds in which the contenders take turns, rotating who goes first, so that noise on a
 * shared machine hits all of them alike; with `alternate`, in the same order every round
 * (A B A B ...), so that no tool ever runs twice in a row. Run ids go on from the warm-up's.
 * With `sync`, dirty pages are written back before every run so no run pays for the previous
 * one's writes.
 */
export async function measure(
  contenders: Contender[],
  opts: { warmups: number; runs: number; sync?: boolean; alternate?: boolean },
): Promise<void> {
  let id = 0;
  const once = async (c: Contender, phase: string) => {
    if (opts.sync) await must(["sync"]);
    return await timeOnce(c, id++, phase);
  };
  for (let w = 0; w < opts.warmups; w++) {
    for (const c of contenders) await once(c, "warm-up");
  }
  console.error(`bench: ${opts.runs} timed runs each of ${contenders.map((c) => c.name).join(", ")} ...`);
  for (let r = 0; r < opts.runs; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(opts.alternate ? k : r + k) % contenders.length];
      c.times.push(await once(c, `run ${r + 1}`));
    }
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// --- reporting ---------------------------------------------------------------------------

export const verdict = (ok: boolean) => ok ? "met" : "NOT met";
export const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The ratio of `c`'s median to `peer`'s, if there is a peer. */
export function ratio(c: Contender, peer?: Contender): number | undefined {
  return peer ? median(c.times) / median(peer.times) : undefined;
}

/** Prints the markdown table: median, min and max of each contender, and its ratio to each peer. */
export function printTable(contenders: Contender[], peers: { label: string; peer?: Contender }[]): void {
  const fmt = (ms: number) => ms.toFixed(1);
  console.log(`| tool | median ms | min ms | max ms |${peers.map((p) => ` vs ${p.label} |`).join("")}`);
  console.log(`|---|---:|---:|---:|${peers.map(() => "---:|").join("")}`);
  for (const c of contenders) {
    const ratios = peers.map(({ peer }) => {
      const r = ratio(c, peer);
      return ` ${r === undefined ? "-" : `${r.toFixed(2)}x`} |`;
    });
    console.log(
      `| ${c.name} | ${fmt(median(c.times))} | ${fmt(Math.min(...c.times))} | ${fmt(Math.max(...c.times))} |${
        ratios.join("")
      }`,
    );
  }
}

/** `<= 1.5x tar -xzf: 1.23x, met` for the target line under a table. */
export function target(c: Contender, peer: Contender, limit: number, label: string): string {
  const r = ratio(c, peer)!;
  return `<= ${limit.toFixed(1)}x ${label}: ${r.toFixed(2)}x, ${verdict(r <= limit)}`;
}

// --- the results file --------------------------------------------------------------------

/** One row of bench/RESULTS.md: one figure a section measures, against its target. */
export interface ResultRow {
  /** What is compared: "start vs runc", "supervisor RSS". */
  figure: string;
  /** Floka's median, with its unit ("12.3 ms", "41.0 MB"). */
  floka: string;
  /** The peer's median, or "-" when the figure has no peer, or why it was not measured. */
  peer: string;
  /** "1.23x", "+12.3 ms", or "-". */
  ratio: string;
  target: string;
  /** undefined: not measured (the peer is not installed); null: the figure has no target. */
  met?: boolean | null;
}

/** Every row recorded so far, in the order the sections ran. */
export const results: ResultRow[] = [];
/** The sections that skipped each peer because it is not installed: podman -> [start, pull]. */
export const skipped = new Map<string, string[]>();

export function record(row: ResultRow): void {
  results.push(row);
}

/** Notes that `peer` is not installed, so `section` skipped its rows against it. */
export function skip(section: string, peer: string): void {
  skipped.set(peer, [...skipped.get(peer) ?? [], section]);
}

export const ms = (x: number) => `${x.toFixed(1)} ms`;

/** The target of a figure that has none (it is measured to be watched). */
export const NO_TARGET = "—";

/**
 * Records the row comparing Floka's contender `c` to `peer` against "at most `limit`x" (null:
 * no target), or, without a peer, a row saying it was not measured and why.
 */
export function recordRatio(
  figure: string,
  c: Contender,
  peer: Contender | undefined,
  limit: number | null,
  why = "not installed",
): void {
  const r = ratio(c, peer);
  record({
    figure,
    floka: ms(median(c.times)),
    peer: peer ? ms(median(peer.times)) : `not measured (${why})`,
    ratio: r === undefined ? "-" : `${r.toFixed(2)}x`,
    target: limit === null ? NO_TARGET : `<= ${limit}x`,
    met: r === undefined ? undefined : limit === null ? null : r <= limit,
  });
}

/**
 * The markdown of bench/RESULTS.md: `notes` (machine, what ran) above the table, then the
 * skipped peers. The table's columns are padded as `deno fmt` pads them, so the file is
 * already formatted.
 */
export function resultsMarkdown(notes: string[]): string {
  const cell = (s: string) => s.replace(/\|/g, "\\|");
  const header = ["figure", "Floka median", "peer median", "ratio", "target", "met?"];
  const right = [false, true, true, true, false, false];
  const rows = results.map((r) => [
    ...[r.figure, r.floka, r.peer, r.ratio, r.target].map(cell),
    r.met === undefined ? "not measured" : r.met === null ? NO_TARGET : r.met ? "yes" : "**no**",
  ]);
  if (rows.length === 0) rows.push(["no figures recorded", "-", "-", "-", "-", "-"]);
  const widths = header.map((h, k) => Math.max(3, h.length, ...rows.map((row) => row[k].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, k) => right[k] ? c.padStart(widths[k]) : c.padEnd(widths[k])).join(" | ")} |`;
  const rule = `| ${widths.map((w, k) => right[k] ? `${"-".repeat(w - 1)}:` : "-".repeat(w)).join(" | ")} |`;
  const lines = ["# Floka benchmark results", "", ...notes.map((n) => `- ${n}`), ""];
  lines.push(line(header), rule, ...rows.map(line));
  if (skipped.size) lines.push("");
  for (const [peer, sections] of skipped) {
    lines.push(`- ${peer} not installed: skipped (${sections.join(", ")})`);
  }
  return lines.join("\n") + "\n";
}

/** Writes `text` to `path` atomically: a temporary file beside it, then a rename. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}
