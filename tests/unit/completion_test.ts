import assert from "node:assert/strict";
import { defineCommand } from "../../src/cli/command.ts";
import {
  argKind,
  bashScript,
  completionEntries,
  completionScript,
  fishScript,
  zshScript,
} from "../../src/cli/completion.ts";
import { containerCommand, imageCommand } from "../../src/cli/prune.ts";
import { systemCommand } from "../../src/cli/system.ts";
import { volumeCommand } from "../../src/cli/volume.ts";

const noop = () => 0;
/** Commands shaped like Floka's own (their specs are what the scripts are made from). */
const COMMANDS = [
  defineCommand({
    name: "run",
    usage: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
    description: "Create and run a new container from an image",
    minArgs: 1,
    maxArgs: Infinity,
    optionsBeforeArgsOnly: true,
    options: {
      name: { long: "name", value: "string", help: "Assign a name to the container" },
      detach: { short: "d", long: "detach", help: "Run in the background" },
      network: { long: "network", value: "string", choices: ["none", "host"], help: "Network mode" },
    },
  }, noop),
  defineCommand({
    name: "rm",
    usage: "[OPTIONS] CONTAINER [CONTAINER...]",
    description: "Remove one or more containers",
    minArgs: 1,
    maxArgs: Infinity,
    options: { force: { short: "f", long: "force", help: "Force" } },
  }, noop),
  defineCommand({
    name: "rmi",
    usage: "[OPTIONS] IMAGE [IMAGE...]",
    description: "Remove one or more images",
    minArgs: 1,
    maxArgs: Infinity,
    options: {},
  }, noop),
  defineCommand({
    name: "ps",
    usage: "[OPTIONS]",
    description: "List containers",
    minArgs: 0,
    maxArgs: 0,
    options: { all: { short: "a", long: "all", help: "all" } },
  }, noop),
  containerCommand,
  imageCommand,
  systemCommand,
  volumeCommand,
];

const FAKE_FLOKA = `
floka() {
  case "$*" in
    *"ps -a --format {{.Names}}") printf 'web\\nworker\\n' ;;
    *"images --format {{.Repository}}:{{.Tag}}") printf 'busybox:latest\\n<none>:<none>\\n' ;;
    *"volume ls -q") printf 'data\\n' ;;
  esac
}
`;

/** Loads the bash script with a fake \`floka\` and prints COMPREPLY for each line of words. */
async function complete(script: string, lines: string[][]): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "floka-completion-" });
  try {
    await Deno.writeTextFile(`${dir}/floka.bash`, script);
    const calls = lines.map((words) => {
      const quoted = words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(" ");
      return `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _floka; ` +
        `echo "\${COMPREPLY[*]}"`;
    });
    const program = [`source '${dir}/floka.bash'`, FAKE_FLOKA, ...calls].join("\n");
    const out = await new Deno.Command("bash", { args: ["--norc", "--noprofile", "-c", program], cwd: dir })
      .output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout).split("\n").slice(0, lines.length);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("completion: the bash script is valid bash and registers _floka for floka", async () => {
  const script = bashScript(COMMANDS);
  const check = await new Deno.Command("bash", { args: ["-n"], stdin: "piped" }).spawn();
  const w = check.stdin.getWriter();
  await w.write(new TextEncoder().encode(script));
  await w.close();
  assert.equal((await check.status).code, 0);
  const out = await new Deno.Command("bash", {
    args: ["--norc", "-c", `source /dev/stdin <<'EOS'\n${script}\nEOS\ncomplete -p floka`],
  }).output();
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "complete -F _floka floka");
});

Deno.test("completion: bash completes commands, flags, choices and subcommands", async () => {
  const got = await complete(bashScript(COMMANDS), [
    ["floka", "ru"],
    ["floka", "r"],
    ["floka", "run", "--n"],
    ["floka", "run", "--network", ""],
    ["floka", "--log-level", "w"],
    ["floka", "--root", "/tmp", "p"],
    ["floka", "container", ""],
    ["floka", "container", "prune", "-"],
    ["floka", "system", ""],
    ["floka", "image", "prune", "--a"],
    ["floka", "volume", "p"],
  ]);
  assert.deepEqual(got, [
    "run",
    "run rm rmi",
    "--name --network",
    "none host",
    "warn",
    "ps",
    "ls prune rm",
    "--force -f --help",
    "check df prune",
    "--all",
    "prune",
  ]);
});

Deno.test("completion: bash completes container, image and volume names by asking floka", async () => {
  const got = await complete(bashScript(COMMANDS), [
    ["floka", "rm", ""],
    ["floka", "rm", "w"],
    ["floka", "rm", "web", "wo"],
    ["floka", "run", ""],
    ["floka", "run", "--name", "x", "b"],
    ["floka", "rmi", ""],
    ["floka", "container", "rm", "we"],
    ["floka", "volume", "rm", ""],
  ]);
  assert.deepEqual(got, [
    "web worker",
    "web worker",
    "worker",
    "busybox:latest",
    "busybox:latest",
    "busybox:latest",
    "web",
    "data",
  ]);
});

Deno.test("completion: positional kinds are read from the usage line", () => {
  assert.deepEqual(argKind("[OPTIONS] CONTAINER [CONTAINER...]"), { kind: "container", repeat: true });
  assert.deepEqual(argKind("[OPTIONS] IMAGE [COMMAND] [ARG...]"), { kind: "image", repeat: false });
  assert.deepEqual(argKind("[OPTIONS] NAME|ID [NAME|ID...]"), { kind: "both", repeat: true });
  assert.deepEqual(argKind("[OPTIONS] CONTAINER COMMAND [ARG...]"), { kind: "container", repeat: false });
  assert.deepEqual(argKind("[OPTIONS] [CONTAINER...]"), { kind: "container", repeat: true });
  assert.deepEqual(argKind("SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]"), { kind: "image", repeat: false });
  assert.deepEqual(argKind("[-f] VOLUME..."), { kind: "volume", repeat: true });
  assert.deepEqual(argKind("[OPTIONS] PATH"), { kind: "none", repeat: false });
});

Deno.test("completion: subcommands come from a group's list or from a usage's Commands: section", () => {
  const entries = completionEntries(COMMANDS);
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.deepEqual(byPath.get("container")?.subcommands, ["ls", "prune", "rm"]);
  assert.deepEqual(byPath.get("system")?.subcommands, ["check", "df", "prune"]);
  assert.deepEqual(byPath.get("volume")?.subcommands, ["create", "ls", "inspect", "rm", "prune"]);
  assert.ok(byPath.get("system prune")?.options.some((o) => o.long === "volumes"));
  assert.equal(byPath.get("volume rm")?.kind, "volume");
});

Deno.test("completion: zsh wraps the bash script; fish lists commands, flags and names", () => {
  assert.match(zshScript(COMMANDS), /^#compdef floka\n/);
  assert.match(zshScript(COMMANDS), /bashcompinit/);
  assert.match(zshScript(COMMANDS), /complete -F _floka floka/);
  const fish = fishScript(COMMANDS);
  assert.match(fish, /complete -c floka -n __fish_use_subcommand -a run -d 'Create and run/);
  assert.match(fish, /-n '__fish_seen_subcommand_from run' -l network -x -a 'none host'/);
  assert.match(fish, /-n '__fish_seen_subcommand_from rm' -a '\(__floka_names container\)'/);
  assert.match(
    fish,
    /__fish_seen_subcommand_from container; and not __fish_seen_subcommand_from ls prune rm' -a prune/,
  );
  assert.equal(completionScript("bash", COMMANDS), bashScript(COMMANDS));
});

function which(program: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${program}`).isFile;
    } catch {
      return false;
    }
  });
}

async function runShell(shell: string, args: string[], script: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "floka-completion-" });
  try {
    await Deno.writeTextFile(`${dir}/script`, script);
    const out = await new Deno.Command(shell, {
      args: [...args, `${dir}/script`],
      cwd: dir,
      env: { HOME: dir },
    })
      .output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return new TextDecoder().decode(out.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "completion: the zsh script works through bashcompinit (zsh filters by prefix itself)",
  ignore: !which("zsh"),
  fn: async () => {
    const out = await runShell(
      "zsh",
      ["-f"],
      [
        zshScript(COMMANDS),
        FAKE_FLOKA,
        `t() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _floka; echo "\${COMPREPLY[*]}"; }`,
        "t floka rm ''",
        "t floka container ''",
        "t floka run ''",
      ].join("\n"),
    );
    assert.deepEqual(out.split("\n").slice(0, 3), ["web worker", "ls prune rm", "busybox:latest"]);
  },
});

Deno.test({
  name: "completion: the fish script completes commands and names",
  ignore: !which("fish"),
  fn: async () => {
    const out = await runShell(
      "fish",
      ["--no-config"],
      [
        "function floka",
        '    switch "$argv"',
        "        case '*ps -a --format*'",
        "            printf 'web\\nworker\\n'",
        "    end",
        "end",
        fishScript(COMMANDS),
        "complete -C 'floka ru'",
        "complete -C 'floka rm '",
      ].join("\n"),
    );
    assert.deepEqual(out.split("\n").map((l) => l.split("\t")[0]).filter(Boolean), ["run", "web", "worker"]);
  },
});
