/**
 * Detached start: `floka run -d --rm busybox /bin/true` (which returns once the container's
 * command runs under its own supervisor) against a foreground `floka run --rm busybox
 * /bin/true`, in the same run; and the resident memory of a supervisor that waits for a
 * long-running container. Target: run -d at most 1.5x the foreground run; supervisor RSS
 * under 60 MB.
 */
import { makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import {
  type Contender,
  exists,
  flokaCommands,
  measure,
  median,
  must,
  printTable,
  record,
  recordRatio,
  tempDir,
  verdict,
} from "./common.ts";

const TARGET_VS_FOREGROUND = 1.5;
const TARGET_RSS_MB = 60;

/** VmRSS of `pid` in MB. */
function rssMb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN) / 1024;
}

export async function benchDetach(runs: number): Promise<void> {
  const work = await tempDir("floka-bench-detach-");
  const store = `${work}/store`;
  makeBusyboxImage(`${store}/images/busybox:latest`);
  const [floka] = flokaCommands(); // the first way of running Floka (the binary, else deno run)
  const argv = (extra: string[]) => [...floka.argv, "--root", store, "run", ...extra, "busybox"];
  const detached: Contender = {
    name: `${floka.name}: run -d --rm`,
    argv: () => [...argv(["-d", "--rm"]), "/bin/true"],
    times: [],
  };
  const foreground: Contender = {
    name: `${floka.name}: run --rm`,
    argv: () => [...argv(["--rm"]), "/bin/true"],
    times: [],
  };
  await measure([detached, foreground], { warmups: 1, runs });

  // A supervisor at rest: the container sleeps while we read its supervisor's memory.
  const id = (await must([...argv(["-d", "--rm"]), "sleep", "30"])).trim();
  const state = JSON.parse(Deno.readTextFileSync(`${store}/containers/${id}/state.json`));
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rss = rssMb(state.supervisorPid);
  await must([...floka.argv, "--root", store, "kill", id]);
  // Let the supervisor finish removing the container (--rm) before the store is removed.
  for (
    const deadline = Date.now() + 10_000;
    exists(`/proc/${state.supervisorPid}`) && Date.now() < deadline;
  ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  console.log(`\n## Detached start: \`run -d --rm busybox /bin/true\`, ${runs} runs each\n`);
  printTable([detached, foreground], [{ label: "foreground", peer: foreground }]);
  const r = median(detached.times) / median(foreground.times);
  console.log(
    `\nTargets: run -d <= ${TARGET_VS_FOREGROUND}x foreground: ${r.toFixed(2)}x, ` +
      `${verdict(r <= TARGET_VS_FOREGROUND)}; supervisor RSS < ${TARGET_RSS_MB} MB: ` +
      `${rss.toFixed(1)} MB, ${verdict(rss < TARGET_RSS_MB)}.`,
  );
  recordRatio("run -d vs foreground run", detached, foreground, TARGET_VS_FOREGROUND);
  record({
    figure: "supervisor RSS (detached, at rest)",
    floka: `${rss.toFixed(1)} MB`,
    peer: "-",
    ratio: "-",
    target: `< ${TARGET_RSS_MB} MB`,
    met: rss < TARGET_RSS_MB,
  });
}
