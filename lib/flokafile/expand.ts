/**
 * `expandInstruction`: a raw instruction and the variables in scope at that point of the
 * build -> a typed command.
 *
 * What BuildKit expands: FROM (image, --platform; with meta ARGs), COPY/ADD (sources, dest,
 * --chown, --chmod, --checksum, and bodies of unquoted heredocs), ENV and LABEL (keys and
 * values), ARG defaults, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL. What it leaves alone:
 * RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK (the shell expands at run time), MAINTAINER,
 * ONBUILD (expanded when a child image runs the trigger) and COPY --from.
 */
import { flokafileError } from "./errors.ts";
import { chompHeredoc } from "./heredoc.ts";
import {
  argDefinitions,
  checkPort,
  copySources,
  healthcheckOf,
  nameValuePairs,
  stageNameOf,
} from "./instructions.ts";
import { expandWord, expandWords, expandWordWith } from "./substitute.ts";
import type { ArgDefinition, Command, ExpandOptions, Heredoc, RawInstruction, Vars } from "./types.ts";

export function expandInstruction(
  instr: RawInstruction,
  vars: Vars,
  escape: string,
  options: ExpandOptions = {},
): Command {
  const word = (text: string) => expandWord(text, vars, escape, instr.location);
  const copyHeredocs = (docs: Heredoc[]) => docs.map((d) => ({ ...d }));
  switch (instr.name) {
    case "FROM": {
      const image = word(instr.args[0]);
      if (image === "") {
        throw flokafileError(
          instr.location,
          `base name (${instr.args[0]}) should not be blank`,
          instr.original,
        );
      }
      const command: Command = { kind: "FROM", image };
      const stageName = stageNameOf(instr);
      if (stageName !== undefined) command.stageName = stageName;
      if (typeof instr.flags.platform === "string") {
        const platform = word(instr.flags.platform);
        if (platform === "") {
          throw flokafileError(instr.location, "empty platform value from expression", instr.flags.platform);
        }
        command.platform = platform;
      }
      return command;
    }
    case "RUN": {
      const command: Command = {
        kind: "RUN",
        shell: !instr.json,
        command: [...instr.args],
        heredocs: copyHeredocs(instr.heredocs),
      };
      const network = instr.flags.network;
      if (network === "none" || network === "host" || network === "default") command.network = network;
      return command;
    }
    case "CMD":
    case "ENTRYPOINT":
      return { kind: instr.name, shell: !instr.json, command: [...instr.args] };
    case "SHELL":
      return { kind: "SHELL", command: [...instr.args] };
    case "COPY":
    case "ADD":
      return expandCopy(instr, vars, escape);
    case "ENV":
    case "LABEL":
      return {
        kind: instr.name,
        pairs: nameValuePairs(instr).map(([k, v]): [string, string] => [word(k), word(v)]),
      };
    case "ARG":
      return { kind: "ARG", args: expandArgs(instr, vars, escape, options) };
    case "WORKDIR":
      return { kind: "WORKDIR", path: word(instr.args[0]) };
    case "USER":
      return { kind: "USER", user: word(instr.args[0]) };
    case "STOPSIGNAL":
      return { kind: "STOPSIGNAL", signal: word(instr.args[0]) };
    case "EXPOSE": {
      const ports = new Set<string>();
      for (const raw of instr.args) {
        for (const port of expandWords(raw, vars, escape, instr.location)) {
          for (const normalized of checkPort(instr, port)) ports.add(normalized);
        }
      }
      return { kind: "EXPOSE", ports: [...ports] };
    }
    case "VOLUME": {
      const paths = instr.args.map(word);
      if (paths.some((p) => p.trim() === "")) {
        throw flokafileError(instr.location, "VOLUME specified can not be an empty string", instr.original);
      }
      return { kind: "VOLUME", paths };
    }
    case "HEALTHCHECK":
      return { kind: "HEALTHCHECK", ...healthcheckOf(instr) };
    case "ONBUILD": {
      // What Docker stores in the image's OnBuild: the trigger text and its heredoc bodies.
      let text = instr.original.replace(/^\s*ONBUILD\s*/i, "");
      for (const doc of instr.heredocs) text += `\n${doc.content}${doc.name}`;
      return { kind: "ONBUILD", instruction: text };
    }
    case "MAINTAINER":
      return { kind: "MAINTAINER", name: instr.args[0] };
    default:
      throw flokafileError(instr.location, "unknown instruction", instr.original);
  }
}

function expandCopy(instr: RawInstruction, vars: Vars, escape: string): Command {
  const word = (text: string) => expandWord(text, vars, escape, instr.location);
  const { sources, dest } = copySources(instr);
  const heredocs: Heredoc[] = [];
  const paths = sources.map((source) => {
    if (!source.heredoc) return word(source.word);
    const doc = source.heredoc;
    let content = doc.chomp ? chompHeredoc(doc.content) : doc.content;
    if (doc.expand) {
      // BuildKit expands bodies with `\` as escape and quotes as plain text.
      content = expandWordWith(
        content,
        (name) => vars.get(name),
        { escape: "\\", skipProcessQuotes: true },
        instr.location,
      );
    }
    heredocs.push({ ...doc, content });
    return doc.name;
  });
  const command: Command = {
    kind: instr.name as "COPY" | "ADD",
    sources: paths,
    dest: word(dest),
    link: instr.flags.link === true,
    heredocs,
  };
  if (typeof instr.flags.from === "string") command.from = instr.flags.from;
  for (const flag of ["chown", "chmod", "checksum"] as const) {
    const value = instr.flags[flag];
    if (typeof value !== "string") continue;
    const expanded = word(value);
    if (expanded !== "") command[flag] = expanded;
  }
  return command;
}

/**
 * ARG values, one after the other: a later default sees the earlier ARGs (`ARG A=1 B=$A`),
 * and a default overridden by a build arg is not evaluated at all.
 */
function expandArgs(
  instr: RawInstruction,
  vars: Vars,
  escape: string,
  options: ExpandOptions,
): ArgDefinition[] {
  const local = new Map<string, string>();
  const lookup = (name: string) => local.get(name) ?? vars.get(name);
  return argDefinitions(instr).map((arg) => {
    const result: ArgDefinition = { name: arg.name };
    const given = options.buildArgs?.get(arg.name);
    if (given !== undefined) {
      result.value = given;
    } else if (arg.default !== undefined) {
      result.default = expandWordWith(arg.default, lookup, { escape }, instr.location);
      result.value = result.default;
    }
    if (result.value !== undefined) local.set(arg.name, result.value);
    return result;
  });
}
