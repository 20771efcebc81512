/**
 * Control groups: each container gets its own cgroup, made by the host side before the
 * container starts and removed after it ends. Floka talks to cgroupfs with plain file
 * writes and detects the version instead of assuming it:
 *
 * - v2 (unified): one tree; `cgroup.controllers` exists at its root. Controllers must be
 *   enabled for children through the parent's `cgroup.subtree_control`.
 * - v1 (and hybrid, as on these machines): one tree per controller at
 *   `<root>/<controller>`; a container has a directory in each tree it uses.
 *
 * The root is a parameter so the v2 code is tested against a fake cgroupfs in a temp dir.
 */
import { FlokaError } from "../../lib/errors.ts";
import { pathExists } from "../store/files.ts";

export interface CgroupLimits {
  /** Bytes; 0 means no limit. */
  memory: number;
  /** Docker's --cpu-shares (v1 cpu.shares); 0 means the default. */
  cpuShares: number;
}

/** The cgroup of one container. */
export interface Cgroup {
  version: 1 | 2;
  /** Directories, one per v1 hierarchy or the single v2 one. */
  dirs: string[];
}

/** v1 hierarchies a container joins: memory and cpu for limits, pids to count its processes. */
const V1_CONTROLLERS = ["memory", "cpu", "pids"] as const;
const V2_CONTROLLERS = ["memory", "cpu", "pids"] as const;

/** Docker's mapping of cpu shares [2, 262144] onto cgroup v2 cpu.weight [1, 10000]. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

export class CgroupManager {
  constructor(readonly root = "/sys/fs/cgroup", readonly parent = "floka") {}

  version(): 1 | 2 {
    try {
      Deno.statSync(`${this.root}/cgroup.controllers`);
      return 2;
    } catch {
      return 1;
    }
  }

  /** The cgroup `name` would have, without creating it. */
  locate(name: string): Cgroup {
    const version = this.version();
    if (version === 2) return { version, dirs: [`${this.root}/${this.parent}/${name}`] };
    const dirs = V1_CONTROLLERS
      .filter((c) => pathExists(`${this.root}/${c}`))
      .map((c) => `${this.root}/${c}/${this.parent}/${name}`);
    return { version, dirs };
  }

  /** Creates the cgroup `name` with `limits` applied. On failure nothing is left behind. */
  create(name: string, limits: CgroupLimits): Cgroup {
    const cgroup = this.locate(name);
    try {
      if (cgroup.version === 2) this.createV2(cgroup.dirs[0], limits);
      else this.createV1(cgroup.dirs, limits);
    } catch (err) {
      this.remove(cgroup);
      throw new FlokaError(`cannot set up the container's cgroup: ${(err as Error).message}`);
    }
    return cgroup;
  }

  private createV1(dirs: string[], limits: CgroupLimits): void {
    for (const dir of dirs) {
      Deno.mkdirSync(dir, { recursive: true });
      const controller = dir.slice(this.root.length + 1).split("/")[0];
      if (controller === "memory" && limits.memory > 0) {
        write(`${dir}/memory.limit_in_bytes`, String(limits.memory));
      }
      if (controller === "cpu" && limits.cpuShares > 0) write(`${dir}/cpu.shares`, String(limits.cpuShares));
    }
  }

  private createV2(dir: string, limits: CgroupLimits): void {
    const available = Deno.readTextFileSync(`${this.root}/cgroup.controllers`).trim().split(/\s+/);
    const wanted = V2_CONTROLLERS.filter((c) => available.includes(c));
    const enable = wanted.map((c) => `+${c}`).join(" ");
    const parentDir = `${this.root}/${this.parent}`;
    // Controllers reach a cgroup only if every ancestor enables them for its children.
    if (enable) write(`${this.root}/cgroup.subtree_control`, enable);
    Deno.mkdirSync(parentDir, { recursive: true });
    if (enable) write(`${parentDir}/cgroup.subtree_control`, enable);
    Deno.mkdirSync(dir);
    if (limits.memory > 0) write(`${dir}/memory.max`, String(limits.memory));
    if (limits.cpuShares > 0) write(`${dir}/cpu.weight`, String(sharesToWeight(limits.cpuShares)));
  }

  /** `cgroup.procs` files, one per hierarchy. */
  procsFiles(cgroup: Cgroup): string[] {
    return cgroup.dirs.map((d) => `${d}/cgroup.procs`);
  }

  /*
   * How the container's process enters its cgroup. Moving a whole process (cgroup.procs)
   * takes a global lock that waits for an RCU grace period, about 10 ms here; moving just
   * the calling thread by writing 0 to a v1 `tasks` file does not. So on v1 containerize
   * moves its own main thread, the one that execs (the other threads end at execve). v2
   * allows no per-thread move outside threaded cgroups: there the host moves the process
   * by PID while it boots, off the critical path.
   */

  /** Files the container's process writes "0" into to join (v1). */
  selfJoinFiles(cgroup: Cgroup): string[] {
    return cgroup.version === 1 ? cgroup.dirs.map((d) => `${d}/tasks`) : [];
  }

  /** Moves process `pid` into the cgroup where it cannot do so itself (v2). */
  hostJoin(cgroup: Cgroup, pid: number): void {
    if (cgroup.version === 1) return;
    try {
      for (const file of this.procsFiles(cgroup)) write(file, String(pid));
    } catch (err) {
      throw new FlokaError(`cannot move the container's process into its cgroup: ${(err as Error).message}`);
    }
  }

  /** True when the kernel's OOM killer killed a process of the cgroup (memory limit hit). */
  oomKilled(cgroup: Cgroup): boolean {
    const [file, dir] = cgroup.version === 2
      ? ["memory.events", cgroup.dirs[0]]
      : ["memory.oom_control", cgroup.dirs.find((d) => d.startsWith(`${this.root}/memory/`))];
    if (!dir) return false;
    try {
      const count = /^oom_kill (\d+)$/m.exec(Deno.readTextFileSync(`${dir}/${file}`));
      return count !== null && Number(count[1]) > 0;
    } catch {
      return false;
    }
  }

  /**
   * Removes the cgroup's directories. A cgroup whose last process is still being reaped is
   * busy for a moment, so removal is retried briefly. Returns the directories left.
   */
  remove(cgroup: Cgroup, retries = 50): string[] {
    let left = cgroup.dirs.filter(pathExists);
    for (let attempt = 0; left.length > 0 && attempt <= retries; attempt++) {
      if (attempt > 0) sleepSync(10);
      left = left.filter((dir) => {
        try {
          Deno.removeSync(dir);
          return false;
        } catch (err) {
          return !(err instanceof Deno.errors.NotFound);
        }
      });
    }
    return left;
  }
}

function write(path: string, value: string): void {
  try {
    Deno.writeTextFileSync(path, value);
  } catch (err) {
    throw new Error(`write ${JSON.stringify(value)} to ${path}: ${(err as Error).message}`);
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
