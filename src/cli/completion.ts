/**
 * `floka completion bash|zsh|fish`: a shell completion script made from the commands'
 * specs, so it knows every command, subcommand and flag (and a flag's choices) without
 * being kept up to date by hand. Container, image and volume names are completed at
 * completion time by asking Floka itself (`floka ps -a --format '{{.Names}}'`, `floka images
 * --format '{{.Repository}}:{{.Tag}}'`, `floka volume ls -q`), with the same `--root`.
 *
 * zsh uses the bash script through its bashcompinit layer.
 */
import type { OptionSpec } from "../../lib/argv.ts";
import { FlokaError } from "../../lib/errors.ts";
import type { CliCommand } from "./command.ts";
import { defineCommand } from "./command.ts";
import { load } from "./lazy.ts";
import { writeStdout } from "./output.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = typeof SHELLS[number];

/** What a command's positional arguments name: completed from Floka's own listings. */
export type ArgKind = "container" | "image" | "volume" | "both" | "none";

/** Floka's global options (program.ts's `GLOBAL`): what may come before the command. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { long: "root", value: "string", help: "Root directory of Floka's store" },
  {
    long: "log-level",
    value: "string",
    choices: ["debug", "info", "warn", "error"],
    help: "Set the logging level",
  },
  { short: "v", long: "version", help: "Print version information and quit" },
  { short: "h", long: "help", help: "Print usage" },
];

/** One command (or subcommand) as the scripts need it. */
export interface CompletionEntry {
  /** `run`, or `container prune`. */
  path: string;
  description: string;
  options: readonly OptionSpec[];
  /** Subcommand names of a command that has them. */
  subcommands: string[];
  kind: ArgKind;
  /** Every positional argument is of `kind` (`rm CONTAINER...`), not only the first (`run IMAGE CMD`). */
  repeat: boolean;
}

/** The kind of the first positional argument in a usage line (`[OPTIONS] CONTAINER [CONTAINER...]`). */
export function argKind(usage: string): { kind: ArgKind; repeat: boolean } {
  const tokens = (usage.split("\n")[0] ?? "").split(/\s+/).filter((t) =>
    t && t !== "[OPTIONS]" && !t.startsWith("[-")
  );
  const first = tokens[0] ?? "";
  const names = (/^\[?([A-Z_|]+)/.exec(first)?.[1] ?? "").split("|");
  const repeat = first.endsWith("...") || first.endsWith("...]") ||
    (tokens[1] ?? "").replace(/[[\].]/g, "") === names.join("|");
  const has = (w: string) => names.includes(w);
  let kind: ArgKind = "none";
  if ((has("CONTAINER") && has("IMAGE")) || (has("NAME") && has("ID"))) kind = "both";
  else if (has("CONTAINER")) kind = "container";
  else if (has("IMAGE") || has("SOURCE_IMAGE")) kind = "image";
  else if (has("VOLUME")) kind = "volume";
  return { kind, repeat: kind !== "none" && repeat };
}

/**
 * Subcommands listed in a usage text's `Commands:` section (`floka volume`'s style: the
 * command shares one set of flags among its subcommands).
 */
function usageSubcommands(usage: string): { name: string; usage: string; description: string }[] {
  const at = usage.indexOf("Commands:\n");
  if (at === -1) return [];
  return usage.slice(at + "Commands:\n".length).split("\n")
    .map((l) => /^ {2}([a-z][a-z-]*)\b(.*?)(?:\s{2,}(.*))?$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({ name: m[1]!, usage: m[2]!.trim(), description: (m[3] ?? "").trim() }));
}

/** The commands and subcommands of `commands`, flattened for the scripts. */
export function completionEntries(commands: readonly CliCommand[]): CompletionEntry[] {
  const entries: CompletionEntry[] = [];
  for (const c of commands) {
    const subs = (c as { subcommands?: readonly CliCommand[] }).subcommands;
    if (subs) {
      entries.push({
        path: c.spec.name,
        description: c.spec.description,
        options: [],
        subcommands: subs.map((s) => s.spec.name.slice(c.spec.name.length + 1)),
        kind: "none",
        repeat: false,
      });
      for (const s of subs) {
        entries.push({
          path: s.spec.name,
          description: s.spec.description,
          options: Object.values(s.spec.options),
          subcommands: [],
          ...argKind(s.spec.usage),
        });
      }
      continue;
    }
    const listed = usageSubcommands(c.spec.usage);
    entries.push({
      path: c.spec.name,
      description: c.spec.description,
      options: Object.values(c.spec.options),
      subcommands: listed.map((s) => s.name),
      ...(listed.length ? { kind: "none" as const, repeat: false } : argKind(c.spec.usage)),
    });
    for (const s of listed) {
      entries.push({
        path: `${c.spec.name} ${s.name}`,
        description: s.description,
        options: Object.values(c.spec.options),
        subcommands: [],
        ...argKind(s.usage),
      });
    }
  }
  return entries;
}

function flagWords(o: OptionSpec): string[] {
  return [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])];
}

/** A word list for bash, safe inside double quotes. */
function words(list: readonly string[]): string {
  return list.join(" ").replace(/["\\$`]/g, "\\$&");
}

/** In zsh (through bashcompinit) the functions run with ksh's rules: 0-based arrays, word splitting. */
const ZSH_EMULATION = '[ -n "${ZSH_VERSION-}" ] && emulate -L ksh';

export function bashScript(
  commands: readonly CliCommand[],
  globals: readonly OptionSpec[] = GLOBAL_OPTIONS,
): string {
  const entries = completionEntries(commands);
  const top = entries.filter((e) => !e.path.includes(" "));
  const specCases = entries.map((e) => {
    const flags = [...e.options.flatMap(flagWords), "--help"];
    const valueFlags = e.options.filter((o) => o.value).flatMap(flagWords);
    return `    "${e.path}") flags="${words(flags)}"; valflags="${words(valueFlags)}"; ` +
      `subs="${words(e.subcommands)}"; kind=${e.kind}; repeat=${e.repeat ? 1 : 0} ;;`;
  });
  const choiceCases = entries.flatMap((e) =>
    e.options.filter((o) => o.choices).map((o) =>
      `    "${e.path}|${flagWords(o).join(`"|"${e.path}|`)}") COMPREPLY=($(compgen -W "${
        words(o.choices!)
      }" -- "$cur")) ;;`
    )
  );
  const globalValueFlags = globals.filter((o) => o.value).flatMap(flagWords);
  return `# bash completion for floka (generated by \`floka completion bash\`)
# Load it with:  source <(floka completion bash)

# Names Floka knows, asked at completion time: __floka_names container|image|volume|both
__floka_names() {
  ${ZSH_EMULATION}
  local name
  case "$1" in
    container|both) "\${__floka_cmd[@]}" ps -a --format '{{.Names}}' 2>/dev/null ;;
  esac
  case "$1" in
    image|both) "\${__floka_cmd[@]}" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
      while IFS= read -r name; do [[ "$name" == *"<none>"* ]] || printf '%s\\n' "$name"; done ;;
    volume) "\${__floka_cmd[@]}" volume ls -q 2>/dev/null ;;
  esac
}

# Sets flags, valflags, subs, kind and repeat for a command path ("run", "container prune").
__floka_spec() {
  ${ZSH_EMULATION}
  flags="" valflags="" subs="" kind=none repeat=0
  case "$1" in
${specCases.join("\n")}
  esac
}

_floka() {
  ${ZSH_EMULATION}
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev=""
  [ "$COMP_CWORD" -gt 0 ] && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local -a __floka_cmd=("\${COMP_WORDS[0]}")
  local flags valflags subs kind repeat
  local i=1 w key="" npos=0
  COMPREPLY=()
  # Global options, then the command.
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      ${globalValueFlags.join("|")}) __floka_cmd+=("$w" "\${COMP_WORDS[i+1]}"); i=$((i + 2)); continue ;;
      --root=*|--log-level=*) __floka_cmd+=("$w") ;;
      -*) ;;
      *) key="$w"; i=$((i + 1)); break ;;
    esac
    i=$((i + 1))
  done
  if [ -z "$key" ]; then
    case "$prev" in
      --log-level) COMPREPLY=($(compgen -W "${
    words(globals.find((o) => o.long === "log-level")?.choices ?? [])
  }" -- "$cur")); return 0 ;;
      --root) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
    esac
    if [[ "$cur" == -* ]]; then
      COMPREPLY=($(compgen -W "${words(globals.flatMap(flagWords))}" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "${words(top.map((e) => e.path))}" -- "$cur"))
    fi
    return 0
  fi
  __floka_spec "$key"
  # A command with subcommands: its first word after the options picks one.
  if [ -n "$subs" ]; then
    while [ "$i" -lt "$COMP_CWORD" ]; do
      w="\${COMP_WORDS[i]}"
      i=$((i + 1))
      case "$w" in -*) continue ;; esac
      key="$key $w"
      break
    done
    if [ "$key" = "\${key% *}" ]; then
      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "--help" -- "$cur"))
      else COMPREPLY=($(compgen -W "$subs" -- "$cur")); fi
      return 0
    fi
    __floka_spec "$key"
  fi
  # The value of a flag: its choices, else nothing to offer but files.
  if [[ " $valflags " == *" $prev "* ]]; then
    case "$key|$prev" in
${choiceCases.join("\n")}
      *) COMPREPLY=($(compgen -f -- "$cur")) ;;
    esac
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    return 0
  fi
  # How many positional arguments come before the word being completed.
  while [ "$i" -lt "$COMP_CWORD" ]; do
    w="\${COMP_WORDS[i]}"
    i=$((i + 1))
    case "$w" in
      -*=*) ;;
      -*) [[ " $valflags " == *" $w "* ]] && i=$((i + 1)) ;;
      *) npos=$((npos + 1)) ;;
    esac
  done
  if [ "$kind" != none ] && { [ "$npos" -eq 0 ] || [ "$repeat" = 1 ]; }; then
    local names IFS=$' \\t\\n'
    names="$(__floka_names "$kind")"
    IFS=$'\\n'
    COMPREPLY=($(compgen -W "$names" -- "$cur"))
    return 0
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}

complete -F _floka floka
`;
}

export function zshScript(
  commands: readonly CliCommand[],
  globals: readonly OptionSpec[] = GLOBAL_OPTIONS,
): string {
  return `#compdef floka
# zsh completion for floka (generated by \`floka completion zsh\`), through zsh's bash layer.
# Load it with:  source <(floka completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(commands, globals).split("\n").filter((l) => !l.startsWith("# ")).join("\n")}`;
}

/** A string for fish, single-quoted. */
function fishQuote(text: string): string {
  return `'${text.replace(/[\\']/g, "\\$&")}'`;
}

export function fishScript(
  commands: readonly CliCommand[],
  globals: readonly OptionSpec[] = GLOBAL_OPTIONS,
): string {
  const entries = completionEntries(commands);
  const top = entries.filter((e) => !e.path.includes(" "));
  const out = [
    "# fish completion for floka (generated by `floka completion fish`)",
    "# Load it with:  floka completion fish | source",
    "",
    "function __floka_names",
    "    set -l cmd (commandline -opc)[1]",
    "    set -l root",
    "    set -l words (commandline -opc)",
    "    if set -l i (contains -i -- --root $words)",
    "        set root --root $words[(math $i + 1)]",
    "    end",
    "    switch $argv[1]",
    "        case container both",
    "            $cmd $root ps -a --format '{{.Names}}' 2>/dev/null",
    "    end",
    "    switch $argv[1]",
    "        case image both",
    "            $cmd $root images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | string match -v '*<none>*'",
    "        case volume",
    "            $cmd $root volume ls -q 2>/dev/null",
    "    end",
    "end",
    "",
    "complete -c floka -f",
  ];
  const option = (cond: string, o: OptionSpec) => {
    const parts = [`complete -c floka -n ${fishQuote(cond)}`, `-l ${o.long}`];
    if (o.short) parts.push(`-s ${o.short}`);
    if (o.value) parts.push(o.choices ? `-x -a ${fishQuote(o.choices.join(" "))}` : "-r");
    parts.push(`-d ${fishQuote(o.help)}`);
    return parts.join(" ");
  };
  for (const o of globals) out.push(option("__fish_use_subcommand", o));
  for (const e of top) {
    out.push(`complete -c floka -n __fish_use_subcommand -a ${e.path} -d ${fishQuote(e.description)}`);
  }
  for (const e of entries) {
    const [cmd, sub] = e.path.split(" ");
    let cond = `__fish_seen_subcommand_from ${cmd}`;
    if (sub) cond += `; and __fish_seen_subcommand_from ${sub}`;
    if (e.subcommands.length) {
      const pick = `${cond}; and not __fish_seen_subcommand_from ${e.subcommands.join(" ")}`;
      for (const s of e.subcommands) {
        const d = entries.find((x) => x.path === `${e.path} ${s}`)?.description ?? "";
        out.push(`complete -c floka -n ${fishQuote(pick)} -a ${s} -d ${fishQuote(d)}`);
      }
      if (!e.options.length) continue;
    }
    for (const o of e.options) out.push(option(cond, o));
    if (e.kind !== "none") out.push(`complete -c floka -n ${fishQuote(cond)} -a '(__floka_names ${e.kind})'`);
  }
  return out.join("\n") + "\n";
}

/** The script for `shell`. */
export function completionScript(
  shell: Shell,
  commands: readonly CliCommand[],
  globals = GLOBAL_OPTIONS,
): string {
  switch (shell) {
    case "bash":
      return bashScript(commands, globals);
    case "zsh":
      return zshScript(commands, globals);
    case "fish":
      return fishScript(commands, globals);
  }
}

export const completionCommand = defineCommand(
  {
    name: "completion",
    usage: "bash|zsh|fish",
    description: "Print a shell completion script",
    minArgs: 1,
    maxArgs: 1,
    options: {},
  },
  async ({ args }) => {
    const shell = args[0] as Shell;
    if (!SHELLS.includes(shell)) {
      throw new FlokaError(
        `unsupported shell ${JSON.stringify(args[0])}: expected one of ${SHELLS.join(", ")}`,
      );
    }
    // Loaded when asked, not imported: program.ts imports this module to register it.
    const { allCommands } = await load<typeof import("./program.ts")>("./program.ts");
    writeStdout(completionScript(shell, await allCommands()));
    return 0;
  },
);
