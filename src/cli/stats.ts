/**
 * `floka stats`: containers' CPU, memory, network, block I/O and process counts, as
 * `docker stats` shows them, read from each container's cgroup and computed with Docker's
 * rules (see `statsEntry`). Without `--no-stream` it redraws every second until Ctrl-C:
 * over the previous frame on a terminal, one block after another otherwise.
 */
import { FlokaError } from "../../lib/errors.ts";
import { formatTable } from "../../lib/table.ts";
import { binarySize, humanSize } from "../../lib/units.ts";
import { isAlive } from "../containers/liveness.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import { CgroupManager, type CgroupUsage, cpuPercent, memoryUsed } from "../runtime/cgroups.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { writeStdout } from "./output.ts";

/** Time between two samples: CPU % is the use over this interval. */
const INTERVAL_MS = 1000;
/** Docker's clock ticks per second for /proc/stat (USER_HZ). */
const CLOCK_TICKS = 100;
const CLEAR_SCREEN = "\x1b[2J\x1b[H";

/** One container's numbers in one frame (Docker's StatsEntry). */
export interface StatsEntry {
  /** The container as the user named it (its short ID when all are listed). */
  container: string;
  name: string;
  id: string;
  cpuPercent: number;
  memory: number;
  memoryLimit: number;
  memoryPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

/** One reading of a container: its cgroup's counters (null when it is not running) and the system's. */
export interface Sample {
  systemNs: number;
  usage: CgroupUsage | null;
  netRx: number;
  netTx: number;
}

/** What `statsEntry` needs of the host. */
export interface HostInfo {
  onlineCpus: number;
  /** MemTotal in bytes: the limit shown for a container that has none. */
  memTotal: number;
}

/** Docker's system CPU usage: the first seven fields of /proc/stat's `cpu` line, in nanoseconds. */
export function systemCpuNs(procStat: string, ticksPerSecond = CLOCK_TICKS): number {
  const line = procStat.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).reduce((sum, v) => sum + (Number(v) || 0), 0);
  return (ticks * 1e9) / ticksPerSecond;
}

/** How many CPUs a kernel CPU list (`/sys/devices/system/cpu/online`: `0-3,6`) names. */
export function countCpus(list: string): number {
  let count = 0;
  for (const part of list.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m) count += Number(m[2] ?? m[1]) - Number(m[1]) + 1;
  }
  return count;
}

/** MemTotal of /proc/meminfo in bytes. */
export function memTotalBytes(meminfo: string): number {
  const kb = /^MemTotal:\s+(\d+)\s*kB/m.exec(meminfo);
  return kb ? Number(kb[1]) * 1024 : 0;
}

/** Bytes received and sent on a network namespace's interfaces (/proc/PID/net/dev), loopback aside. */
export function netDevBytes(netDev: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of netDev.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon === -1 || line.slice(0, colon).trim() === "lo") continue;
    const fields = line.slice(colon + 1).trim().split(/\s+/);
    rx += Number(fields[0]) || 0;
    tx += Number(fields[8]) || 0;
  }
  return { rx, tx };
}

/**
 * A container's numbers from two samples, as the docker CLI computes them: CPU % over the
 * interval (100% = one CPU), memory without inactive page cache, the memory limit capped
 * at the host's RAM (a container without a limit shows the host's), I/O and PIDs as read.
 */
export function statsEntry(
  ref: string,
  c: Container,
  prev: Sample | undefined,
  cur: Sample,
  host: HostInfo,
): StatsEntry {
  const base = { container: ref, name: c.record.name, id: c.record.id };
  const usage = cur.usage;
  if (!usage) {
    return {
      ...base,
      cpuPercent: 0,
      memory: 0,
      memoryLimit: 0,
      memoryPercent: 0,
      netRx: 0,
      netTx: 0,
      blockRead: 0,
      blockWrite: 0,
      pids: 0,
    };
  }
  const memory = memoryUsed(usage);
  const memoryLimit = host.memTotal > 0 && usage.memoryLimit > host.memTotal
    ? host.memTotal
    : usage.memoryLimit;
  const cpu = prev?.usage
    ? cpuPercent(
      { cpuNs: prev.usage.cpuNs, systemNs: prev.systemNs },
      { cpuNs: usage.cpuNs, systemNs: cur.systemNs },
      host.onlineCpus,
    )
    : 0;
  return {
    ...base,
    cpuPercent: cpu,
    memory,
    memoryLimit: Number.isFinite(memoryLimit) ? memoryLimit : 0,
    memoryPercent: memoryLimit > 0 && Number.isFinite(memoryLimit) ? (memory / memoryLimit) * 100 : 0,
    netRx: cur.netRx,
    netTx: cur.netTx,
    blockRead: usage.blkioRead,
    blockWrite: usage.blkioWrite,
    pids: usage.pids,
  };
}

/** The fields of `--format` templates and JSON, as Docker names and shows them. */
export function statsFields(e: StatsEntry, trunc: boolean): Record<string, string> {
  return {
    BlockIO: `${humanSize(e.blockRead)} / ${humanSize(e.blockWrite)}`,
    CPUPerc: `${e.cpuPercent.toFixed(2)}%`,
    Container: e.container,
    ID: trunc ? e.id.slice(0, 12) : e.id,
    MemPerc: `${e.memoryPercent.toFixed(2)}%`,
    MemUsage: `${binarySize(e.memory)} / ${binarySize(e.memoryLimit)}`,
    Name: e.name || "--",
    NetIO: `${humanSize(e.netRx)} / ${humanSize(e.netTx)}`,
    PIDs: String(e.pids),
  };
}

const HEADERS: Readonly<Record<string, string>> = {
  Container: "CONTAINER",
  Name: "NAME",
  ID: "CONTAINER ID",
  CPUPerc: "CPU %",
  MemUsage: "MEM USAGE / LIMIT",
  MemPerc: "MEM %",
  NetIO: "NET I/O",
  BlockIO: "BLOCK I/O",
  PIDs: "PIDS",
};

const DEFAULT_TABLE =
  "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/** `--format`: a table (Docker's default or `table TEMPLATE`), JSON lines, or a template per line. */
export type StatsFormat = { table: boolean; template: string };

export function parseStatsFormat(format: string | undefined): StatsFormat {
  const text = (format ?? "").trim();
  if (text === "" || text === "table") return { table: true, template: DEFAULT_TABLE };
  if (text === "json") return { table: false, template: "{{json .}}" };
  const table = text.startsWith("table ");
  const template = (table ? text.slice(6).trim() : text).replaceAll("\\t", "\t").replaceAll("\\n", "\n");
  // Fail on an unknown field now, not at the first frame.
  fillTemplate(template, (name) => HEADERS[name]);
  return { table, template };
}

/** `{{.Field}}` and `{{json .}}` of a Go template, the only actions stats templates need. */
function fillTemplate(template: string, value: (field: string) => string | undefined, json = ""): string {
  return template.replace(
    /\{\{\s*(json\s+\.|\.(\w+))\s*\}\}/g,
    (_match: string, _action: string, field?: string) => {
      if (!field) return json;
      const v = value(field);
      if (v === undefined) {
        throw new FlokaError(
          `template: :1: executing "" at <.${field}>: can't evaluate field ${field} in type *container.statsContext`,
        );
      }
      return v;
    },
  );
}

/** One frame of output. */
export function renderStats(entries: StatsEntry[], format: StatsFormat, trunc: boolean): string {
  const lines = entries.map((e) => {
    const fields = statsFields(e, trunc);
    return fillTemplate(format.template, (f) => fields[f], JSON.stringify(fields));
  });
  if (!format.table) return lines.map((l) => l + "\n").join("");
  const header = fillTemplate(format.template, (f) => HEADERS[f]).split("\t");
  return formatTable(header, lines.map((l) => l.split("\t")));
}

function readText(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

function hostInfo(): HostInfo {
  const online = countCpus(readText("/sys/devices/system/cpu/online"));
  return {
    onlineCpus: online || navigator.hardwareConcurrency,
    memTotal: memTotalBytes(readText("/proc/meminfo")),
  };
}

/** Reads a container's counters now; `usage` is null when it is not running. */
function sample(c: Container, cgroups: CgroupManager, systemNs: number): Sample {
  if (!isAlive(c.state)) return { systemNs, usage: null, netRx: 0, netTx: 0 };
  // With the host's network the container has no interfaces of its own to count (as Docker).
  const net = c.record.hostConfig.networkMode === "host"
    ? { rx: 0, tx: 0 }
    : netDevBytes(readText(`/proc/${c.state.pid}/net/dev`));
  return { systemNs, usage: cgroups.usage(cgroups.locate(c.record.id)), netRx: net.rx, netTx: net.tx };
}

interface Target {
  ref: string;
  container: Container;
}

/** The containers named, each as the user named it; an unknown one is an error (exit 1, as Docker). */
function namedTargets(store: ContainerStore, refs: string[], cgroups: CgroupManager): Target[] {
  const errors: string[] = [];
  const targets: Target[] = [];
  for (const ref of refs) {
    try {
      const c = reconcile(store, store.find(ref), cgroups);
      if (c) targets.push({ ref, container: c });
      else errors.push(`No such container: ${ref}`); // it was --rm and has just ended
    } catch (err) {
      if (!(err instanceof FlokaError)) throw err;
      errors.push(err.message);
    }
  }
  if (errors.length) throw new FlokaError(errors.join("\n"), 1);
  return targets;
}

/** Running containers (every one with `all`), newest first, named by short ID as Docker does. */
function listedTargets(store: ContainerStore, all: boolean, cgroups: CgroupManager): Target[] {
  return store.list()
    .map((c) => reconcile(store, c, cgroups))
    .filter((c): c is Container => c !== null && (all || c.state.status === "running"))
    .map((c) => ({ ref: c.record.id.slice(0, 12), container: c }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const statsCommand = defineCommand(
  {
    name: "stats",
    usage: "[OPTIONS] [CONTAINER...]",
    description: "Display a live stream of container(s) resource usage statistics",
    minArgs: 0,
    maxArgs: Infinity,
    options: {
      all: { short: "a", long: "all", help: "Show all containers (default shows just running)" },
      format: {
        long: "format",
        value: "string",
        help:
          "Format output: 'table' (default), 'table TEMPLATE', 'json', or a template such as '{{.Name}} {{.CPUPerc}}'",
      },
      noStream: { long: "no-stream", help: "Disable streaming stats and only pull the first result" },
      noTrunc: { long: "no-trunc", help: "Do not truncate output" },
    },
  },
  async ({ options, args, globals }) => {
    const format = parseStatsFormat(options.format);
    const store = openStore(globals);
    const cgroups = new CgroupManager();
    const targets = () =>
      args.length ? namedTargets(store, args, cgroups) : listedTargets(store, options.all, cgroups);
    const redraw = !options.noStream && Deno.stdout.isTerminal();
    let current = targets();
    let systemNs = systemCpuNs(readText("/proc/stat"));
    let previous = new Map(
      current.map((t) => [t.container.record.id, sample(t.container, cgroups, systemNs)]),
    );
    for (let first = true;; first = false) {
      // CPU % needs two samples: the first frame comes one interval after the first sample.
      if (!first || current.length > 0) await sleep(INTERVAL_MS);
      if (!first) {
        try {
          current = targets();
        } catch (err) {
          // A named container removed meanwhile: show the others.
          if (!(err instanceof FlokaError)) throw err;
          current = current.filter((t) => {
            try {
              t.container = store.find(t.container.record.id);
              return true;
            } catch {
              return false;
            }
          });
        }
      }
      const host = hostInfo();
      systemNs = systemCpuNs(readText("/proc/stat"));
      const next = new Map<string, Sample>();
      const entries = current.map((t) => {
        const now = sample(t.container, cgroups, systemNs);
        next.set(t.container.record.id, now);
        return statsEntry(t.ref, t.container, previous.get(t.container.record.id), now, host);
      });
      previous = next;
      const frame = renderStats(entries, format, !options.noTrunc);
      try {
        writeStdout(redraw ? CLEAR_SCREEN + frame : frame);
      } catch (err) {
        if (err instanceof Deno.errors.BrokenPipe) return 0; // `floka stats | head`
        throw err;
      }
      if (options.noStream || (args.length > 0 && current.length === 0)) return 0;
    }
  },
);
