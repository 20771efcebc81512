/**
 * The data model of a parsed Flokafile (Dockerfile syntax).
 *
 * Parsing happens in two steps, as in BuildKit: `parseFlokafile` reads the whole file into
 * raw, unexpanded instructions grouped by stage; `expandInstruction` later turns one of them
 * into a typed command with the variables in scope at that point of the build.
 */

/** Where an instruction starts: the file name as given and a 1-based line. */
export interface Location {
  file: string;
  line: number;
  /** The last line of the instruction (continuations, heredoc bodies), when known. */
  endLine?: number;
}

/** A here-document attached to RUN, COPY or ADD (`<<EOF` ... `EOF`). */
export interface Heredoc {
  /** The delimiter word with quotes removed; COPY/ADD use it as the file name. */
  name: string;
  /**
   * The body, every line with its newline. In raw instructions and RUN commands: as written
   * (tabs kept even with `<<-`, because a shell that receives the text applies `<<-` itself).
   * In COPY/ADD commands: the file's final data, tabs stripped for `<<-` and variables
   * expanded when `expand` is set.
   */
  content: string;
  /** False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`, `<<E"O"F`). */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body lines and from the terminator. */
  chomp: boolean;
}

/** One instruction as written, before variable expansion. */
export interface RawInstruction {
  /** Upper-case keyword, e.g. "RUN". */
  name: string;
  /**
   * `--from=x` -> `{ from: "x" }`, `--link` or `--link=true` -> `{ link: true }`; a boolean
   * flag set to false (`--link=false`) is left out. Values have their quotes removed.
   */
  flags: Record<string, string | true>;
  /**
   * Exec/JSON form: the array. Shell form of RUN, CMD, ENTRYPOINT: `[rest of the line]`.
   * Other instructions: the words, quotes kept as written:
   * - FROM, EXPOSE, COPY, ADD, VOLUME (non-JSON): split at whitespace;
   * - ENV, LABEL: `["k=v", ...]`, or `[key, value]` for the legacy `ENV key value` form
   *   (told apart by the first element: it contains `=` only in the `k=v` form);
   * - ARG: `["NAME", "NAME=default", ...]`;
   * - WORKDIR, USER, STOPSIGNAL, MAINTAINER: `[rest of the line]`;
   * - HEALTHCHECK: `[TYPE, ...command]` where the command is a JSON array or `[rest]`;
   * - ONBUILD: `[the trigger text]` (also parsed into `onbuild`).
   */
  args: string[];
  /** Exec (JSON array) form. */
  json: boolean;
  heredocs: Heredoc[];
  /** The instruction as written (continuations joined, trimmed), for messages and history. */
  original: string;
  location: Location;
  /** For ONBUILD: the trigger instruction. */
  onbuild?: RawInstruction;
}

/** A build stage: a FROM and the instructions up to the next FROM. */
export interface Stage {
  /** 0-based position in the file (what `COPY --from=0` refers to). */
  index: number;
  /** The `AS` name, lower-cased as Docker does. */
  name?: string;
  from: RawInstruction;
  instructions: RawInstruction[];
}

/** Something Docker accepts but warns about (e.g. an empty continuation line). */
export interface Warning {
  message: string;
  location: Location;
}

export interface ParsedFlokafile {
  /** The escape character: `\` or, with `# escape=\``, a backtick. */
  escape: string;
  /** The `# syntax=` directive's value, if any (recorded, not acted on). */
  syntax?: string;
  /** The `# check=` directive's value, if any (recorded, not acted on). */
  check?: string;
  /** ARG instructions before the first FROM. */
  metaArgs: RawInstruction[];
  stages: Stage[];
  warnings: Warning[];
}

/** A duration in nanoseconds, as in Docker's image config. */
export type Nanoseconds = number;

export interface RunCommand {
  kind: "RUN";
  /** Shell form: `command` is `[the string]` and the engine prepends the SHELL. */
  shell: boolean;
  command: string[];
  /** As written (see `Heredoc.content`); `runHeredocPlan` says how BuildKit runs them. */
  heredocs: Heredoc[];
  network?: "none" | "host" | "default";
}

export interface CopyCommand {
  kind: "COPY" | "ADD";
  /**
   * Expanded source paths in order. A source written as a heredoc (`<<EOF`) appears as its
   * name and has an entry with that name in `heredocs` holding the file's data.
   */
  sources: string[];
  dest: string;
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** The inline sources, content final (tabs stripped for `<<-`, expanded if `expand`). */
  heredocs: Heredoc[];
  checksum?: string;
}

export interface ArgDefinition {
  name: string;
  /** The default, expanded; absent without one, or when a build arg overrides it. */
  default?: string;
  /**
   * The value the ARG takes: the build arg passed in `options.buildArgs` if any, else the
   * default. Absent if neither: then the engine applies a meta ARG's value, as Docker does.
   */
  value?: string;
}

export interface HealthcheckCommand extends HealthcheckConfig {
  kind: "HEALTHCHECK";
}

/** Docker's HealthcheckConfig, as a HEALTHCHECK instruction gives it. */
export interface HealthcheckConfig {
  /**
   * Docker's `Healthcheck.Test`: `["CMD", ...args]` (exec form) or `["CMD-SHELL", "cmd"]`
   * (shell form); null for `HEALTHCHECK NONE` (Docker stores `["NONE"]`).
   */
  test: string[] | null;
  /** Durations in ns; absent when not given or zero (Docker's defaults then apply). */
  interval?: Nanoseconds;
  timeout?: Nanoseconds;
  startPeriod?: Nanoseconds;
  startInterval?: Nanoseconds;
  retries?: number;
}

/** An instruction with its variables expanded, ready for the build engine. */
export type Command =
  | { kind: "FROM"; image: string; stageName?: string; platform?: string }
  | RunCommand
  | { kind: "CMD" | "ENTRYPOINT"; shell: boolean; command: string[] }
  | { kind: "SHELL"; command: string[] }
  | CopyCommand
  | { kind: "ENV"; pairs: [string, string][] }
  | { kind: "ARG"; args: ArgDefinition[] }
  | { kind: "LABEL"; pairs: [string, string][] }
  | { kind: "WORKDIR"; path: string }
  | { kind: "USER"; user: string }
  /** Normalized "80/tcp"; ranges are listed port by port; no duplicates. */
  | { kind: "EXPOSE"; ports: string[] }
  | { kind: "VOLUME"; paths: string[] }
  | { kind: "STOPSIGNAL"; signal: string }
  | HealthcheckCommand
  /** The text after ONBUILD, with any heredoc bodies, as Docker stores it in OnBuild. */
  | { kind: "ONBUILD"; instruction: string }
  | { kind: "MAINTAINER"; name: string };

/** Variables in scope: build args and ENV so far, including the base image's Env. */
export type Vars = ReadonlyMap<string, string>;

export interface ExpandOptions {
  /**
   * Build args given by the user (`--build-arg`). Only ARG uses them: a given build arg
   * replaces the default, which is then not evaluated, and later ARGs of the same
   * instruction see it.
   */
  buildArgs?: ReadonlyMap<string, string>;
}
