/**
 * What `floka build` prints: one line per step (`STEP 2/7: RUN apk add curl`, with the
 * stage as `[1/2]` in a multi-stage build), the output of RUN indented beneath it, then
 * `--> CACHED` or the step's duration. `-q` prints nothing but the image ID at the end.
 */
export interface BuildOutput {
  step(stage: { index: number; count: number }, n: number, total: number, text: string): void;
  /** The step was found in the cache and ran nothing. */
  cached(): void;
  done(ms: number): void;
  /** Bytes a RUN step wrote to its stdout or stderr. */
  runOutput(chunk: Uint8Array): void;
  warn(line: string): void;
  /** Ends a RUN step's output (a last line without its newline). */
  endRunOutput(): void;
  line(text: string): void;
}

const INDENT = "  ";

export function buildOutput(write: (text: string) => void, quiet: boolean): BuildOutput {
  const decoder = new TextDecoder();
  let atLineStart = true;
  const say = (text: string) => quiet || write(text + "\n");
  return {
    step(stage, n, total, text) {
      const prefix = stage.count > 1 ? `[${stage.index + 1}/${stage.count}] ` : "";
      say(`${prefix}STEP ${n}/${total}: ${text}`);
    },
    cached: () => say("--> CACHED"),
    done: (ms) => say(`--> done in ${(ms / 1000).toFixed(2)}s`),
    runOutput(chunk) {
      if (quiet) return;
      const text = decoder.decode(chunk, { stream: true });
      let out = "";
      for (const ch of text.split(/(?<=\n)/)) {
        if (atLineStart) out += INDENT;
        out += ch;
        atLineStart = ch.endsWith("\n");
      }
      write(out);
    },
    endRunOutput() {
      if (!atLineStart && !quiet) write("\n");
      atLineStart = true;
    },
    warn: (line) => quiet || write(`WARNING: ${line}\n`),
    line: say,
  };
}
