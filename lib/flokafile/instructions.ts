/**
 * One logical line -> one RawInstruction, with every check BuildKit makes before variables
 * are known: the keyword, its flags, the number and shape of its arguments.
 *
 * Floka rejects, with a clear error, the BuildKit features it does not implement
 * (`RUN --mount`, `COPY --parents`, `ADD --keep-git-dir`...), instead of ignoring them.
 */
import { flokafileError } from "./errors.ts";
import { parseHeredocWord } from "./heredoc.ts";
import { processWord, processWords } from "./lex.ts";
import type { LogicalLine } from "./lines.ts";
import { checkWordSyntax } from "./substitute.ts";
import type { HealthcheckConfig, Heredoc, RawInstruction } from "./types.ts";
import { parseExposedPort, parseGoDuration, PortError } from "./values.ts";
import {
  NotStringArrayError,
  parseJsonArray,
  parseWords,
  splitLine,
  splitWhitespace,
  trimSpace,
} from "./words.ts";

type FlagKind = "string" | "bool" | "strings";

interface FlagSpec {
  kind: FlagKind;
  /** Known to Docker but not implemented by Floka: using it is an error. */
  unsupported?: boolean;
}

const HEALTHCHECK_FLAGS: Record<string, FlagSpec> = {
  interval: { kind: "string" },
  timeout: { kind: "string" },
  "start-period": { kind: "string" },
  "start-interval": { kind: "string" },
  retries: { kind: "string" },
};

const FLAGS: Readonly<Record<string, Record<string, FlagSpec>>> = {
  FROM: { platform: { kind: "string" } },
  RUN: {
    network: { kind: "string" },
    mount: { kind: "strings", unsupported: true },
    security: { kind: "string", unsupported: true },
    device: { kind: "strings", unsupported: true },
  },
  COPY: {
    from: { kind: "string" },
    chown: { kind: "string" },
    chmod: { kind: "string" },
    link: { kind: "bool" },
    parents: { kind: "bool", unsupported: true },
    exclude: { kind: "strings", unsupported: true },
  },
  ADD: {
    chown: { kind: "string" },
    chmod: { kind: "string" },
    link: { kind: "bool" },
    checksum: { kind: "string" },
    "keep-git-dir": { kind: "bool", unsupported: true },
    unpack: { kind: "bool", unsupported: true },
    exclude: { kind: "strings", unsupported: true },
  },
  HEALTHCHECK: HEALTHCHECK_FLAGS,
};

type ArgParser = (raw: RawInstruction, rest: string, escape: string) => void;

const PARSERS: Readonly<Record<string, ArgParser>> = {
  FROM: parseFrom,
  RUN: parseRun,
  CMD: parseCmdOrEntrypoint,
  ENTRYPOINT: parseCmdOrEntrypoint,
  SHELL: parseShell,
  COPY: parseCopyOrAdd,
  ADD: parseCopyOrAdd,
  ENV: parseNameValue,
  LABEL: parseNameValue,
  ARG: parseArg,
  WORKDIR: parseSingleString,
  USER: parseSingleString,
  STOPSIGNAL: parseSingleString,
  MAINTAINER: parseSingleString,
  EXPOSE: parseExpose,
  VOLUME: parseVolume,
  HEALTHCHECK: parseHealthcheck,
  ONBUILD: parseOnbuild,
};

/** Instruction keywords Floka knows, upper-case. */
export const INSTRUCTIONS: readonly string[] = Object.keys(PARSERS);

/** Parse and check one instruction (not its place in the file: see parse.ts). */
export function parseInstruction(line: LogicalLine, escape: string): RawInstruction {
  const { keyword, flags, rest } = splitLine(line.text, escape);
  const name = keyword.toUpperCase();
  const raw: RawInstruction = {
    name,
    flags: {},
    args: [],
    json: false,
    heredocs: line.heredocs,
    original: trimSpace(line.text),
    location: line.location,
  };
  const parser = PARSERS[name];
  if (!parser) throw flokafileError(raw.location, "unknown instruction", raw.original);
  raw.flags = parseFlags(raw, flags, FLAGS[name] ?? {});
  try {
    parser(raw, rest, escape);
  } catch (err) {
    if (err instanceof NotStringArrayError) throw fail(raw, err.message);
    throw err;
  }
  return raw;
}

function fail(raw: RawInstruction, reason: string, offending: string = raw.original) {
  return flokafileError(raw.location, reason, offending);
}

/** Docker's BFlags rules: `--name=value`, `--bool[=true|false]`, no unknown or repeated flag. */
function parseFlags(
  raw: RawInstruction,
  words: string[],
  specs: Record<string, FlagSpec>,
): Record<string, string | true> {
  const flags: Record<string, string | true> = {};
  const seen = new Set<string>();
  for (const word of words) {
    const eq = word.indexOf("=");
    const flagName = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    const key = flagName.slice(2);
    const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
    if (!spec) throw fail(raw, "unknown flag", flagName);
    if (seen.has(key) && spec.kind !== "strings") throw fail(raw, "duplicate flag specified", flagName);
    seen.add(key);
    if (spec.kind === "bool") {
      if (value === "") throw fail(raw, "missing a value on flag", flagName);
      const lower = value?.toLowerCase() ?? "true";
      if (lower !== "true" && lower !== "false") {
        throw fail(raw, `expecting boolean value for flag ${flagName}, not`, value ?? "");
      }
      if (lower === "false") continue;
      if (spec.unsupported) throw fail(raw, `${raw.name} ${flagName} is not supported by Floka`, word);
      flags[key] = true;
    } else {
      if (value === undefined) throw fail(raw, "missing a value on flag", flagName);
      if (spec.unsupported) throw fail(raw, `${raw.name} ${flagName} is not supported by Floka`, word);
      flags[key] = value;
    }
  }
  return flags;
}

/** Exec form when the text is a JSON array of strings, else the text as one shell string. */
function maybeJson(raw: RawInstruction, rest: string): void {
  if (rest === "") return;
  const array = parseJsonArray(rest);
  raw.json = array !== null;
  raw.args = array ?? [rest];
}

/** Exec form when JSON, else whitespace-separated words (COPY, ADD, VOLUME). */
function maybeJsonList(raw: RawInstruction, rest: string): void {
  const array = parseJsonArray(rest);
  raw.json = array !== null;
  raw.args = array ?? splitWhitespace(rest);
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(raw: RawInstruction, rest: string, escape: string): void {
  raw.args = splitWhitespace(rest);
  const n = raw.args.length;
  if (!(n === 1 || (n === 3 && raw.args[1].toLowerCase() === "as"))) {
    throw fail(raw, "FROM requires either one or three arguments");
  }
  if (n === 3 && !STAGE_NAME.test(raw.args[2].toLowerCase())) {
    throw fail(
      raw,
      "invalid name for build stage (it must start with a letter; then a-z 0-9 - _ .)",
      raw.args[2],
    );
  }
  checkWordSyntax(raw.args[0], escape, raw.location);
  if (typeof raw.flags.platform === "string") checkWordSyntax(raw.flags.platform, escape, raw.location);
}

/** The `AS` name of a FROM, lower-cased as Docker does. */
export function stageNameOf(from: RawInstruction): string | undefined {
  return from.args.length === 3 ? from.args[2].toLowerCase() : undefined;
}

const NETWORKS = new Set(["default", "none", "host"]);

function parseRun(raw: RawInstruction, rest: string): void {
  maybeJson(raw, rest);
  if (raw.args.length === 0) throw fail(raw, "RUN requires at least one argument");
  const network = raw.flags.network;
  if (network !== undefined && !NETWORKS.has(String(network))) {
    throw fail(raw, "invalid network mode (use default, none or host)", `--network=${network}`);
  }
}

function parseCmdOrEntrypoint(raw: RawInstruction, rest: string): void {
  maybeJson(raw, rest);
  // `CMD []` clears the command; a bare `CMD` would run the shell with nothing to do.
  if (!raw.json && raw.args.length === 0) throw fail(raw, `${raw.name} requires at least one argument`);
}

function parseShell(raw: RawInstruction, rest: string): void {
  maybeJson(raw, rest);
  if (raw.args.length === 0) throw fail(raw, "SHELL requires at least one argument");
  if (!raw.json) throw fail(raw, "SHELL requires the arguments to be in JSON form");
}

function parseCopyOrAdd(raw: RawInstruction, rest: string, escape: string): void {
  maybeJsonList(raw, rest);
  if (raw.args.length < 2) {
    throw fail(
      raw,
      `${raw.name} requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  }
  const dest = raw.args[raw.args.length - 1];
  if (isHeredocWord(dest)) throw fail(raw, `${raw.name} cannot accept a heredoc as a destination`, dest);
  if (raw.flags.from === "") delete raw.flags.from; // `--from=` means no --from, as in Docker
  const from = raw.flags.from;
  if (typeof from === "string") {
    // Docker resolves --from before any variable is known.
    let unchanged: boolean;
    try {
      unchanged = processWord(from, () => undefined, { escape }) === from;
    } catch {
      unchanged = false;
    }
    if (!unchanged) {
      throw fail(
        raw,
        "variable expansion is not supported for --from (use FROM with a global ARG instead)",
        `--from=${from}`,
      );
    }
  }
  for (const source of copySources(raw).sources) {
    if (!source.heredoc) checkWordSyntax(source.word, escape, raw.location);
  }
  checkWordSyntax(dest, escape, raw.location);
  for (const flag of ["chown", "chmod", "checksum"]) {
    const value = raw.flags[flag];
    if (typeof value === "string") checkWordSyntax(value, escape, raw.location);
  }
}

function isHeredocWord(word: string): boolean {
  try {
    return parseHeredocWord(word) !== null;
  } catch {
    return false;
  }
}

/** COPY/ADD sources as written; a `<<EOF` source refers to the heredoc of that name. */
export function copySources(
  raw: RawInstruction,
): { sources: { word: string; heredoc?: Heredoc }[]; dest: string } {
  const words = raw.args.slice(0, -1);
  const sources = words.map((word) => {
    let parsed = null;
    try {
      parsed = parseHeredocWord(word);
    } catch {
      // not a heredoc: a path with odd quotes
    }
    const doc = parsed && raw.heredocs.findLast((h) => h.name === parsed.name);
    // The source word decides chomp and expand, as in BuildKit.
    return doc && parsed
      ? { word, heredoc: { ...doc, chomp: parsed.chomp, expand: parsed.expand } }
      : { word };
  });
  return { sources, dest: raw.args[raw.args.length - 1] };
}

/**
 * ENV and LABEL: `KEY value...` (legacy: one pair, the value is the rest of the line) or
 * `K=V K2="v 2"`, decided by whether the first word holds a `=`.
 */
function parseNameValue(raw: RawInstruction, rest: string, escape: string): void {
  const words = parseWords(rest, escape);
  if (words.length === 0) throw fail(raw, `${raw.name} requires at least one argument`);
  if (!words[0].includes("=")) {
    const m = /[\t\v\f\r ]+/.exec(rest);
    if (!m) {
      throw fail(
        raw,
        `${raw.name} must have two arguments (${raw.name} name=value, or ${raw.name} name value)`,
      );
    }
    raw.args = [rest.slice(0, m.index), rest.slice(m.index + m[0].length)];
  } else {
    for (const word of words) {
      if (!word.includes("=")) {
        throw fail(
          raw,
          `syntax error: can't find = in ${JSON.stringify(word)}, must be of the form: name=value`,
          word,
        );
      }
      if (word.startsWith("=")) throw fail(raw, `${raw.name} names can not be blank`, word);
    }
    raw.args = words;
  }
  for (const [key, value] of nameValuePairs(raw)) {
    checkWordSyntax(key, escape, raw.location);
    checkWordSyntax(value, escape, raw.location);
  }
}

/** ENV/LABEL pairs as written (not expanded). */
export function nameValuePairs(raw: RawInstruction): [string, string][] {
  if (raw.args.length > 0 && !raw.args[0].includes("=")) return [[raw.args[0], raw.args[1] ?? ""]];
  return raw.args.map((word) => {
    const eq = word.indexOf("=");
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
}

function parseArg(raw: RawInstruction, rest: string, escape: string): void {
  raw.args = parseWords(rest, escape);
  if (raw.args.length === 0) throw fail(raw, "ARG requires at least one argument");
  for (const word of raw.args) {
    if (word.startsWith("=")) throw fail(raw, "ARG names can not be blank", word);
  }
}

/** ARG words as [name, default]; the default is not expanded. */
export function argDefinitions(raw: RawInstruction): { name: string; default?: string }[] {
  return raw.args.map((word) => {
    const eq = word.indexOf("=");
    return eq < 0 ? { name: word } : { name: word.slice(0, eq), default: word.slice(eq + 1) };
  });
}

/** WORKDIR, USER, STOPSIGNAL, MAINTAINER take the rest of the line as one value. */
function parseSingleString(raw: RawInstruction, rest: string, escape: string): void {
  if (rest === "") throw fail(raw, `${raw.name} requires exactly one argument`);
  raw.args = [rest];
  if (raw.name !== "MAINTAINER") checkWordSyntax(rest, escape, raw.location);
}

function parseExpose(raw: RawInstruction, rest: string, escape: string): void {
  raw.args = splitWhitespace(rest);
  if (raw.args.length === 0) throw fail(raw, "EXPOSE requires at least one argument");
  for (const word of raw.args) {
    checkWordSyntax(word, escape, raw.location);
    // Without variables the ports are known now: check them before the build starts.
    if (!word.includes("$")) {
      for (const port of processWords(word, () => undefined, { escape })) checkPort(raw, port);
    }
  }
}

/** The normalized ports of one EXPOSE entry, as a located error if invalid. */
export function checkPort(raw: RawInstruction, port: string): string[] {
  try {
    return parseExposedPort(port);
  } catch (err) {
    if (err instanceof PortError) throw fail(raw, err.reason, err.text);
    throw err;
  }
}

function parseVolume(raw: RawInstruction, rest: string, escape: string): void {
  maybeJsonList(raw, rest);
  if (raw.args.length === 0) throw fail(raw, "VOLUME requires at least one argument");
  for (const path of raw.args) {
    if (trimSpace(path) === "") throw fail(raw, "VOLUME specified can not be an empty string");
    checkWordSyntax(path, escape, raw.location);
  }
}

// Go's unicode.IsSpace, trimSpace's set: with JavaScript's \s (U+FEFF in), nothing matched.
const GO_SPACE = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const HEALTHCHECK_TYPE = new RegExp(`^([^${GO_SPACE}]+)[${GO_SPACE}]*([^]*)$`);

function parseHealthcheck(raw: RawInstruction, rest: string): void {
  if (rest === "") throw fail(raw, "HEALTHCHECK requires at least one argument");
  const m = HEALTHCHECK_TYPE.exec(rest) as RegExpExecArray;
  const [, type, commandText] = m;
  const upper = type.toUpperCase();
  if (upper === "NONE") {
    if (commandText !== "") throw fail(raw, "HEALTHCHECK NONE takes no arguments");
    raw.args = [type];
    return;
  }
  if (upper !== "CMD") throw fail(raw, `unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`, type);
  const array = commandText === "" ? null : parseJsonArray(commandText);
  raw.json = array !== null;
  const command = array ?? (commandText === "" ? [] : [commandText]);
  if (command.length === 0) throw fail(raw, "missing command after HEALTHCHECK CMD");
  raw.args = [type, ...command];
  healthcheckOf(raw); // check the flags now; nothing in them is expanded
}

const MIN_INTERVAL_NS = 1e6;

/** Docker's HealthcheckConfig from a parsed HEALTHCHECK (durations in ns). */
export function healthcheckOf(raw: RawInstruction): HealthcheckConfig {
  if (raw.args[0].toUpperCase() === "NONE") return { test: null };
  const config: HealthcheckConfig = {
    test: raw.json ? ["CMD", ...raw.args.slice(1)] : ["CMD-SHELL", raw.args[1]],
  };
  const durations = [
    ["interval", "interval"],
    ["timeout", "timeout"],
    ["start-period", "startPeriod"],
    ["start-interval", "startInterval"],
  ] as const;
  for (const [flag, field] of durations) {
    const text = raw.flags[flag];
    if (typeof text !== "string" || text === "") continue;
    const ns = parseGoDuration(text);
    if (ns === null) throw fail(raw, `invalid duration for --${flag} (e.g. 30s, 1m30s, 500ms)`, text);
    if (ns !== 0 && ns < MIN_INTERVAL_NS) throw fail(raw, `--${flag} cannot be less than 1ms`, text);
    if (ns !== 0) config[field] = ns;
  }
  const retries = raw.flags.retries;
  if (typeof retries === "string" && retries !== "") {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw fail(raw, "invalid value for --retries", retries);
    }
    const n = Number(retries);
    if (n < 0) throw fail(raw, `--retries cannot be negative (${n})`, retries);
    if (n !== 0) config.retries = n;
  }
  return config;
}

function parseOnbuild(raw: RawInstruction, rest: string, escape: string): void {
  if (rest === "") throw fail(raw, "ONBUILD requires at least one argument");
  const trigger = splitLine(rest, escape).keyword.toUpperCase();
  if (trigger === "ONBUILD") throw fail(raw, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
  if (trigger === "FROM" || trigger === "MAINTAINER") {
    throw fail(raw, `${trigger} isn't allowed as an ONBUILD trigger`);
  }
  raw.args = [rest];
  // Docker checks the trigger only when a child image runs it; checking now finds typos sooner.
  raw.onbuild = parseInstruction({ text: rest, location: raw.location, heredocs: raw.heredocs }, escape);
}
