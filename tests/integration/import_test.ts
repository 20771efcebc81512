/** `floka import`: an image from a root filesystem tarball, as `docker import`. */
import assert from "node:assert/strict";
import { integrationTest, lines, show, withStore } from "./helpers.ts";

for (const gzip of [false, true]) {
  integrationTest(
    `import: a ${gzip ? "gzip" : "plain"} rootfs tarball becomes an image that runs`,
    async () => {
      await withStore(async (s) => {
        const tarball = `${s.root}/rootfs.tar${gzip ? ".gz" : ""}`;
        const tar = await new Deno.Command("tar", {
          args: [gzip ? "-czf" : "-cf", tarball, "-C", `${s.imageDir()}/rootfs`, "."],
        }).output();
        assert.ok(tar.success);
        const imported = await s.floka(["import", tarball, "imported:1"]);
        assert.equal(imported.code, 0, show(imported));
        const id = imported.stdout.trim();
        assert.match(id, /^sha256:[0-9a-f]{64}$/);
        const images = await s.floka(["images"]);
        assert.match(images.stdout, new RegExp(`imported\\s+1\\s+${id.slice(7, 19)}`));
        const run = await s.run(["--rm", "imported:1", "sh", "-c", "echo $$; cat /etc/passwd | head -1"]);
        assert.equal(run.code, 0, show(run));
        assert.deepEqual(lines(run.stdout), ["1", "root:x:0:0:root:/root:/bin/sh"]);
        const missing = await s.floka(["import", `${s.root}/nothing.tar`, "x:1"]);
        assert.equal(missing.code, 125, show(missing));
      });
    },
  );
}

integrationTest(
  "import: without a name the image is untagged, runs by its ID, and rmi by ID removes it",
  async () => {
    await withStore(async (s) => {
      const tarball = `${s.root}/rootfs.tar`;
      const tar = await new Deno.Command("tar", {
        args: ["-cf", tarball, "-C", `${s.imageDir()}/rootfs`, "."],
      })
        .output();
      assert.ok(tar.success);
      const imported = await s.floka(["import", tarball]);
      assert.equal(imported.code, 0, show(imported));
      const id = imported.stdout.trim();
      assert.match(id, /^sha256:[0-9a-f]{64}$/);
      const short = id.slice(7, 19);
      const images = await s.floka(["images"]);
      assert.match(images.stdout, new RegExp(`<none>\\s+<none>\\s+${short}`), show(images));
      const run = await s.run(["--rm", short, "sh", "-c", "echo ran"]);
      assert.equal(run.code, 0, show(run));
      assert.deepEqual(lines(run.stdout), ["ran"]);
      const rmi = await s.floka(["rmi", short]);
      assert.equal(rmi.code, 0, show(rmi));
      assert.doesNotMatch((await s.floka(["images"])).stdout, new RegExp(short));
      assert.deepEqual([...Deno.readDirSync(`${s.root}/images/blobs/sha256`)], []);
      assert.deepEqual([...Deno.readDirSync(`${s.root}/images/layers/sha256`)], []);
    });
  },
);
