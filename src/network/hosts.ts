/**
 * Name resolution on user-defined networks, through /etc/hosts files Floka maintains (no
 * DNS server): a container's hosts file names itself on its address and lists the other
 * running containers of its network; theirs get a line for it while it runs. The files are
 * rewritten in place, never replaced: each is bind-mounted into its container, and a
 * rename would leave the container looking at the old file.
 */
import type { ContainerRecord, ContainerStore } from "../containers/store.ts";
import { containerHosts, extraHostEntries, type HostEntry } from "../runtime/etc_files.ts";
import type { NetworkState } from "./attach.ts";
import { DEFAULT_NETWORK } from "./networks.ts";

/** The running containers of network `name` other than `id`, with their addresses. */
function peers(store: ContainerStore, name: string, id: string) {
  return store.list().filter((c) =>
    c.record.id !== id && c.state.status === "running" && c.state.network?.name === name &&
    c.state.network.ipAddress
  );
}

function rewriteInPlace(path: string, edit: (text: string) => string): void {
  try {
    const text = Deno.readTextFileSync(path);
    const next = edit(text);
    if (next !== text) Deno.writeTextFileSync(path, next);
  } catch { /* the peer is going away */ }
}

function lineFor(entry: HostEntry): string {
  return `${entry.ip}\t${entry.names.join(" ")}`;
}

/** Writes the container's hosts file for its address; on a user network, tells its peers too. */
export function joinHosts(
  store: ContainerStore,
  record: ContainerRecord,
  dir: string,
  net: NetworkState,
): void {
  const names = [record.config.hostname, ...(record.name !== record.config.hostname ? [record.name] : [])];
  const self = { ip: net.ipAddress!, names };
  const others = net.name === DEFAULT_NETWORK ? [] : peers(store, net.name, record.id);
  const extra = [
    ...extraHostEntries(record),
    ...others.map((c) => ({ ip: c.state.network!.ipAddress!, names: [c.record.name] })),
  ];
  Deno.writeTextFileSync(`${dir}/hosts`, containerHosts(record.config.hostname, self, extra));
  const line = lineFor({ ip: self.ip, names: [record.name] });
  for (const peer of others) {
    rewriteInPlace(`${peer.dir}/hosts`, (text) => text.includes(`\n${line}\n`) ? text : text + line + "\n");
  }
}

/** Takes the container's line out of its peers' hosts files. */
export function leaveHosts(store: ContainerStore, record: ContainerRecord, net: NetworkState): void {
  if (net.name === DEFAULT_NETWORK || !net.ipAddress) return;
  const line = lineFor({ ip: net.ipAddress, names: [record.name] });
  for (const peer of peers(store, net.name, record.id)) {
    rewriteInPlace(`${peer.dir}/hosts`, (text) => text.split("\n").filter((l) => l !== line).join("\n"));
  }
}
