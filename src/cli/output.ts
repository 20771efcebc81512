/** Writes `text` to stdout in full, without console.log's extra newline. */
export function writeStdout(text: string): void {
  const data = new TextEncoder().encode(text);
  let done = 0;
  while (done < data.length) done += Deno.stdout.writeSync(data.subarray(done));
}
