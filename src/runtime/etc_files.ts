/**
 * The /etc files Floka writes for each container and binds over the image's: hostname,
 * hosts and resolv.conf, as Docker generates them.
 */
import type { ContainerRecord } from "../containers/store.ts";

function readHostFile(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** Docker's fallback when the host has no resolver a container can use. */
const DEFAULT_NAMESERVERS = ["8.8.8.8", "8.8.4.4"];

/**
 * The host's resolv.conf for a container. In its own network namespace a container cannot
 * reach a resolver on the host's loopback (systemd-resolved's 127.0.0.53, dnsmasq), so those
 * lines are dropped and Docker's public defaults stand in when none is left.
 */
export function containerResolvConf(hostText: string, ownNetwork: boolean): string {
  if (!ownNetwork) return hostText;
  const isLoopback = (line: string) => /^\s*nameserver\s+(127\.|::1\b)/.test(line);
  const lines = hostText.split("\n").filter((l) => !isLoopback(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) {
    lines.push(...DEFAULT_NAMESERVERS.map((ns) => `nameserver ${ns}`));
  }
  return lines.filter((l, i, all) => l !== "" || i < all.length - 1).join("\n") + "\n";
}

/** An /etc/hosts line: an address and its names. */
export interface HostEntry {
  ip: string;
  names: string[];
}

/**
 * `hosts` with the localhost entries and the container's own name: on its network address
 * once it has one (`self`), else on 127.0.1.1; then `--add-host` entries and, on a
 * user-defined network, the other containers there (`extra`).
 */
export function containerHosts(hostname: string, self?: HostEntry, extra: readonly HostEntry[] = []): string {
  return [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    self ? `${self.ip}\t${self.names.join(" ")}` : `127.0.1.1\t${hostname}`,
    ...extra.map((e) => `${e.ip}\t${e.names.join(" ")}`),
    "",
  ].join("\n");
}

/** `--dns`: the given resolvers replace the host's, its search and options lines are kept. */
export function withNameservers(text: string, servers: readonly string[]): string {
  if (!servers.length) return text;
  const kept = text.split("\n").filter((l) => l.trim() && !/^\s*nameserver\s/.test(l));
  return [...servers.map((s) => `nameserver ${s}`), ...kept].join("\n") + "\n";
}

/** `--add-host` entries of a record. */
export function extraHostEntries(record: ContainerRecord): HostEntry[] {
  return (record.hostConfig.extraHosts ?? []).map((h) => ({ ip: h.ip, names: [h.name] }));
}

/** File name in the container's directory -> contents. */
export function etcFiles(record: ContainerRecord): Record<string, string> {
  const host = record.hostConfig.networkMode === "host";
  const extra = extraHostEntries(record);
  const hosts = host
    ? readHostFile("/etc/hosts") + extra.map((e) => `${e.ip}\t${e.names.join(" ")}\n`).join("")
    : containerHosts(record.config.hostname, undefined, extra);
  return {
    hostname: record.config.hostname + "\n",
    hosts,
    "resolv.conf": withNameservers(
      containerResolvConf(readHostFile("/etc/resolv.conf"), !host),
      record.hostConfig.dns ?? [],
    ),
  };
}
