/**
 * `floka save`, `load`, `export` and `commit`, end to end: archives read by Podman and
 * written by Podman (in a Podman store of the test's own, so the machine's is unchanged),
 * round trips through Floka, broken archives, and containers turned into tars and images.
 */
import assert from "node:assert/strict";
import {
  hostMountsMentioning,
  integrationTest,
  lines,
  type Result,
  show,
  type Store,
  which,
  withStore,
} from "./helpers.ts";

/** Builds `name` from busybox with `/file` holding `text`; returns the image ID. */
async function buildImage(s: Store, name: string, text: string): Promise<string> {
  const dir = `${s.root}/ctx-${name.replace(/[:/]/g, "_")}`;
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(
    `${dir}/Flokafile`,
    `FROM busybox\nRUN echo ${text} > /file\nCMD ["cat", "/file"]\n`,
  );
  const r = await s.floka(["build", "-q", "-t", name, dir]);
  assert.equal(r.code, 0, show(r));
  return r.stdout.trim();
}

/** `floka images` as "repository:tag id" lines. */
async function imageList(s: Store): Promise<string[]> {
  const r = await s.floka(["images", "--no-trunc"]);
  assert.equal(r.code, 0, show(r));
  return lines(r.stdout).slice(1).map((l) => l.split(/\s+/).slice(0, 3).join(" ")).sort();
}

/** Podman with a store of its own under `dir`, and the flags this machine needs (DESIGN 1). */
function podman(dir: string, args: string[]): Promise<Result> {
  const global = [
    "--root",
    `${dir}/root`,
    "--runroot",
    `${dir}/run`,
    "--storage-driver",
    "vfs",
    "--cgroup-manager",
    "cgroupfs",
    "--runtime",
    "runc",
    "--events-backend",
    "file",
  ];
  const runFlags = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];
  const full = args[0] === "run" ? [...global, "run", ...runFlags, ...args.slice(1)] : [...global, ...args];
  return new Deno.Command("podman", { args: full, stdout: "piped", stderr: "piped", stdin: "null" }).output()
    .then((o) => ({
      code: o.code,
      stdout: new TextDecoder().decode(o.stdout),
      stderr: new TextDecoder().decode(o.stderr),
    }));
}

/** Runs `fn` with a temporary Podman store, removed afterwards (with what Podman mounted there). */
async function withPodman(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "floka-podman-" });
  try {
    await fn(dir);
  } finally {
    await podman(dir, ["rm", "-a", "-f"]).catch(() => {});
    await podman(dir, ["rmi", "-a", "-f"]).catch(() => {});
    for (const line of hostMountsMentioning(dir)) {
      const mountPoint = line.split(" ")[4];
      await new Deno.Command("umount", { args: ["-l", mountPoint] }).output();
    }
    await Deno.remove(dir, { recursive: true });
  }
}

const NO_PODMAN = which("podman") === null ? "podman is not installed" : null;

integrationTest("save: podman load reads the archive and runs the built image", async () => {
  await withStore(async (s) => {
    const id = await buildImage(s, "saved:1", "built-by-floka");
    const archive = `${s.root}/saved.tar`;
    const save = await s.floka(["save", "-o", archive, "saved:1"]);
    assert.equal(save.code, 0, show(save));
    // The layout Docker 25 writes: an OCI layout plus manifest.json and repositories.
    const list = await new Deno.Command("tar", { args: ["-tf", archive], stdout: "piped" }).output();
    const names = lines(new TextDecoder().decode(list.stdout));
    for (
      const name of [
        "oci-layout",
        "index.json",
        "manifest.json",
        "repositories",
        `blobs/sha256/${id.slice(7)}`,
      ]
    ) {
      assert.ok(names.includes(name), `${name} in ${names.join(", ")}`);
    }
    await withPodman(async (dir) => {
      const load = await podman(dir, ["load", "-i", archive]);
      assert.equal(load.code, 0, show(load));
      assert.match(load.stdout, /Loaded image.*saved:1/);
      const run = await podman(dir, ["run", "--rm", "saved:1", "cat", "/file"]);
      assert.equal(run.code, 0, show(run));
      assert.equal(run.stdout.trim(), "built-by-floka");
      const inspect = await podman(dir, ["image", "inspect", "--format", "{{.Id}}", "saved:1"]);
      assert.equal(inspect.stdout.trim(), id.slice(7), "the same image ID in Podman");
    });
  });
}, NO_PODMAN);

for (const format of ["docker-archive", "oci-archive"]) {
  integrationTest(`load: a ${format} written by podman save loads and runs`, async () => {
    await withStore(async (s) => {
      await withPodman(async (dir) => {
        const rootfs = `${s.root}/rootfs.tar`;
        const tar = await new Deno.Command("tar", {
          args: ["-cf", rootfs, "-C", `${s.imageDir()}/rootfs`, "."],
        }).output();
        assert.ok(tar.success);
        const imported = await podman(dir, ["import", rootfs, "localhost/podbox:2"]);
        assert.equal(imported.code, 0, show(imported));
        const archive = `${s.root}/podman.tar`;
        const save = await podman(dir, ["save", "--format", format, "-o", archive, "localhost/podbox:2"]);
        assert.equal(save.code, 0, show(save));
        const load = await s.floka(["load", "-i", archive]);
        assert.equal(load.code, 0, show(load));
        assert.equal(load.stdout.trim(), "Loaded image: localhost/podbox:2");
        const run = await s.run(["--rm", "localhost/podbox:2", "sh", "-c", "echo from-podman"]);
        assert.equal(run.code, 0, show(run));
        assert.equal(run.stdout.trim(), "from-podman");
        const podmanId =
          (await podman(dir, ["image", "inspect", "--format", "{{.Id}}", "localhost/podbox:2"]))
            .stdout.trim();
        assert.ok(
          (await imageList(s)).includes(`localhost/podbox 2 sha256:${podmanId}`),
          "the same image ID",
        );
      });
    });
  }, NO_PODMAN);
}

integrationTest(
  "save/load: a round trip keeps the image ID; gzip and stdin work; a taken name moves",
  async () => {
    await withStore(async (s) => {
      const id = await buildImage(s, "round:1", "first");
      const archive = `${s.root}/round.tar`;
      const save = await s.floka(["save", "-o", archive, "round:1"]);
      assert.equal(save.code, 0, show(save));
      // To stdout: the same bytes (the archive's times are the image's, not the clock's).
      const piped = await new Deno.Command("sh", {
        args: [
          "-c",
          `"$0" "$@" | cmp - ${archive}`,
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          ...mainArgs(s, ["save", "round:1"]),
        ],
      }).output();
      assert.ok(piped.success, new TextDecoder().decode(piped.stderr));
      assert.equal((await s.floka(["rmi", "round:1"])).code, 0);
      // From stdin.
      const load = await new Deno.Command("sh", {
        args: [
          "-c",
          `"$0" "$@" < ${archive}`,
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          ...mainArgs(s, ["load"]),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(load.code, 0, new TextDecoder().decode(load.stderr));
      assert.equal(new TextDecoder().decode(load.stdout), "Loaded image: round:1\n");
      assert.ok((await imageList(s)).includes(`round 1 ${id}`));
      const run = await s.run(["--rm", "round:1"]);
      assert.equal(run.stdout.trim(), "first", show(run));

      // Another image takes the name; loading the archive gives the name back, as Docker does.
      const other = await buildImage(s, "round:1", "second");
      const gz = `${s.root}/round.tar.gz`;
      assert.ok(
        (await new Deno.Command("sh", { args: ["-c", `gzip -c ${archive} > ${gz}`] }).output()).success,
      );
      const again = await s.floka(["load", "-q", "-i", gz]);
      assert.equal(again.code, 0, show(again));
      assert.equal(again.stdout, "");
      const images = await imageList(s);
      assert.ok(images.includes(`round 1 ${id}`), images.join("\n"));
      assert.ok(images.includes(`<none> <none> ${other}`), images.join("\n"));

      // Saved by ID: no name, loaded untagged.
      const byId = `${s.root}/byid.tar`;
      assert.equal((await s.floka(["save", "-o", byId, id.slice(7, 19)])).code, 0);
      const untagged = await s.floka(["load", "-i", byId]);
      assert.equal(untagged.stdout, `Loaded image ID: ${id}\n`, show(untagged));
      // A terminal is refused.
      if (which("script")) {
        const cmd = [Deno.execPath(), "run", "-A", "--quiet", ...mainArgs(s, ["save", "round:1"])].join(" ");
        const tty = await new Deno.Command("script", { args: ["-qec", cmd, "/dev/null"], stdout: "piped" })
          .output();
        assert.equal(tty.code, 125);
        assert.match(new TextDecoder().decode(tty.stdout), /cowardly refusing to save to a terminal/);
      }
    });
  },
);

integrationTest(
  "load: archives compressed with zstd, xz or bzip2 load as docker load takes them",
  async () => {
    await withStore(async (s) => {
      const id = await buildImage(s, "packed:1", "packed");
      const archive = `${s.root}/packed.tar`;
      assert.equal((await s.floka(["save", "-o", archive, "packed:1"])).code, 0);
      for (const [program, suffix] of [["zstd", "zst"], ["xz", "xz"], ["bzip2", "bz2"]]) {
        if (!which(program)) {
          console.error(`skipped: no ${program} on this machine`);
          continue;
        }
        const packed = `${archive}.${suffix}`;
        const made = await new Deno.Command("sh", { args: ["-c", `${program} -c ${archive} > ${packed}`] })
          .output();
        assert.ok(made.success, program);
        assert.equal((await s.floka(["rmi", "packed:1"])).code, 0);
        const load = await s.floka(["load", "-i", packed]);
        assert.equal(load.code, 0, `${program}: ${show(load)}`);
        assert.equal(load.stdout, "Loaded image: packed:1\n");
        assert.ok((await imageList(s)).includes(`packed 1 ${id}`), program);
        // Damaged after its first bytes: a clear error, nothing stored.
        const bytes = Deno.readFileSync(packed);
        Deno.writeFileSync(packed, bytes.subarray(0, Math.floor(bytes.length / 2)));
        assert.equal((await s.floka(["rmi", "packed:1"])).code, 0);
        const broken = await s.floka(["load", "-i", packed]);
        assert.equal(broken.code, 125, `${program}: ${show(broken)}`);
        assert.equal(lines(broken.stderr).length, 1, broken.stderr);
        assert.ok(!(await imageList(s)).some((l) => l.startsWith("packed ")), program);
        assert.equal((await s.floka(["load", "-i", archive])).code, 0);
      }
      const run = await s.run(["--rm", "packed:1"]);
      assert.equal(run.stdout.trim(), "packed", show(run));
    });
  },
);

/** The names in the top layer of `image`, as `floka save` writes it. */
async function topLayerNames(s: Store, image: string): Promise<string[]> {
  const dir = await Deno.makeTempDir();
  try {
    assert.equal((await s.floka(["save", "-o", `${dir}/image.tar`, image])).code, 0);
    const untar = await new Deno.Command("tar", { args: ["-xf", `${dir}/image.tar`, "-C", dir] }).output();
    assert.ok(untar.success);
    const [entry] = JSON.parse(Deno.readTextFileSync(`${dir}/manifest.json`));
    const top = entry.Layers.at(-1);
    const list = await new Deno.Command("tar", { args: ["-tf", `${dir}/${top}`], stdout: "piped" }).output();
    assert.ok(list.success);
    return lines(new TextDecoder().decode(list.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function mainArgs(s: Store, args: string[]): string[] {
  return [new URL("../../main.ts", import.meta.url).pathname, "--root", s.root, ...args];
}

integrationTest(
  "load: a truncated archive, a missing file or a wrong digest fails with 125 and tags nothing",
  async () => {
    await withStore(async (s) => {
      await buildImage(s, "victim:1", "x");
      const archive = `${s.root}/victim.tar`;
      assert.equal((await s.floka(["save", "-o", archive, "victim:1"])).code, 0);
      assert.equal((await s.floka(["rmi", "victim:1"])).code, 0);
      const before = await imageList(s);

      const bytes = Deno.readFileSync(archive);
      const truncated = `${s.root}/truncated.tar`;
      Deno.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));

      // Unpacked, edited and packed again with tar.
      const edit = async (name: string, script: string) => {
        const dir = `${s.root}/edit-${name}`;
        Deno.mkdirSync(dir);
        assert.ok((await new Deno.Command("tar", { args: ["-xf", archive, "-C", dir] }).output()).success);
        const r = await new Deno.Command("sh", { args: ["-c", script], cwd: dir }).output();
        assert.ok(r.success, new TextDecoder().decode(r.stderr));
        const out = `${s.root}/${name}.tar`;
        assert.ok((await new Deno.Command("tar", { args: ["-cf", out, "-C", dir, "."] }).output()).success);
        return out;
      };
      const missing = await edit(
        "missing",
        `sed -i 's|"Layers":\\["blobs/sha256/[0-9a-f]*"|"Layers":["blobs/sha256/${
          "0".repeat(64)
        }"|' manifest.json`,
      );
      // The config gets one more byte: still JSON, no longer the digest that names it.
      const mismatch = await edit(
        "mismatch",
        `printf ' ' >> "$(sed 's/.*"Config":"\\([^"]*\\)".*/\\1/' manifest.json)"`,
      );

      for (
        const [file, message] of [
          [truncated, /truncated/],
          [missing, /is not in it/],
          [mismatch, /does not match its digest|bytes, its descriptor says/],
        ] as const
      ) {
        const r = await s.floka(["load", "-i", file]);
        assert.equal(r.code, 125, `${file}: ${show(r)}`);
        assert.match(r.stderr, message);
        assert.equal(lines(r.stderr).length, 1, show(r));
        assert.deepEqual(await imageList(s), before, `${file}: nothing tagged`);
      }
      assert.deepEqual([...Deno.readDirSync(`${s.root}/images/tmp`)], [], "no staging directory left");
      const garbage = await s.floka(["load", "-i", `${s.root}/Flokafile-not-there`]);
      assert.equal(garbage.code, 125);
    });
  },
);

integrationTest(
  "export: the container's merged file system round-trips through import; nothing is left mounted",
  async () => {
    await withStore(async (s) => {
      const run = await s.run([
        "--name",
        "ex",
        "busybox",
        "sh",
        "-c",
        "echo written > /by-container; rm /bin/vi",
      ]);
      assert.equal(run.code, 0, show(run));
      const tarball = `${s.root}/export.tar`;
      const exp = await s.floka(["export", "-o", tarball, "ex"]);
      assert.equal(exp.code, 0, show(exp));
      assert.deepEqual(hostMountsMentioning(s.root), []);
      const imported = await s.floka(["import", tarball, "exported:1"]);
      assert.equal(imported.code, 0, show(imported));
      const check = await s.run([
        "--rm",
        "exported:1",
        "sh",
        "-c",
        "cat /by-container; ls /bin/vi || echo gone",
      ]);
      assert.equal(check.code, 0, show(check));
      assert.equal(lines(check.stdout)[0], "written");
      assert.equal(lines(check.stdout).at(-1), "gone");
      // To stdout, while the container runs: its live changes are there too.
      const bg = s.spawn([
        "run",
        "--name",
        "live",
        "busybox",
        "sh",
        "-c",
        "echo live > /live-file; echo ready; sleep 20",
      ]);
      await bg.waitForOutput("ready");
      const piped = await new Deno.Command("sh", {
        args: [
          "-c",
          `"$0" "$@" | tar -tf - | grep -x live-file`,
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          ...mainArgs(s, ["export", "live"]),
        ],
      }).output();
      assert.ok(piped.success, new TextDecoder().decode(piped.stderr));
      assert.equal((await s.floka(["kill", "live"])).code, 0);
      await bg.finish();
      assert.deepEqual(hostMountsMentioning(`${s.root}/images`), []);
      const none = await s.floka(["export", "-o", `${s.root}/x.tar`, "no-such-container"]);
      assert.equal(none.code, 125);
    });
  },
);

integrationTest("commit: the container's changes and --change instructions make a new image", async () => {
  await withStore(async (s) => {
    // From a stored (built) image, and from the hand-placed busybox (stored first).
    await buildImage(s, "base:1", "base");
    for (const image of ["base:1", "busybox"]) {
      const name = `c-${image.replace(/[:/]/g, "_")}`;
      const run = await s.run(["--name", name, image, "sh", "-c", "echo changed > /changed; rm /bin/vi"]);
      assert.equal(run.code, 0, show(run));
      const commit = await s.floka([
        "commit",
        "-m",
        "a message",
        "-a",
        "someone",
        "--change",
        'CMD ["cat", "/changed"]',
        "-c",
        "ENV GREETING=hi",
        name,
        `committed-${name}:1`,
      ]);
      assert.equal(commit.code, 0, show(commit));
      assert.match(commit.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
      const out = await s.run(["--rm", `committed-${name}:1`]);
      assert.equal(out.code, 0, show(out));
      assert.equal(out.stdout, "changed\n");
      const env = await s.run([
        "--rm",
        `committed-${name}:1`,
        "sh",
        "-c",
        "echo $GREETING; ls /bin/vi || echo gone",
      ]);
      assert.deepEqual([lines(env.stdout)[0], lines(env.stdout).at(-1)], ["hi", "gone"], show(env));
      // The new layer holds the container's changes only: none of the mount points the
      // runtime made (/etc/hostname, /etc/hosts, /etc/resolv.conf, /proc, /dev, /sys).
      assert.deepEqual((await topLayerNames(s, `committed-${name}:1`)).sort(), [
        "bin/",
        "bin/.wh.vi",
        "changed",
      ]);
    }
    // Untagged, with the container's own command; a bad --change is refused before anything is stored.
    const plain = await s.floka(["commit", "c-base_1"]);
    assert.equal(plain.code, 0, show(plain));
    const bad = await s.floka(["commit", "-c", "RUN echo no", "c-base_1", "nope:1"]);
    assert.equal(bad.code, 125, show(bad));
    assert.match(bad.stderr, /not a valid change command/);
    assert.ok(!(await imageList(s)).some((l) => l.startsWith("nope ")));
  });
});

integrationTest(
  "load: skopeo's oci-archive of a Floka image loads under the name skopeo gave it",
  async () => {
    await withStore(async (s) => {
      const id = await buildImage(s, "skop:uniquetag", "via-skopeo");
      const archive = `${s.root}/skopeo.tar`;
      const copy = await new Deno.Command("skopeo", {
        args: ["copy", "-q", `oci:${s.root}/images:uniquetag`, `oci-archive:${archive}:elsewhere/app:v2`],
        stderr: "piped",
      }).output();
      assert.ok(copy.success, new TextDecoder().decode(copy.stderr));
      const load = await s.floka(["load", "-i", archive]);
      assert.equal(load.code, 0, show(load));
      assert.equal(load.stdout, "Loaded image: elsewhere/app:v2\n");
      assert.ok((await imageList(s)).includes(`elsewhere/app v2 ${id}`));
      const run = await s.run(["--rm", "elsewhere/app:v2"]);
      assert.equal(run.stdout, "via-skopeo\n", show(run));
    });
  },
  which("skopeo") === null ? "skopeo is not installed" : null,
);
