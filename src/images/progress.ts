/**
 * Pull (and push) progress, as Docker shows it: on a terminal one line per layer, redrawn in place
 * (`Downloading [=====>     ] 1.2MB/3.4MB`, `Extracting`, `Pull complete`); elsewhere one
 * plain line each time a layer changes state, so logs stay readable.
 */
import { humanSize } from "../../lib/units.ts";

export interface PullProgress {
  /** The layers about to be pulled, in order. */
  start(layers: readonly string[]): void;
  layer(digest: string, status: string, current?: number, total?: number): void;
  /** A message outside the layer lines (a warning). */
  note(message: string): void;
  done(): void;
}

const shortId = (digest: string) => digest.replace(/^sha256:/, "").slice(0, 12);

/** Docker's bar: 50 columns of `=` with a `>` head. */
function bar(current: number, total: number): string {
  const width = 50;
  const filled = Math.min(width, Math.floor((current / total) * width));
  return `[${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? ">" : ""}${" ".repeat(width - filled)}]`;
}

/** A layer's line: `4277f79f82f8: Downloading [=====>   ] 1.2MB/3.4MB`, or without the bar. */
export function layerLine(digest: string, status: string, current?: number, total?: number): string {
  if (current === undefined || !total) return `${shortId(digest)}: ${status}`;
  return `${shortId(digest)}: ${status} ${bar(current, total)} ${humanSize(current)}/${humanSize(total)}`;
}

/** One line per state change; byte counts are left out (they would flood a log). */
export function plainProgress(write: (line: string) => void): PullProgress {
  const last = new Map<string, string>();
  return {
    start() {},
    layer(digest, status) {
      if (last.get(digest) === status) return;
      last.set(digest, status);
      write(layerLine(digest, status));
    },
    note: write,
    done() {},
  };
}

/** The words a terminal's lines use: pull's by default, push passes its own. */
export interface TerminalWords {
  /** Every layer's status before anything happens to it. */
  initial: string;
  /** The status reported for each chunk of bytes: redrawn at most ten times a second. */
  streaming: string;
}

const PULL_WORDS: TerminalWords = { initial: "Pulling fs layer", streaming: "Downloading" };

/** Redraws every layer's line in place on a terminal, through log-update. */
export async function terminalProgress(
  stream: { write(s: string): unknown; columns?: number },
  words: TerminalWords = PULL_WORDS,
): Promise<PullProgress> {
  const { createLogUpdate } = await import("log-update");
  const render = createLogUpdate(stream as never, { showCursor: true });
  const order: string[] = [];
  const lines = new Map<string, string>();
  let lastDraw = 0;
  const draw = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return; // ten frames a second is plenty
    lastDraw = now;
    render(order.map((d) => lines.get(d)).join("\n"));
  };
  return {
    start(layers) {
      for (const l of layers) {
        order.push(l);
        lines.set(l, layerLine(l, words.initial));
      }
      draw(true);
    },
    layer(digest, status, current, total) {
      lines.set(digest, layerLine(digest, status, current, total));
      draw(status !== words.streaming);
    },
    note(message) {
      render.clear();
      stream.write(message + "\n");
      draw(true);
    },
    done() {
      draw(true);
      render.done();
    },
  };
}
