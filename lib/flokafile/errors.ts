/** The one error type of the Flokafile parser, with a `FILE:LINE: what: text` message. */
import { FlokaError } from "../errors.ts";
import type { Location } from "./types.ts";

const MAX_SHOWN = 80;

/** A Flokafile the parser or the expansion rejects; the message is one line. */
export class FlokafileError extends FlokaError {
  constructor(
    message: string,
    /** What is wrong, without location or offending text. */
    readonly reason: string,
    readonly location?: Location,
    /** The offending text as shown in the message (shortened). */
    readonly text?: string,
  ) {
    super(message);
    this.name = "FlokafileError";
  }
}

/** Shorten the offending text to one line of at most ~80 characters. */
export function shorten(text: string): string {
  const oneLine = text.replace(/\r?\n|\r/g, " ").trim();
  const chars = Array.from(oneLine);
  return chars.length <= MAX_SHOWN ? oneLine : `${chars.slice(0, MAX_SHOWN - 3).join("")}...`;
}

/** `Flokafile:3: unknown instruction: FORM busybox` (the location part only if known). */
export function flokafileError(
  location: Location | undefined,
  reason: string,
  offending?: string,
): FlokafileError {
  const shown = offending === undefined ? undefined : shorten(offending);
  const prefix = location ? `${location.file}:${location.line}: ` : "";
  const suffix = shown ? `: ${shown}` : "";
  const line = reason.replace(/\r?\n|\r/g, " "); // messages are one line
  return new FlokafileError(`${prefix}${line}${suffix}`, line, location, shown);
}
