/**
 * Crash consistency (DESIGN section 5: "A Floka killed with SIGKILL at any moment leaves a
 * store the next command can use and clean"). For each of pull, build, run and rm, many
 * trials each start the command, wait a random delay within the command's typical duration,
 * SIGKILL the Floka process (only it: a detached supervisor it started lives on, as designed),
 * and then check that:
 *
 * - every blob in the store still hashes to its name (no blob is ever in place unverified);
 * - `floka system check` exits 0, or reports only repairable problems, after which
 *   `floka system check --repair` and another `floka system check` exit 0;
 * - the next command works (pull again and run the image; build again; `ps -a` and `rm -f`).
 *
 * The delays come from a seeded PRNG; the seed is printed, and FLOKA_CRASH_SEED replays a
 * run (FLOKA_CRASH_TRIALS changes the number of trials per command). The typical duration
 * is measured in the same run (one uncrashed command first); nothing asserts on time.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { makeBusyboxImage } from "../fixtures/busybox_image.ts";
import {
  cgroupDirsOf,
  flokaArgv,
  hostMountsMentioning,
  integrationTest,
  IS_ROOT,
  show,
  type Store,
  waitUntil,
  withStore,
} from "./helpers.ts";
import { gnuTar, OciLayout, skopeoPush, umociAddLayer, umociNew } from "./image_builder.ts";
import { registryToolsMissing, startRegistry } from "./registry_harness.ts";
import { pathExists } from "../../src/store/files.ts";

const SEED = Number(Deno.env.get("FLOKA_CRASH_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const TRIALS = Number(Deno.env.get("FLOKA_CRASH_TRIALS") ?? 30);
if (IS_ROOT) {
  console.error(`crash tests: seed ${SEED} (replay with FLOKA_CRASH_SEED=${SEED}), ${TRIALS} trials each`);
}

/** mulberry32: a small seeded PRNG, one stream per test (seed + a salt) so each replays alone. */
function prng(salt: number): () => number {
  let a = (SEED + salt * 0x9e3779b9) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// deno-lint-ignore no-explicit-any
type Json = any;

/** What the trials of one command found. */
class Tally {
  trials = 0;
  killedEarly = 0;
  repaired = 0;
  /** Trials where a later check found more to repair (a surviving process changed the state meanwhile). */
  late = 0;
  kinds = new Map<string, number>();
  /** One finding of each kind, as `system check` words it. */
  examples = new Map<string, string>();

  constructor(readonly command: string) {}

  summary(): string {
    const kinds = [...this.kinds].map(([k, n]) => `${k} x${n}`).join(", ") || "none";
    return `crash ${this.command}: seed ${SEED}, ${this.trials} trials, ${this.killedEarly} killed before it ended, ` +
      `${this.repaired} left something to repair (${kinds}), ${this.late} found more after a repair` +
      [...this.examples.values()].map((line) => `\n  e.g. ${line}`).join("");
  }
}

/** Starts `floka ARGS` with its output discarded; the process is the Floka process itself. */
function start(store: Store, args: string[]): Deno.ChildProcess {
  const [program, ...rest] = [Deno.execPath(), ...flokaArgv(store.root, args)];
  return new Deno.Command(program, {
    args: rest,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
  }).spawn();
}

/** Runs `floka ARGS` to its end; returns how long it took (to choose the delays). */
async function timed(store: Store, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await store.floka(args);
  assert.equal(r.code, 0, `floka ${args.join(" ")}: ${show(r)}`);
  return performance.now() - t0;
}

/** Starts the command, SIGKILLs it after `delayMs` (if it has not ended by then); true when killed. */
async function killAfter(store: Store, args: string[], delayMs: number): Promise<boolean> {
  const child = start(store, args);
  let ended = false;
  const status = child.status.then((s) => {
    ended = true;
    return s;
  });
  await new Promise((r) => setTimeout(r, delayMs));
  if (!ended) {
    try {
      child.kill("SIGKILL");
    } catch { /* ended meanwhile */ }
  }
  const s = await status;
  return s.signal === "SIGKILL";
}

/** Every blob in the store hashes to its name: checked by the test itself, before any repair. */
function assertBlobsVerified(store: Store, context: string): void {
  const dir = `${store.root}/images/blobs/sha256`;
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch { /* nothing stored yet */ }
  for (const name of names) {
    const hash = createHash("sha256").update(Deno.readFileSync(`${dir}/${name}`)).digest("hex");
    assert.equal(hash, name, `${context}: blob ${name} does not match its digest`);
  }
}

/**
 * `system check`, and when it finds something, `--repair` and another check: everything
 * found must be repairable, and repaired. A process the killed command started lives on
 * (a detached supervisor, a container's PID 1) and may still change the state after a
 * check (a supervisor that ends, say); what that leaves must be repairable too, so a few
 * rounds are allowed (counted as "late" in the summary).
 */
async function checkAndRepair(store: Store, tally: Tally, context: string): Promise<void> {
  let found = false;
  for (let round = 0;; round++) {
    const check = await store.floka(["system", "check", "--format", "json"]);
    const report: Json = JSON.parse(check.stdout || "null");
    assert.ok(report, `${context}: system check printed no JSON: ${show(check)}`);
    if (check.code === 0) {
      assert.equal(report.findings.length, 0, `${context}: exit 0 with findings: ${check.stdout}`);
      break;
    }
    assert.equal(check.code, 1, `${context}: ${show(check)}`);
    const manual = report.findings.filter((f: Json) => f.status !== "found");
    assert.deepEqual(manual, [], `${context}: system check found what it cannot repair: ${check.stdout}`);
    assert.ok(round < 3, `${context}: still finding problems after ${round} repairs: ${check.stdout}`);
    if (round > 0) tally.late++;
    found = true;
    for (const f of report.findings) {
      tally.kinds.set(f.kind, (tally.kinds.get(f.kind) ?? 0) + 1);
      if (!tally.examples.has(f.kind)) {
        tally.examples.set(f.kind, `${f.kind} ${f.where}: ${f.problem}; ${f.action}`);
      }
    }
    const repair = await store.floka(["system", "check", "--repair"]);
    assert.equal(
      repair.code,
      0,
      `${context}: system check --repair: ${show(repair)} (found: ${check.stdout})`,
    );
  }
  if (found) tally.repaired++;
  // The overlays of a killed build's steps were unmounted (containers mount in their own namespace).
  assert.deepEqual(hostMountsMentioning(store.root), [], `${context}: mounts left under the store`);
}

/** `ps -a` works; every container is removed with `rm -f`; none is left. */
async function removeAll(store: Store, context: string): Promise<void> {
  const ps = await store.floka(["ps", "-a", "-q", "--no-trunc"]);
  assert.equal(ps.code, 0, `${context}: ps -a: ${show(ps)}`);
  const ids = ps.stdout.split("\n").filter(Boolean);
  if (ids.length) {
    const rm = await store.floka(["rm", "-f", ...ids]);
    assert.equal(rm.code, 0, `${context}: rm -f: ${show(rm)}`);
  }
  assert.deepEqual(await store.ids(), [], `${context}: containers left after rm -f`);
  // Nothing of them is left on the host (a supervisor may still be releasing the network).
  for (const id of ids) {
    await waitUntil(
      `${context}: the cgroup and network namespace of ${id} to go`,
      () => cgroupDirsOf(id).length === 0 && !pathExists(`/run/floka/netns/${id}`),
      10_000,
    );
  }
}

/** One trial: the kill, then the checks every command shares. */
async function trial(
  store: Store,
  tally: Tally,
  args: string[],
  delayMs: number,
  context: string,
): Promise<void> {
  tally.trials++;
  if (await killAfter(store, args, delayMs)) tally.killedEarly++;
  assertBlobsVerified(store, context);
  await checkAndRepair(store, tally, context);
  assertBlobsVerified(store, context);
}

// --- pull ------------------------------------------------------------------------------------

const pullSkip = !IS_ROOT ? "needs root" : registryToolsMissing();

Deno.test({
  name: "crash: pull killed at random moments leaves a store that checks clean and pulls again",
  ignore: pullSkip !== null,
  fn: async () => {
    const registry = await startRegistry();
    const work = await Deno.makeTempDir({ prefix: "floka-crash-" });
    try {
      // busybox, then three layers of 3 MB that do not compress: time to be killed mid-way.
      const layout = await OciLayout.init(`${work}/layout`);
      await umociNew(layout, "latest");
      makeBusyboxImage(`${work}/busybox`);
      await gnuTar(`${work}/busybox/rootfs`, ["."], `${work}/busybox.tar`);
      await umociAddLayer(layout, "latest", `${work}/busybox.tar`);
      const sums: string[] = [];
      for (let n = 1; n <= 3; n++) {
        const stage = `${work}/stage-${n}`;
        Deno.mkdirSync(`${stage}/data`, { recursive: true });
        const noise = new Uint8Array(3 << 20);
        for (let i = 0; i < noise.length; i += 65536) crypto.getRandomValues(noise.subarray(i, i + 65536));
        Deno.writeFileSync(`${stage}/data/${n}`, noise);
        sums.push(`${createHash("sha256").update(noise).digest("hex")}  /data/${n}`);
        await gnuTar(stage, [`data/${n}`], `${work}/layer-${n}.tar`);
        await umociAddLayer(layout, "latest", `${work}/layer-${n}.tar`);
      }
      const ref = `${registry.host}/crash:latest`;
      await skopeoPush(layout, "latest", ref);

      await withStore(async (store) => {
        const tally = new Tally("pull");
        const random = prng(1);
        // The second pull (after rmi) is the typical one: the first also warms caches.
        await timed(store, ["pull", "-q", ref]);
        assert.equal((await store.floka(["rmi", ref])).code, 0);
        const typical = await timed(store, ["pull", "-q", ref]);
        for (let i = 0; i < TRIALS; i++) {
          const context = `pull trial ${i} (seed ${SEED})`;
          const rmi = await store.floka(["rmi", ref]);
          assert.equal(rmi.code, 0, `${context}: rmi: ${show(rmi)}`);
          await trial(store, tally, ["pull", "-q", ref], random() * typical * 1.1, context);
          const pull = await store.floka(["pull", "-q", ref]);
          assert.equal(pull.code, 0, `${context}: pull again: ${show(pull)}`);
          // The layers it runs from hold exactly what was pushed.
          const run = await store.run([
            "--rm",
            "--network",
            "none",
            ref,
            "sha256sum",
            "/data/1",
            "/data/2",
            "/data/3",
          ]);
          assert.equal(run.code, 0, `${context}: run the pulled image: ${show(run)}`);
          assert.equal(run.stdout, sums.map((l) => `${l}\n`).join(""), context);
          assertBlobsVerified(store, context);
        }
        console.error(tally.summary());
      });
    } finally {
      await registry.stop();
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

// --- build -----------------------------------------------------------------------------------

integrationTest(
  "crash: build killed at random moments leaves a store that checks clean and builds again",
  async () => {
    await withStore(async (store) => {
      const tally = new Tally("build");
      const random = prng(2);
      const context = `${store.root}/context`;
      Deno.mkdirSync(context);
      Deno.writeTextFileSync(
        `${context}/Flokafile`,
        "FROM busybox\nARG N\nRUN echo built $N > /built && mkdir -p /data && echo $N > /data/n\nCOPY file /file\n",
      );
      const build = (n: number) => {
        Deno.writeTextFileSync(`${context}/file`, `file ${n}\n`);
        return ["build", "-q", "-t", "crashbuild", "--build-arg", `N=${n}`, context];
      };
      // The first build also stores the base image's layer: the second is the typical one.
      await timed(store, build(-2));
      const typical = await timed(store, build(-1));
      for (let i = 0; i < TRIALS; i++) {
        const where = `build trial ${i} (seed ${SEED})`;
        // A new N each time: nothing comes from the build cache.
        await trial(store, tally, build(i), random() * typical * 1.1, where);
        const again = await store.floka(build(i));
        assert.equal(again.code, 0, `${where}: build again: ${show(again)}`);
        const run = await store.run(["--rm", "--network", "none", "crashbuild", "cat", "/built", "/file"]);
        assert.equal(run.code, 0, `${where}: run the built image: ${show(run)}`);
        assert.equal(run.stdout, `built ${i}\nfile ${i}\n`, where);
        await removeAll(store, where);
      }
      console.error(tally.summary());
    });
  },
);

// --- run ---------------------------------------------------------------------------------------

integrationTest(
  "crash: run (--rm, -d) killed at random moments leaves a store that checks clean",
  async () => {
    await withStore(async (store) => {
      const tally = new Tally("run");
      const random = prng(3);
      const variants = [["run", "--rm", "busybox", "true"], ["run", "-d", "busybox", "sleep", "30"]];
      const typical = [];
      for (const v of variants) {
        typical.push(await timed(store, v));
        await removeAll(store, "calibration");
      }
      for (let i = 0; i < TRIALS; i++) {
        const v = i % 2;
        const where = `run trial ${i} (${variants[v].join(" ")}; seed ${SEED})`;
        await trial(store, tally, variants[v], random() * typical[v] * 1.1, where);
        await removeAll(store, where);
      }
      console.error(tally.summary());
    });
  },
);

// --- rm ----------------------------------------------------------------------------------------

integrationTest(
  "crash: rm -f of a running container killed at random moments leaves a store that checks clean",
  async () => {
    await withStore(async (store) => {
      const tally = new Tally("rm");
      const random = prng(4);
      const runDetached = async (where: string) => {
        const r = await store.run(["-d", "busybox", "sleep", "30"]);
        assert.equal(r.code, 0, `${where}: run -d: ${show(r)}`);
        return r.stdout.trim();
      };
      const typical = await timed(store, ["rm", "-f", await runDetached("calibration")]);
      for (let i = 0; i < TRIALS; i++) {
        const where = `rm trial ${i} (seed ${SEED})`;
        const id = await runDetached(where);
        await trial(store, tally, ["rm", "-f", id], random() * typical * 1.1, where);
        await removeAll(store, where);
      }
      console.error(tally.summary());
    });
  },
);
