import { describeError } from "../../lib/errors.ts";

/** Writes `text` to stdout in full, without console.log's extra newline. */
export function writeStdout(text: string): void {
  const data = new TextEncoder().encode(text);
  let done = 0;
  while (done < data.length) done += Deno.stdout.writeSync(data.subarray(done));
}

/**
 * Docker's way with commands that take several containers: each one in turn, what `act`
 * returns (or the name as given) printed when done, an error line for one that fails;
 * exit code 1 if any failed.
 */
export async function forEachContainer(
  refs: string[],
  act: (ref: string) => Promise<string | number | void> | string | number | void,
): Promise<number> {
  let exitCode = 0;
  for (const ref of refs) {
    try {
      console.log(await act(ref) ?? ref);
    } catch (err) {
      console.error(`floka: ${describeError(err)}`);
      exitCode = 1;
    }
  }
  return exitCode;
}
