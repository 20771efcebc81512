/**
 * Networking: `floka run --rm --network bridge busybox true` against the same run with
 * `--network none` (what the network namespace, CNI ADD and DEL add to a container's life),
 * alternated; and TCP throughput from a container (busybox `nc` serving /dev/zero) to a
 * Deno client, through a published port on 127.0.0.1 against a direct connection to the
 * container's address. Targets: networking adds at most 60 ms at the median; the published
 * port reaches at least 0.8x the direct throughput.
 */
import { makeBusyboxImage } from "../tests/fixtures/busybox_image.ts";
import {
  type Contender,
  flokaCommands,
  measure,
  median,
  ms,
  must,
  printTable,
  record,
  tempDir,
  verdict,
} from "./common.ts";

const TARGET_ADDED_MS = 60;
const TARGET_THROUGHPUT = 0.8;
const TRANSFER_BYTES = 256 * 1024 * 1024;
const THROUGHPUT_ROUNDS = 5;

/** MB/s reading TRANSFER_BYTES from host:port (retrying the connect while nc restarts). */
async function readRate(hostname: string, port: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname, port });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
      continue;
    }
    const buf = new Uint8Array(256 * 1024);
    let got = 0;
    const start = performance.now();
    try {
      while (got < TRANSFER_BYTES) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += n;
      }
    } finally {
      conn.close();
    }
    if (got < TRANSFER_BYTES / 2) {
      if (Date.now() > deadline) throw new Error(`only ${got} bytes from ${hostname}:${port}`);
      continue; // a connection nc was not serving yet
    }
    return got / 1e6 / ((performance.now() - start) / 1000);
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export async function benchNetwork(runs: number): Promise<void> {
  const work = await tempDir("floka-bench-network-");
  const store = `${work}/store`;
  makeBusyboxImage(`${store}/images/busybox:latest`);
  const [floka] = flokaCommands();
  const run = (net: string): Contender => ({
    name: `${floka.name}: run --rm --network ${net}`,
    argv: () => [...floka.argv, "--root", store, "run", "--rm", "--network", net, "busybox", "true"],
    times: [],
  });
  const bridge = run("bridge");
  const none = run("none");
  await measure([bridge, none], { warmups: 2, runs });

  // Throughput: one container serving zeros, read through both paths in turns.
  const port = freePort();
  const id = (await must([
    ...floka.argv,
    "--root",
    store,
    "run",
    "-d",
    "--rm",
    "-p",
    `127.0.0.1:${port}:5000`,
    "busybox",
    "sh",
    "-c",
    "while :; do nc -l -p 5000 < /dev/zero; done",
  ])).trim();
  const published: number[] = [];
  const direct: number[] = [];
  try {
    const info = JSON.parse(await must([...floka.argv, "--root", store, "inspect", id]));
    const ip = info[0].NetworkSettings.IPAddress as string;
    for (let i = 0; i < THROUGHPUT_ROUNDS; i++) {
      published.push(await readRate("127.0.0.1", port));
      direct.push(await readRate(ip, 5000));
    }
  } finally {
    await must([...floka.argv, "--root", store, "rm", "-f", id]);
  }

  console.log(`\n## Network: \`run --rm busybox true\`, bridge against none, ${runs} runs each\n`);
  printTable([bridge, none], [{ label: "none", peer: none }]);
  const added = median(bridge.times) - median(none.times);
  const rate = median(published) / median(direct);
  console.log(`\n| TCP read, ${TRANSFER_BYTES / 1024 / 1024} MB x ${THROUGHPUT_ROUNDS} | median MB/s |`);
  console.log(`| --- | --- |`);
  console.log(`| published port (127.0.0.1:${port}) | ${median(published).toFixed(0)} |`);
  console.log(`| direct (container IP) | ${median(direct).toFixed(0)} |`);
  console.log(
    `\nTargets: networking adds <= ${TARGET_ADDED_MS} ms: ${added.toFixed(1)} ms, ${
      verdict(added <= TARGET_ADDED_MS)
    }; published >= ${TARGET_THROUGHPUT}x direct: ${rate.toFixed(2)}x, ${
      verdict(rate >= TARGET_THROUGHPUT)
    }.`,
  );
  record({
    figure: "network: bridge vs none, added ms",
    floka: ms(median(bridge.times)),
    peer: ms(median(none.times)),
    ratio: `+${added.toFixed(1)} ms`,
    target: `<= ${TARGET_ADDED_MS} ms added`,
    met: added <= TARGET_ADDED_MS,
  });
  record({
    figure: "network: published port vs direct throughput",
    floka: `${median(published).toFixed(0)} MB/s`,
    peer: `${median(direct).toFixed(0)} MB/s`,
    ratio: `${rate.toFixed(2)}x`,
    target: `>= ${TARGET_THROUGHPUT}x`,
    met: rate >= TARGET_THROUGHPUT,
  });
}

if (import.meta.main) await benchNetwork(Number(Deno.args[0] ?? 12));
