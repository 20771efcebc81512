/**
 * Floka's error types. Every failure a user can see is one of these, so the CLI can print
 * one line and exit with Docker's codes: 125 for Floka's own failures, 126 when the
 * command cannot be executed, 127 when it is not found.
 */
import { errnoMessage, errnoName } from "./errno.ts";

export const EXIT_FLOKA = 125;
export const EXIT_CANNOT_EXECUTE = 126;
export const EXIT_NOT_FOUND = 127;

/** A failure with a message meant for the user and the exit code `floka` should return. */
export class FlokaError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT_FLOKA) {
    super(message);
    this.name = "FlokaError";
  }
}

/** A failed libc call: `mount("overlay", "/x/rootfs"): EINVAL (Invalid argument)`. */
export class SyscallError extends FlokaError {
  readonly errnoName: string;

  constructor(
    readonly call: string,
    readonly args: readonly unknown[],
    readonly errno: number,
  ) {
    const shown = args.map((a) => typeof a === "string" ? JSON.stringify(a) : String(a));
    const name = errnoName(errno);
    super(`${call}(${shown.join(", ")}): ${name} (${errnoMessage(errno)})`);
    this.name = "SyscallError";
    this.errnoName = name;
  }
}

/** The one-line text to show for any thrown value. */
/** `text` (a program's stderr, a server's answer) made fit for a one-line message. */
export function oneLine(text: string, max = 300): string {
  const flat = text.replace(/\s*[\r\n]+\s*/g, "; ").replace(/[ \t]+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max)}...` : flat;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
