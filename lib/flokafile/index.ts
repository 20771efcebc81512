/**
 * The Flokafile (Dockerfile syntax) parser: pure functions, text in, data out.
 *
 * ```ts
 * const parsed = parseFlokafile(text, "Flokafile");
 * for (const stage of parsed.stages) {
 *   for (const instr of stage.instructions) {
 *     const command = expandInstruction(instr, varsInScope, parsed.escape);
 *   }
 * }
 * ```
 */
export { FlokafileError } from "./errors.ts";
export { parseFlokafile, parseTrigger } from "./parse.ts";
export { expandInstruction } from "./expand.ts";
export { expandWord, expandWords } from "./substitute.ts";
export { chompHeredoc, runHeredocPlan } from "./heredoc.ts";
export type { RunHeredocPlan } from "./heredoc.ts";
export { INSTRUCTIONS } from "./instructions.ts";
export type {
  ArgDefinition,
  Command,
  CopyCommand,
  ExpandOptions,
  HealthcheckCommand,
  Heredoc,
  Location,
  Nanoseconds,
  ParsedFlokafile,
  RawInstruction,
  RunCommand,
  Stage,
  Vars,
  Warning,
} from "./types.ts";
