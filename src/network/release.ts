/**
 * Releasing a container's network in the background. CNI DEL is slow (the bridge plugin's
 * masquerade teardown alone is some 60 ms of iptables calls), and when a container's
 * process has ended for good nothing waits for its network to go; so the supervisor writes
 * a job, `/run/floka/release/<id>.json` (what DEL needs), takes an flock on it, and hands
 * the locked file to a `floka network-release` process of its own session as its stdin:
 * the lock lives exactly as long as that process. It runs DEL, removes the namespace and
 * the job, and ends.
 *
 * Whoever needs the container's network again first settles its job (`settleRelease`:
 * waits for the lock, then does what is left), so a restart never races a release of the
 * same container ID; and each networked start sweeps jobs whose process died before
 * finishing (their lock is free).
 */
import * as libc from "../../ffi/libc.ts";
import * as L from "../../lib/linux.ts";
import { readJsonIfExists, writeJsonAtomic } from "../store/files.ts";
import { selfCommand } from "../runtime/self_exec.ts";
import type { NetworkState } from "./attach.ts";

export const RELEASE_DIR = "/run/floka/release";

interface ReleaseJob {
  id: string;
  state: NetworkState;
}

function jobPath(id: string): string {
  return `${RELEASE_DIR}/${id}.json`;
}

/** Hands the release of container `id`'s network to a background process. */
export function releaseInBackground(id: string, state: NetworkState): void {
  Deno.mkdirSync(RELEASE_DIR, { recursive: true, mode: 0o700 });
  writeJsonAtomic(jobPath(id), { id, state } satisfies ReleaseJob);
  const lock = libc.open(jobPath(id), L.O_RDONLY | L.O_CLOEXEC);
  const devNull = libc.open("/dev/null", L.O_RDWR | L.O_CLOEXEC);
  try {
    libc.flockExclusive(lock, true);
    const { program, args } = selfCommand(["network-release", id]);
    const env = Object.entries({ ...Deno.env.toObject(), DENO_NO_UPDATE_CHECK: "1" }).map(([k, v]) =>
      `${k}=${v}`
    );
    libc.spawn(program, [program, ...args], env, [lock, devNull, devNull], { newSession: true });
  } finally {
    libc.close(lock);
    libc.close(devNull);
  }
}

/** Runs job `id` to its end: `del` (CNI DEL and the namespace removed), then the job file goes. */
export async function runJob(id: string, del: (state: NetworkState) => Promise<void> | void): Promise<void> {
  const job = readJsonIfExists<ReleaseJob>(jobPath(id));
  if (!job) return;
  await del(job.state);
  try {
    Deno.removeSync(jobPath(id));
  } catch { /* done by another */ }
}

/** Waits for a background release of `id` under way and finishes one left undone. */
export function settleRelease(id: string, del: (state: NetworkState) => void): void {
  let fd: number;
  try {
    fd = libc.open(jobPath(id), L.O_RDONLY | L.O_CLOEXEC);
  } catch {
    return; // no job: nothing to wait for
  }
  try {
    libc.flockExclusive(fd, true);
    const job = readJsonIfExists<ReleaseJob>(jobPath(id));
    if (job) {
      del(job.state);
      Deno.removeSync(jobPath(id));
    }
  } finally {
    libc.close(fd);
  }
}

/** Finishes the jobs whose process died before it was done (their lock is free). */
export function sweepReleases(del: (id: string, state: NetworkState) => void): void {
  let names: string[];
  try {
    names = [...Deno.readDirSync(RELEASE_DIR)].map((e) => e.name).filter((n) =>
      /^[0-9a-f]{64}\.json$/.test(n)
    );
  } catch {
    return;
  }
  for (const name of names) {
    let fd: number;
    try {
      fd = libc.open(`${RELEASE_DIR}/${name}`, L.O_RDONLY | L.O_CLOEXEC);
    } catch {
      continue;
    }
    try {
      if (!libc.flockExclusive(fd, false)) continue; // its process is at work
      const job = readJsonIfExists<ReleaseJob>(`${RELEASE_DIR}/${name}`);
      if (job) {
        del(job.id, job.state);
        Deno.removeSync(`${RELEASE_DIR}/${name}`);
      }
    } catch {
      /* best effort; the next start tries again */
    } finally {
      libc.close(fd);
    }
  }
}
