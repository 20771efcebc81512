/**
 * `floka build --dry-run`: the parsed Flokafile as JSON, one object per instruction in
 * order, with its arguments after variable expansion. Nothing is pulled or built, so the
 * variables in scope are the build args, the ARG defaults and the file's own ENVs; the base
 * image's Env is not known here.
 */
import {
  type Command,
  expandInstruction,
  type Heredoc,
  type ParsedFlokafile,
} from "../../lib/flokafile/index.ts";

export interface DryRunInstruction {
  /** 0-based stage; -1 for an ARG before the first FROM. */
  stage: number;
  stageName?: string;
  line: number;
  instruction: string;
  flags: Record<string, string | true>;
  /** Exec form: the array; shell form: the one string; others: the expanded words. */
  args: string[] | string;
  form: "exec" | "shell" | null;
  heredocs: Heredoc[];
  /** The typed command the build engine runs. */
  command: Command;
}

/** The words an instruction's arguments come to after expansion. */
function argsOf(command: Command): string[] | string {
  switch (command.kind) {
    case "RUN":
    case "CMD":
    case "ENTRYPOINT":
      return command.shell ? command.command[0] ?? "" : command.command;
    case "SHELL":
      return command.command;
    case "FROM":
      return command.stageName ? [command.image, "AS", command.stageName] : [command.image];
    case "COPY":
    case "ADD":
      return [...command.sources, command.dest];
    case "ENV":
    case "LABEL":
      return command.pairs.map(([k, v]) => `${k}=${v}`);
    case "ARG":
      return command.args.map((a) => a.value === undefined ? a.name : `${a.name}=${a.value}`);
    case "WORKDIR":
      return [command.path];
    case "USER":
      return [command.user];
    case "EXPOSE":
      return command.ports;
    case "VOLUME":
      return command.paths;
    case "STOPSIGNAL":
      return [command.signal];
    case "HEALTHCHECK":
      return command.test ?? ["NONE"];
    case "ONBUILD":
      return [command.instruction];
    case "MAINTAINER":
      return [command.name];
  }
}

export function dryRun(
  parsed: ParsedFlokafile,
  buildArgs: ReadonlyMap<string, string>,
  target?: string,
): DryRunInstruction[] {
  const out: DryRunInstruction[] = [];
  const meta = new Map<string, string>();
  for (const instr of parsed.metaArgs) {
    const command = expandInstruction(instr, meta, parsed.escape, { buildArgs });
    if (command.kind === "ARG") {
      for (const arg of command.args) if (arg.value !== undefined) meta.set(arg.name, arg.value);
    }
    out.push(entry(-1, undefined, instr, command));
  }
  const last = target === undefined
    ? parsed.stages.length - 1
    : parsed.stages.findIndex((s) => s.name === target.toLowerCase());
  for (const stage of parsed.stages.slice(0, last + 1)) {
    const vars = new Map<string, string>();
    out.push(entry(stage.index, stage.name, stage.from, expandInstruction(stage.from, meta, parsed.escape)));
    for (const instr of stage.instructions) {
      const command = expandInstruction(instr, vars, parsed.escape, { buildArgs });
      if (command.kind === "ARG") {
        for (const arg of command.args) {
          const value = arg.value ?? meta.get(arg.name);
          if (value !== undefined) vars.set(arg.name, value);
        }
      }
      if (command.kind === "ENV") { for (const [k, v] of command.pairs) vars.set(k, v); }
      out.push(entry(stage.index, stage.name, instr, command));
    }
  }
  return out;

  function entry(
    stage: number,
    stageName: string | undefined,
    instr: ParsedFlokafile["stages"][number]["from"],
    command: Command,
  ): DryRunInstruction {
    const hasForm = ["RUN", "CMD", "ENTRYPOINT", "SHELL"].includes(instr.name);
    return {
      stage,
      ...(stageName ? { stageName } : {}),
      line: instr.location.line,
      instruction: instr.name,
      flags: instr.flags,
      args: argsOf(command),
      form: hasForm ? (instr.json ? "exec" : "shell") : null,
      heredocs: "heredocs" in command ? command.heredocs : instr.heredocs,
      command,
    };
  }
}
