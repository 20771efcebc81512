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
 * Limits follow Docker's flags (`-m`, `--memory-swap`, `--cpus`, `--cpu-period`,
 * `--cpu-quota`, `-c`, `--cpuset-cpus`, `--pids-limit`, `--blkio-weight`), checked by
 * `resolveLimits` before anything is made and written by `create` into the files runc
 * would write:
 *
 * | limit          | v1                                              | v2                           |
 * | -------------- | ----------------------------------------------- | ---------------------------- |
 * | memory         | memory.limit_in_bytes                           | memory.max                   |
 * | memory + swap  | memory.memsw.limit_in_bytes (swap accounting)   | memory.swap.max (swap only)  |
 * | cpu shares     | cpu.shares                                      | cpu.weight (mapped)          |
 * | cpus / CFS     | cpu.cfs_period_us, cpu.cfs_quota_us             | cpu.max "QUOTA PERIOD"       |
 * | cpuset         | cpuset.cpus, cpuset.mems (copied from parent)   | cpuset.cpus                  |
 * | pids           | pids.max                                        | pids.max                     |
 * | block I/O      | blkio.bfq.weight, else blkio.weight             | io.bfq.weight, else io.weight |
 * | devices        | devices.deny "a", then devices.allow a rule each | an eBPF program (device_filter) |
 *
 * The same files give `floka stats` its numbers (`usage`).
 *
 * The root is a parameter so the v2 code is tested against a fake cgroupfs in a temp dir.
 */
import { applyDeviceFilter } from "./device_filter.ts";
import { FlokaError } from "../../lib/errors.ts";
import { parseBytes, parseNanoCpus } from "../../lib/units.ts";
import { warn } from "../log.ts";

/** A container's resource limits: `record.hostConfig` carries them, with Docker's meaning. */
export interface CgroupLimits {
  /** Bytes; 0 means no limit. */
  memory: number;
  /** Docker's --cpu-shares (v1 cpu.shares); 0 means the default. */
  cpuShares: number;
  /** Docker's MemorySwap: memory plus swap in bytes; -1 unlimited swap; 0 not set. */
  memorySwap?: number;
  /** Docker's NanoCpus (`--cpus` × 10^9); 0 means no limit. */
  nanoCpus?: number;
  /** `--cpu-period` in µs; 0 means the kernel's default (100000). */
  cpuPeriod?: number;
  /** `--cpu-quota` in µs per period; 0 means not set, negative means unlimited. */
  cpuQuota?: number;
  /** `--cpuset-cpus` (`0-2,4`); empty means every CPU. */
  cpusetCpus?: string;
  /** `--pids-limit`; 0 means no limit. */
  pidsLimit?: number;
  /** `--blkio-weight` (10-1000); 0 means the default. */
  blkioWeight?: number;
}

/** What a container's cgroup is made with: its limits, and `--privileged` (every device usable). */
export type CgroupSettings = CgroupLimits & { privileged?: boolean };

/** The cgroup of one container. */
export interface Cgroup {
  version: 1 | 2;
  /** Directories, one per v1 hierarchy or the single v2 one. */
  dirs: string[];
}

/*
 * v1 hierarchies every container joins: memory, cpu and pids for limits and counts,
 * cpuacct for the CPU time `floka stats` shows (a hierarchy of its own on some hosts, as
 * here; co-mounted with cpu on most, then joined once), blkio for the I/O weight and
 * counters, devices for the device policy (every device but the container's own denied).
 * The cpuset hierarchy is joined only by a container started with
 * --cpuset-cpus: a v1 cpuset cgroup takes no task before its cpuset.cpus and cpuset.mems
 * are written, which costs two reads and two writes more per start, and a container
 * confined to no CPU set has no use for it. Each hierarchy costs a start a mkdir, a
 * one-line write to join and an rmdir: about 50 µs in all, measured here.
 */
const V1_HIERARCHIES = ["memory", "cpu", "cpuacct", "pids", "blkio", "devices"] as const;

/**
 * The devices a container may use (v1 `devices.allow` lines), Docker's default: making any
 * node (mknod), and reading and writing only the nodes of its own /dev: null, zero, full,
 * random, urandom, tty, console, ptmx and its pseudo-terminals. A node it makes for the
 * host's disk or memory cannot be opened.
 */
export const ALLOWED_DEVICES = [
  "c *:* m",
  "b *:* m",
  "c 1:3 rwm",
  "c 1:5 rwm",
  "c 1:7 rwm",
  "c 1:8 rwm",
  "c 1:9 rwm",
  "c 5:0 rwm",
  "c 5:1 rwm",
  "c 5:2 rwm",
  "c 136:* rwm",
];
/** v2 controllers enabled for containers (those the kernel offers). */
const V2_CONTROLLERS = ["memory", "cpu", "pids", "io", "cpuset"] as const;

/** The kernel's default CFS period, which Docker uses for --cpus. */
export const CFS_PERIOD_US = 100_000;

/** Docker's mapping of cpu shares [2, 262144] onto cgroup v2 cpu.weight [1, 10000]. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** runc's mapping of a blkio weight [10, 1000] onto cgroup v2 io.weight [1, 10000]. */
export function blkioToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return Math.floor(1 + ((weight - 10) * 9999) / 990);
}

/** The CFS bandwidth a container gets: from --cpus, else --cpu-period/--cpu-quota; null for none. */
export function cfsBandwidth(limits: CgroupLimits): { period: number; quota: number } | null {
  const nano = limits.nanoCpus ?? 0;
  if (nano > 0) return { period: CFS_PERIOD_US, quota: Math.floor((nano * CFS_PERIOD_US) / 1e9) };
  const period = limits.cpuPeriod ?? 0;
  const quota = limits.cpuQuota ?? 0;
  return period || quota ? { period, quota } : null;
}

/** What the kernel offers, as far as can be told before a container's cgroup exists. */
export interface CgroupSupport {
  memory: boolean;
  /** A memory+swap limit (v1 swap accounting, v2 memory controller). */
  swap: boolean;
  cpuShares: boolean;
  /** CFS bandwidth control (--cpus, --cpu-period, --cpu-quota). */
  cpuCfs: boolean;
  cpuset: boolean;
  pids: boolean;
  blkioWeight: boolean;
  /** The CPUs containers may use, as a cpuset list (`0-1`). */
  cpus: string;
  /** How many CPUs this process may run on (Docker's NumCPU: the affinity mask). */
  cpuCount: number;
}

/** The values of Docker's resource flags, as typed. */
export interface ResourceFlags {
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  pidsLimit?: string;
  blkioWeight?: string;
}

/** Docker's minimum for --memory. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** Every limit, set or not (0 or "" when not). */
export type ResolvedLimits = Required<CgroupLimits>;

/**
 * Parses and checks the resource flags with Docker's rules and wording: an invalid value
 * is a FlokaError (exit 125) before anything is made; a limit the kernel cannot apply is
 * dropped with one of Docker's warnings. `support` is asked only when a flag needs it.
 */
export function resolveLimits(
  flags: ResourceFlags,
  support: () => CgroupSupport,
): { limits: ResolvedLimits; warnings: string[] } {
  const warnings: string[] = [];
  let known: CgroupSupport | undefined;
  const kernel = () => known ??= support();
  const given = (v: string | undefined): v is string => v !== undefined && v !== "";

  let memory = given(flags.memory) ? parseBytes(flags.memory) : 0;
  let memorySwap = 0;
  if (given(flags.memorySwap)) {
    memorySwap = flags.memorySwap.trim() === "-1"
      ? -1
      : flagValue("--memory-swap", flags.memorySwap, () => parseBytes(flags.memorySwap!));
  }
  const cpuShares = given(flags.cpuShares) ? Number(flags.cpuShares) : 0;
  if (!Number.isInteger(cpuShares) || cpuShares < 0) {
    throw new FlokaError(
      `invalid --cpu-shares ${JSON.stringify(flags.cpuShares)}: a whole number is expected`,
    );
  }
  const nanoCpus = given(flags.cpus) ? flagValue("--cpus", flags.cpus, () => parseNanoCpus(flags.cpus!)) : 0;
  let cpuPeriod = given(flags.cpuPeriod) ? parseInteger("--cpu-period", flags.cpuPeriod) : 0;
  let cpuQuota = given(flags.cpuQuota) ? parseInteger("--cpu-quota", flags.cpuQuota) : 0;
  let cpusetCpus = flags.cpusetCpus?.trim() ?? "";
  let pidsLimit = given(flags.pidsLimit) ? parseInteger("--pids-limit", flags.pidsLimit) : 0;
  let blkioWeight = given(flags.blkioWeight) ? parseUint16("--blkio-weight", flags.blkioWeight) : 0;

  // Memory, in the order of Docker's verifyPlatformContainerResources.
  if (memory !== 0 && memory < MIN_MEMORY) throw new FlokaError("Minimum memory limit allowed is 6MB");
  if (memory > 0 && !kernel().memory) {
    warnings.push(
      "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded.",
    );
    memory = 0;
    memorySwap = -1;
  }
  if (memory > 0 && memorySwap !== -1 && !kernel().swap) {
    warnings.push(
      "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.",
    );
    memorySwap = -1;
  }
  if (memory > 0 && memorySwap > 0 && memorySwap < memory) {
    throw new FlokaError("Minimum memoryswap limit should be larger than memory limit, see usage");
  }
  if (memory === 0 && memorySwap > 0) {
    throw new FlokaError("You should always set the Memory limit when using Memoryswap limit, see usage");
  }
  // By default a container may swap as much as its memory limit: MemorySwap is twice it.
  if (memory > 0 && memorySwap === 0) memorySwap = memory * 2;

  if (pidsLimit < 0) pidsLimit = 0; // -1 (or any negative) is unlimited, as 0
  if (pidsLimit > 0 && !kernel().pids) {
    warnings.push(
      "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded.",
    );
    pidsLimit = 0;
  }

  // CPU.
  if (nanoCpus > 0 && cpuPeriod > 0) {
    throw new FlokaError("Conflicting options: Nano CPUs and CPU Period cannot both be set");
  }
  if (nanoCpus > 0 && cpuQuota > 0) {
    throw new FlokaError("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
  }
  if (nanoCpus > 0 && !kernel().cpuCfs) {
    throw new FlokaError(
      "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted",
    );
  }
  // Below 0.01 CPU the quota would be under the kernel's 1 ms minimum.
  if (nanoCpus !== 0 && (nanoCpus < 1e7 || nanoCpus > kernel().cpuCount * 1e9)) {
    const n = kernel().cpuCount;
    throw new FlokaError(`Range of CPUs is from 0.01 to ${n}.00, as there are only ${n} CPUs available`);
  }
  if (cpuShares > 0 && !kernel().cpuShares) {
    warnings.push("Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded.");
  }
  if ((cpuPeriod !== 0 || cpuQuota !== 0) && !kernel().cpuCfs) {
    warnings.push("Your kernel does not support CPU CFS scheduler. CPU period/quota discarded.");
    cpuPeriod = 0;
    cpuQuota = 0;
  }
  if (cpuPeriod !== 0 && (cpuPeriod < 1000 || cpuPeriod > 1_000_000)) {
    throw new FlokaError(
      "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
    );
  }
  if (cpuQuota > 0 && cpuQuota < 1000) {
    throw new FlokaError("CPU cfs quota can not be less than 1ms (i.e. 1000)");
  }

  // cpuset.
  if (cpusetCpus && !kernel().cpuset) {
    warnings.push("Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded.");
    cpusetCpus = "";
  }
  if (cpusetCpus) {
    const wanted = parseCpuList(cpusetCpus);
    if (!wanted) {
      throw new FlokaError(`Invalid value ${cpusetCpus} for cpuset cpus: invalid format: ${cpusetCpus}`);
    }
    const available = parseCpuList(kernel().cpus) ?? [];
    if (!cpuListWithin(wanted, available)) {
      throw new FlokaError(
        `Requested CPUs are not available - requested ${cpusetCpus}, available: ${kernel().cpus}`,
      );
    }
  }

  // Block I/O.
  if (blkioWeight > 0 && !kernel().blkioWeight) {
    warnings.push(
      "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
    );
    blkioWeight = 0;
  }
  if (blkioWeight > 0 && (blkioWeight < 10 || blkioWeight > 1000)) {
    throw new FlokaError("Range of blkio weight is from 10 to 1000");
  }

  return {
    limits: {
      memory,
      memorySwap,
      cpuShares: cpuShares > 0 && !kernel().cpuShares ? 0 : cpuShares,
      nanoCpus,
      cpuPeriod,
      cpuQuota,
      cpusetCpus,
      pidsLimit,
      blkioWeight,
    },
    warnings,
  };
}

/** `fn()`, its error worded as pflag words a bad flag value. */
function flagValue<T>(flag: string, text: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new FlokaError(`invalid argument "${text}" for "${flag}" flag: ${(err as Error).message}`);
  }
}

/** A flag of Go type int64, as pflag parses it. */
function parseInteger(flag: string, text: string): number {
  if (!/^[+-]?\d+$/.test(text)) {
    throw new FlokaError(
      `invalid argument "${text}" for "${flag}" flag: strconv.ParseInt: parsing "${text}": invalid syntax`,
    );
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new FlokaError(
      `invalid argument "${text}" for "${flag}" flag: strconv.ParseInt: parsing "${text}": value out of range`,
    );
  }
  return value;
}

/** A flag of Go type uint16 (--blkio-weight). */
function parseUint16(flag: string, text: string): number {
  if (!/^\+?\d+$/.test(text)) {
    throw new FlokaError(
      `invalid argument "${text}" for "${flag}" flag: strconv.ParseUint: parsing "${text}": invalid syntax`,
    );
  }
  const value = Number(text);
  if (value > 0xffff) {
    throw new FlokaError(
      `invalid argument "${text}" for "${flag}" flag: strconv.ParseUint: parsing "${text}": value out of range`,
    );
  }
  return value;
}

/** A kernel CPU list (`0-2,4`) as ranges, or null when malformed (Docker's ParseUintList). */
export function parseCpuList(text: string): [number, number][] | null {
  if (text.trim() === "") return [];
  const ranges: [number, number][] = [];
  for (const part of text.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const first = Number(m[1]);
    const last = Number(m[2] ?? m[1]);
    if (last < first) return null;
    ranges.push([first, last]);
  }
  return ranges;
}

/** How many CPUs a CPU list names. */
export function cpuListCount(ranges: [number, number][]): number {
  return cpuListMembers(ranges).size;
}

function cpuListMembers(ranges: [number, number][]): Set<number> {
  const members = new Set<number>();
  for (const [first, last] of ranges) {
    for (let cpu = first; cpu <= last && members.size <= 65536; cpu++) members.add(cpu);
  }
  return members;
}

/** True when every CPU of `wanted` is in `available`. */
function cpuListWithin(wanted: [number, number][], available: [number, number][]): boolean {
  const members = cpuListMembers(available);
  return wanted.every(([first, last]) => {
    if (last - first + 1 > members.size) return false;
    for (let cpu = first; cpu <= last; cpu++) if (!members.has(cpu)) return false;
    return true;
  });
}

/** Resource usage of one cgroup, as the kernel counts it (what `floka stats` shows). */
export interface CgroupUsage {
  /** CPU time of all its processes, in nanoseconds (v1 cpuacct.usage, v2 cpu.stat usage_usec). */
  cpuNs: number;
  /** Memory charged to it, page cache included (v1 memory.usage_in_bytes, v2 memory.current). */
  memoryUsage: number;
  /** Inactive file pages, reclaimable cache (v1 total_inactive_file, v2 inactive_file). */
  inactiveFile: number;
  /** Its memory limit in bytes; Infinity when it has none. */
  memoryLimit: number;
  /** Processes in it now (pids.current). */
  pids: number;
  /** Bytes read from and written to block devices (v1 blkio, v2 io.stat). */
  blkioRead: number;
  blkioWrite: number;
}

/** Docker's memory usage: what is charged, minus the cache the kernel may drop at once. */
export function memoryUsed(usage: Pick<CgroupUsage, "memoryUsage" | "inactiveFile">): number {
  return usage.inactiveFile < usage.memoryUsage ? usage.memoryUsage - usage.inactiveFile : usage.memoryUsage;
}

/**
 * Docker's CPU %: the cgroup's CPU time over the whole system's (all CPUs, from
 * /proc/stat) between two samples, times the number of CPUs: 100% is one CPU kept busy.
 */
export function cpuPercent(
  prev: { cpuNs: number; systemNs: number },
  cur: { cpuNs: number; systemNs: number },
  onlineCpus: number,
): number {
  const cpuDelta = cur.cpuNs - prev.cpuNs;
  const systemDelta = cur.systemNs - prev.systemNs;
  return systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * onlineCpus * 100 : 0;
}

/** `key value` lines (memory.stat, cpu.stat) as a map. */
export function parseKeyedValues(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) values.set(key, Number(value));
  }
  return values;
}

/** v1 blkio `*io_service_bytes*`: `MAJ:MIN Read N` lines summed per direction. */
export function parseBlkioServiceBytes(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split("\n")) {
    const [, op, value] = line.trim().split(/\s+/);
    if (op === "Read") read += Number(value) || 0;
    if (op === "Write") write += Number(value) || 0;
  }
  return { read, write };
}

/** v2 io.stat: `MAJ:MIN rbytes=N wbytes=N ...` lines summed. */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const m of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
    if (m[1] === "r") read += Number(m[2]);
    else write += Number(m[2]);
  }
  return { read, write };
}

export class CgroupManager {
  /** `deviceFilter` puts the v2 device policy on a cgroup (the kernel's eBPF; tests swap it). */
  constructor(
    readonly root = "/sys/fs/cgroup",
    readonly parent = "floka",
    private readonly deviceFilter: (dir: string, rules: readonly string[]) => void = applyDeviceFilter,
  ) {}

  version(): 1 | 2 {
    try {
      Deno.statSync(`${this.root}/cgroup.controllers`);
      return 2;
    } catch {
      return 1;
    }
  }

  /**
   * The v1 directories of cgroup `name`: one per mounted hierarchy (a hierarchy mounted
   * under two names, `cpu` and `cpuacct` -> `cpu,cpuacct`, counts once), and cpuset's when
   * `withCpuset` says so.
   */
  private v1Dirs(name: string, withCpuset: (dir: string) => boolean): string[] {
    const seen = new Set<string>();
    const dirs: string[] = [];
    for (const hierarchy of V1_HIERARCHIES) {
      const mount = `${this.root}/${hierarchy}`;
      let real: string;
      try {
        // The usual layout: a directory per mount, and symlinks for co-mounted names.
        // (lstat and readlink: realpath costs several times as much.)
        real = Deno.lstatSync(mount).isSymlink ? Deno.readLinkSync(mount).split("/").pop()! : hierarchy;
        if (real !== hierarchy) Deno.statSync(mount); // a dangling link is no hierarchy
      } catch {
        continue; // not mounted
      }
      if (seen.has(real)) continue;
      seen.add(real);
      dirs.push(`${this.root}/${hierarchy}/${this.parent}/${name}`);
    }
    const cpusetDir = `${this.root}/cpuset/${this.parent}/${name}`;
    if (exists(`${this.root}/cpuset`) && withCpuset(cpusetDir)) dirs.push(cpusetDir);
    return dirs;
  }

  /** The cgroup `name` has (its cpuset directory on v1 only if it was made), without creating it. */
  locate(name: string): Cgroup {
    const version = this.version();
    if (version === 2) return { version, dirs: [`${this.root}/${this.parent}/${name}`] };
    return { version, dirs: this.v1Dirs(name, exists) };
  }

  /** Creates the cgroup `name` with `limits` applied. On failure nothing is left behind. */
  create(name: string, limits: CgroupSettings): Cgroup {
    const version = this.version();
    const cgroup: Cgroup = version === 2
      ? { version, dirs: [`${this.root}/${this.parent}/${name}`] }
      : { version, dirs: this.v1Dirs(name, () => !!limits.cpusetCpus) };
    try {
      if (cgroup.version === 2) this.createV2(cgroup.dirs[0], limits);
      else this.createV1(cgroup.dirs, limits);
    } catch (err) {
      this.remove(cgroup);
      throw new FlokaError(`cannot set up the container's cgroup: ${(err as Error).message}`);
    }
    return cgroup;
  }

  private createV1(dirs: string[], limits: CgroupSettings): void {
    const cfs = cfsBandwidth(limits);
    for (const dir of dirs) {
      const controller = dir.slice(this.root.length + 1).split("/")[0];
      // A cpuset cgroup takes CPUs only within its parent's, which must have some first.
      const mems = controller === "cpuset" ? this.prepareCpusetParentV1() : "";
      Deno.mkdirSync(dir, { recursive: true });
      if (controller === "memory" && limits.memory > 0) {
        // The memory limit first: the kernel wants memory+swap never below it.
        write(`${dir}/memory.limit_in_bytes`, String(limits.memory));
        const swap = limits.memorySwap ?? 0;
        if (swap > 0) writeIfOffered(dir, ["memory.memsw.limit_in_bytes"], String(swap), "the swap limit");
      }
      if (controller === "cpu") {
        if (limits.cpuShares > 0) write(`${dir}/cpu.shares`, String(limits.cpuShares));
        if (cfs && cfs.period > 0) write(`${dir}/cpu.cfs_period_us`, String(cfs.period));
        if (cfs && cfs.quota !== 0) write(`${dir}/cpu.cfs_quota_us`, String(cfs.quota > 0 ? cfs.quota : -1));
      }
      if (controller === "pids" && (limits.pidsLimit ?? 0) > 0) {
        write(`${dir}/pids.max`, String(limits.pidsLimit));
      }
      if (controller === "blkio" && (limits.blkioWeight ?? 0) > 0) {
        writeIfOffered(
          dir,
          ["blkio.bfq.weight", "blkio.weight"],
          String(limits.blkioWeight),
          "the block I/O weight",
        );
      }
      if (controller === "devices" && !limits.privileged) {
        write(`${dir}/devices.deny`, "a");
        for (const rule of ALLOWED_DEVICES) write(`${dir}/devices.allow`, rule);
      }
      if (controller === "cpuset") {
        write(`${dir}/cpuset.mems`, mems);
        write(`${dir}/cpuset.cpus`, limits.cpusetCpus ?? "");
      }
    }
  }

  /**
   * Gives each level of the parent in the v1 cpuset hierarchy the CPUs and memory nodes of
   * the level above when it has none yet (a new v1 cpuset cgroup starts empty). Returns
   * the parent's memory nodes, which a container's cpuset gets too.
   */
  private prepareCpusetParentV1(): string {
    let above = `${this.root}/cpuset`;
    for (const part of this.parent.split("/")) {
      const dir = `${above}/${part}`;
      Deno.mkdirSync(dir, { recursive: true });
      for (const file of ["cpuset.cpus", "cpuset.mems"]) {
        if (readTrimmed(`${dir}/${file}`) === "") write(`${dir}/${file}`, readTrimmed(`${above}/${file}`));
      }
      above = dir;
    }
    return readTrimmed(`${above}/cpuset.mems`);
  }

  private createV2(dir: string, limits: CgroupSettings): void {
    const available = Deno.readTextFileSync(`${this.root}/cgroup.controllers`).trim().split(/\s+/);
    const wanted = V2_CONTROLLERS.filter((c) => available.includes(c));
    const enable = wanted.map((c) => `+${c}`).join(" ");
    const parentDir = `${this.root}/${this.parent}`;
    // Controllers reach a cgroup only if every ancestor enables them for its children.
    if (enable) write(`${this.root}/cgroup.subtree_control`, enable);
    Deno.mkdirSync(parentDir, { recursive: true });
    if (enable) write(`${parentDir}/cgroup.subtree_control`, enable);
    Deno.mkdirSync(dir, { recursive: true });
    // v2 has no devices.allow: the same policy is an eBPF program on the cgroup.
    if (!limits.privileged) this.deviceFilter(dir, ALLOWED_DEVICES);
    if (limits.memory > 0) {
      write(`${dir}/memory.max`, String(limits.memory));
      // v2 limits swap alone, not memory+swap.
      const swap = limits.memorySwap ?? 0;
      if (swap > 0) writeIfOffered(dir, ["memory.swap.max"], String(swap - limits.memory), "the swap limit");
    }
    if (limits.cpuShares > 0) write(`${dir}/cpu.weight`, String(sharesToWeight(limits.cpuShares)));
    const cfs = cfsBandwidth(limits);
    if (cfs) write(`${dir}/cpu.max`, `${cfs.quota > 0 ? cfs.quota : "max"} ${cfs.period || CFS_PERIOD_US}`);
    if ((limits.pidsLimit ?? 0) > 0) write(`${dir}/pids.max`, String(limits.pidsLimit));
    const weight = limits.blkioWeight ?? 0;
    if (weight > 0) {
      // BFQ takes the blkio weight as it is; io.weight (blk-iocost) has its own range.
      if (exists(`${dir}/io.bfq.weight`)) write(`${dir}/io.bfq.weight`, String(weight));
      else writeIfOffered(dir, ["io.weight"], String(blkioToIoWeight(weight)), "the block I/O weight");
    }
    if (limits.cpusetCpus) write(`${dir}/cpuset.cpus`, limits.cpusetCpus);
  }

  /** What this kernel lets Floka limit, and the CPUs there are (for `resolveLimits`). */
  support(): CgroupSupport {
    const cpuCount = affinityCpuCount();
    if (this.version() === 2) {
      let controllers: string[] = [];
      try {
        controllers = Deno.readTextFileSync(`${this.root}/cgroup.controllers`).trim().split(/\s+/);
      } catch { /* none */ }
      const has = (c: string) => controllers.includes(c);
      return {
        memory: has("memory"),
        swap: has("memory") && (this.v2Offers(["memory.swap.max"], "memory.max") ?? true),
        cpuShares: has("cpu"),
        cpuCfs: has("cpu"),
        cpuset: has("cpuset"),
        pids: has("pids"),
        blkioWeight: has("io") && (this.v2Offers(["io.bfq.weight", "io.weight"], "io.stat") ?? true),
        cpus: readTrimmed(`${this.root}/cpuset.cpus.effective`) || onlineCpuList(),
        cpuCount,
      };
    }
    const has = (path: string) => exists(`${this.root}/${path}`);
    return {
      memory: has("memory"),
      swap: has("memory/memory.memsw.limit_in_bytes"),
      cpuShares: has("cpu"),
      cpuCfs: has("cpu/cpu.cfs_quota_us"),
      cpuset: has("cpuset"),
      pids: has("pids"),
      // blkio.weight (CFQ) shows at the top; BFQ's blkio.bfq.weight only in child cgroups,
      // but its counters at the top say it is there.
      blkioWeight: has("blkio/blkio.weight") || has("blkio/blkio.bfq.weight") ||
        has("blkio/blkio.bfq.io_service_bytes"),
      cpus: readTrimmed(`${this.root}/cpuset/cpuset.effective_cpus`) ||
        readTrimmed(`${this.root}/cpuset/cpuset.cpus`) || onlineCpuList(),
      cpuCount,
    };
  }

  /**
   * Whether v2 cgroups get one of `files` (memory.swap.max only with swap accounting, a
   * weight only with BFQ or blk-iocost), judged from a cgroup that exists and has the
   * controller (`marker`): Floka's parent, else this process's own. Null when none can tell.
   */
  private v2Offers(files: string[], marker: string): boolean | null {
    const own = /^0::(\/.*)$/m.exec(readTrimmed("/proc/self/cgroup"))?.[1];
    const dirs = [`${this.root}/${this.parent}`, ...(own && own !== "/" ? [`${this.root}${own}`] : [])];
    const dir = dirs.find((d) => exists(`${d}/${marker}`));
    return dir ? files.some((f) => exists(`${dir}/${f}`)) : null;
  }

  /** The cgroup's resource usage now, read from its files; what is missing counts as 0. */
  usage(cgroup: Cgroup): CgroupUsage {
    const read = (file: string) => readFromAny(cgroup, file);
    if (cgroup.version === 2) {
      const memoryStat = parseKeyedValues(read("memory.stat") ?? "");
      const max = read("memory.max")?.trim();
      const io = parseIoStat(read("io.stat") ?? "");
      return {
        cpuNs: (parseKeyedValues(read("cpu.stat") ?? "").get("usage_usec") ?? 0) * 1000,
        memoryUsage: Number(read("memory.current") ?? 0) || 0,
        inactiveFile: memoryStat.get("inactive_file") ?? 0,
        memoryLimit: max === undefined || max === "max" ? Infinity : Number(max),
        pids: Number(read("pids.current") ?? 0) || 0,
        blkioRead: io.read,
        blkioWrite: io.write,
      };
    }
    const memoryStat = parseKeyedValues(read("memory.stat") ?? "");
    const limit = read("memory.limit_in_bytes");
    // CFQ's recursive counters where CFQ exists; the throttle layer counts all I/O otherwise.
    const blkio = parseBlkioServiceBytes(
      read("blkio.io_service_bytes_recursive") ?? read("blkio.throttle.io_service_bytes_recursive") ??
        read("blkio.throttle.io_service_bytes") ?? "",
    );
    return {
      cpuNs: Number(read("cpuacct.usage") ?? 0) || 0,
      memoryUsage: Number(read("memory.usage_in_bytes") ?? 0) || 0,
      inactiveFile: memoryStat.get("total_inactive_file") ?? memoryStat.get("inactive_file") ?? 0,
      memoryLimit: limit === null ? Infinity : Number(limit),
      pids: Number(read("pids.current") ?? 0) || 0,
      blkioRead: blkio.read,
      blkioWrite: blkio.write,
    };
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
    let left = cgroup.dirs.filter(exists);
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

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readTrimmed(path: string): string {
  try {
    return Deno.readTextFileSync(path).trim();
  } catch {
    return "";
  }
}

/** The first of the cgroup's directories that has `file`, read; null when none has it. */
function readFromAny(cgroup: Cgroup, file: string): string | null {
  for (const dir of cgroup.dirs) {
    try {
      return Deno.readTextFileSync(`${dir}/${file}`);
    } catch { /* another hierarchy's file */ }
  }
  return null;
}

/** CPUs online on the host (`0-1`), for when no cpuset controller says. */
function onlineCpuList(): string {
  return readTrimmed("/sys/devices/system/cpu/online") || `0-${navigator.hardwareConcurrency - 1}`;
}

/** Docker's NumCPU: the CPUs this process may run on (its affinity mask). */
function affinityCpuCount(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
    const ranges = list ? parseCpuList(list) : null;
    if (ranges && ranges.length) return cpuListCount(ranges);
  } catch { /* no /proc */ }
  return navigator.hardwareConcurrency;
}

function write(path: string, value: string): void {
  try {
    Deno.writeTextFileSync(path, value);
  } catch (err) {
    throw new Error(`write ${JSON.stringify(value)} to ${path}: ${(err as Error).message}`);
  }
}

/**
 * Writes `value` to the first of `files` the kernel offers in `dir` (files that exist only
 * with swap accounting or a given I/O scheduler); says so when none is there.
 */
function writeIfOffered(dir: string, files: string[], value: string, what: string): void {
  const file = files.find((f) => exists(`${dir}/${f}`));
  if (file) write(`${dir}/${file}`, value);
  else warn(`the kernel offers no ${files.join(" or ")}: ${what} is not applied`);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
