/**
 * Entry of `floka containerize SYNC_FD`, reached from main.ts before the CLI is loaded:
 * read the spec from the host, set the container up, exec. Kept apart from the step list
 * so the steps can be imported by tests without running anything.
 */
import { read, writeAll } from "../../ffi/libc.ts";
import { describeError, EXIT_FLOKA } from "../../lib/errors.ts";
import type { ContainerSpec, StartFailure } from "../../lib/spec.ts";
import { containerize } from "./containerize.ts";
import { linuxSys } from "./sys.ts";

/** One line from `fd`, or null at end of file (the host gave up, and has said why). */
function readLine(fd: number): string | null {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = "";
  for (;;) {
    const n = read(fd, buf);
    if (n === 0) return null;
    text += decoder.decode(buf.subarray(0, n), { stream: true });
    if (buf[n - 1] === 0x0a) return text;
  }
}

export function main(args: string[]): never {
  const channel = Number(args[0]);
  const report = (failure: StartFailure) => {
    try {
      writeAll(channel, new TextEncoder().encode(JSON.stringify(failure)));
    } catch {
      console.error(`floka: ${failure.message}`);
    }
  };
  let spec: ContainerSpec;
  try {
    const line = readLine(channel);
    if (line === null) Deno.exit(EXIT_FLOKA);
    spec = JSON.parse(line);
  } catch (err) {
    report({
      exitCode: EXIT_FLOKA,
      message: `containerize: no usable container spec: ${describeError(err)}`,
    });
    Deno.exit(EXIT_FLOKA);
  }
  containerize(spec, linuxSys, channel, report);
}
