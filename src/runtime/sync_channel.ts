/**
 * The child's end of the sync channel between the host and `containerize` or
 * `exec-inside` (runc's pattern): the spec arrives as one JSON line, and a failure before
 * execve goes back as JSON; a successful execve closes the channel, which the host reads as
 * "started".
 */
import * as libc from "../../ffi/libc.ts";
import { describeError, EXIT_FLOKA } from "../../lib/errors.ts";
import type { StartFailure } from "../../lib/spec.ts";

/** What was read past the end of the last line (the host may write its next line early). */
let pending = "";

/** One line from `fd`, or null at end of file (the host gave up, and has said why). */
function readLine(fd: number): string | null {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = pending;
  for (;;) {
    const end = text.indexOf("\n");
    if (end >= 0) {
      pending = text.slice(end + 1);
      return text.slice(0, end + 1);
    }
    const n = libc.read(fd, buf);
    if (n === 0) return null;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
}

/**
 * Waits for the host's go-ahead line (sent once the container's network is attached).
 * False when the host closed the channel instead: it gave up and kills this process.
 */
export function waitForHost(channel: number): boolean {
  return readLine(channel) !== null;
}

/** Reports `failure` to the host, or on stderr when the host is gone. */
export function reporter(channel: number): (failure: StartFailure) => void {
  return (failure) => {
    try {
      libc.writeAll(channel, new TextEncoder().encode(JSON.stringify(failure)));
    } catch {
      console.error(`floka: ${failure.message}`);
    }
  };
}

/** The spec the host sends; exits (after reporting why) when there is none or it is unreadable. */
export function receiveSpec<T>(channel: number, who: string): T {
  try {
    const line = readLine(channel);
    if (line === null) Deno.exit(EXIT_FLOKA);
    return JSON.parse(line) as T;
  } catch (err) {
    reporter(channel)({ exitCode: EXIT_FLOKA, message: `${who}: no usable spec: ${describeError(err)}` });
    Deno.exit(EXIT_FLOKA);
  }
}
