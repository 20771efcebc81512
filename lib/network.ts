/**
 * Container networking, the pure part: Docker's `-p` syntax, the choice of a private subnet
 * that collides with none of the host's routes, the CNI configuration list Floka hands the
 * standard plugins (bridge + host-local IPAM, portmap, firewall), and reading their result.
 * No I/O here: src/network/ runs the plugins and keeps the state.
 */
import { FlokaError } from "./errors.ts";

/** One published port: `-p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`, one port each. */
export interface PortBinding {
  /** "" for every address (Docker's 0.0.0.0). */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: "tcp" | "udp";
}

/** A `-p` before its free host ports are chosen: hostPort 0 means "any free port". */
export type PortRequest = PortBinding;

function parsePortRange(text: string, what: string, spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  const bad = () => new FlokaError(`invalid ${what} in port spec ${JSON.stringify(spec)}`);
  if (!m) throw bad();
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  if (first < 1 || last > 65535 || last < first) throw bad();
  return [first, last];
}

/**
 * Parses one `-p`/`--publish` value as Docker does: `80`, `8080:80`, `8080:80/udp`,
 * `127.0.0.1:8080:80`, `127.0.0.1::80`, and equal-length ranges `8080-8081:80-81`.
 */
export function parsePublish(spec: string): PortRequest[] {
  const slash = spec.lastIndexOf("/");
  const proto = slash >= 0 ? spec.slice(slash + 1) : "tcp";
  if (proto !== "tcp" && proto !== "udp") {
    throw new FlokaError(`invalid protocol ${JSON.stringify(proto)} in port spec ${JSON.stringify(spec)}`);
  }
  const body = slash >= 0 ? spec.slice(0, slash) : spec;
  const parts = body.split(":");
  let hostIp = "", hostPart = "", containerPart: string;
  if (parts.length === 1) containerPart = parts[0];
  else if (parts.length === 2) [hostPart, containerPart] = parts;
  else if (parts.length === 3) [hostIp, hostPart, containerPart] = parts;
  else throw new FlokaError(`invalid port spec ${JSON.stringify(spec)}`);
  if (hostIp && !isIPv4(hostIp)) {
    throw new FlokaError(`invalid host IP ${JSON.stringify(hostIp)} in port spec ${JSON.stringify(spec)}`);
  }
  if (hostIp === "0.0.0.0") hostIp = "";
  const [cFirst, cLast] = parsePortRange(containerPart, "container port", spec);
  const count = cLast - cFirst + 1;
  let hFirst = 0;
  if (hostPart) {
    const [first, last] = parsePortRange(hostPart, "host port", spec);
    if (last - first + 1 !== count) {
      throw new FlokaError(`invalid port spec ${JSON.stringify(spec)}: the ranges differ in length`);
    }
    hFirst = first;
  } else if (count > 1) {
    throw new FlokaError(`invalid port spec ${JSON.stringify(spec)}: a range needs host ports`);
  }
  return Array.from({ length: count }, (_, i) => ({
    hostIp,
    hostPort: hFirst ? hFirst + i : 0,
    containerPort: cFirst + i,
    protocol: proto,
  }));
}

/** The image's ExposedPorts keys (`80/tcp`, `53/udp`, `8080`) as `-P` publishes them. */
export function exposedPorts(exposed: Record<string, unknown> | undefined | null): PortRequest[] {
  return Object.keys(exposed ?? {}).flatMap((key) => {
    const [port, proto = "tcp"] = key.split("/");
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535 || (proto !== "tcp" && proto !== "udp")) return [];
    return [{ hostIp: "", hostPort: 0, containerPort: n, protocol: proto as "tcp" | "udp" }];
  });
}

/** Docker's `80/tcp -> 0.0.0.0:8080`. */
export function formatPort(p: PortBinding): string {
  return `${p.containerPort}/${p.protocol} -> ${p.hostIp || "0.0.0.0"}:${p.hostPort}`;
}

/** `--add-host NAME:IP` (Docker also takes `NAME=IP`). */
export function parseAddHost(value: string): { name: string; ip: string } {
  const m = /^([^:=\s]+)[:=](.+)$/.exec(value);
  if (!m || !(isIPv4(m[2]) || m[2].includes(":"))) {
    throw new FlokaError(`invalid argument ${JSON.stringify(value)} for "--add-host" flag: expected NAME:IP`);
  }
  return { name: m[1], ip: m[2] };
}

export function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

export function ipToInt(ip: string): number {
  return ip.split(".").reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** A CIDR as [network address, prefix length]; throws on nonsense. */
export function parseCidr(cidr: string): { base: number; prefix: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(cidr);
  if (!m || !isIPv4(m[1]) || Number(m[2]) > 30 || Number(m[2]) < 8) {
    throw new FlokaError(`invalid subnet ${JSON.stringify(cidr)}: expected an IPv4 CIDR from /8 to /30`);
  }
  const prefix = Number(m[2]);
  const size = 2 ** (32 - prefix);
  return { base: Math.floor(ipToInt(m[1]) / size) * size, prefix };
}

/** The subnet's canonical text and its gateway (the first address, as Docker and Podman use). */
export function subnetGateway(cidr: string): { subnet: string; gateway: string } {
  const { base, prefix } = parseCidr(cidr);
  return { subnet: `${intToIp(base)}/${prefix}`, gateway: intToIp(base + 1) };
}

/** True when two CIDRs share an address. */
export function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a), y = parseCidr(b);
  const xEnd = x.base + 2 ** (32 - x.prefix), yEnd = y.base + 2 ** (32 - y.prefix);
  return x.base < yEnd && y.base < xEnd;
}

/** The host's IPv4 routes from /proc/net/route (little-endian hex), as CIDRs; the default route left out. */
export function routesFromProcNetRoute(text: string): string[] {
  const le = (hex: string) => {
    const n = parseInt(hex, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
  };
  return text.split("\n").slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 8)
    .map(([, dest, , , , , , mask]) => {
      const bits = ipToInt(le(mask)).toString(2).replace(/0+$/, "").length;
      return { dest: le(dest), bits };
    })
    .filter((r) => r.bits >= 8)
    .map((r) => `${r.dest}/${r.bits}`);
}

/**
 * The first /16 from 10.89.0.0 on (Podman's default network is 10.88.0.0/16) that overlaps
 * neither a route of the host nor a subnet another network already uses.
 */
export function chooseSubnet(routes: readonly string[], taken: readonly string[]): string {
  for (let second = 89; second <= 255; second++) {
    const candidate = `10.${second}.0.0/16`;
    if (![...routes, ...taken, "10.88.0.0/16"].some((used) => overlaps(candidate, used))) return candidate;
  }
  throw new FlokaError("no free private subnet left for a new network: give one with --subnet");
}

/** A Floka network as stored in `networks/NAME.json`. */
export interface NetworkConfig {
  name: string;
  id: string;
  driver: "bridge";
  /** The host's bridge interface. */
  bridge: string;
  subnet: string;
  gateway: string;
  created: string;
}

/** Where host-local keeps its leases (`<dir>/<network name>/<ip>`), shared by every store on the host. */
export const IPAM_DATA_DIR = "/var/lib/cni/networks";
export const CNI_VERSION = "1.0.0";

/**
 * The CNI configuration list for a network, as Podman writes one: a bridge that is the
 * containers' gateway and masquerades their traffic, host-local addresses, portmap for
 * published ports (with SNAT so 127.0.0.1 reaches them), and firewall to let them through
 * the FORWARD chain.
 */
export function conflist(net: NetworkConfig) {
  return {
    cniVersion: CNI_VERSION,
    name: net.name,
    plugins: [
      {
        type: "bridge",
        bridge: net.bridge,
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: net.subnet, gateway: net.gateway }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: IPAM_DATA_DIR,
        },
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
      { type: "firewall", backend: "iptables" },
    ],
  };
}

/** portmap's runtimeConfig entry for a binding. */
export function cniPortMapping(p: PortBinding) {
  return { hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, hostIP: p.hostIp };
}

/**
 * The configuration one plugin of the list gets on stdin: its own entry with the list's
 * name and version, the runtime's capabilities it asked for, and the previous result.
 */
export function pluginConfig(
  list: ReturnType<typeof conflist>,
  index: number,
  ports: readonly PortBinding[],
  prevResult: unknown,
): Record<string, unknown> {
  const plugin = list.plugins[index] as Record<string, unknown>;
  const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
  return {
    ...plugin,
    cniVersion: list.cniVersion,
    name: list.name,
    ...(caps.portMappings ? { runtimeConfig: { portMappings: ports.map(cniPortMapping) } } : {}),
    ...(prevResult ? { prevResult } : {}),
  };
}

/** What Floka keeps of a CNI result: the container's interface's address, gateway and MAC. */
export interface CniSummary {
  ipAddress: string;
  prefixLen: number;
  gateway: string;
  macAddress: string;
}

interface CniResult {
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
}

export function summarizeResult(result: unknown): CniSummary {
  const r = result as CniResult;
  const ip = r.ips?.find((i) => i.address.includes(".")) ?? r.ips?.[0];
  if (!ip) throw new FlokaError("the CNI plugins returned no IP address for the container");
  const iface = ip.interface !== undefined
    ? r.interfaces?.[ip.interface]
    : r.interfaces?.find((i) => i.sandbox);
  const [address, prefix] = ip.address.split("/");
  return {
    ipAddress: address,
    prefixLen: Number(prefix),
    gateway: ip.gateway ?? "",
    macAddress: iface?.mac ?? "",
  };
}
