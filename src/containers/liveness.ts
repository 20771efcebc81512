/**
 * Whether a container's process is really alive. A PID alone can lie: after the process
 * dies the kernel may hand the same number to another one. The start time in
 * /proc/PID/stat (clock ticks since boot) does not repeat, so PID plus start time names
 * one process for good.
 */
import type { ContainerState } from "./store.ts";

/** Field 22 of /proc/PID/stat, or null when there is no such process. */
export function processStartTime(pid: number): number | null {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : null;
}

/** True when the state says running and that very process still exists (and is not a zombie). */
export function isAlive(state: ContainerState): boolean {
  if (state.status !== "running" || state.pid <= 0) return false;
  const start = processStartTime(state.pid);
  if (start === null || start !== state.pidStartTime) return false;
  try {
    const stat = Deno.readTextFileSync(`/proc/${state.pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * True when the Floka process that supervises the container (its `floka run`, or a
 * detached supervisor) still runs: then it, not the reader, records how the container ends.
 */
export function supervisorAlive(state: ContainerState): boolean {
  if (!state.supervisorPid || state.supervisorStartTime === undefined) return false;
  if (processStartTime(state.supervisorPid) !== state.supervisorStartTime) return false;
  // A killed supervisor that its new parent has not reaped yet is a zombie: dead.
  try {
    const stat = Deno.readTextFileSync(`/proc/${state.supervisorPid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
