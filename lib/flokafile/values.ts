/**
 * Values with a syntax of their own inside instructions: Go durations (HEALTHCHECK flags)
 * and EXPOSE port specifications.
 */

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3, // micro sign
  "\u03bcs": 1e3, // Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * Go's time.ParseDuration (`300ms`, `1.5h`, `1m30s`, `-2s`, `0`) in nanoseconds, or null
 * if the text is not a duration.
 */
export function parseGoDuration(text: string): number | null {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") return null;
  let total = 0;
  while (rest !== "") {
    const m = /^(\d*)(?:\.(\d*))?([^\d.]+)/.exec(rest);
    if (!m || (m[1] === "" && (m[2] ?? "") === "")) return null;
    const unit = UNIT_NS[m[3]];
    if (unit === undefined) return null;
    const fraction = m[2] ? Number(`0.${m[2]}`) : 0;
    total += Number(m[1] || "0") * unit + Math.trunc(fraction * unit);
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

/** A problem with one EXPOSE port: the reason and the text it is about. */
export class PortError extends Error {
  constructor(readonly reason: string, readonly text: string) {
    super(`${reason}: ${text}`);
  }
}

/**
 * One EXPOSE word (`80`, `80/tcp`, `53/udp`, `8000-8010`, and the `[ip:][hostPort:]port`
 * forms Docker tolerates, ignoring the host part) as normalized "port/proto" entries.
 */
export function parseExposedPort(raw: string): string[] {
  const parts = raw.split(":");
  const containerPart = parts[parts.length - 1];
  const hostPort = parts.length >= 2 ? parts[parts.length - 2] : "";
  const ip = parts.length >= 3 ? parts.slice(0, -2).join(":") : "";
  const slash = containerPart.indexOf("/");
  const port = slash < 0 ? containerPart : containerPart.slice(0, slash);
  const proto = (slash < 0 ? "" : containerPart.slice(slash + 1)).toLowerCase() || "tcp";
  if (port === "") throw new PortError("invalid port: no port specified", raw);
  if (!["tcp", "udp", "sctp"].includes(proto)) throw new PortError("invalid proto", raw);
  if (ip !== "" && !isIpAddress(ip)) throw new PortError("invalid IP address", ip);
  const [start, end] = portRange(port, "invalid containerPort");
  if (hostPort !== "") {
    const [hostStart, hostEnd] = portRange(hostPort, "invalid hostPort");
    if (hostEnd - hostStart !== end - start && end !== start) {
      throw new PortError("invalid ranges specified for container and host Ports", raw);
    }
  }
  const ports: string[] = [];
  for (let p = start; p <= end; p++) ports.push(`${p}/${proto}`);
  return ports;
}

function portRange(text: string, reason: string): [number, number] {
  const dash = text.indexOf("-");
  const startText = dash < 0 ? text : text.slice(0, dash);
  const endText = dash < 0 ? startText : text.slice(dash + 1);
  const start = portNumber(startText);
  const end = endText === startText ? start : portNumber(endText);
  if (start === null || end === null || end < start) throw new PortError(reason, text);
  return [start, end];
}

function portNumber(text: string): number | null {
  if (!/^[+-]?\d+$/.test(text)) return null;
  const n = Number(text);
  return n >= 0 && n <= 65535 ? n : null;
}

function isIpAddress(text: string): boolean {
  const ip = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(ip)) {
    return ip.split(".").every((n) => Number(n) <= 255);
  }
  return /^[0-9a-fA-F:.]+$/.test(ip) && ip.includes(":");
}
