/**
 * The cgroup v2 device filter, enforced by the kernel: a cgroup in the unified hierarchy
 * gets the eBPF program for Docker's default policy (ALLOWED_DEVICES), and a shell that
 * joins it may use /dev/null and /dev/zero but not a host device that root opens fine
 * outside. On a hybrid host the process stays in the root of the v1 devices hierarchy
 * (which allows everything), so a refusal here comes from the eBPF program alone.
 * Devices are only ever opened read-only; nothing is written to one.
 */
import assert from "node:assert/strict";
import { BPF_PROG_TYPE_CGROUP_DEVICE, BpfVerifierError, loadProgram } from "../../ffi/bpf.ts";
import { ALLOWED_DEVICES } from "../../src/runtime/cgroups.ts";
import { applyDeviceFilter } from "../../src/runtime/device_filter.ts";
import { CGROUP_ROOT, integrationTest, type Result, show, waitUntil } from "./helpers.ts";

/** The unified (v2) hierarchy: the whole tree on a v2 host, `unified/` on a hybrid one. */
function unifiedRoot(): string {
  for (const root of [CGROUP_ROOT, `${CGROUP_ROOT}/unified`]) {
    try {
      Deno.statSync(`${root}/cgroup.controllers`);
      return root;
    } catch { /* not this one */ }
  }
  throw new Error("no cgroup v2 hierarchy mounted");
}

const decoder = new TextDecoder();

async function sh(script: string): Promise<Result> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stdin: "null" }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/**
 * Runs `script` in a new v2 cgroup whose device policy is `rules`: the shell moves itself
 * in, then execs the script, so every open the script makes is checked. The cgroup is
 * removed afterwards.
 */
async function inCgroup(rules: readonly string[], script: string): Promise<Result> {
  const cgroup = `${unifiedRoot()}/floka-devtest-${crypto.randomUUID().slice(0, 8)}`;
  Deno.mkdirSync(cgroup);
  try {
    applyDeviceFilter(cgroup, rules);
    const quoted = `'${script.replaceAll("'", `'\\''`)}'`;
    return await sh(`echo $$ > ${cgroup}/cgroup.procs && exec sh -c ${quoted}`);
  } finally {
    // The shell has exited; the cgroup may read as busy for a moment after.
    await waitUntil(`${cgroup} to be removable`, () => {
      try {
        Deno.removeSync(cgroup);
        return true;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return true;
        return false;
      }
    }, 5_000);
  }
}

/** A host device root can open read-only outside any filter, and that the policy denies. */
async function hostDevice(): Promise<string> {
  for (const dev of ["/dev/kmsg", "/dev/loop0", "/dev/mem"]) {
    if ((await sh(`: < ${dev}`)).code === 0) return dev;
  }
  throw new Error("no host device to try: none of /dev/kmsg, /dev/loop0, /dev/mem opens here");
}

integrationTest(
  "device filter: the default policy on cgroup v2 allows /dev/null and /dev/zero, denies a host device",
  async () => {
    const dev = await hostDevice(); // opens outside the cgroup: a refusal below is the filter's
    const r = await inCgroup(
      ALLOWED_DEVICES,
      [
        `grep '^0::' /proc/self/cgroup`,
        `head -c1 /dev/null; echo "null $?"`,
        `echo "zero $(head -c1 /dev/zero | wc -c)"`,
        `(: < ${dev}); echo "host $?"`,
      ].join("\n"),
    );
    const out = r.stdout.split("\n");
    assert.match(out[0], /^0::\/floka-devtest-/, `the shell is in the test cgroup: ${show(r)}`);
    assert.equal(out[1], "null 0", show(r));
    assert.equal(out[2], "zero 1", show(r));
    assert.notEqual(out[3], "host 0", `${dev} must not open inside: ${show(r)}`);
    assert.match(out[3], /^host \d+$/, show(r));
    assert.match(r.stderr, /Operation not permitted/, show(r));
  },
);

integrationTest("device filter: mknod is allowed by `m`, the node made cannot be opened", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "floka-devtest-" });
  try {
    // Outside: root makes and opens such a node.
    const outside = await sh(`mknod ${dir}/out b 7 0 && : < ${dir}/out`);
    assert.equal(outside.code, 0, show(outside));
    const r = await inCgroup(
      ALLOWED_DEVICES,
      [
        `mknod ${dir}/loop b 7 0; echo "mknod $?"`,
        `(: < ${dir}/loop); echo "open $?"`,
        `mknod ${dir}/null c 1 3 && head -c1 ${dir}/null; echo "null $?"`,
      ].join("\n"),
    );
    const [made, opened, nulled] = r.stdout.split("\n");
    assert.equal(made, "mknod 0", show(r));
    assert.notEqual(opened, "open 0", `the block node must not open inside: ${show(r)}`);
    assert.match(opened, /^open \d+$/, show(r));
    assert.equal(nulled, "null 0", show(r));
    assert.match(r.stderr, /Operation not permitted/, show(r));
    // Without an `m` rule for block devices, making the node is refused too.
    const strict = await inCgroup(["c 1:3 rwm"], `mknod ${dir}/loop2 b 7 0`);
    assert.notEqual(strict.code, 0, show(strict));
    assert.match(strict.stderr, /Operation not permitted/, show(strict));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

integrationTest("device filter: a program the verifier refuses is an error that quotes the verifier", () => {
  const exitOnly = new Uint8Array([0x95, 0, 0, 0, 0, 0, 0, 0]); // exit with r0 never set
  assert.throws(
    () => loadProgram(BPF_PROG_TYPE_CGROUP_DEVICE, exitOnly),
    (err: unknown) => {
      assert.ok(err instanceof BpfVerifierError, String(err));
      assert.match(err.message, /BPF_PROG_LOAD.*\n[\s\S]*R0 !read_ok/);
      return true;
    },
  );
  return Promise.resolve();
});
