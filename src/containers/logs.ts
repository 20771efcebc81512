/**
 * Container logs in Docker's json-file format: `<containerDir>/<id>-json.log` holds one JSON
 * record per line, `{"log":"text\n","stream":"stdout","time":"…Z"}`, so the tools that read
 * Docker's logs (and `docker logs` habits) work on Floka's. A line longer than 16 KiB is
 * split into records without a newline, as Docker splits them; readers concatenate.
 *
 * The supervisor writes, `floka logs` reads, in different processes: the writer keeps the
 * file open in append mode and rotates by rename, and a follower notices a rotation by the
 * inode behind the path changing.
 */
import { FlokaError } from "../../lib/errors.ts";
import { parseBytes } from "../../lib/units.ts";
import { warn } from "../log.ts";
import { pathExists } from "../store/files.ts";

export interface LogOptions {
  /** Bytes per file; 0 = unbounded. */
  maxSize: number;
  /** Files kept, the current one included. */
  maxFile: number;
}

export const DEFAULT_LOG_OPTIONS: Readonly<LogOptions> = { maxSize: 0, maxFile: 1 };

/** Options the json-file driver has in Docker that Floka does not implement. */
const UNSUPPORTED_OPTS = new Set([
  "compress",
  "labels",
  "labels-regex",
  "env",
  "env-regex",
  "tag",
  "mode",
  "max-buffer-size",
]);

/** Parses `--log-opt KEY=VALUE` values (the last one of a key wins, as in Docker). */
export function parseLogOptions(opts: string[]): LogOptions {
  const result: LogOptions = { ...DEFAULT_LOG_OPTIONS };
  for (const opt of opts) {
    const eq = opt.indexOf("=");
    const key = eq === -1 ? opt : opt.slice(0, eq);
    const value = eq === -1 ? "" : opt.slice(eq + 1);
    if (key === "max-size") {
      const size = parseBytes(value);
      if (size <= 0) throw new FlokaError("max-size must be a positive number");
      result.maxSize = size;
    } else if (key === "max-file") {
      if (!/^[+-]?\d+$/.test(value)) {
        throw new FlokaError(`strconv.Atoi: parsing ${JSON.stringify(value)}: invalid syntax`);
      }
      const files = Number(value);
      if (files < 1) throw new FlokaError("max-file cannot be less than 1");
      if (!Number.isSafeInteger(files)) {
        throw new FlokaError(`strconv.Atoi: parsing ${JSON.stringify(value)}: value out of range`);
      }
      result.maxFile = files;
    } else if (UNSUPPORTED_OPTS.has(key)) {
      throw new FlokaError(`log opt '${key}' of the json-file log driver is not supported by floka`);
    } else {
      throw new FlokaError(`unknown log opt '${key}' for json-file log driver`);
    }
  }
  return result;
}

/** The log file of a container, named as Docker names it. */
export function logPath(containerDir: string, id: string): string {
  return `${containerDir}/${id}-json.log`;
}

/** Docker's line limit: longer lines become several records. */
export const MAX_LINE_BYTES = 16 * 1024;
const NEWLINE = 0x0a;
const EMPTY: Uint8Array = new Uint8Array(0);

/** A wall-clock time in nanoseconds: Date.now() only has milliseconds. */
class NanoClock {
  #anchorNs = 0n;
  #anchorPerf = 0;
  #last = 0n;

  constructor() {
    this.#anchor();
  }

  #anchor(): void {
    this.#anchorPerf = performance.now();
    this.#anchorNs = BigInt(Date.now()) * 1_000_000n;
  }

  now(): bigint {
    let ns = this.#anchorNs + BigInt(Math.round((performance.now() - this.#anchorPerf) * 1e6));
    // The monotonic clock drifts from the wall clock, and the wall clock gets stepped (NTP, suspend).
    const wall = BigInt(Date.now()) * 1_000_000n;
    if (ns - wall > 10_000_000n || wall - ns > 10_000_000n) {
      this.#anchor();
      ns = this.#anchorNs;
    }
    // Keep records in time order across a re-anchoring's jitter, but follow a real step back.
    if (ns < this.#last && this.#last - ns < 20_000_000n) ns = this.#last;
    this.#last = ns;
    return ns;
  }
}

/** RFC3339 with nanoseconds in UTC, always nine digits (sorts as text). */
export function formatNanoTime(ns: bigint): string {
  const iso = new Date(Number(ns / 1_000_000n)).toISOString();
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, "0")}Z`;
}

/** Nanoseconds since the epoch of an RFC3339 time as stored, or null when it is not one. */
export function parseNanoTime(time: string): bigint | null {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(time);
  if (!m) return null;
  const ms = Date.parse(m[1] + m[3]);
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Where to cut `bytes` at most `max` bytes in, backing off so as not to split a UTF-8 character. */
function cutPoint(bytes: Uint8Array, max: number): number {
  let cut = max;
  for (let i = 0; i < 3 && cut > 1 && (bytes[cut] & 0xc0) === 0x80; i++) cut--;
  return (bytes[cut] & 0xc0) === 0x80 ? max : cut; // not UTF-8 anyway: cut anywhere
}

type Stream = "stdout" | "stderr";

/** Bytes of a line not yet ended, kept as received to avoid copying on every small chunk. */
class PendingLine {
  parts: Uint8Array[] = [];
  length = 0;

  add(bytes: Uint8Array): void {
    // Copy: the caller may reuse its read buffer.
    this.parts.push(bytes.slice());
    this.length += bytes.length;
  }

  take(): Uint8Array {
    const whole = this.parts.length === 1 ? this.parts[0] : new Uint8Array(this.length);
    if (this.parts.length > 1) {
      let at = 0;
      for (const p of this.parts) {
        whole.set(p, at);
        at += p.length;
      }
    }
    this.parts = [];
    this.length = 0;
    return whole;
  }
}

/**
 * Appends what a container writes to its json-file log. Synchronous and buffered per call:
 * each `write` ends with at most one `write(2)` (two around a rotation).
 */
export class LogWriter {
  readonly path: string;
  readonly opts: LogOptions;
  /** Null once closed, or when the log could not be reopened after a rotation (output is then dropped). */
  #file: Deno.FsFile | null;
  #closed = false;
  #size: number;
  /** How many of `path.1`, `path.2`, … exist, counted once and then tracked. */
  #rotated = 0;
  #pending: Record<Stream, PendingLine> = { stdout: new PendingLine(), stderr: new PendingLine() };
  /** Records encoded but not yet written: `#batch[0, #batchSize)`, reused from call to call. */
  #batch = new Uint8Array(64 * 1024);
  #batchSize = 0;
  #time = "";
  #clock = new NanoClock();
  #encoder = new TextEncoder();
  // ignoreBOM keeps a leading U+FEFF as text; invalid bytes become U+FFFD, as Docker stores them.
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  #failed = false;

  constructor(path: string, opts: LogOptions = DEFAULT_LOG_OPTIONS) {
    this.path = path;
    this.opts = { ...opts };
    this.#file = LogWriter.#open(path);
    this.#size = this.#file.statSync().size;
    const keep = this.opts.maxFile - 1;
    while (this.#rotated < keep && pathExists(`${path}.${this.#rotated + 1}`)) this.#rotated++;
  }

  static #open(path: string): Deno.FsFile {
    return Deno.openSync(path, { append: true, create: true, mode: 0o640 });
  }

  /** Appends one chunk the container wrote on `stream`. */
  write(stream: Stream, chunk: Uint8Array): void {
    if (this.#closed) throw new FlokaError(`container log ${this.path}: write after close`);
    this.#time = formatNanoTime(this.#clock.now());
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl + 1;
      this.#take(stream, chunk.subarray(start, end), nl !== -1);
      start = end;
    }
    this.#flushBatch();
    // Don't keep a buffer grown for one huge chunk.
    if (this.#batch.length > 1024 * 1024) this.#batch = new Uint8Array(64 * 1024);
  }

  /** Writes buffered partial lines now, as records without a newline. */
  flush(): void {
    if (this.#closed) return;
    this.#time = formatNanoTime(this.#clock.now());
    for (const stream of ["stdout", "stderr"] as const) {
      const pending = this.#pending[stream];
      if (pending.length) this.#record(stream, pending.take());
    }
    this.#flushBatch();
  }

  /** Writes buffered partial lines (without a newline, as Docker does at exit) and closes. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#file?.close();
    this.#file = null;
    this.#closed = true;
  }

  /** Adds `piece` (ending with a newline when `complete`) to the stream's line. */
  #take(stream: Stream, piece: Uint8Array, complete: boolean): void {
    const pending = this.#pending[stream];
    if (!complete && pending.length + piece.length < MAX_LINE_BYTES) {
      pending.add(piece);
      return;
    }
    let line = pending.length ? concat(pending.take(), piece) : piece;
    // A line of exactly 16 KiB plus its newline still gets split, as in Docker: the limit holds the newline.
    while (complete ? line.length > MAX_LINE_BYTES : line.length >= MAX_LINE_BYTES) {
      const cut = cutPoint(line, MAX_LINE_BYTES);
      this.#record(stream, line.subarray(0, cut));
      line = line.subarray(cut);
    }
    if (complete) this.#record(stream, line);
    else if (line.length) pending.add(line);
  }

  #record(stream: Stream, bytes: Uint8Array): void {
    // A template instead of an object for JSON.stringify: this runs for every line.
    const rec = `{"log":${
      JSON.stringify(this.#decoder.decode(bytes))
    },"stream":"${stream}","time":"${this.#time}"}\n`;
    const start = this.#batchSize;
    if (this.#batch.length - start < rec.length * 3) {
      const bigger = new Uint8Array(Math.max(this.#batch.length * 2, start + rec.length * 3));
      bigger.set(this.#batch.subarray(0, start));
      this.#batch = bigger;
    }
    const { written } = this.#encoder.encodeInto(rec, this.#batch.subarray(start));
    this.#batchSize += written;
    const before = this.#size + start;
    if (this.opts.maxSize > 0 && before > 0 && before + written > this.opts.maxSize) {
      // The record goes to the next file: write out the ones before it, and move it to the front.
      this.#batchSize = start;
      this.#flushBatch();
      this.#batch.copyWithin(0, start, start + written);
      this.#batchSize = written;
      this.#rotate();
    }
  }

  #flushBatch(): void {
    if (!this.#batchSize) return;
    const data = this.#batch.subarray(0, this.#batchSize);
    this.#batchSize = 0;
    if (!this.#file) return;
    try {
      for (let done = 0; done < data.length;) done += this.#file.writeSync(data.subarray(done));
      this.#size += data.length;
    } catch (err) {
      // Like Docker: a full disk loses log lines but must not stop the container.
      this.#fail(err);
    }
  }

  /** `path` becomes `path.1`, `path.1` becomes `path.2`, …; the oldest beyond max-file goes. */
  #rotate(): void {
    try {
      this.#file?.close();
      this.#file = null;
      if (this.opts.maxFile <= 1) {
        // Unlink rather than truncate: a follower still reading the old file finishes it.
        removeIfExists(this.path);
      } else {
        const keep = this.opts.maxFile - 1;
        for (let i = Math.min(this.#rotated, keep - 1); i >= 1; i--) {
          Deno.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
        }
        Deno.renameSync(this.path, `${this.path}.1`);
        this.#rotated = Math.min(this.#rotated + 1, keep);
      }
      this.#file = LogWriter.#open(this.path);
      this.#size = this.#file.statSync().size;
    } catch (err) {
      // Say, the container's directory was removed under a running container (`rm -f`).
      this.#fail(err);
      if (!this.#file) this.#reopen();
    }
  }

  /** After a failed rotation: go on in whatever file is at `path`, or drop output when there is none. */
  #reopen(): void {
    try {
      this.#file = LogWriter.#open(this.path);
      this.#size = this.#file.statSync().size;
    } catch {
      this.#file = null;
      this.#size = 0;
    }
  }

  #fail(err: unknown): void {
    if (this.#failed) return;
    this.#failed = true;
    warn(`container log ${this.path}: ${(err as Error).message}; some output is not logged`);
  }
}

function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

export interface LogEntry {
  stream: Stream;
  /** As stored: RFC3339 with nanoseconds. */
  time: string;
  /** The text, its newline kept (a record split from a long line has none). */
  log: string;
}

export interface ReadLogsOptions {
  /** The last N records (0 = none, undefined = all). */
  tail?: number;
  since?: Date;
  until?: Date;
  follow?: boolean;
  /** Polled while following; following ends once it returns false and the log is drained. */
  stillRunning?: () => boolean;
  signal?: AbortSignal;
}

const POLL_MS = 100;
const READ_CHUNK = 64 * 1024;

function parseRecord(line: string): LogEntry | null {
  try {
    const r = JSON.parse(line);
    if (typeof r !== "object" || r === null || typeof r.log !== "string" || typeof r.time !== "string") {
      return null;
    }
    return { stream: r.stream === "stderr" ? "stderr" : "stdout", time: r.time, log: r.log };
  } catch {
    return null; // a record torn by a crash mid-write
  }
}

/** The rotated files of `path` (`path.1`, `path.2`, …), oldest first. */
function rotatedFiles(path: string): string[] {
  const slash = path.lastIndexOf("/");
  const dir = slash === -1 ? "." : path.slice(0, slash) || "/";
  const base = path.slice(slash + 1);
  const found: [number, string][] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (!e.name.startsWith(base + ".")) continue;
      const suffix = e.name.slice(base.length + 1);
      if (/^[1-9]\d*$/.test(suffix)) found.push([Number(suffix), `${path}.${suffix}`]);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return found.sort((a, b) => b[0] - a[0]).map(([, p]) => p);
}

function openIfExists(path: string): Deno.FsFile | null {
  try {
    return Deno.openSync(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

async function readAt(file: Deno.FsFile, pos: number, size: number): Promise<Uint8Array> {
  const buf = new Uint8Array(size);
  await file.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < size) {
    const n = await file.read(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Reads one file forward; a record still being written (no newline yet) waits for the next call. */
class ForwardReader {
  readonly ino: number | null;
  #decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(readonly file: Deno.FsFile, public pos = 0, public carry: Uint8Array = EMPTY) {
    this.ino = file.statSync().ino;
  }

  async *lines(): AsyncGenerator<string> {
    // Truncated under us (by hand, or another tool's rotation): start over.
    if (this.file.statSync().size < this.pos) {
      this.pos = 0;
      this.carry = EMPTY;
    }
    await this.file.seek(this.pos, Deno.SeekMode.Start);
    const buf = new Uint8Array(READ_CHUNK);
    while (true) {
      const n = await this.file.read(buf);
      if (n === null || n === 0) return;
      this.pos += n;
      const data = concat(this.carry, buf.subarray(0, n));
      let start = 0;
      for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
        const line = this.#decoder.decode(data.subarray(start, nl));
        start = nl + 1;
        yield line;
      }
      this.carry = data.slice(start);
    }
  }
}

/**
 * Walks `file` backward from `end`, calling `visit` with each complete line, last first,
 * until it returns false. Returns the unterminated bytes after the last newline.
 */
async function readBackward(
  file: Deno.FsFile,
  end: number,
  visit: (line: string) => boolean,
): Promise<Uint8Array> {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let pos = end;
  let rest = EMPTY; // bytes before the lines already visited, starting mid-line unless pos is 0
  let fragment: Uint8Array | null = null;
  while (true) {
    let data: Uint8Array = rest;
    if (pos > 0) {
      const size = Math.min(READ_CHUNK, pos);
      pos -= size;
      data = concat(await readAt(file, pos, size), rest);
    }
    let hi = data.length;
    if (fragment === null) {
      const nl = data.lastIndexOf(NEWLINE);
      if (nl === -1) {
        if (pos > 0) {
          rest = data;
          continue;
        }
        return data.slice();
      }
      fragment = data.slice(nl + 1);
      hi = nl + 1;
    }
    // data[0, hi) ends with a newline: visit its lines whose start is known.
    while (hi > 0) {
      const prev = hi >= 2 ? data.lastIndexOf(NEWLINE, hi - 2) : -1;
      if (prev === -1 && pos > 0) break;
      const line = decoder.decode(data.subarray(prev + 1, hi - 1));
      hi = prev + 1;
      if (!visit(line)) return fragment;
    }
    if (pos === 0) return fragment;
    rest = data.slice(0, hi);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/** Whether the file at `path` is the one open as `file` (a held-open file's inode cannot be reused). */
function sameFile(path: string, ino: number | null): boolean {
  try {
    return Deno.statSync(path).ino === ino;
  } catch {
    return false;
  }
}

/**
 * The records of the log at `path`, rotated files first. `tail` counts records among those
 * that pass since/until (both inclusive); following, new records are read as they come,
 * through rotations, until `stillRunning()` says no and the log is drained.
 */
export async function* readLogs(path: string, opts: ReadLogsOptions): AsyncGenerator<LogEntry> {
  const { tail, follow = false, signal } = opts;
  const sinceNs = opts.since ? BigInt(opts.since.getTime()) * 1_000_000n : null;
  const untilNs = opts.until ? BigInt(opts.until.getTime()) * 1_000_000n : null;
  /** -1: before since (or no time to place it by), 0: in range, 1: after until. */
  const place = (e: LogEntry): -1 | 0 | 1 => {
    if (sinceNs === null && untilNs === null) return 0;
    const t = parseNanoTime(e.time);
    if (t === null) return -1;
    if (sinceNs !== null && t < sinceNs) return -1;
    if (untilNs !== null && t > untilNs) return 1;
    return 0;
  };
  let past = false; // a record after `until` was seen: nothing later can be in range

  /** The records of `reader` in range, from its position to its end. */
  async function* inRange(reader: ForwardReader): AsyncGenerator<LogEntry> {
    for await (const line of reader.lines()) {
      const e = parseRecord(line);
      if (!e) continue;
      const where = place(e);
      if (where === 1) past = true;
      else if (where === 0) yield e;
    }
  }

  // The current file first, so that a rotation right now shows up as its inode among the old ones.
  const currentFile = openIfExists(path);
  let current = currentFile ? new ForwardReader(currentFile) : null;
  try {
    const older: Deno.FsFile[] = [];
    try {
      for (const p of rotatedFiles(path)) {
        const f = openIfExists(p);
        if (f && f.statSync().ino !== current?.ino) older.push(f);
        else f?.close();
      }
      if (tail !== undefined) {
        const picked: LogEntry[] = [];
        let done = tail <= 0;
        const visit = (line: string): boolean => {
          if (done) return false;
          const e = parseRecord(line);
          if (!e) return true;
          const where = place(e);
          if (where === 1) past = true;
          if (where === 0) picked.push(e);
          // Records are in time order: one before `since` means all the older ones are too.
          else if (where === -1 && sinceNs !== null && parseNanoTime(e.time) !== null) done = true;
          if (picked.length >= tail) done = true;
          return !done;
        };
        if (current) {
          // Even with nothing to show, find where the last complete record ends, to follow from there.
          const end = current.file.statSync().size;
          current.carry = await readBackward(current.file, end, visit);
          current.pos = end;
        }
        for (let i = older.length - 1; i >= 0 && !done; i--) {
          await readBackward(older[i], older[i].statSync().size, visit);
        }
        for (let i = picked.length - 1; i >= 0; i--) {
          if (signal?.aborted) return;
          yield picked[i];
        }
      } else {
        for (const reader of [...older.map((f) => new ForwardReader(f)), ...(current ? [current] : [])]) {
          for await (const e of inRange(reader)) {
            if (signal?.aborted) return;
            yield e;
          }
        }
      }
    } finally {
      for (const f of older) f.close();
    }
    if (!follow || past || signal?.aborted) return;

    /** Yields what was appended since the last look, moving on to the new file after a rotation. */
    const poll = async function* (): AsyncGenerator<LogEntry> {
      const between: ForwardReader[] = [];
      let next: ForwardReader | null = null;
      if (!sameFile(path, current?.ino ?? null) && (next = openFile(path))) {
        // The files rotated since ours, oldest first: those newer than ours, or all when ours is gone.
        const rotated = rotatedFiles(path);
        const ours = current ? rotated.findIndex((p) => sameFile(p, current!.ino)) : -1;
        for (const p of rotated.slice(ours + 1)) {
          const f = openIfExists(p);
          // Rotated again just now, the new file may already be among the old ones.
          if (f && f.statSync().ino !== next.ino) between.push(new ForwardReader(f));
          else f?.close();
        }
      }
      const previous = current;
      try {
        for (const reader of [...(previous ? [previous] : []), ...between, ...(next ? [next] : [])]) {
          yield* inRange(reader);
          if (past) return;
        }
      } finally {
        for (const r of between) r.file.close();
        if (next) {
          previous?.file.close();
          current = next;
        }
      }
    };

    let sawRunning = false;
    while (!signal?.aborted) {
      const running = (opts.stillRunning?.() ?? true) &&
        (untilNs === null || BigInt(Date.now()) * 1_000_000n <= untilNs);
      for await (const e of poll()) {
        if (signal?.aborted) return;
        yield e;
      }
      if (past) return;
      if (!running) {
        if (!sawRunning) return;
        // The supervisor writes the last partial lines after the process has exited: one more look.
        await sleep(POLL_MS, signal);
        for await (const e of poll()) {
          if (signal?.aborted) return;
          yield e;
        }
        return;
      }
      sawRunning = true;
      await sleep(POLL_MS, signal);
    }
  } finally {
    current?.file.close();
  }
}

function openFile(path: string): ForwardReader | null {
  const f = openIfExists(path);
  return f ? new ForwardReader(f) : null;
}
