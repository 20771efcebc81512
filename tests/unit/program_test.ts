import assert from "node:assert/strict";
import { main } from "../../src/cli/program.ts";
import { type ContainerRecord, ContainerStore } from "../../src/containers/store.ts";
import { ensureStoreDirs, storeRoot } from "../../src/store/root.ts";

const MAIN_TS = new URL("../../main.ts", import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `floka ARGS` in a fresh process to see its output. */
async function floka(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", MAIN_TS, ...args],
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "floka-cli-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Silences console output of in-process main() calls. */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const { log, error } = console;
  console.log = () => {};
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("main(['--version']) and main(['-v']) return 0", async () => {
  assert.equal(await quietly(() => main(["--version"])), 0);
  assert.equal(await quietly(() => main(["-v"])), 0);
});

Deno.test("main(['--help']) and a command's --help return 0", async () => {
  assert.equal(await quietly(() => main(["--help"])), 0);
  assert.equal(await quietly(() => main(["ps", "--help"])), 0);
});

Deno.test("an unknown command returns 125", async () => {
  assert.equal(await quietly(() => main(["frobnicate"])), 125);
});

Deno.test("an unknown flag, global or on a command, returns 125", async () => {
  assert.equal(await quietly(() => main(["--bogus"])), 125);
  assert.equal(await quietly(() => main(["ps", "--bogus"])), 125);
  assert.equal(await quietly(() => main(["images", "-z"])), 125);
});

Deno.test("a missing option value, a bad --log-level and extra arguments return 125", async () => {
  await withRoot(async (root) => {
    assert.equal(await quietly(() => main(["--root"])), 125);
    assert.equal(await quietly(() => main(["--root", root, "--log-level", "loud", "ps"])), 125);
    assert.equal(await quietly(() => main(["--root", root, "ps", "extra"])), 125);
  });
});

Deno.test("main(['--root', tmp, 'ps', '-a']) returns 0 on an empty store and creates the store dirs", async () => {
  await withRoot(async (root) => {
    assert.equal(await quietly(() => main(["--root", root, "ps", "-a"])), 0);
    assert.ok(Deno.statSync(`${root}/containers`).isDirectory);
    assert.ok(Deno.statSync(`${root}/images`).isDirectory);
  });
});

Deno.test("main(['--root', tmp, 'images']) returns 0", async () => {
  await withRoot(async (root) => {
    Deno.mkdirSync(`${root}/images/busybox:latest/rootfs`, { recursive: true });
    assert.equal(await quietly(() => main(["--root", root, "images"])), 0);
  });
});

Deno.test("floka --version prints the version on stdout", async () => {
  const r = await floka(["--version"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Floka version \d+\.\d+\.\d+\n$/);
});

Deno.test("floka with an unknown command: one error line naming it, a help hint, exit 125", async () => {
  const r = await floka(["frobnicate"]);
  assert.equal(r.code, 125);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0], /^floka: .*frobnicate/);
  assert.match(lines[1], /--help/);
});

Deno.test("floka ps with a bad flag points at 'floka ps --help'", async () => {
  const r = await floka(["ps", "--bogus"]);
  assert.equal(r.code, 125);
  assert.match(r.stderr, /^floka: .*--bogus/);
  assert.match(r.stderr, /floka ps --help/);
});

Deno.test("floka --log-level with a bad value fails with one message and no stack trace", async () => {
  await withRoot(async (root) => {
    const r = await floka(["--root", root, "--log-level", "loud", "ps"]);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^floka: .*loud/);
    assert.ok(!/\n\s+at /.test(r.stderr), r.stderr);
  });
});

Deno.test("floka ps -a on an empty store prints only Docker's header", async () => {
  await withRoot(async (root) => {
    const r = await floka(["--root", root, "ps", "-a"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "CONTAINER ID   IMAGE   COMMAND   CREATED   STATUS   NAMES\n");
  });
});

function record(name: string, id: string): ContainerRecord {
  return {
    id,
    name,
    created: new Date(Date.now() - 3 * 86_400_000).toISOString(),
    image: "busybox:latest",
    lowerDirs: [],
    path: "sh",
    args: ["-c", "echo hello world; sleep 1"],
    config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
    hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
  };
}

Deno.test("floka ps lists running containers; -a adds the others; -q prints short IDs", async () => {
  await withRoot(async (root) => {
    const sr = storeRoot(root);
    ensureStoreDirs(sr);
    const store = new ContainerStore(sr);
    const createdId = "c".repeat(64);
    store.create(record("never_started", createdId), () => {});
    const r = await floka(["--root", root, "ps"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trimEnd().split("\n").length, 1, "only the header: nothing is running");
    const all = await floka(["--root", root, "ps", "-a"]);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2);
    const row = lines[1];
    assert.ok(row.startsWith("cccccccccccc "), row);
    assert.ok(row.includes("busybox:latest"));
    assert.ok(row.includes('"sh -c echo hello wo…"'), row);
    assert.ok(row.includes("3 days ago"), row);
    assert.ok(row.includes("Created"), row);
    assert.ok(row.endsWith("never_started"), row);
    // Columns line up under the header.
    assert.equal(row.indexOf("busybox:latest"), lines[0].indexOf("IMAGE"));
    const quiet = await floka(["--root", root, "ps", "-a", "-q"]);
    assert.equal(quiet.stdout, "cccccccccccc\n");
    const full = await floka(["--root", root, "ps", "-a", "-q", "--no-trunc"]);
    assert.equal(full.stdout, `${createdId}\n`);
  });
});

Deno.test("floka ps: a 'running' container whose process is gone is shown as exited", async () => {
  await withRoot(async (root) => {
    const sr = storeRoot(root);
    ensureStoreDirs(sr);
    const store = new ContainerStore(sr);
    const id = "d".repeat(64);
    store.create(record("orphan", id), () => {});
    store.updateState(id, () => ({
      status: "running",
      pid: 99_999_999,
      pidStartTime: 1,
      startedAt: new Date(Date.now() - 60_000).toISOString(),
    }));
    const running = await floka(["--root", root, "ps"]);
    assert.equal(running.stdout.trimEnd().split("\n").length, 1, running.stdout);
    const all = await floka(["--root", root, "ps", "-a"]);
    assert.match(all.stdout, /Exited \(255\)/);
    assert.equal(store.find(id).state.status, "exited");
  });
});

Deno.test("floka images lists an image directory images/busybox:latest/rootfs", async () => {
  await withRoot(async (root) => {
    const rootfs = `${root}/images/busybox:latest/rootfs`;
    Deno.mkdirSync(`${rootfs}/bin`, { recursive: true });
    Deno.writeFileSync(`${rootfs}/bin/busybox`, new Uint8Array(1500));
    Deno.writeFileSync(`${rootfs}/bin/other`, new Uint8Array(500));
    const threeDaysAgo = new Date(Date.now() - 3 * 86_400_000);
    Deno.utimeSync(rootfs, threeDaysAgo, threeDaysAgo);
    Deno.mkdirSync(`${root}/images/not-an-image`); // no tag, no rootfs: ignored
    const r = await floka(["--root", root, "images"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    assert.equal(lines.length, 2, r.stdout);
    const cols = lines[1].split(/ {3,}/);
    assert.equal(cols[0], "busybox");
    assert.equal(cols[1], "latest");
    assert.match(cols[2], /^[0-9a-f]{12}$/);
    assert.equal(cols[3], "3 days ago");
    assert.equal(cols[4], "2kB");
    const quiet = await floka(["--root", root, "images", "-q"]);
    assert.equal(quiet.stdout, `${cols[2]}\n`);
    const full = await floka(["--root", root, "images", "-q", "--no-trunc"]);
    assert.match(full.stdout, new RegExp(`^sha256:${cols[2]}[0-9a-f]{52}\n$`));
  });
});

Deno.test("FLOKA_ROOT names the store when --root is not given", async () => {
  await withRoot(async (root) => {
    Deno.mkdirSync(`${root}/images/alpine:3.19/rootfs`, { recursive: true });
    const r = await floka(["images"], { FLOKA_ROOT: root });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\nalpine\s+3\.19\s/);
  });
});

Deno.test("program: every command of the table loads, under its own name, with help", async () => {
  const { allCommands, findCommand } = await import("../../src/cli/program.ts");
  const commands = await allCommands();
  assert.ok(commands.length >= 30);
  for (const command of commands) {
    assert.equal((await findCommand(command.spec.name))?.spec.name, command.spec.name);
    assert.ok(command.spec.description, `${command.spec.name} has a description`);
  }
  assert.equal(await findCommand("nosuch"), null);
  assert.equal(await findCommand("toString"), null, "no inherited property counts as a command");
});
