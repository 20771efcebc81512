/**
 * Build benchmark: `floka build` against `podman build` of the same 10-step Flokafile
 * (FROM, ENV, WORKDIR, COPY of a 200-file directory, a RUN writing 4 MiB, COPY of one file,
 * a RUN writing 50 small files, a RUN deleting one, LABEL, CMD), in two measurements:
 *
 * - cold: nothing cached. Floka gets a fresh `--root` holding only the base image; podman
 *   builds with `--no-cache`, and its image and dangling step images are removed after each
 *   run.
 * - cached: nothing changed since the previous build (the warm-up run fills the cache), so
 *   every step after FROM is a cache hit.
 *
 * Both start from the same base: the busybox fixture's rootfs, tarred once and imported by
 * each tool (`floka import`, `podman import`) as `localhost/floka-bench-build-base:latest`,
 * with the same `PATH`. Podman works in a store of its own in the bench's temporary
 * directory (`--root`, `--runroot`), so the benchmark never touches the machine's images,
 * and never the network: `--pull=never`. RUN steps use the host's network in both
 * (Floka's default; `--network host` for podman, which then sets up no network namespace).
 * Both run quiet (`-q`). Before each cold run `sync` writes back the previous run's files.
 */
import { makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import {
  atCleanup,
  type Contender,
  exec,
  flokaCommands,
  measure,
  must,
  onPath,
  podmanIn,
  printTable,
  ratio,
  recordRatio,
  skip,
  tempDir,
  verdict,
  version,
} from "./common.ts";
import { writeFiles } from "./layers.ts";

const TARGET_COLD = 0.5;
const TARGET_CACHED = 0.25;
const WARMUP_RUNS = 1;
const BASE = "localhost/floka-bench-build-base:latest";
const IMAGE = "localhost/floka-bench-build:latest";
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The podman flags of every build: no pull, the host's network, rlimits these machines allow. */
const PODMAN_BUILD_FLAGS = [
  "--pull=never",
  "--network",
  "host",
  "--ulimit",
  "nofile=1024:1024",
  "--ulimit",
  "nproc=1024:1024",
  "-q",
];

const FLOKAFILE = `FROM ${BASE}
ENV APP_HOME=/opt/app LANG=C.UTF-8
WORKDIR /opt/app
COPY files/ ./files/
RUN dd if=/dev/urandom of=blob bs=64k count=64 2>/dev/null && sha256sum blob > blob.sha256
COPY app.conf /etc/app.conf
RUN mkdir -p /var/lib/app && for i in $(seq 1 50); do echo "entry $i" > /var/lib/app/e$i; done
RUN rm files/d000/f0.txt && ls files/d000 | wc -l
LABEL org.opencontainers.image.title=floka-bench
CMD ["sh", "-c", "cat /etc/app.conf"]
`;
const STEPS = FLOKAFILE.trim().split("\n").length;

export async function benchBuild(runs: number): Promise<void> {
  const work = await tempDir("floka-bench-build-");
  const ctx = `${work}/context`;
  writeFiles(`${ctx}/files`, 200, 400e3, "text");
  Deno.writeTextFileSync(`${ctx}/app.conf`, "mode = bench\n");
  const flokafile = `${work}/Flokafile`;
  Deno.writeTextFileSync(flokafile, FLOKAFILE);

  // The base image, as a tarball both tools import.
  makeBusyboxImage(`${work}/busybox`);
  const tarball = `${work}/busybox.tar`;
  await must(["tar", "-C", `${work}/busybox/rootfs`, "-cf", tarball, "."]);
  const flokaRuns = flokaCommands();
  const template = `${work}/floka-template`;
  await must([...flokaRuns[0].argv, "--root", template, "import", tarball, BASE]);

  const flokaBuild = (argv: string[], root: string) => [
    ...argv,
    "--root",
    root,
    "build",
    "--network",
    "host",
    "-q",
    "-t",
    IMAGE,
    "-f",
    flokafile,
    ctx,
  ];
  const cold: Contender[] = flokaRuns.map(({ name, argv }) => ({
    name: `${name}, fresh store`,
    argv: (i) => flokaBuild(argv, `${work}/floka-cold-${i}`),
    prepare: async (i) => {
      await must(["cp", "-a", template, `${work}/floka-cold-${i}`]);
    },
    finish: (i) => Deno.remove(`${work}/floka-cold-${i}`, { recursive: true }),
    times: [],
  }));
  const cached: Contender[] = [];
  for (const [k, { name, argv }] of flokaRuns.entries()) {
    const root = `${work}/floka-cached-${k}`;
    await must(["cp", "-a", template, root]);
    cached.push({ name: `${name}, cached`, argv: () => flokaBuild(argv, root), times: [] });
  }

  let podmanCold: Contender | undefined;
  let podmanCached: Contender | undefined;
  let podman: string[] = [];
  if (onPath("podman")) {
    podman = podmanIn(`${work}/podman`);
    atCleanup(() => exec([...podman, "rmi", "--all", "--force"]));
    const tar = await Deno.readFile(tarball);
    await must([...podman, "import", "--quiet", "--change", `ENV PATH=${DEFAULT_PATH}`, "-", BASE], {
      stdin: tar,
    });
    const podmanBuild = (extra: string[]) => [
      ...podman,
      "build",
      ...PODMAN_BUILD_FLAGS,
      ...extra,
      "-t",
      IMAGE,
      "-f",
      flokafile,
      ctx,
    ];
    podmanCold = {
      name: "podman build --no-cache",
      argv: () => podmanBuild(["--no-cache"]),
      finish: async () => {
        await must([...podman, "rmi", "--force", IMAGE]);
        await must([...podman, "image", "prune", "--force"]);
      },
      times: [],
    };
    podmanCached = { name: "podman build, cached", argv: () => podmanBuild([]), times: [] };
    cold.push(podmanCold);
    cached.push(podmanCached);
  } else {
    console.error("bench: podman is not installed; no podman rows");
    skip("build", "podman");
  }

  console.error("bench: cold builds ...");
  await measure(cold, { warmups: WARMUP_RUNS, runs, sync: true });
  console.error("bench: cached rebuilds ...");
  await measure(cached, { warmups: WARMUP_RUNS, runs });

  // The cached runs must have been all cache hits, or the table would mean nothing.
  const notes: string[] = [];
  const flokaCheck = await exec(
    flokaBuild(flokaRuns[0].argv, `${work}/floka-cached-0`).filter((a) => a !== "-q"),
  );
  const flokaHits = flokaCheck.stdout.split("\n").filter((l) => l === "--> CACHED").length;
  if (flokaHits !== STEPS - 1) notes.push(`floka's cached rebuild reused ${flokaHits} of ${STEPS - 1} steps`);
  if (podmanCached) {
    const check = await exec(podmanCached.argv(0).filter((a) => a !== "-q"));
    const hits = check.stdout.split("\n").filter((l) => l.startsWith("--> Using cache")).length;
    if (hits < STEPS - 1) notes.push(`podman's cached rebuild reused ${hits} of ${STEPS - 1} steps`);
  }

  const about = `${STEPS} steps from a busybox base: COPY of 200 small files (400 kB), RUN writing 4 MiB, ` +
    "RUNs writing and deleting small files, ENV, WORKDIR, LABEL, CMD";
  const versions = `${await version(["deno", "--version"])}; ${await version(["podman", "--version"])}`;
  console.log(`\n## Build, cold: nothing cached, ${runs} runs each\n`);
  console.log(`${about}; ${versions}; \`sync\` before each run.\n`);
  printTable(cold, [{ label: "podman", peer: podmanCold }]);
  console.log(
    `\nTarget (first floka row): ${
      podmanCold
        ? targetLine(cold[0], podmanCold, TARGET_COLD, "podman build --no-cache")
        : `<= ${TARGET_COLD}x podman build: not measured (no podman)`
    }.`,
  );
  console.log(`\n## Build, cached: nothing changed, every step a cache hit, ${runs} runs each\n`);
  printTable(cached, [{ label: "podman", peer: podmanCached }]);
  console.log(
    `\nTarget (first floka row): ${
      podmanCached
        ? targetLine(cached[0], podmanCached, TARGET_CACHED, "podman build, cached")
        : `<= ${TARGET_CACHED}x podman build: not measured (no podman)`
    }.`,
  );
  for (const note of notes) console.log(`\nWARNING: ${note}: the cached times are not all-hit rebuilds.`);
  recordRatio("build cold vs podman build --no-cache", cold[0], podmanCold, TARGET_COLD);
  recordRatio(
    notes.length ? "build cached vs podman (WARNING: not all cache hits)" : "build cached vs podman",
    cached[0],
    podmanCached,
    TARGET_CACHED,
  );
}

/** `<= 0.25x podman build, cached: 0.12x, met` (common.ts's `target` shows one decimal only). */
function targetLine(c: Contender, peer: Contender, limit: number, label: string): string {
  const r = ratio(c, peer)!;
  return `<= ${limit}x ${label}: ${r.toFixed(2)}x, ${verdict(r <= limit)}`;
}
