import assert from "node:assert/strict";
import { readJsonIfExists, withLock, writeFileAtomic, writeJsonAtomic } from "../../src/store/files.ts";

function withTempDir(fn: (dir: string) => void | Promise<void>): () => Promise<void> {
  return async () => {
    const dir = Deno.makeTempDirSync({ prefix: "floka-files-" });
    try {
      await fn(dir);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  };
}

Deno.test(
  "writeFileAtomic writes the text and leaves no temp file behind",
  withTempDir((dir) => {
    writeFileAtomic(`${dir}/state.json`, "hello\n");
    assert.equal(Deno.readTextFileSync(`${dir}/state.json`), "hello\n");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["state.json"]);
  }),
);

Deno.test(
  "writeFileAtomic replaces an existing file whole",
  withTempDir((dir) => {
    Deno.writeTextFileSync(`${dir}/f`, "a much longer old content that must not survive\n");
    writeFileAtomic(`${dir}/f`, "new");
    assert.equal(Deno.readTextFileSync(`${dir}/f`), "new");
    writeFileAtomic(`${dir}/f`, "");
    assert.equal(Deno.readTextFileSync(`${dir}/f`), "");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["f"]);
  }),
);

Deno.test(
  "writeFileAtomic replaces by rename: a reader holding the old file still sees the old text",
  withTempDir((dir) => {
    writeFileAtomic(`${dir}/f`, "old");
    using old = Deno.openSync(`${dir}/f`);
    writeFileAtomic(`${dir}/f`, "new");
    const buf = new Uint8Array(16);
    const n = old.readSync(buf)!;
    assert.equal(new TextDecoder().decode(buf.subarray(0, n)), "old");
    assert.equal(Deno.readTextFileSync(`${dir}/f`), "new");
  }),
);

Deno.test(
  "writeFileAtomic writes large and non-ASCII text intact",
  withTempDir((dir) => {
    const text = "é☃".repeat(100_000);
    writeFileAtomic(`${dir}/big`, text);
    assert.equal(Deno.readTextFileSync(`${dir}/big`), text);
  }),
);

Deno.test(
  "writeFileAtomic into a missing directory throws and leaves nothing",
  withTempDir((dir) => {
    assert.throws(() => writeFileAtomic(`${dir}/missing/f`, "x"), Deno.errors.NotFound);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  }),
);

Deno.test(
  "writeFileAtomic onto a directory fails and cleans its temp file up",
  withTempDir((dir) => {
    Deno.mkdirSync(`${dir}/target`);
    Deno.writeTextFileSync(`${dir}/target/inside`, "keep");
    assert.throws(() => writeFileAtomic(`${dir}/target`, "x"));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["target"]);
    assert.equal(Deno.readTextFileSync(`${dir}/target/inside`), "keep");
  }),
);

Deno.test(
  "writeJsonAtomic + readJsonIfExists round trip",
  withTempDir((dir) => {
    const value = { status: "running", pid: 42, nested: { list: [1, "two", null] } };
    writeJsonAtomic(`${dir}/state.json`, value);
    assert.deepEqual(readJsonIfExists(`${dir}/state.json`), value);
    assert.ok(Deno.readTextFileSync(`${dir}/state.json`).endsWith("\n"));
  }),
);

Deno.test(
  "readJsonIfExists: null for a missing file, an error for a corrupt one",
  withTempDir((dir) => {
    assert.equal(readJsonIfExists(`${dir}/missing.json`), null);
    Deno.writeTextFileSync(`${dir}/bad.json`, "{not json");
    assert.throws(() => readJsonIfExists(`${dir}/bad.json`), SyntaxError);
  }),
);

Deno.test(
  "withLock runs fn, returns its value, creates the lock file",
  withTempDir((dir) => {
    let ran = 0;
    const result = withLock(`${dir}/.lock`, () => {
      ran++;
      return "value";
    });
    assert.equal(result, "value");
    assert.equal(ran, 1);
    assert.ok(Deno.statSync(`${dir}/.lock`).isFile);
  }),
);

Deno.test(
  "withLock passes fn's error through and releases the lock (a second withLock does not hang)",
  withTempDir((dir) => {
    assert.throws(() =>
      withLock(`${dir}/.lock`, () => {
        throw new Error("inside");
      }), /inside/);
    assert.equal(withLock(`${dir}/.lock`, () => 7), 7);
  }),
);

function flockAvailable(): boolean {
  try {
    return Deno.statSync("/usr/bin/flock").isFile;
  } catch {
    return false;
  }
}

Deno.test({
  name: "withLock holds an exclusive lock while fn runs, and only then",
  ignore: !flockAvailable(),
  fn: withTempDir((dir) => {
    const lock = `${dir}/.lock`;
    // flock(1) -n: exit 0 when it gets the lock at once, 1 when someone holds it.
    const tryLock = () => new Deno.Command("flock", { args: ["-n", lock, "true"] }).outputSync().code;
    const inside = withLock(lock, () => tryLock());
    assert.equal(inside, 1, "another process got the lock while fn ran");
    assert.equal(tryLock(), 0, "the lock was not released");
  }),
});
