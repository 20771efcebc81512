/**
 * Security benchmark: `floka run --rm busybox true` with the default security profile
 * against the same with `--security-opt seccomp=unconfined`, in the same run, alternating
 * run by run (A B A B ...) so that noise on the machine hits both alike. Target: the default
 * profile slows `floka run` by at most 10% at the median (<= 1.1x the unconfined run).
 *
 * A Floka without `--security-opt` (or whose `--security-opt seccomp=unconfined` fails) is
 * detected before any timing: the section then says it is skipped and records a row saying
 * why. A Floka that cannot run busybox at all fails the section.
 */
import { installBusybox, makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import {
  type Contender,
  exec,
  flokaCommands,
  measure,
  must,
  printTable,
  record,
  recordRatio,
  target,
  tempDir,
} from "./common.ts";

const TARGET = 1.1;
const WARMUP_RUNS = 2;
const FIGURE = "run: default security profile vs seccomp=unconfined";
const UNCONFINED = ["--security-opt", "seccomp=unconfined"];

export async function benchSecurity(runs: number): Promise<void> {
  installBusybox();
  const work = await tempDir("floka-bench-security-");
  const store = `${work}/store`;
  makeBusyboxImage(`${store}/images/busybox:latest`);
  const { name, argv } = flokaCommands()[0];
  const run = (flags: string[]) => [...argv, "--root", store, "run", "--rm", ...flags, "busybox", "true"];

  // Floka must run at all (else the section fails, as start would); then the flag.
  await must(run([]));
  const probe = await exec(run(UNCONFINED));
  if (probe.code !== 0) {
    const output = (probe.stderr || probe.stdout).trim();
    const why = /unknown flag: --security-opt/.test(output)
      ? "floka has no --security-opt"
      : `floka run ${UNCONFINED.join(" ")} exited ${probe.code}: ${output.split("\n")[0]}`;
    console.log("\n## Security profile: `run --rm busybox true`, default against seccomp=unconfined\n");
    console.log(`skipped: ${why}`);
    record({
      figure: FIGURE,
      floka: "-",
      peer: `not measured (${why})`,
      ratio: "-",
      target: `<= ${TARGET}x`,
    });
    return;
  }

  const profile: Contender = { name: `${name}, default profile`, argv: () => run([]), times: [] };
  const unconfined: Contender = {
    name: `${name}, ${UNCONFINED.join(" ")}`,
    argv: () => run(UNCONFINED),
    times: [],
  };
  await measure([profile, unconfined], { warmups: WARMUP_RUNS, runs, alternate: true });

  console.log(
    `\n## Security profile: \`run --rm busybox true\`, default against seccomp=unconfined, ${runs} runs each\n`,
  );
  console.log("Alternating run by run, default first.\n");
  printTable([profile, unconfined], [{ label: "unconfined", peer: unconfined }]);
  console.log(`\nTarget: ${target(profile, unconfined, TARGET, "unconfined")}.`);
  recordRatio(FIGURE, profile, unconfined, TARGET);
}
