/**
 * `floka run` as a user sees it: exit codes, environment, working directory, user, and the
 * image's Entrypoint/Cmd/Env/WorkingDir.
 */
import assert from "node:assert/strict";
import { makeBusyboxImage } from "../fixtures/busybox_image.ts";
import { integrationTest, lines, show, withStore } from "./helpers.ts";

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

integrationTest("run: prints the command's output and exits 0", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "sh", "-c", "echo hello from floka"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "hello from floka\n");
    assert.equal(r.stderr, "");
  });
});

integrationTest("run: passes on the command's exit code (42)", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "sh", "-c", "exit 42"]);
    assert.equal(r.code, 42, show(r));
  });
});

integrationTest("run: a missing command exits 127 with a one-line message", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "no-such-command-here"]);
    assert.equal(r.code, 127, show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /no-such-command-here/);
    const abs = await s.run(["--rm", "busybox", "/bin/no-such-command"]);
    assert.equal(abs.code, 127, show(abs));
    assert.equal(lines(abs.stderr).length, 1, show(abs));
  });
});

integrationTest("run: a file that is not executable exits 126 with a one-line message", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "/etc/passwd"]);
    assert.equal(r.code, 126, show(r));
    assert.equal(lines(r.stderr).length, 1, show(r));
    assert.match(r.stderr, /\/etc\/passwd/);
  });
});

integrationTest("run: -e, -e KEY from the host, --env-file, default PATH and HOME", async () => {
  await withStore(async (s) => {
    const envFile = `${s.root}/vars.env`;
    Deno.writeTextFileSync(envFile, "# a comment\n\nFROM_FILE=file value\nOVERRIDDEN=from file\n");
    const r = await s.run(
      [
        "--rm",
        "-e",
        "A=1",
        "-e",
        "HOSTVAR",
        "-e",
        "FLOKA_IT_NOT_ON_HOST",
        "--env-file",
        envFile,
        "-e",
        "OVERRIDDEN=from flag",
        "busybox",
        "env",
      ],
      { env: { HOSTVAR: "value from the host" } },
    );
    assert.equal(r.code, 0, show(r));
    const env = new Set(lines(r.stdout));
    assert.ok(env.has("A=1"), r.stdout);
    assert.ok(env.has("HOSTVAR=value from the host"), r.stdout);
    assert.ok(env.has("FROM_FILE=file value"), r.stdout);
    assert.ok(env.has("OVERRIDDEN=from flag"), r.stdout);
    assert.ok(!r.stdout.includes("OVERRIDDEN=from file"), r.stdout);
    assert.ok(!r.stdout.includes("FLOKA_IT_NOT_ON_HOST"), "a -e KEY the host lacks is dropped");
    assert.ok(!r.stdout.includes("a comment"), r.stdout);
    assert.ok(env.has(`PATH=${DEFAULT_PATH}`), r.stdout);
    assert.ok(env.has("HOME=/root"), r.stdout);
  });
});

integrationTest("run: the default PATH when the image sets no Env", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "env"]);
    assert.equal(r.code, 0, show(r));
    assert.ok(lines(r.stdout).includes(`PATH=${DEFAULT_PATH}`), r.stdout);
  }, { config: { Cmd: ["sh"] } });
});

integrationTest("run: the image's Env, overridden by -e", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "env"]);
    assert.equal(r.code, 0, show(r));
    const env = lines(r.stdout);
    assert.ok(env.includes("PATH=/bin:/usr/bin"), r.stdout);
    assert.ok(env.includes("IMAGE_VAR=from image"), r.stdout);
    assert.ok(env.includes("OTHER=kept"), r.stdout);
    const over = await s.run(["--rm", "-e", "IMAGE_VAR=from flag", "busybox", "env"]);
    assert.equal(over.code, 0, show(over));
    assert.ok(lines(over.stdout).includes("IMAGE_VAR=from flag"), over.stdout);
    assert.ok(!over.stdout.includes("IMAGE_VAR=from image"), over.stdout);
  }, { config: { Env: ["PATH=/bin:/usr/bin", "IMAGE_VAR=from image", "OTHER=kept"], Cmd: ["sh"] } });
});

integrationTest("run: -w sets the working directory and creates it when missing", async () => {
  await withStore(async (s) => {
    const r = await s.run([
      "--rm",
      "-w",
      "/some/new/dir",
      "busybox",
      "sh",
      "-c",
      "pwd; test -d /some/new/dir",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "/some/new/dir\n");
    const existing = await s.run(["--rm", "--workdir", "/etc", "busybox", "pwd"]);
    assert.equal(existing.code, 0, show(existing));
    assert.equal(existing.stdout, "/etc\n");
    const fallback = await s.run(["--rm", "busybox", "pwd"]);
    assert.equal(fallback.stdout, "/\n", "without -w and WorkingDir the command runs in /");
  });
});

integrationTest("run: the image's WorkingDir, overridden by -w", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "busybox", "pwd"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "/srv/app\n");
    const over = await s.run(["--rm", "-w", "/tmp", "busybox", "pwd"]);
    assert.equal(over.stdout, "/tmp\n");
  }, { config: { Env: ["PATH=/bin:/usr/bin"], Cmd: ["sh"], WorkingDir: "/srv/app" } });
});

integrationTest("run: -u by UID, by name, and UID:GID", async () => {
  await withStore(async (s) => {
    const byUid = await s.run(["--rm", "-u", "65534", "busybox", "id"]);
    assert.equal(byUid.code, 0, show(byUid));
    assert.equal(byUid.stdout, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n");
    const byName = await s.run(["--rm", "--user", "nobody", "busybox", "id"]);
    assert.equal(byName.code, 0, show(byName));
    assert.equal(byName.stdout, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n");
    const pair = await s.run(["--rm", "-u", "1000:1000", "busybox", "id"]);
    assert.equal(pair.code, 0, show(pair));
    assert.equal(pair.stdout, "uid=1000 gid=1000 groups=1000\n");
    const root = await s.run(["--rm", "busybox", "id"]);
    assert.equal(root.stdout, "uid=0(root) gid=0(root) groups=0(root)\n");
  });
});

integrationTest("run: a named user gets its primary and supplementary groups and its HOME", async () => {
  await withStore(async (s) => {
    const r = await s.run(["--rm", "-u", "alice", "busybox", "sh", "-c", "id -u; id -g; id -G; echo $HOME"]);
    assert.equal(r.code, 0, show(r));
    const [uid, gid, groups, home] = lines(r.stdout);
    assert.equal(uid, "1001");
    assert.equal(gid, "1001");
    assert.deepEqual(groups.split(" ").map(Number).sort((a, b) => a - b), [44, 50, 1001]);
    assert.equal(home, "/home/alice");
    const id = await s.run(["--rm", "-u", "alice", "busybox", "id"]);
    assert.match(id.stdout, /^uid=1001\(alice\) gid=1001\(alice\) groups=/);
    for (const g of ["1001(alice)", "44(video)", "50(staff)"]) assert.ok(id.stdout.includes(g), id.stdout);
    assert.ok(!id.stdout.includes("(other)"), "a group alice is not a member of is not given");
  }, {
    users: ["alice:x:1001:1001:Alice:/home/alice:/bin/sh"],
    groups: ["alice:x:1001:", "staff:x:50:alice", "video:x:44:bob,alice", "other:x:77:bob"],
  });
});

integrationTest("run: the image's Entrypoint and Cmd; a given command replaces Cmd only", async () => {
  await withStore(async (s) => {
    const dflt = await s.run(["--rm", "busybox"]);
    assert.equal(dflt.code, 0, show(dflt));
    assert.equal(dflt.stdout, "entry default-arg\n");
    const given = await s.run(["--rm", "busybox", "given", "args"]);
    assert.equal(given.code, 0, show(given));
    assert.equal(given.stdout, "entry given args\n");
  }, { config: { Env: ["PATH=/bin"], Entrypoint: ["/bin/echo", "entry"], Cmd: ["default-arg"] } });
});

integrationTest(
  "run: the image's Cmd runs when no command is given, and a command overrides it",
  async () => {
    await withStore(async (s) => {
      const dflt = await s.run(["--rm", "busybox"]);
      assert.equal(dflt.code, 0, show(dflt));
      assert.equal(dflt.stdout, "from the image's Cmd\n");
      const given = await s.run(["--rm", "busybox", "echo", "from the command line"]);
      assert.equal(given.code, 0, show(given));
      assert.equal(given.stdout, "from the command line\n");
      // A second image in the same store, with Cmd ["sh"] and a different Env.
      makeBusyboxImage(s.imageDir("other:v1"), {
        config: { Env: ["PATH=/bin:/usr/bin", "WHICH=other"], Cmd: ["env"] },
      });
      const other = await s.run(["--rm", "other:v1"]);
      assert.equal(other.code, 0, show(other));
      assert.ok(lines(other.stdout).includes("WHICH=other"), other.stdout);
    }, { config: { Env: ["PATH=/bin"], Cmd: ["sh", "-c", 'echo "from the image\'s Cmd"'] } });
  },
);

integrationTest(
  "run: a hand-placed image named with a registry host (images/<host>%2F<name>:<tag>)",
  async () => {
    await withStore(async (s) => {
      Deno.mkdirSync(`${s.root}/images/localhost:5000%2Fteam%2Fapp:1`);
      Deno.renameSync(`${s.imageDir()}/rootfs`, `${s.root}/images/localhost:5000%2Fteam%2Fapp:1/rootfs`);
      const images = await s.floka(["images"]);
      assert.match(images.stdout, /localhost:5000\/team\/app\s+1\s/, show(images));
      const run = await s.run(["--rm", "localhost:5000/team/app:1", "echo", "hand-placed"]);
      assert.equal(run.code, 0, show(run));
      assert.equal(run.stdout.trim(), "hand-placed");
    });
  },
);
