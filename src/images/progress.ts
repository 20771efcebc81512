/**
 * Pull progress, as Docker shows it: on a terminal one line per layer, redrawn in place
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

/** One line per state change; byte counts are left out (they would flood a log). */
export function plainProgress(write: (line: string) => void): PullProgress {
  const last = new Map<string, string>();
  return {
    start() {},
    layer(digest, status) {
      if (last.get(digest) === status) return;
      last.set(digest, status);
      write(`${shortId(digest)}: ${status}`);
    },
    note: write,
    done() {},
  };
}

/** Redraws every layer's line in place on a terminal, through log-update. */
export async function terminalProgress(
  stream: { write(s: string): unknown; columns?: number },
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
    render(order.map((d) => `${shortId(d)}: ${lines.get(d)}`).join("\n"));
  };
  return {
    start(layers) {
      for (const l of layers) {
        order.push(l);
        lines.set(l, "Pulling fs layer");
      }
      draw(true);
    },
    layer(digest, status, current, total) {
      const detail = current !== undefined && total
        ? ` ${bar(current, total)} ${humanSize(current)}/${humanSize(total)}`
        : "";
      lines.set(digest, `${status}${detail}`);
      draw(status !== "Downloading");
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
