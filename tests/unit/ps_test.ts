import assert from "node:assert/strict";
import { psRows, statusText } from "../../src/cli/ps.ts";
import type { Container, ContainerRecord, ContainerState } from "../../src/containers/store.ts";

const NOW = Date.parse("2026-03-01T12:00:00.000Z");
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const ID = "0123456789abcdef".repeat(4);

function container(state: ContainerState, record: Partial<ContainerRecord> = {}): Container {
  return {
    dir: `/store/containers/${ID}`,
    state,
    record: {
      id: ID,
      name: "happy_turing",
      created: ago(5 * 60_000),
      image: "busybox:latest",
      lowerDirs: [],
      path: "sh",
      args: ["-c", "echo hello world; sleep 1"],
      config: { hostname: "h", env: [], workingDir: "/", user: "", entrypoint: null, cmd: null },
      hostConfig: { autoRemove: false, networkMode: "none", memory: 0, cpuShares: 0 },
      ...record,
    },
  };
}

Deno.test("statusText: running containers are 'Up <duration>' since they started", () => {
  const c = container({ status: "running", pid: 10, startedAt: ago(3000) });
  assert.equal(statusText(c, NOW), "Up 3 seconds");
  assert.equal(
    statusText(container({ status: "running", pid: 10, startedAt: ago(2 * 3600_000) }), NOW),
    "Up 2 hours",
  );
});

Deno.test("statusText: exited containers show their exit code and how long ago", () => {
  const c = container({ status: "exited", pid: 0, exitCode: 0, finishedAt: ago(2 * 60_000) });
  assert.equal(statusText(c, NOW), "Exited (0) 2 minutes ago");
  const killed = container({ status: "exited", pid: 0, exitCode: 137, finishedAt: ago(3 * 86_400_000) });
  assert.equal(statusText(killed, NOW), "Exited (137) 3 days ago");
});

Deno.test("statusText: a container that never started is 'Created'", () => {
  assert.equal(statusText(container({ status: "created", pid: 0 }), NOW), "Created");
});

Deno.test("psRows: short ID, image, quoted truncated command, created, status, name", () => {
  const rows = psRows(
    [container({ status: "exited", pid: 0, exitCode: 0, finishedAt: ago(60_000) })],
    NOW,
    false,
  );
  assert.deepEqual(rows, [[
    "0123456789ab",
    "busybox:latest",
    '"sh -c echo hello wo…"',
    "5 minutes ago",
    "Exited (0) About a minute ago",
    "happy_turing",
  ]]);
});

Deno.test("psRows: the command is cut to 20 characters including the ellipsis, as Docker does", () => {
  const row = psRows([container({ status: "created", pid: 0 })], NOW, false)[0];
  const shown = JSON.parse(row[2]) as string;
  assert.equal([...shown].length, 20);
  assert.ok(shown.endsWith("…"));
  assert.equal(shown.slice(0, 19), "sh -c echo hello world; sleep 1".slice(0, 19));
});

Deno.test("psRows: a command of 20 characters or less is shown whole", () => {
  const twenty = container({ status: "created", pid: 0 }, { path: "/bin/echo", args: ["0123456789"] });
  assert.equal("/bin/echo 0123456789".length, 20);
  assert.equal(psRows([twenty], NOW, false)[0][2], '"/bin/echo 0123456789"');
  const short = container({ status: "created", pid: 0 }, { path: "sh", args: [] });
  assert.equal(psRows([short], NOW, false)[0][2], '"sh"');
});

Deno.test("psRows: quotes inside the command are escaped (the column is a quoted string)", () => {
  const c = container({ status: "created", pid: 0 }, { path: "echo", args: ['"hi"'] });
  assert.equal(psRows([c], NOW, false)[0][2], '"echo \\"hi\\""');
});

Deno.test("psRows with --no-trunc: full ID and full command", () => {
  const row = psRows([container({ status: "created", pid: 0 })], NOW, true)[0];
  assert.equal(row[0], ID);
  assert.equal(row[2], JSON.stringify("sh -c echo hello world; sleep 1"));
});

Deno.test("psRows keeps the order of the containers given", () => {
  const a = container({ status: "created", pid: 0 }, { id: "a".repeat(64), name: "a" });
  const b = container({ status: "created", pid: 0 }, { id: "b".repeat(64), name: "b" });
  assert.deepEqual(psRows([b, a], NOW, false).map((r) => r[5]), ["b", "a"]);
  assert.deepEqual(psRows([], NOW, false), []);
});
