/**
 * Docker-style command lines: `floka [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS`, with
 * pflag's conventions (`-e X`, `-eX`, `--env X`, `--env=X`, combined short flags `-it`,
 * `--` to end options, `--flag=false`) and Docker's wording for errors and help.
 *
 * Floka parses its own command line instead of using commander: loading any npm package
 * in Deno starts its Node compatibility layer, 35-40 ms measured here, which would be
 * paid on every `floka run` and alone exceed the start-time budget.
 */
import { FlokaError } from "./errors.ts";

export interface OptionSpec {
  short?: string;
  long: string;
  /** Placeholder of the option's value (`KEY=VALUE`); a boolean flag has none. */
  value?: string;
  /** Collects every occurrence into an array. */
  repeatable?: boolean;
  default?: string;
  choices?: readonly string[];
  help: string;
}

export interface CommandSpec {
  name: string;
  /** Arguments part of the usage line: `[OPTIONS] IMAGE [COMMAND] [ARG...]`. */
  usage: string;
  description: string;
  options: Readonly<Record<string, OptionSpec>>;
  /** Fewest and most positional arguments (Infinity for no limit). */
  minArgs: number;
  maxArgs: number;
  /** Options end at the first positional argument: the rest is the container's command. */
  optionsBeforeArgsOnly?: boolean;
}

type OptionValue<O extends OptionSpec> = O extends { value: string }
  ? O extends { repeatable: true } ? string[] : O extends { default: string } ? string : string | undefined
  : boolean;

export type ParsedOptions<S extends CommandSpec> = {
  -readonly [K in keyof S["options"]]: OptionValue<S["options"][K]>;
};

export interface Parsed<S extends CommandSpec> {
  options: ParsedOptions<S>;
  args: string[];
  /** `--help` was given. */
  help: boolean;
}

/** A mistake on the command line: Docker prints it with a pointer to --help and exits 125. */
export class UsageError extends FlokaError {
  constructor(message: string, readonly command: string) {
    super(message);
  }
}

const BOOLEAN_TEXT: Readonly<Record<string, boolean>> = { true: true, "1": true, false: false, "0": false };

/** Parses `argv` (everything after the command's name) against `spec`. */
export function parseCommandLine<S extends CommandSpec>(spec: S, argv: readonly string[]): Parsed<S> {
  const entries = Object.entries(spec.options);
  const byLong = new Map(entries.map(([key, o]) => [o.long, [key, o] as const]));
  const byShort = new Map(
    entries.filter(([, o]) => o.short).map(([key, o]) => [o.short!, [key, o] as const]),
  );
  const options: Record<string, string | boolean | string[] | undefined> = {};
  for (const [key, o] of entries) options[key] = o.value ? (o.repeatable ? [] : o.default) : false;
  const args: string[] = [];
  let help = false;
  const fail = (message: string): never => {
    throw new UsageError(message, spec.name);
  };

  const set = (key: string, o: OptionSpec, value: string | undefined, shown: string) => {
    if (!o.value) {
      const flag = value === undefined ? true : BOOLEAN_TEXT[value];
      if (flag === undefined) fail(`invalid argument "${value}" for "${shown}" flag: expected true or false`);
      options[key] = flag;
      return;
    }
    if (value === undefined) return fail(`flag needs an argument: ${shown}`);
    if (o.choices && !o.choices.includes(value)) {
      fail(`invalid argument "${value}" for "${shown}" flag: must be one of ${o.choices.join(", ")}`);
    }
    if (o.repeatable) (options[key] as string[]).push(value);
    else options[key] = value;
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      if (name === "help") {
        help = true;
        continue;
      }
      const found = byLong.get(name);
      if (!found) fail(`unknown flag: --${name}`);
      const [key, o] = found!;
      const inline = eq === -1 ? undefined : arg.slice(eq + 1);
      set(key, o, inline ?? (o.value ? argv[++i] : undefined), `--${name}`);
    } else if (arg.startsWith("-") && arg !== "-") {
      // A group of short flags; a flag that takes a value takes the rest of the group or the next word.
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j];
        const found = byShort.get(c);
        if (!found && c === "h") {
          help = true;
          continue;
        }
        if (!found) fail(`unknown shorthand flag: '${c}' in ${arg}`);
        const [key, o] = found!;
        if (o.value) {
          set(key, o, j + 1 < arg.length ? arg.slice(j + 1) : argv[++i], `-${c}, --${o.long}`);
          break;
        }
        set(key, o, undefined, `-${c}`);
      }
    } else {
      args.push(arg);
      if (spec.optionsBeforeArgsOnly) {
        args.push(...argv.slice(i + 1));
        break;
      }
    }
  }
  if (!help) checkArgCount(spec, args.length);
  return { options: options as ParsedOptions<S>, args, help };
}

function checkArgCount(spec: CommandSpec, count: number): void {
  const plural = (n: number) => `${n} argument${n === 1 ? "" : "s"}`;
  const fail = (message: string) => {
    throw new UsageError(message, spec.name);
  };
  if (spec.maxArgs === 0 && count > 0) fail(`"floka ${spec.name}" accepts no arguments.`);
  if (spec.minArgs === spec.maxArgs && count !== spec.minArgs) {
    fail(`"floka ${spec.name}" requires exactly ${plural(spec.minArgs)}.`);
  }
  if (count < spec.minArgs) fail(`"floka ${spec.name}" requires at least ${plural(spec.minArgs)}.`);
  if (count > spec.maxArgs) fail(`"floka ${spec.name}" requires at most ${plural(spec.maxArgs)}.`);
}

/** The options part of a help text, aligned as Docker aligns it. */
export function formatOptions(options: readonly OptionSpec[]): string {
  const left = options.map((o) => {
    const flags = `${o.short ? `-${o.short}, ` : "    "}--${o.long}`;
    return o.value ? `${flags} ${o.value}` : flags;
  });
  const width = Math.max(...left.map((l) => l.length));
  return options.map((o, i) => {
    const extra = o.default !== undefined ? ` (default "${o.default}")` : "";
    return `  ${left[i].padEnd(width)}   ${o.help}${extra}`;
  }).join("\n");
}

/** `floka COMMAND --help`. */
export function formatCommandHelp(spec: CommandSpec): string {
  const options = Object.values(spec.options);
  return [
    `Usage:  floka ${spec.name} ${spec.usage}`,
    "",
    spec.description,
    "",
    "Options:",
    formatOptions([...options, { long: "help", help: "Print usage" }]),
    "",
  ].join("\n");
}
