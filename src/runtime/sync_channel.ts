/**
 * The child's end of the sync channel between the host and `containerize` or
 * `exec-inside` (runc's pattern): the spec arrives as one JSON line, and a failure before
 * execve goes back as JSON; a successful execve closes the channel, which the host reads as
 * "started".
 */
import * as libc from "../../ffi/libc.ts";
import { describeError, EXIT_FLOKA } from "../../lib/errors.ts";
import type { StartFailure } from "../../lib/spec.ts";

/** One line from `fd`, or null at end of file (the host gave up, and has said why). */
function readLine(fd: number): string | null {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = "";
  for (;;) {
    const n = libc.read(fd, buf);
    if (n === 0) return null;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
    if (buf[n - 1] === 0x0a) return text;
  }
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
