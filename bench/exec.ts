/**
 * Exec benchmark: `floka exec c /bin/true` into a running busybox container against
 * `runc exec` into a runc container on the same rootfs (the floor: runc is one Go binary
 * and a C `nsexec`, with no container store to read). Target: Floka's median at most 2.0x
 * runc's.
 *
 * Both containers run `sleep 3600`, started once before the timing and removed at the end
 * (Floka's by `floka run` in the background, killed through `floka rm -f`; runc's with
 * `runc run -d`). An extra row times `floka --version`, the CLI's start alone: what is
 * left of an exec once Deno and the command line are loaded.
 *
 *   deno run -A bench/exec.ts [--runs N]        (default 20; or as a section of bench/run.ts)
 */
import { installBusybox, makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import {
  atCleanup,
  cleanUp,
  type Contender,
  exec,
  flokaCommands,
  measure,
  median,
  must,
  onPath,
  printTable,
  recordRatio,
  skip,
  tempDir,
  verdict,
  version,
} from "./common.ts";

const TARGET_VS_RUNC = 2.0;
const WARMUP_RUNS = 2;
const NAME = "floka-bench-exec";

/** Polls `probe` every 20 ms for up to 20 s. */
async function waitFor(what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!await probe()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts `floka run --name NAME busybox sleep 3600` in the background, removed at cleanup. */
async function startFlokaContainer(floka: string[], store: string): Promise<void> {
  const child = new Deno.Command(floka[0], {
    args: [...floka.slice(1), "--root", store, "run", "--name", NAME, "busybox", "sleep", "3600"],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  atCleanup(async () => {
    await exec([...floka, "--root", store, "rm", "-f", NAME]);
    await child.status;
  });
  await waitFor(
    "the floka container to run",
    async () => (await exec([...floka, "--root", store, "ps", "-q"])).stdout.trim() !== "",
  );
}

/** Starts a runc container running `sleep 3600` on `rootfs`, removed at cleanup; null without runc. */
async function startRuncContainer(work: string, rootfs: string): Promise<string[] | null> {
  if (!onPath("runc")) return null;
  const bundle = `${work}/runc-bundle`;
  const state = `${work}/runc-state`;
  await Deno.mkdir(bundle, { recursive: true });
  await must(["runc", "spec", "--bundle", bundle]);
  const spec = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
  spec.root = { path: rootfs, readonly: true };
  spec.process.terminal = false;
  spec.process.args = ["sleep", "3600"];
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(spec, null, 2) + "\n");
  // The container keeps runc's stdio: not a pipe that the benchmark would wait on.
  const started = await new Deno.Command("runc", {
    args: ["--root", state, "run", "-d", "--bundle", bundle, NAME],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!started.success) throw new Error(`runc run -d failed (exit ${started.code})`);
  atCleanup(() => exec(["runc", "--root", state, "delete", "--force", NAME]));
  return ["runc", "--root", state, "exec", NAME, "/bin/true"];
}

export async function benchExec(runs: number): Promise<void> {
  installBusybox();
  const work = await tempDir("floka-bench-exec-");
  const store = `${work}/store`;
  makeBusyboxImage(`${store}/images/busybox:latest`);
  const flokas = flokaCommands();
  if (flokas.length === 1) {
    console.error("bench: no compiled ./floka (deno task compile); measuring `deno run main.ts` only");
  }
  await startFlokaContainer(flokas[0].argv, store);

  const contenders: Contender[] = flokas.map(({ name, argv }) => ({
    name: `${name} exec`,
    argv: () => [...argv, "--root", store, "exec", NAME, "/bin/true"],
    times: [],
  }));
  let runc: Contender | undefined;
  const runcArgv = await startRuncContainer(work, `${store}/images/busybox:latest/rootfs`);
  if (runcArgv) {
    runc = { name: "runc exec", argv: () => runcArgv, times: [] };
    contenders.push(runc);
  } else {
    console.error("bench: runc is not installed; no runc row");
    skip("exec", "runc");
  }
  contenders.push({
    name: `${flokas[0].name} --version (CLI start only)`,
    argv: () => [...flokas[0].argv, "--version"],
    times: [],
  });

  await measure(contenders, { warmups: WARMUP_RUNS, runs });

  console.log(`\n## Exec: \`exec CONTAINER /bin/true\` into a running container, ${runs} runs each\n`);
  console.log(
    `${await version(["deno", "--version"])}; ${await version([
      "runc",
      "--version",
    ])}; ${Deno.osRelease()}; ${navigator.hardwareConcurrency} CPUs\n`,
  );
  printTable(contenders, [{ label: "runc exec", peer: runc }]);
  if (runc) {
    const r = median(contenders[0].times) / median(runc.times);
    console.log(
      `\nTarget (first floka row): <= ${TARGET_VS_RUNC}x runc exec: ${r.toFixed(2)}x, ${
        verdict(r <= TARGET_VS_RUNC)
      }.`,
    );
  } else {
    console.log(`\nTarget: <= ${TARGET_VS_RUNC}x runc exec: not measured (no runc).`);
  }
  recordRatio("exec vs runc exec", contenders[0], runc, TARGET_VS_RUNC);
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--runs");
  const runs = i === -1 ? 20 : Number(Deno.args[i + 1]);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error("usage: deno run -A bench/exec.ts [--runs N]");
    Deno.exit(2);
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => cleanUp().finally(() => Deno.exit(130)));
  }
  try {
    await benchExec(runs);
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    Deno.exitCode = 1;
  } finally {
    await cleanUp();
  }
}
