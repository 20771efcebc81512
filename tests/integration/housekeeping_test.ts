/**
 * Housekeeping and machine-readable output: `container prune`, `image prune`, `system df`,
 * `system prune`, `--format` on ps/images/inspect, and the completion script.
 */
import assert from "node:assert/strict";
import { integrationTest, lines, show, type Store, withStore } from "./helpers.ts";

const UNITS: Record<string, number> = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 };

/** The bytes of `Total reclaimed space: 102kB` (humanSize keeps three digits). */
function reclaimed(stdout: string): number {
  const m = /Total reclaimed space: ([\d.]+)(B|kB|MB|GB)\n$/.exec(stdout);
  assert.ok(m, `no reclaimed line in ${JSON.stringify(stdout)}`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** `system df` as rows keyed by TYPE: [TOTAL, ACTIVE, SIZE, RECLAIMABLE]. */
async function df(s: Store): Promise<Map<string, string[]>> {
  const r = await s.floka(["system", "df"]);
  assert.equal(r.code, 0, show(r));
  const [header, ...rows] = lines(r.stdout);
  assert.match(header!, /^TYPE {12}TOTAL {5}ACTIVE {4}SIZE {6}RECLAIMABLE$/);
  return new Map(rows.map((l) => {
    const cells = l.split(/ {2,}/);
    return [cells[0]!, cells.slice(1)];
  }));
}

async function ok(s: Store, args: string[], stdin?: string): Promise<string> {
  const r = await s.floka(args, stdin === undefined ? {} : { stdin });
  assert.equal(r.code, 0, `floka ${args.join(" ")}: ${show(r)}`);
  return r.stdout;
}

/** Builds an image from `FROM busybox` plus `run`; `tag` empty for an untagged one. Returns its ID. */
async function build(s: Store, name: string, run: string, tag = ""): Promise<string> {
  const dir = `${s.root}/contexts/${name}`;
  Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(`${dir}/Flokafile`, `FROM busybox\nRUN ${run}\n`);
  return (await ok(s, ["build", "-q", ...(tag ? ["-t", tag] : []), dir])).trim();
}

integrationTest("housekeeping: prune frees what it says and keeps what is in use", async () => {
  await withStore(async (s) => {
    const dangling = await build(s, "dangling", "dd if=/dev/zero of=/d bs=1k count=300");
    await build(s, "keep", "echo keep > /k", "keep:1");
    await build(s, "unused", "dd if=/dev/zero of=/u bs=1k count=200", "unused:1");
    assert.ok(
      lines(await ok(s, ["images", "--format", "{{.Repository}}:{{.Tag}}"])).includes("<none>:<none>"),
    );

    // A running container (on keep:1, with a volume), a stopped one with 100 kB of its own.
    await ok(s, ["run", "-d", "--name", "live", "-v", "usedvol:/data", "keep:1", "sleep", "1000"]);
    await ok(s, [
      "run",
      "--name",
      "stopped",
      "busybox",
      "dd",
      "if=/dev/zero",
      "of=/big",
      "bs=1k",
      "count=100",
    ]);
    const stoppedId = lines(await ok(s, ["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]))
      .find((l) => l.endsWith(" stopped"))!.split(" ")[0]!;

    let usage = await df(s);
    assert.deepEqual(usage.get("Containers")!.slice(0, 2), ["2", "1"]);
    // busybox (by hand), keep:1, unused:1 and the dangling one; busybox and keep:1 are in use.
    assert.deepEqual(usage.get("Images")!.slice(0, 2), ["4", "2"]);

    // A prompt answered "n" removes nothing; exit 0 as Docker.
    const declined = await s.floka(["container", "prune"], { stdin: "n\n" });
    assert.equal(declined.code, 0, show(declined));
    assert.match(declined.stdout, /Are you sure you want to continue\? \[y\/N\]/);
    assert.equal((await s.ids()).length, 2);

    const containers = await ok(s, ["container", "prune"], "y\n");
    assert.match(containers, new RegExp(`Deleted Containers:\\n${stoppedId}\\n`));
    const freed = reclaimed(containers);
    assert.ok(freed >= 100_000 && freed < 200_000, containers);
    assert.deepEqual(lines(await ok(s, ["ps", "-a", "--format", "{{.Names}}"])), ["live"]);
    usage = await df(s);
    assert.deepEqual(usage.get("Containers")!.slice(0, 2), ["1", "1"]);
    assert.match(usage.get("Containers")![3]!, /^0B/);
    assert.deepEqual(usage.get("Images")!.slice(0, 2), ["4", "1"]);

    // image prune: the dangling image goes (its 300 kB layer with it), tagged ones stay.
    const images = await ok(s, ["image", "prune", "-f"]);
    assert.match(images, /^Deleted Images:\n/);
    assert.ok(
      images.includes(`deleted: sha256:${dangling.replace(/^sha256:/, "")}`) || images.includes(dangling),
      images,
    );
    assert.ok(reclaimed(images) >= 300_000, images);
    let names = lines(await ok(s, ["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert.deepEqual(names.sort(), ["busybox:latest", "keep:1", "unused:1"]);

    // -a: every image no container uses, except the one placed by hand; keep:1 is used by live.
    const all = await ok(s, ["image", "prune", "-a", "-f"]);
    assert.match(all, /untagged: unused:1\n/);
    assert.doesNotMatch(all, /keep:1/);
    assert.ok(reclaimed(all) >= 200_000, all);
    names = lines(await ok(s, ["images", "--format", "{{.Repository}}"]));
    assert.deepEqual(names.sort(), ["busybox", "keep"]);
    usage = await df(s);
    assert.deepEqual(usage.get("Images")!.slice(0, 2), ["2", "1"]);
    // live still runs on its image's layers.
    assert.equal((await ok(s, ["exec", "live", "cat", "/k"])).trim(), "keep");

    // system prune --volumes: an unused volume (with 50 kB in it) and network go, the volume live uses stays.
    await ok(s, ["volume", "create", "unusedvol"]);
    Deno.writeFileSync(`${s.root}/volumes/unusedvol/_data/f`, new Uint8Array(50_000));
    usage = await df(s);
    assert.deepEqual(usage.get("Local Volumes")!.slice(0, 2), ["2", "1"]);
    assert.match(usage.get("Local Volumes")![3]!, /^50kB \(100%\)$/);
    await ok(s, ["network", "create", "unusednet"]);
    const system = await ok(s, ["system", "prune", "--volumes", "-f"]);
    assert.match(system, /Deleted Volumes:\nunusedvol\n/);
    assert.match(system, /Deleted Networks:\nunusednet\n/);
    assert.doesNotMatch(await ok(s, ["network", "ls", "-q"]), /unusednet/);
    assert.ok(reclaimed(system) >= 50_000, system);
    assert.deepEqual(lines(await ok(s, ["volume", "ls", "-q"])), ["usedvol"]);
    assert.deepEqual(lines(await ok(s, ["ps", "--format", "{{.Names}}"])), ["live"]);
    usage = await df(s);
    assert.deepEqual(usage.get("Local Volumes")!.slice(0, 2), ["1", "1"]);
    // Nothing left to prune: a second run frees nothing.
    assert.equal(reclaimed(await ok(s, ["system", "prune", "-f", "--volumes"])), 0);
  });
});

integrationTest("housekeeping: --format on ps, images and inspect", async () => {
  await withStore(async (s) => {
    await ok(s, ["run", "-d", "--name", "fmt", "busybox", "sleep", "1000"]);
    const json = lines(await ok(s, ["ps", "--format", "json"]));
    assert.equal(json.length, 1);
    const row = JSON.parse(json[0]!);
    for (
      const field of [
        "ID",
        "Image",
        "Command",
        "CreatedAt",
        "RunningFor",
        "Status",
        "Names",
        "State",
        "Ports",
      ]
    ) {
      assert.ok(field in row, `ps --format json has no ${field}: ${json[0]}`);
    }
    assert.equal(row.Names, "fmt");
    assert.equal(row.State, "running");
    assert.equal(row.Image, "busybox:latest");

    const table = lines(await ok(s, ["ps", "--format", "table {{.ID}}\\t{{.Names}}"]));
    assert.match(table[0]!, /^CONTAINER ID {3}NAMES$/);
    assert.match(table[1]!, /^[0-9a-f]{12} {3}fmt$/);

    assert.deepEqual(lines(await ok(s, ["images", "--format", "{{.Repository}}"])), ["busybox"]);
    const image = JSON.parse(lines(await ok(s, ["images", "--format", "json"]))[0]!);
    for (const field of ["Repository", "Tag", "ID", "CreatedSince", "CreatedAt", "Size", "Digest"]) {
      assert.ok(field in image, `images --format json has no ${field}`);
    }

    assert.equal(await ok(s, ["inspect", "--format", "{{.State.Status}}", "fmt"]), "running\n");
    assert.equal(await ok(s, ["inspect", "-f", "{{.Name}} {{.State.Running}}", "fmt"]), "/fmt true\n");
    const config = JSON.parse(await ok(s, ["inspect", "--format", "{{json .Config}}", "fmt"]));
    assert.deepEqual(config.Cmd, ["sleep", "1000"]);
    assert.equal(config.Image, "busybox:latest");

    for (const args of [["ps", "--format", "{{.Nope}}"], ["inspect", "--format", "{{.State.Nope}}", "fmt"]]) {
      const bad = await s.floka(args);
      assert.equal(bad.code, 125, show(bad));
      assert.match(bad.stderr, /can't evaluate field Nope/);
    }
  });
});

integrationTest(
  "housekeeping: the completion script loads in bash and completes from the store",
  async () => {
    await withStore(async (s) => {
      await ok(s, ["run", "--name", "compl", "busybox", "true"]);
      const script = await ok(s, ["completion", "bash"]);
      const program = [
        script,
        // `floka` as a user has it: this store's CLI.
        `floka() { "${Deno.execPath()}" run --allow-all --quiet "${
          new URL("../../main.ts", import.meta.url).pathname
        }" "$@"; }`,
        `COMP_WORDS=(floka ru); COMP_CWORD=1; _floka; echo "\${COMPREPLY[*]}"`,
        `COMP_WORDS=(floka --root '${s.root}' start co); COMP_CWORD=4; _floka; echo "\${COMPREPLY[*]}"`,
        `COMP_WORDS=(floka --root '${s.root}' run bu); COMP_CWORD=4; _floka; echo "\${COMPREPLY[*]}"`,
      ].join("\n");
      const out = await new Deno.Command("bash", { args: ["--norc", "-c", program] }).output();
      const dec = new TextDecoder();
      assert.equal(out.code, 0, dec.decode(out.stderr));
      assert.deepEqual(lines(dec.decode(out.stdout)), ["run", "compl", "busybox:latest"]);
      for (const shell of ["zsh", "fish"]) assert.ok((await ok(s, ["completion", shell])).length > 100);
    });
  },
);
