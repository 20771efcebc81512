import assert from "node:assert/strict";
import { isAlive, processStartTime } from "../../src/containers/liveness.ts";
import type { ContainerState } from "../../src/containers/store.ts";

const NO_SUCH_PID = 99_999_999; // above any pid_max

Deno.test("processStartTime of this process is a positive integer, stable between calls", () => {
  const t = processStartTime(Deno.pid);
  assert.equal(typeof t, "number");
  assert.ok(Number.isInteger(t) && t! > 0, String(t));
  assert.equal(processStartTime(Deno.pid), t);
});

Deno.test("processStartTime of a missing process is null", () => {
  assert.equal(processStartTime(NO_SUCH_PID), null);
});

Deno.test("processStartTime of a process that exited and was reaped is null", async () => {
  const child = new Deno.Command("true").spawn();
  await child.status;
  assert.equal(processStartTime(child.pid), null);
});

Deno.test("processStartTime parses a command name holding ') ' (field 2 may contain anything)", async () => {
  const dir = Deno.makeTempDirSync();
  const prog = `${dir}/a) b c`;
  Deno.copyFileSync("/bin/sleep", prog);
  Deno.chmodSync(prog, 0o755);
  const child = new Deno.Command(prog, { args: ["30"], stdout: "null", stderr: "null" }).spawn();
  try {
    const mine = processStartTime(Deno.pid)!;
    const theirs = processStartTime(child.pid);
    assert.equal(typeof theirs, "number");
    // A later process has a later (or equal, within a tick) start time; a misparse picks
    // another field (e.g. itrealvalue, always 0).
    assert.ok(theirs! >= mine, `${theirs} < ${mine}`);
    const stat = Deno.readTextFileSync(`/proc/${child.pid}/stat`);
    assert.ok(stat.includes("(a) b c)"), stat);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    Deno.removeSync(dir, { recursive: true });
  }
});

function running(pid: number, pidStartTime: number | undefined): ContainerState {
  return { status: "running", pid, pidStartTime, startedAt: new Date().toISOString() };
}

Deno.test("isAlive: true for a running state naming this very process", () => {
  assert.equal(isAlive(running(Deno.pid, processStartTime(Deno.pid)!)), true);
});

Deno.test("isAlive: false when the start time does not match (the PID was reused)", () => {
  const start = processStartTime(Deno.pid)!;
  assert.equal(isAlive(running(Deno.pid, start + 1)), false);
  assert.equal(isAlive(running(Deno.pid, undefined)), false);
});

Deno.test("isAlive: false for a missing process and for states that are not running", () => {
  assert.equal(isAlive(running(NO_SUCH_PID, 1)), false);
  const start = processStartTime(Deno.pid)!;
  assert.equal(isAlive({ status: "exited", pid: Deno.pid, pidStartTime: start, exitCode: 0 }), false);
  assert.equal(isAlive({ status: "created", pid: 0 }), false);
  assert.equal(isAlive({ status: "running", pid: 0, pidStartTime: start }), false);
});

Deno.test("isAlive: false for a zombie (exited but not yet reaped)", async () => {
  // The backgrounded child outlives the shell's exec, then exits and stays a zombie of the
  // long sleep, which never waits for it (exiting earlier, the shell might reap it).
  const dir = Deno.makeTempDirSync();
  const child = new Deno.Command("sh", {
    args: ["-c", `sleep 0.3 & echo $! > ${dir}/pid; exec sleep 30`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    let zombie = 0;
    for (let i = 0; i < 500 && !zombie; i++) {
      try {
        const pid = Number(Deno.readTextFileSync(`${dir}/pid`).trim());
        const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
        if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) zombie = pid;
      } catch { /* not yet */ }
      if (!zombie) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(zombie > 0, "no zombie appeared");
    const start = processStartTime(zombie);
    assert.equal(typeof start, "number");
    assert.equal(isAlive(running(zombie, start!)), false);
  } finally {
    child.kill("SIGKILL");
    await child.status;
    Deno.removeSync(dir, { recursive: true });
  }
});
