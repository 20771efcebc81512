/** `floka logs`: print a container's json-file log, as `docker logs` does. */
import { FlokaError } from "../../lib/errors.ts";
import { isAlive } from "../containers/liveness.ts";
import { type LogEntry, logPath, readLogs } from "../containers/logs.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

const GO_DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3, // U+00B5
  "μs": 1e-3, // U+03BC
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration (`1h30m`, `1.5s`, `-10m`) in milliseconds, or null when `text` is not one. */
export function parseGoDuration(text: string): number | null {
  const m = /^([+-]?)(.+)$/.exec(text);
  if (!m) return null;
  if (m[2] === "0") return 0;
  let total = 0;
  let rest = m[2];
  while (rest) {
    const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!part) return null;
    total += Number(part[1]) * GO_DURATION_UNITS[part[2]];
    rest = rest.slice(part[0].length);
  }
  return m[1] === "-" ? -total : total;
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** An RFC3339-like time as Docker takes it: the date, then hour, minutes, seconds, fraction, zone optional. */
function parseDateTime(text: string): Date | null {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?)?([zZ]|[+-]\d\d:\d\d)?$/
    .exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((v) => Number(v ?? 0));
  const ms = Math.floor(Number(`0.${m[7] ?? "0"}`) * 1000);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  if (m[8] === undefined) return new Date(year, month - 1, day, hour, minute, second, ms); // local time
  let offset = 0;
  if (!/^[zZ]$/.test(m[8])) {
    const sign = m[8][0] === "-" ? -1 : 1;
    offset = sign * (Number(m[8].slice(1, 3)) * 60 + Number(m[8].slice(4, 6))) * 60_000;
  }
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offset);
}

/**
 * A `--since`/`--until` value, with Docker's rules: a Go duration is that long before `now`
 * (to the second, as Docker sends it), then an RFC3339 date or time (local time without a
 * zone), then Unix seconds with an optional fraction.
 */
export function parseLogTime(value: string, now: Date, flag: string): Date {
  const duration = value === "0" ? null : parseGoDuration(value);
  if (duration !== null) return new Date(Math.floor((now.getTime() - duration) / 1000) * 1000);
  const date = parseDateTime(value);
  if (date) return date;
  if (!value.includes("-")) {
    const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
    if (unix) return new Date(Number(unix[1]) * 1000 + Math.floor(Number(`0.${unix[2] ?? "0"}`) * 1000));
  }
  throw new FlokaError(
    `invalid value for "${flag}": failed to parse value as time or duration: ${JSON.stringify(value)}`,
  );
}

/** `--tail`: "all" (or a negative number, as in Docker) shows everything. */
export function parseTail(value: string): number | undefined {
  if (value === "all") return undefined;
  if (!/^[+-]?\d+$/.test(value)) {
    throw new FlokaError(`invalid value for "tail": ${JSON.stringify(value)} (a number of lines, or "all")`);
  }
  const n = Number(value);
  return n < 0 ? undefined : n;
}

/** A stored time with its fraction padded to nine digits, as `docker logs -t` prints it. */
export function fixedNanoTime(time: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(time);
  return m ? `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}Z` : time;
}

/**
 * stdout and stderr, each batched so that a large log is not one write(2) per line; a batch
 * is written out before the other stream's turn, so that the two keep their order on a terminal.
 */
class Output {
  #encoder = new TextEncoder();
  #parts: string[] = [];
  #size = 0;
  #stream: "stdout" | "stderr" = "stdout";

  constructor(readonly batch: boolean) {}

  add(entry: LogEntry, timestamps: boolean): void {
    if (entry.stream !== this.#stream) this.flush();
    this.#stream = entry.stream;
    const text = timestamps ? `${fixedNanoTime(entry.time)} ${entry.log}` : entry.log;
    this.#parts.push(text);
    this.#size += text.length;
    if (!this.batch || this.#size >= 64 * 1024) this.flush();
  }

  flush(): void {
    if (!this.#parts.length) return;
    const data = this.#encoder.encode(this.#parts.join(""));
    this.#parts = [];
    this.#size = 0;
    const out = this.#stream === "stdout" ? Deno.stdout : Deno.stderr;
    for (let done = 0; done < data.length;) done += out.writeSync(data.subarray(done));
  }
}

export const logsCommand = defineCommand(
  {
    name: "logs",
    usage: "[OPTIONS] CONTAINER",
    description: "Fetch the logs of a container",
    minArgs: 1,
    maxArgs: 1,
    options: {
      follow: { short: "f", long: "follow", help: "Follow log output" },
      since: {
        long: "since",
        value: "string",
        help:
          'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
      },
      tail: {
        short: "n",
        long: "tail",
        value: "string",
        default: "all",
        help: "Number of lines to show from the end of the logs",
      },
      timestamps: { short: "t", long: "timestamps", help: "Show timestamps" },
      until: {
        long: "until",
        value: "string",
        help:
          'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
      },
    },
  },
  async ({ options, args, globals }) => {
    const store = openStore(globals);
    const now = new Date();
    let since, until, tail, container;
    try {
      since = options.since ? parseLogTime(options.since, now, "since") : undefined;
      until = options.until ? parseLogTime(options.until, now, "until") : undefined;
      tail = parseTail(options.tail);
      container = store.find(args[0]);
    } catch (err) {
      // `docker logs` exits 1 for these (125 is for its own flag errors).
      if (err instanceof FlokaError) throw new FlokaError(err.message, 1);
      throw err;
    }
    const id = container.record.id;
    // Read afresh at every poll: the supervisor, another process, records how the container ends.
    const stillRunning = () => {
      try {
        const { state } = store.find(id);
        return state.status === "running" && isAlive(state);
      } catch {
        return false; // removed meanwhile
      }
    };
    // Following, each line is shown as it comes; otherwise as fast as possible.
    const out = new Output(!options.follow);
    try {
      const entries = readLogs(logPath(container.dir, id), {
        tail,
        since,
        until,
        follow: options.follow,
        stillRunning,
      });
      for await (const entry of entries) out.add(entry, options.timestamps);
      out.flush();
    } catch (err) {
      // Our reader went away (`floka logs web | head`): not a failure.
      if (err instanceof Deno.errors.BrokenPipe) return 0;
      throw err;
    }
    return 0;
  },
);
