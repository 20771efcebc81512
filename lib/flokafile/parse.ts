/**
 * `parseFlokafile`: the whole file -> meta ARGs and stages of raw instructions, with every
 * check that needs no variable. Errors are FlokafileErrors located at the instruction's
 * first line; they come in file order.
 */
import { FlokafileError, flokafileError } from "./errors.ts";
import { parseInstruction, stageNameOf } from "./instructions.ts";
import { LineScanner } from "./lines.ts";
import type { Location, ParsedFlokafile, RawInstruction, Stage } from "./types.ts";

// BuildKit names the build context "context"; "scratch" is the empty image.
const RESERVED_STAGE_NAMES = new Set(["scratch", "context"]);

export function parseFlokafile(text: string, file: string): ParsedFlokafile {
  const scanner = new LineScanner(text, file);
  const result: ParsedFlokafile = { escape: scanner.escape, metaArgs: [], stages: [], warnings: [] };
  const stageNames = new Map<string, number>();
  let count = 0;
  for (const line of scanner.logicalLines()) {
    const instr = parseInstruction(line, scanner.escape);
    count++;
    if (instr.name === "FROM") {
      const name = stageNameOf(instr);
      if (name !== undefined) {
        if (RESERVED_STAGE_NAMES.has(name)) {
          throw flokafileError(
            instr.location,
            `${JSON.stringify(name)} is reserved and cannot name a stage`,
            instr.original,
          );
        }
        const previous = stageNames.get(name);
        if (previous !== undefined) {
          throw flokafileError(
            instr.location,
            `duplicate stage name ${JSON.stringify(name)} (first used on line ${previous})`,
            instr.original,
          );
        }
        stageNames.set(name, instr.location.line);
      }
      const stage: Stage = { index: result.stages.length, from: instr, instructions: [] };
      if (name !== undefined) stage.name = name;
      result.stages.push(stage);
    } else if (result.stages.length > 0) {
      result.stages[result.stages.length - 1].instructions.push(instr);
    } else if (instr.name === "ARG") {
      result.metaArgs.push(instr);
    } else {
      throw flokafileError(instr.location, "no build stage in current context", instr.original);
    }
  }
  const end = { file, line: Math.max(1, scanner.lineNumber) };
  if (count === 0) throw flokafileError(end, "file with no instructions");
  if (result.stages.length === 0) {
    throw flokafileError(end, "no stage to build: the file has no FROM instruction");
  }
  result.escape = scanner.escape;
  if (scanner.syntax !== undefined) result.syntax = scanner.syntax;
  if (scanner.check !== undefined) result.check = scanner.check;
  result.warnings = scanner.warnings;
  return result;
}

/**
 * An ONBUILD trigger stored in a base image (`Config.OnBuild`), parsed as BuildKit does when
 * a child image builds FROM it: as a one-instruction file (default escape), located at the
 * child's FROM. FROM, ONBUILD and MAINTAINER cannot be triggers.
 */
export function parseTrigger(trigger: string, at: Location): RawInstruction {
  const scanner = new LineScanner(trigger, at.file);
  let lines;
  try {
    lines = [...scanner.logicalLines()];
  } catch (err) {
    // The scanner locates its errors in the trigger text; they belong at the FROM too.
    if (err instanceof FlokafileError) throw flokafileError(at, err.reason, err.text);
    throw err;
  }
  if (lines.length !== 1) throw flokafileError(at, "onbuild trigger should be a single expression", trigger);
  const instr = parseInstruction({ ...lines[0], location: { ...at } }, scanner.escape);
  if (instr.name === "FROM" || instr.name === "ONBUILD" || instr.name === "MAINTAINER") {
    throw flokafileError(at, `${instr.name} isn't allowed as an ONBUILD trigger`, trigger);
  }
  return instr;
}
