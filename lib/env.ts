/** Environment variables as Docker treats them: `KEY=VALUE` strings, later ones win. */
import { FlokaError } from "./errors.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const KEY = /^[^=\s]+$/;

/**
 * `-e KEY=VALUE` as given; `-e KEY` takes KEY from the host environment and is dropped when
 * the host has no such variable.
 */
export function envFromOption(
  option: string,
  hostEnv: (key: string) => string | undefined,
): string | null {
  const eq = option.indexOf("=");
  const key = eq === -1 ? option : option.slice(0, eq);
  if (!KEY.test(key)) {
    throw new FlokaError(
      `invalid environment variable: ${JSON.stringify(option)}`,
    );
  }
  if (eq !== -1) return option;
  const value = hostEnv(key);
  return value === undefined ? null : `${key}=${value}`;
}

/** Lines of an `--env-file`: `#` comments and blank lines skipped, each line as `-e`. */
export function envFileLines(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.replace(/^\s+/, "")).filter((l) => l !== "" && !l.startsWith("#"));
}

/** The key of a `KEY=VALUE` string. */
export function envKey(entry: string): string {
  const eq = entry.indexOf("=");
  return eq === -1 ? entry : entry.slice(0, eq);
}

/** `base` with each of `overrides` replacing the entry of the same key or appended. */
export function mergeEnv(
  base: readonly string[],
  overrides: readonly string[],
): string[] {
  const out = [...base];
  for (const entry of overrides) {
    const i = out.findIndex((e) => envKey(e) === envKey(entry));
    if (i === -1) out.push(entry);
    else out[i] = entry;
  }
  return out;
}

/** The value of `key` in `env`, or undefined. */
export function envValue(
  env: readonly string[],
  key: string,
): string | undefined {
  const entry = env.findLast((e) => envKey(e) === key);
  return entry === undefined ? undefined : entry.slice(key.length + 1);
}
