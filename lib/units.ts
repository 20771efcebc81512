/** Sizes and durations in the forms Docker prints and accepts. */
import { FlokaError } from "./errors.ts";

const BINARY_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
  p: 1024 ** 5,
};

/** Docker's RAMInBytes: `512m`, `1.5g`, `1024`, `64kb` (units are powers of 1024). */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)b?$/i.exec(text.trim());
  if (!m) {
    throw new FlokaError(
      `invalid size: ${JSON.stringify(text)} (expected a number with an optional unit b, k, m, g)`,
    );
  }
  return Math.floor(Number(m[1]) * BINARY_UNITS[m[2].toLowerCase()]);
}

/** Docker's HumanSize: decimal units with three significant digits (`1.23MB`). */
export function humanSize(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  let n = bytes;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${Number(n.toPrecision(3))}${units[i]}`;
}

/** Docker's HumanDuration (go-units): whole seconds and minutes, hours rounded. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return "Less than a second";
  if (s === 1) return "1 second";
  if (s < 60) return `${s} seconds`;
  const min = Math.floor(s / 60);
  if (min === 1) return "About a minute";
  if (min < 60) return `${min} minutes`;
  const h = Math.floor(ms / 3_600_000 + 0.5);
  if (h === 1) return "About an hour";
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/**
 * Docker's ParseCPUs (`--cpus 1.5`): a decimal number of CPUs as billionths of a CPU.
 * The decimals are read as digits, not through a float; more than nine is "too precise", as in Docker.
 */
export function parseNanoCpus(text: string): number {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!m || (m[2] === "" && !m[3])) throw new FlokaError(`failed to parse ${text} as a rational number`);
  const fraction = (m[3] ?? "").replace(/0+$/, "");
  if (fraction.length > 9) throw new FlokaError("value is too precise");
  const nano = Number(m[2] || "0") * 1e9 + Number(fraction.padEnd(9, "0") || "0");
  return m[1] === "-" ? -nano : nano;
}

/** go-units' BytesSize, as `docker stats` shows memory: binary units, four significant digits (`1.953MiB`). */
export function binarySize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number(n.toPrecision(4))}${units[i]}`;
}
