import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { type ContainerRecord, ContainerStore } from "../../src/containers/store.ts";
import { ensureStoreDirs, storeRoot } from "../../src/store/root.ts";

function tempStore(): { store: ContainerStore; root: string; [Symbol.dispose](): void } {
  const root = Deno.makeTempDirSync({ prefix: "floka-store-" });
  const sr = storeRoot(root);
  ensureStoreDirs(sr);
  return {
    store: new ContainerStore(sr),
    root,
    [Symbol.dispose]: () => Deno.removeSync(root, { recursive: true }),
  };
}

let seq = 0;
function record(name: string, id?: string, created?: string): ContainerRecord {
  seq++;
  return {
    id: id ?? crypto.randomUUID().replaceAll("-", "").padEnd(64, "0"),
    name,
    created: created ?? new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
    image: "busybox:latest",
    lowerDirs: ["/x/images/busybox:latest/rootfs"],
    path: "sh",
    args: ["-c", "true"],
    config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
    hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
  };
}

const noop = () => {};

Deno.test("create makes the container directory with its record and a created state", () => {
  using t = tempStore();
  const r = record("web");
  let prepared = "";
  const c = t.store.create(r, (dir) => {
    prepared = dir;
    Deno.writeTextFileSync(`${dir}/hosts`, "x");
  });
  assert.equal(c.dir, `${t.root}/containers/${r.id}`);
  assert.equal(prepared, c.dir);
  assert.deepEqual(c.record, r);
  assert.deepEqual(c.state, { status: "created", pid: 0 });
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(`${c.dir}/config.json`)), r);
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(`${c.dir}/state.json`)), { status: "created", pid: 0 });
  assert.equal(Deno.readTextFileSync(`${c.dir}/hosts`), "x");
});

Deno.test("list returns every container, newest first", () => {
  using t = tempStore();
  const a = record("a", undefined, "2026-01-01T00:00:01.000Z");
  const b = record("b", undefined, "2026-01-01T00:00:03.000Z");
  const c = record("c", undefined, "2026-01-01T00:00:02.000Z");
  for (const r of [a, b, c]) t.store.create(r, noop);
  assert.deepEqual(t.store.list().map((x) => x.record.name), ["b", "c", "a"]);
});

Deno.test("list of an empty store, and of a store whose containers dir is missing, is empty", () => {
  using t = tempStore();
  assert.deepEqual(t.store.list(), []);
  const missing = new ContainerStore(storeRoot(`${t.root}/nowhere`));
  assert.deepEqual(missing.list(), []);
});

Deno.test("list ignores a directory without config.json (an unfinished create) and non-container entries", () => {
  using t = tempStore();
  t.store.create(record("done"), noop);
  const half = `${t.root}/containers/${"e".repeat(64)}`;
  Deno.mkdirSync(half);
  Deno.writeTextFileSync(`${half}/state.json`, JSON.stringify({ status: "created", pid: 0 }));
  Deno.mkdirSync(`${t.root}/containers/not-a-container`);
  Deno.writeTextFileSync(`${t.root}/containers/${"d".repeat(64)}`, "a file, not a dir");
  assert.deepEqual(t.store.list().map((c) => c.record.name), ["done"]);
  assert.throws(() => t.store.find("e".repeat(64)), /No such container/);
});

Deno.test("find by full ID, by name, by /name and by unique ID prefix", () => {
  using t = tempStore();
  const r = record("web", "abcdef" + "0".repeat(58));
  t.store.create(r, noop);
  t.store.create(record("db", "123456" + "0".repeat(58)), noop);
  assert.equal(t.store.find(r.id).record.name, "web");
  assert.equal(t.store.find("web").record.id, r.id);
  assert.equal(t.store.find("/web").record.id, r.id);
  assert.equal(t.store.find("abc").record.id, r.id);
  assert.equal(t.store.find("abcdef000000").record.id, r.id);
  assert.equal(t.store.find("db").record.id, "123456" + "0".repeat(58));
});

Deno.test("find: an exact name wins over an ID prefix", () => {
  using t = tempStore();
  const named = record("abc", "ffff" + "0".repeat(60));
  t.store.create(named, noop);
  t.store.create(record("other", "abc" + "1".repeat(61)), noop);
  assert.equal(t.store.find("abc").record.id, named.id);
});

Deno.test("find: an ambiguous prefix is an error, a longer one is not", () => {
  using t = tempStore();
  t.store.create(record("one", "ab1" + "0".repeat(61)), noop);
  t.store.create(record("two", "ab2" + "0".repeat(61)), noop);
  assert.throws(
    () => t.store.find("ab"),
    (err) =>
      err instanceof FlokaError && err.message === 'multiple containers match "ab": use more of the ID',
  );
  assert.equal(t.store.find("ab2").record.name, "two");
});

Deno.test("find: an unknown reference is Docker's 'No such container'", () => {
  using t = tempStore();
  t.store.create(record("web"), noop);
  for (const ref of ["nope", "0000000", "WEB"]) {
    assert.throws(
      () => t.store.find(ref),
      (err) => err instanceof FlokaError && err.message === `No such container: ${ref}`,
      ref,
    );
  }
});

Deno.test("create refuses a name already in use and leaves the first container intact", () => {
  using t = tempStore();
  const first = record("web");
  t.store.create(first, noop);
  const second = record("web");
  let prepared = false;
  assert.throws(
    () => t.store.create(second, () => prepared = true),
    (err) =>
      err instanceof FlokaError &&
      err.message.startsWith(`the container name "/web" is already in use by container "${first.id}"`),
  );
  assert.equal(prepared, false);
  assert.deepEqual(t.store.list().map((c) => c.record.id), [first.id]);
  assert.equal(t.store.find("web").record.id, first.id);
  assert.equal(t.store.nameInUse("web"), true);
  assert.equal(t.store.nameInUse("other"), false);
});

Deno.test("create: when prepare fails the directory is removed and the name stays free", () => {
  using t = tempStore();
  const r = record("web");
  assert.throws(
    () =>
      t.store.create(r, (dir) => {
        Deno.writeTextFileSync(`${dir}/partial`, "x");
        throw new Error("prepare failed");
      }),
    /prepare failed/,
  );
  assert.throws(() => Deno.statSync(`${t.root}/containers/${r.id}`), Deno.errors.NotFound);
  assert.equal(t.store.nameInUse("web"), false);
  t.store.create(record("web"), noop);
  assert.equal(t.store.list().length, 1);
});

Deno.test("updateState replaces the state from the current one; false for a missing container", () => {
  using t = tempStore();
  const r = record("web");
  t.store.create(r, noop);
  const ok = t.store.updateState(r.id, (cur) => {
    assert.equal(cur.status, "created");
    return { ...cur, status: "running", pid: 1234, pidStartTime: 99, startedAt: "2026-01-01T00:00:00.000Z" };
  });
  assert.equal(ok, true);
  assert.deepEqual(t.store.find("web").state, {
    status: "running",
    pid: 1234,
    pidStartTime: 99,
    startedAt: "2026-01-01T00:00:00.000Z",
  });
  t.store.updateState(r.id, (cur) => ({ ...cur, status: "exited", pid: 0, exitCode: 3 }));
  assert.equal(t.store.find(r.id).state.exitCode, 3);
  assert.equal(t.store.updateState("f".repeat(64), (s) => s), false);
});

Deno.test("remove deletes the container, frees its name and leaves no .removing- directory", () => {
  using t = tempStore();
  const r = record("web");
  const c = t.store.create(r, (dir) => Deno.mkdirSync(`${dir}/upper/deep`, { recursive: true }));
  t.store.remove(r.id);
  assert.throws(() => Deno.statSync(c.dir), Deno.errors.NotFound);
  assert.deepEqual(t.store.list(), []);
  assert.throws(() => t.store.find("web"), /No such container: web/);
  const left = [...Deno.readDirSync(`${t.root}/containers`)].map((e) => e.name);
  assert.ok(!left.some((n) => n.startsWith(".removing-")), left.join(","));
  assert.equal(t.store.nameInUse("web"), false);
  // The name can be used again.
  const again = record("web");
  t.store.create(again, noop);
  assert.equal(t.store.find("web").record.id, again.id);
});

Deno.test("remove of an unknown ID is not an error and leaves other containers alone", () => {
  using t = tempStore();
  const keep = record("keep");
  t.store.create(keep, noop);
  t.store.remove("0".repeat(64));
  assert.deepEqual(t.store.list().map((c) => c.record.id), [keep.id]);
});

Deno.test("remove finishes a removal a killed Floka left halfway", () => {
  using t = tempStore();
  const stale = `${t.root}/containers/.removing-${"9".repeat(64)}`;
  Deno.mkdirSync(`${stale}/upper`, { recursive: true });
  const r = record("web");
  t.store.create(r, noop);
  t.store.remove(r.id);
  assert.throws(() => Deno.statSync(stale), Deno.errors.NotFound);
});
