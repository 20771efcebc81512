/** Diagnostics on stderr, filtered by `--log-level` (debug, info, warn, error). */
const LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LEVELS[number];

let threshold = LEVELS.indexOf("warn");

export function setLogLevel(level: string): void {
  const i = LEVELS.indexOf(level as LogLevel);
  if (i === -1) {
    throw new Error(`invalid log level ${JSON.stringify(level)}: use one of ${LEVELS.join(", ")}`);
  }
  threshold = i;
}

function log(level: LogLevel, message: string): void {
  if (LEVELS.indexOf(level) >= threshold) console.error(`floka ${level}: ${message}`);
}

export const debug = (m: string) => log("debug", m);
export const info = (m: string) => log("info", m);
export const warn = (m: string) => log("warn", m);
