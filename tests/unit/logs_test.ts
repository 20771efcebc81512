import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { fixedNanoTime, parseGoDuration, parseLogTime, parseTail } from "../../src/cli/logs.ts";
import { processStartTime } from "../../src/containers/liveness.ts";
import {
  formatNanoTime,
  type LogEntry,
  logPath,
  LogWriter,
  MAX_LINE_BYTES,
  parseLogOptions,
  parseNanoTime,
  readLogs,
  type ReadLogsOptions,
} from "../../src/containers/logs.ts";
import { type ContainerRecord, ContainerStore } from "../../src/containers/store.ts";
import { setLogLevel } from "../../src/log.ts";
import { ensureStoreDirs, storeRoot } from "../../src/store/root.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);
const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;

function tempDir(): { dir: string; log: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "floka-logs-" });
  return { dir, log: `${dir}/c-json.log`, [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }) };
}

/** The raw records of one file. */
function records(path: string): { log: string; stream: string; time: string }[] {
  return Deno.readTextFileSync(path).split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function collect(path: string, opts: ReadLogsOptions = {}): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLogs(path, opts)) out.push(e);
  return out;
}

const texts = (entries: { log: string }[]) => entries.map((e) => e.log);

/** A log file made by hand: one record per [stream, time, text]. */
function handMade(path: string, rows: [string, string, string][]): void {
  Deno.writeTextFileSync(
    path,
    rows.map(([stream, time, log]) => JSON.stringify({ log, stream, time }) + "\n").join(""),
  );
}

const logFiles = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

// --- parseLogOptions, logPath ---------------------------------------------------------------

Deno.test("parseLogOptions: defaults, max-size in Docker's size syntax, max-file, last one wins", () => {
  assert.deepEqual(parseLogOptions([]), { maxSize: 0, maxFile: 1 });
  assert.deepEqual(parseLogOptions(["max-size=10m", "max-file=3"]), { maxSize: 10 * 1024 ** 2, maxFile: 3 });
  assert.deepEqual(parseLogOptions(["max-size=512k", "max-size=2kb"]), { maxSize: 2048, maxFile: 1 });
  assert.deepEqual(parseLogOptions(["max-size=100"]), { maxSize: 100, maxFile: 1 });
});

Deno.test("parseLogOptions: errors in Docker's words", () => {
  const cases: [string[], RegExp][] = [
    [["foo=bar"], /^unknown log opt 'foo' for json-file log driver$/],
    [["max-sise=1m"], /^unknown log opt 'max-sise' for json-file log driver$/],
    [["max-file=0"], /^max-file cannot be less than 1$/],
    [["max-file=-2"], /^max-file cannot be less than 1$/],
    [["max-file=x"], /^strconv\.Atoi: parsing "x": invalid syntax$/],
    [["max-file"], /^strconv\.Atoi: parsing "": invalid syntax$/],
    [["max-size=0"], /^max-size must be a positive number$/],
    [["max-size=ten"], /^invalid size: "ten"/],
    [["max-size="], /^invalid size: ""/],
    [["compress=true"], /^log opt 'compress' of the json-file log driver is not supported by floka$/],
  ];
  for (const [opts, re] of cases) {
    assert.throws(() => parseLogOptions(opts), (e) => e instanceof FlokaError && re.test(e.message), opts[0]);
  }
});

Deno.test("logPath is <containerDir>/<id>-json.log", () => {
  assert.equal(logPath("/s/containers/abc", "abc"), "/s/containers/abc/abc-json.log");
});

// --- LogWriter --------------------------------------------------------------------------------

Deno.test("LogWriter: one record per line, Docker's fields in Docker's order, RFC3339Nano UTC", () => {
  using t = tempDir();
  const before = Date.now();
  const w = new LogWriter(t.log);
  w.write("stdout", bytes("hello\nworld\n"));
  w.close();
  const after = Date.now();
  const lines = Deno.readTextFileSync(t.log).split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[2], "");
  assert.match(lines[0], /^\{"log":"hello\\n","stream":"stdout","time":"[^"]+"\}$/);
  const recs = records(t.log);
  assert.deepEqual(recs.map((r) => [r.log, r.stream]), [["hello\n", "stdout"], ["world\n", "stdout"]]);
  for (const r of recs) {
    assert.match(r.time, TIME_RE);
    const ms = Number(parseNanoTime(r.time)! / 1_000_000n);
    assert.ok(ms >= before - 20 && ms <= after + 20, `${r.time} not between ${before} and ${after}`);
  }
  assert.equal(Deno.statSync(t.log).mode! & 0o777, 0o640);
});

Deno.test("LogWriter: a line split across chunks is one record; an empty line is a record too", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  for (const c of ["he", "l", "lo wor", "ld\n\nsecond", " line\nthird"]) w.write("stdout", bytes(c));
  assert.deepEqual(texts(records(t.log)), ["hello world\n", "\n", "second line\n"]);
  w.close();
  assert.deepEqual(texts(records(t.log)), ["hello world\n", "\n", "second line\n", "third"]);
});

Deno.test("LogWriter: both streams interleave in the order their lines end, each with its own partial line", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  w.write("stdout", bytes("out 1\nout 2 par"));
  w.write("stderr", bytes("err 1\n"));
  w.write("stdout", bytes("tial\n"));
  w.write("stderr", bytes("err 2 "));
  w.write("stdout", bytes("out 3\n"));
  w.write("stderr", bytes("end\n"));
  w.close();
  assert.deepEqual(records(t.log).map((r) => `${r.stream}:${r.log}`), [
    "stdout:out 1\n",
    "stderr:err 1\n",
    "stdout:out 2 partial\n",
    "stdout:out 3\n",
    "stderr:err 2 end\n",
  ]);
  const times = records(t.log).map((r) => parseNanoTime(r.time)!);
  for (let i = 1; i < times.length; i++) assert.ok(times[i] >= times[i - 1], "times never go back");
});

Deno.test("LogWriter: lines longer than 16 KiB are split into records without a newline", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  const long = "x".repeat(40_000);
  w.write("stdout", bytes(long + "\nshort\n"));
  // Without a newline, a full 16 KiB goes out at once; the rest waits.
  w.write("stderr", bytes("y".repeat(MAX_LINE_BYTES + 10)));
  const written = records(t.log);
  assert.deepEqual(written.map((r) => r.log.length), [16384, 16384, 40_000 - 32768 + 1, 6, 16384]);
  assert.equal(written.slice(0, 3).map((r) => r.log).join(""), long + "\n");
  w.write("stderr", bytes("\n"));
  // Exactly 16 KiB and its newline: the limit counts the newline, so the newline comes alone.
  w.write("stdout", bytes("z".repeat(MAX_LINE_BYTES) + "\n"));
  w.close();
  assert.deepEqual(records(t.log).slice(5).map((r) => r.log.length), [11, 16384, 1]);
  assert.equal(records(t.log)[7].log, "\n");
});

Deno.test("LogWriter: a 16 KiB split never cuts a UTF-8 character in two", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  const line = "a" + "€".repeat(10_000); // 3 bytes each: 16384 falls inside one
  w.write("stdout", bytes(line + "\n"));
  w.close();
  const recs = records(t.log);
  assert.ok(recs.length >= 2);
  for (const r of recs) {
    assert.ok(!r.log.includes("\uFFFD"), "no replacement character");
    assert.ok(enc.encode(r.log).length <= MAX_LINE_BYTES);
  }
  assert.equal(texts(recs).join(""), line + "\n");
});

Deno.test("LogWriter: invalid UTF-8 is stored lossily, a character split across chunks is not", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  w.write("stdout", new Uint8Array([0x61, 0xff, 0xfe, 0x62, 0x0a, 0xc3]));
  w.write("stdout", new Uint8Array([0xa9, 0x0a])); // é split in the middle
  w.write("stderr", new Uint8Array([0xef, 0xbb, 0xbf, 0x68, 0x69, 0x0a])); // a BOM is text here
  w.write("stderr", new Uint8Array([0x80, 0x0a, 0xe2, 0x82]));
  w.close(); // a truncated character at exit
  assert.deepEqual(texts(records(t.log)), ["a\uFFFD\uFFFDb\n", "é\n", "\uFEFFhi\n", "\uFFFD\n", "\uFFFD"]);
});

Deno.test("LogWriter: the caller may reuse its buffer after write", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  const buf = bytes("abc");
  w.write("stdout", buf);
  buf.set(bytes("XYZ"));
  w.write("stdout", bytes("\n"));
  w.close();
  assert.deepEqual(texts(records(t.log)), ["abc\n"]);
});

Deno.test("LogWriter: flush and close write partial lines; close is idempotent; write after close throws", () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  w.write("stdout", bytes("prompt> "));
  w.write("stderr", bytes("warn"));
  assert.deepEqual(records(t.log), []);
  w.flush();
  assert.deepEqual(records(t.log).map((r) => [r.stream, r.log]), [["stdout", "prompt> "], [
    "stderr",
    "warn",
  ]]);
  w.write("stdout", bytes("tail"));
  w.close();
  w.close();
  assert.deepEqual(texts(records(t.log)), ["prompt> ", "warn", "tail"]);
  assert.throws(() => w.write("stdout", bytes("x\n")), FlokaError);
});

Deno.test("LogWriter: a new writer appends to an existing log (a restarted container)", () => {
  using t = tempDir();
  const a = new LogWriter(t.log);
  a.write("stdout", bytes("run 1\n"));
  a.close();
  const b = new LogWriter(t.log);
  b.write("stdout", bytes("run 2\n"));
  b.close();
  assert.deepEqual(texts(records(t.log)), ["run 1\n", "run 2\n"]);
});

Deno.test("LogWriter: a log removed under a running container (rm -f) drops output and throws nothing", () => {
  const dir = Deno.makeTempDirSync({ prefix: "floka-logs-" });
  const w = new LogWriter(`${dir}/c-json.log`, { maxSize: 200, maxFile: 2 });
  writeNumbered(w, 0, 2);
  Deno.removeSync(dir, { recursive: true });
  setLogLevel("error"); // the one warning it gives
  try {
    writeNumbered(w, 2, 20); // rotations fail: the directory is gone
    w.close();
  } finally {
    setLogLevel("warn");
  }
});

// --- rotation ---------------------------------------------------------------------------------

/** Writes `n` numbered lines, one chunk each. */
function writeNumbered(w: LogWriter, from: number, n: number): void {
  for (let i = from; i < from + n; i++) w.write(i % 3 ? "stdout" : "stderr", bytes(`line ${i}\n`));
}

Deno.test("rotation: never more than max-file files, none above max-size, read back in order", async () => {
  using t = tempDir();
  const maxSize = 500;
  const w = new LogWriter(t.log, { maxSize, maxFile: 3 });
  writeNumbered(w, 0, 200);
  w.close();
  assert.deepEqual(logFiles(t.dir), ["c-json.log", "c-json.log.1", "c-json.log.2"]);
  for (const f of logFiles(t.dir)) assert.ok(Deno.statSync(`${t.dir}/${f}`).size <= maxSize, f);
  const got = texts(await collect(t.log)).map((l) => Number(l.slice(5)));
  // What is left is the newest lines, in order, without a gap, ending with the last.
  assert.equal(got.at(-1), 199);
  assert.ok(got.length > 10 && got.length < 200, String(got.length));
  got.forEach((n, i) => assert.equal(n, got[0] + i));
  // The oldest file holds the oldest of them.
  assert.equal(records(`${t.log}.2`)[0].log, `line ${got[0]}\n`);
});

Deno.test("rotation: max-file=1 keeps one file; a record bigger than max-size still gets written", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log, { maxSize: 100, maxFile: 1 });
  writeNumbered(w, 0, 50);
  w.write("stdout", bytes("x".repeat(300) + "\n"));
  w.close();
  assert.deepEqual(logFiles(t.dir), ["c-json.log"]);
  assert.deepEqual(texts(await collect(t.log)), ["x".repeat(300) + "\n"]);
});

Deno.test("rotation: a writer reopening a rotated log keeps counting its files", async () => {
  using t = tempDir();
  for (let run = 0; run < 4; run++) {
    const w = new LogWriter(t.log, { maxSize: 300, maxFile: 4 });
    writeNumbered(w, run * 30, 30);
    w.close();
  }
  assert.deepEqual(logFiles(t.dir), ["c-json.log", "c-json.log.1", "c-json.log.2", "c-json.log.3"]);
  const got = texts(await collect(t.log)).map((l) => Number(l.slice(5)));
  assert.equal(got.at(-1), 119);
  got.forEach((n, i) => assert.equal(n, got[0] + i));
});

Deno.test("rotation: in the middle of one big chunk, every line kept, in order, each file within max-size", async () => {
  using t = tempDir();
  const maxSize = 100 * 1024;
  const w = new LogWriter(t.log, { maxSize, maxFile: 100 });
  const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i} ${"é".repeat(i % 50)}\n`);
  w.write("stdout", bytes(lines.join(""))); // about 3 MB at once
  w.write("stderr", bytes("last\n"));
  w.close();
  const files = logFiles(t.dir);
  assert.ok(files.length > 20, String(files.length));
  for (const f of files) assert.ok(Deno.statSync(`${t.dir}/${f}`).size <= maxSize, f);
  assert.deepEqual(texts(await collect(t.log)), [...lines, "last\n"]);
});

Deno.test("rotation: without max-size the file just grows", () => {
  using t = tempDir();
  const w = new LogWriter(t.log, { maxSize: 0, maxFile: 5 });
  writeNumbered(w, 0, 1000);
  w.close();
  assert.deepEqual(logFiles(t.dir), ["c-json.log"]);
});

// --- readLogs ---------------------------------------------------------------------------------

Deno.test("readLogs: all records with stream and time as stored; no file is no records", async () => {
  using t = tempDir();
  assert.deepEqual(await collect(t.log), []);
  assert.deepEqual(await collect(t.log, { tail: 5 }), []);
  const w = new LogWriter(t.log);
  w.write("stdout", bytes("a\n"));
  w.write("stderr", bytes("b\n"));
  w.close();
  const got = await collect(t.log);
  const raw = records(t.log);
  assert.deepEqual(got, [
    { stream: "stdout", time: raw[0].time, log: "a\n" },
    { stream: "stderr", time: raw[1].time, log: "b\n" },
  ]);
});

Deno.test("readLogs: tail is the last N records, 0 is none, more than there are is all", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  writeNumbered(w, 0, 10);
  w.close();
  assert.deepEqual(texts(await collect(t.log, { tail: 3 })), ["line 7\n", "line 8\n", "line 9\n"]);
  assert.deepEqual(await collect(t.log, { tail: 0 }), []);
  assert.equal((await collect(t.log, { tail: 100 })).length, 10);
  assert.equal((await collect(t.log, { tail: 10 })).length, 10);
});

Deno.test("readLogs: tail across rotated files, and over a file larger than one read chunk", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log, { maxSize: 400, maxFile: 20 });
  writeNumbered(w, 0, 150);
  w.close();
  assert.ok(logFiles(t.dir).length > 5);
  const want = Array.from({ length: 40 }, (_, i) => `line ${110 + i}\n`);
  assert.deepEqual(texts(await collect(t.log, { tail: 40 })), want);

  const big = `${t.dir}/big-json.log`;
  const b = new LogWriter(big);
  for (let i = 0; i < 3000; i++) b.write("stdout", bytes(`${i} ${"p".repeat(i % 97)}\n`));
  b.close();
  const last = texts(await collect(big, { tail: 2500 }));
  assert.equal(last.length, 2500);
  last.forEach((l, i) => assert.equal(l, `${500 + i} ${"p".repeat((500 + i) % 97)}\n`));
});

Deno.test("readLogs: a torn record at the end (a writer killed mid-write) is skipped", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  writeNumbered(w, 0, 3);
  w.close();
  Deno.writeTextFileSync(t.log, '{"log":"half', { append: true });
  assert.deepEqual(texts(await collect(t.log)), ["line 0\n", "line 1\n", "line 2\n"]);
  assert.deepEqual(texts(await collect(t.log, { tail: 2 })), ["line 1\n", "line 2\n"]);
});

Deno.test("readLogs: since and until, inclusive, with nanoseconds and Docker's shorter fractions", async () => {
  using t = tempDir();
  handMade(t.log, [
    ["stdout", "2026-01-01T10:00:00.000000001Z", "a\n"],
    ["stderr", "2026-01-01T10:00:01.5Z", "b\n"],
    ["stdout", "2026-01-01T10:00:02Z", "c\n"],
    ["stdout", "2026-01-01T10:00:03.999999999Z", "d\n"],
    ["stdout", "2026-01-01T10:00:05.000000000Z", "e\n"],
  ]);
  const at = (s: string) => new Date(s);
  assert.deepEqual(texts(await collect(t.log, { since: at("2026-01-01T10:00:00.001Z") })), [
    "b\n",
    "c\n",
    "d\n",
    "e\n",
  ]);
  assert.deepEqual(texts(await collect(t.log, { since: at("2026-01-01T10:00:02Z") })), ["c\n", "d\n", "e\n"]);
  assert.deepEqual(texts(await collect(t.log, { until: at("2026-01-01T10:00:02Z") })), ["a\n", "b\n", "c\n"]);
  assert.deepEqual(
    texts(await collect(t.log, { since: at("2026-01-01T10:00:01Z"), until: at("2026-01-01T10:00:03.999Z") })),
    ["b\n", "c\n"],
  );
  // tail counts among the records in range.
  assert.deepEqual(texts(await collect(t.log, { tail: 2, until: at("2026-01-01T10:00:04Z") })), [
    "c\n",
    "d\n",
  ]);
  assert.deepEqual(texts(await collect(t.log, { tail: 10, since: at("2026-01-01T10:00:03Z") })), [
    "d\n",
    "e\n",
  ]);
  assert.deepEqual(await collect(t.log, { since: at("2027-01-01T00:00:00Z") }), []);
});

Deno.test("readLogs: since and until across rotated files", async () => {
  using t = tempDir();
  handMade(`${t.log}.2`, [["stdout", "2026-01-01T10:00:00Z", "1\n"], [
    "stdout",
    "2026-01-01T10:00:01Z",
    "2\n",
  ]]);
  handMade(`${t.log}.1`, [["stdout", "2026-01-01T10:00:02Z", "3\n"], [
    "stdout",
    "2026-01-01T10:00:03Z",
    "4\n",
  ]]);
  handMade(t.log, [["stdout", "2026-01-01T10:00:04Z", "5\n"]]);
  assert.deepEqual(texts(await collect(t.log)), ["1\n", "2\n", "3\n", "4\n", "5\n"]);
  const since = new Date("2026-01-01T10:00:01Z");
  const until = new Date("2026-01-01T10:00:03Z");
  assert.deepEqual(texts(await collect(t.log, { since, until })), ["2\n", "3\n", "4\n"]);
  assert.deepEqual(texts(await collect(t.log, { since, tail: 3 })), ["3\n", "4\n", "5\n"]);
  assert.deepEqual(texts(await collect(t.log, { until, tail: 3 })), ["2\n", "3\n", "4\n"]);
});

// --- follow -----------------------------------------------------------------------------------

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows `path` until stillRunning turns false, while `produce` writes; returns what was read. */
async function followWhile(
  path: string,
  produce: () => Promise<void>,
  opts: ReadLogsOptions = {},
): Promise<LogEntry[]> {
  let running = true;
  const reading = collect(path, { ...opts, follow: true, stillRunning: () => running });
  await produce();
  running = false;
  return await reading;
}

Deno.test("follow: shows the old records, then lines a concurrent writer appends, and ends when the container stops", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  w.write("stdout", bytes("before\n"));
  const got = await followWhile(t.log, async () => {
    for (let i = 0; i < 5; i++) {
      await delay(30);
      w.write(i % 2 ? "stderr" : "stdout", bytes(`live ${i}\n`));
    }
    await delay(150);
    w.write("stdout", bytes("no newline at exit"));
    w.close();
  });
  assert.deepEqual(texts(got), [
    "before\n",
    "live 0\n",
    "live 1\n",
    "live 2\n",
    "live 3\n",
    "live 4\n",
    "no newline at exit",
  ]);
  assert.deepEqual(got.map((e) => e.stream), [
    "stdout",
    "stdout",
    "stderr",
    "stdout",
    "stderr",
    "stdout",
    "stdout",
  ]);
});

Deno.test("follow: the last partial line, written after the process ended, is still shown", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  let running = true;
  const reading = collect(t.log, { follow: true, stillRunning: () => running });
  w.write("stdout", bytes("a\nprompt> "));
  await delay(250);
  running = false; // the process is gone; the supervisor flushes a moment later
  await delay(20);
  w.close();
  assert.deepEqual(texts(await reading), ["a\n", "prompt> "]);
});

Deno.test("follow: reads through rotations, every line once and in order", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log, { maxSize: 300, maxFile: 1000 });
  writeNumbered(w, 0, 20);
  const got = await followWhile(t.log, async () => {
    for (let i = 20; i < 300; i += 10) {
      writeNumbered(w, i, 10);
      await delay(15);
    }
    w.close();
  });
  assert.ok(logFiles(t.dir).length > 20);
  assert.deepEqual(texts(got), Array.from({ length: 300 }, (_, i) => `line ${i}\n`));
});

Deno.test("follow: with max-file=1 the log is replaced, and the follower moves to the new one", async () => {
  using t = tempDir();
  // About 20 records a file, a record every 25 ms: the follower (every 100 ms) sees each file.
  const w = new LogWriter(t.log, { maxSize: 1600, maxFile: 1 });
  let rotations = 0;
  let ino = 0;
  const got = await followWhile(t.log, async () => {
    for (let i = 0; i < 60; i++) {
      writeNumbered(w, i, 1);
      const now = Deno.statSync(t.log).ino!;
      if (ino && now !== ino) rotations++;
      ino = now;
      await delay(25);
    }
    w.close();
  });
  assert.ok(rotations >= 2, `${rotations} rotations`);
  assert.deepEqual(logFiles(t.dir), ["c-json.log"]);
  assert.deepEqual(texts(got), Array.from({ length: 60 }, (_, i) => `line ${i}\n`));
});

Deno.test("follow: tail 0 shows only new lines; a record half-written at the start is not lost", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  writeNumbered(w, 0, 5);
  const rec = JSON.stringify({ log: "late\n", stream: "stdout", time: "2026-01-01T00:00:00.000000000Z" }) +
    "\n";
  Deno.writeTextFileSync(t.log, rec.slice(0, 10), { append: true });
  const got = await followWhile(t.log, async () => {
    await delay(150);
    Deno.writeTextFileSync(t.log, rec.slice(10), { append: true });
    w.write("stdout", bytes("new\n"));
    await delay(50);
  }, { tail: 0 });
  assert.deepEqual(texts(got), ["late\n", "new\n"]);
});

Deno.test("follow: waits for a log file that does not exist yet", async () => {
  using t = tempDir();
  const got = await followWhile(t.log, async () => {
    await delay(150);
    const w = new LogWriter(t.log);
    w.write("stdout", bytes("first\n"));
    w.close();
    await delay(50);
  });
  assert.deepEqual(texts(got), ["first\n"]);
});

Deno.test("follow: a stopped container's log is read once and following ends at once", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  writeNumbered(w, 0, 2);
  w.close();
  const started = Date.now();
  const got = await collect(t.log, { follow: true, stillRunning: () => false });
  assert.deepEqual(texts(got), ["line 0\n", "line 1\n"]);
  assert.ok(Date.now() - started < 1000);
  assert.deepEqual(await collect(`${t.dir}/none.log`, { follow: true, stillRunning: () => false }), []);
});

Deno.test("follow: stops when the signal aborts, and when records pass until", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  w.write("stdout", bytes("one\n"));
  const ac = new AbortController();
  const got: string[] = [];
  for await (const e of readLogs(t.log, { follow: true, stillRunning: () => true, signal: ac.signal })) {
    got.push(e.log);
    ac.abort();
  }
  assert.deepEqual(got, ["one\n"]);

  // until in the past: nothing later can match, so following ends without waiting.
  const until = new Date(Date.now() - 1000);
  handMade(`${t.dir}/old.log`, [["stdout", formatNanoTime(BigInt(until.getTime() - 5) * 1_000_000n), "x\n"]]);
  const old = await collect(`${t.dir}/old.log`, { follow: true, stillRunning: () => true, until });
  assert.deepEqual(texts(old), ["x\n"]);
  w.close();
});

Deno.test("follow: breaking out of the loop closes the files", async () => {
  using t = tempDir();
  const w = new LogWriter(t.log);
  writeNumbered(w, 0, 3);
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const before = fds();
  for await (const _ of readLogs(t.log, { follow: true, stillRunning: () => true })) break;
  assert.equal(fds(), before);
  w.close();
});

// --- time helpers -----------------------------------------------------------------------------

Deno.test("formatNanoTime and parseNanoTime round-trip nanoseconds", () => {
  const ns = 1_795_873_469_904_378_123n;
  const s = formatNanoTime(ns);
  assert.equal(s, "2026-11-28T13:44:29.904378123Z");
  assert.equal(parseNanoTime(s), ns);
  assert.equal(parseNanoTime("2026-11-28T14:44:29.9+01:00"), 1_795_873_469_900_000_000n);
  assert.equal(parseNanoTime("yesterday"), null);
  assert.equal(fixedNanoTime("2026-01-01T10:00:01.5Z"), "2026-01-01T10:00:01.500000000Z");
  assert.equal(fixedNanoTime("2026-01-01T10:00:02Z"), "2026-01-01T10:00:02.000000000Z");
});

Deno.test("parseGoDuration: Go's syntax", () => {
  assert.equal(parseGoDuration("10m"), 600_000);
  assert.equal(parseGoDuration("1h30m"), 5_400_000);
  assert.equal(parseGoDuration("1.5s"), 1500);
  assert.equal(parseGoDuration("-2h"), -7_200_000);
  assert.equal(parseGoDuration("500ms"), 500);
  assert.equal(parseGoDuration("0"), 0);
  for (const bad of ["", "10", "m", "1x", "1h 30m", ".s", "1d"]) {
    assert.equal(parseGoDuration(bad), null, bad);
  }
});

Deno.test("parseLogTime: relative durations, RFC3339 forms, Unix seconds, as Docker takes them", () => {
  const now = new Date("2026-03-01T12:00:00.750Z");
  const p = (v: string) => parseLogTime(v, now, "since").toISOString();
  assert.equal(p("10m"), "2026-03-01T11:50:00.000Z"); // to the second, as Docker sends it
  assert.equal(p("1h30m"), "2026-03-01T10:30:00.000Z");
  assert.equal(p("2013-01-02T13:23:37Z"), "2013-01-02T13:23:37.000Z");
  assert.equal(p("2013-01-02T13:23:37.123456789Z"), "2013-01-02T13:23:37.123Z");
  assert.equal(p("2013-01-02T13:23:37+02:00"), "2013-01-02T11:23:37.000Z");
  assert.equal(p("2013-01-02T13:23-01:00"), "2013-01-02T14:23:00.000Z");
  assert.equal(p("2013-01-02Z"), "2013-01-02T00:00:00.000Z");
  assert.equal(p("1700000000"), "2023-11-14T22:13:20.000Z");
  assert.equal(p("1700000000.5"), "2023-11-14T22:13:20.500Z");
  assert.equal(p("0"), "1970-01-01T00:00:00.000Z");
  // Without a zone: local time.
  assert.equal(
    parseLogTime("2013-01-02T13:23", now, "since").getTime(),
    new Date(2013, 0, 2, 13, 23).getTime(),
  );
  assert.equal(parseLogTime("2013-01-02", now, "since").getTime(), new Date(2013, 0, 2).getTime());
  for (const bad of ["yesterday", "2013-13-01", "2013-02-30T00:00Z", "12:00", "1.2.3"]) {
    assert.throws(
      () => parseLogTime(bad, now, "until"),
      (e) =>
        e instanceof FlokaError &&
        e.message === `invalid value for "until": failed to parse value as time or duration: "${bad}"`,
      bad,
    );
  }
});

Deno.test("parseTail: all, numbers, negative is all, anything else is an error", () => {
  assert.equal(parseTail("all"), undefined);
  assert.equal(parseTail("0"), 0);
  assert.equal(parseTail("25"), 25);
  assert.equal(parseTail("-1"), undefined);
  assert.throws(() => parseTail("ten"), FlokaError);
});

// --- the command ------------------------------------------------------------------------------

const REPO = new URL("../../", import.meta.url);

/**
 * Runs `floka --root ROOT logs ARGS` in a fresh process: through main.ts once the command
 * is registered, else through a driver that does what program.ts does for a command.
 */
async function flokaLogs(
  root: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const registered = Deno.readTextFileSync(new URL("src/cli/program.ts", REPO)).includes("logsCommand");
  let script = new URL("main.ts", REPO).pathname;
  let argv = ["--root", root, "logs", ...args];
  if (!registered) {
    script = `${root}/driver.ts`;
    argv = [root, ...args];
    Deno.writeTextFileSync(
      script,
      `
      import { formatCommandHelp, parseCommandLine, UsageError } from "${new URL("lib/argv.ts", REPO)}";
      import { describeError, FlokaError } from "${new URL("lib/errors.ts", REPO)}";
      import { logsCommand } from "${new URL("src/cli/logs.ts", REPO)}";
      const [root, ...rest] = Deno.args;
      try {
        const p = parseCommandLine(logsCommand.spec, rest);
        if (p.help) { console.log(formatCommandHelp(logsCommand.spec)); Deno.exit(0); }
        Deno.exit(await logsCommand.action({ options: p.options, args: p.args, globals: { root, logLevel: "warn" } }));
      } catch (err) {
        console.error("floka: " + describeError(err));
        Deno.exit(err instanceof UsageError ? 125 : err instanceof FlokaError ? err.exitCode : 1);
      }`,
    );
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", script, ...argv],
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const ID = "feedface".repeat(8);

function makeContainer(root: string): { store: ContainerStore; dir: string } {
  const sr = storeRoot(root);
  ensureStoreDirs(sr);
  const store = new ContainerStore(sr);
  const record: ContainerRecord = {
    id: ID,
    name: "web",
    created: new Date().toISOString(),
    image: "busybox:latest",
    lowerDirs: [],
    path: "sh",
    args: ["-c", "true"],
    config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
    hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
  };
  const c = store.create(record, () => {});
  return { store, dir: c.dir };
}

Deno.test("floka logs: stdout and stderr to their own streams, -t, --tail, errors, help", async () => {
  using t = tempDir();
  const { dir } = makeContainer(t.dir);
  // A container that never wrote anything has no log file: nothing, and success.
  assert.deepEqual(await flokaLogs(t.dir, ["web"]), { code: 0, stdout: "", stderr: "" });

  const w = new LogWriter(logPath(dir, ID));
  w.write("stdout", bytes("out 1\nout 2\n"));
  w.write("stderr", bytes("err 1\n"));
  w.write("stdout", bytes("out 3 ünïcode\nno newline"));
  w.close();
  const all = await flokaLogs(t.dir, ["web"]);
  assert.deepEqual(all, { code: 0, stdout: "out 1\nout 2\nout 3 ünïcode\nno newline", stderr: "err 1\n" });

  const tail = await flokaLogs(t.dir, ["-n", "2", ID.slice(0, 12)]);
  assert.deepEqual([tail.stdout, tail.stderr], ["out 3 ünïcode\nno newline", ""]);

  const stamped = await flokaLogs(t.dir, ["--timestamps", "--tail=1", "web"]);
  const time = records(logPath(dir, ID)).at(-1)!.time;
  assert.equal(stamped.stdout, `${time} no newline`);

  const future = await flokaLogs(t.dir, ["--since", "-1h", "web"]); // Go durations may be negative
  assert.deepEqual([future.code, future.stdout, future.stderr], [0, "", ""]);

  const missing = await flokaLogs(t.dir, ["nope"]);
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, "floka: No such container: nope\n");

  const badSince = await flokaLogs(t.dir, ["--since", "soon", "web"]);
  assert.equal(badSince.code, 1);
  assert.match(
    badSince.stderr,
    /invalid value for "since": failed to parse value as time or duration: "soon"/,
  );

  const noArg = await flokaLogs(t.dir, []);
  assert.equal(noArg.code, 125);
  assert.match(noArg.stderr, /"floka logs" requires exactly 1 argument\./);

  const help = await flokaLogs(t.dir, ["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: {2}floka logs \[OPTIONS\] CONTAINER\n/);
  for (
    const flag of [
      "-f, --follow",
      "--since string",
      "-n, --tail string",
      "-t, --timestamps",
      "--until string",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), flag);
  }
});

Deno.test("floka logs -f: follows a running container and ends when its process does", async () => {
  using t = tempDir();
  const { store, dir } = makeContainer(t.dir);
  // A stand-in for the container's process: what makes it "running" is the state and a live PID.
  const proc = new Deno.Command("sleep", { args: ["30"], stdout: "null", stderr: "null" }).spawn();
  try {
    const pidStartTime = processStartTime(proc.pid)!;
    store.updateState(ID, (s) => ({ ...s, status: "running", pid: proc.pid, pidStartTime }));
    const w = new LogWriter(logPath(dir, ID));
    w.write("stdout", bytes("early\n"));
    const following = flokaLogs(t.dir, ["-f", "web"]);
    await delay(1500); // the follower has started (deno startup included)
    w.write("stderr", bytes("late\n"));
    w.write("stdout", bytes("later\n"));
    await delay(300);
    proc.kill("SIGKILL");
    await proc.status;
    w.close();
    const result = await following;
    assert.deepEqual(result, { code: 0, stdout: "early\nlater\n", stderr: "late\n" });
  } finally {
    try {
      proc.kill("SIGKILL");
    } catch { /* already gone */ }
    await proc.status;
  }
});
