/**
 * The single binary: `deno compile` of main.ts must give one executable that runs
 * containers, re-executing itself for `containerize`. `deno compile` needs its runtime
 * (denort), which it downloads, or DENORT_BIN; without DENORT_BIN (these machines have no
 * internet) the test is skipped and says why.
 */
import assert from "node:assert/strict";
import { makeBusyboxImage } from "../fixtures/busybox_image.ts";
import { IS_ROOT, lines } from "./helpers.ts";

const DENORT_BIN = Deno.env.get("DENORT_BIN");
const REPO = new URL("../..", import.meta.url).pathname;
const reason = !DENORT_BIN
  ? "compile test skipped: set DENORT_BIN to a denort binary (deno compile cannot download it offline)"
  : !IS_ROOT
  ? "compile test skipped: it runs a container, which needs root"
  : null;
if (reason) console.error(reason);

async function exec(
  program: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(program, { args, cwd: REPO, stdout: "piped", stderr: "piped" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "compile: the binary runs a container as PID 1, re-executing itself for containerize",
  ignore: reason !== null,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "floka-compile-" });
    try {
      // The README's command; it writes ./floka, which the test moves out of the tree.
      const built = await exec(Deno.execPath(), ["task", "compile"]);
      assert.equal(built.code, 0, built.stderr);
      const bin = `${dir}/floka`;
      await Deno.rename(`${REPO}/floka`, bin);
      makeBusyboxImage(`${dir}/images/busybox:latest`);
      const version = await exec(bin, ["--version"]);
      assert.match(version.stdout, /^Floka version /);
      const run = await exec(bin, ["--root", dir, "run", "--rm", "busybox", "sh", "-c", "echo $$; hostname"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(lines(run.stdout)[0], "1");
      // Nothing of Floka is inside: the container's PID 1 is busybox, not the binary.
      const exe = await exec(bin, ["--root", dir, "run", "--rm", "busybox", "readlink", "/proc/1/exe"]);
      assert.equal(exe.stdout.trim(), "/bin/busybox");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
