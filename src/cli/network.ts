/** `floka network create|ls|inspect|rm|prune`: bridge networks on the CNI plugins, as `docker network` shows them. */
import { FlokaError } from "../../lib/errors.ts";
import type { NetworkConfig } from "../../lib/network.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { ContainerStore } from "../containers/store.ts";
import { DEFAULT_NETWORK, NetworkStore } from "../network/networks.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { formatList } from "./format.ts";
import { writeStdout } from "./output.ts";
import { confirm, printDeleted } from "./prune.ts";
import { formatTable } from "../../lib/table.ts";

const SUBCOMMANDS = ["create", "ls", "inspect", "rm", "prune"] as const;

/**
 * Removes the networks of the user's own that no container, running or not, names (as
 * `docker network prune`); returns their names.
 */
export function pruneNetworks(containers: ContainerStore): string[] {
  const networks = new NetworkStore(containers.store);
  const named = new Set(containers.list().map((c) => c.record.hostConfig.networkMode));
  const removed: string[] = [];
  for (const net of networks.list()) {
    if (net.name === DEFAULT_NETWORK || named.has(net.name)) continue;
    try {
      networks.remove(net.name, (n) => runningOn(containers)(n).map((u) => u.name));
      removed.push(net.name);
    } catch { /* a container took it meanwhile */ }
  }
  return removed;
}

/** The running containers on each network (reconciled first: a dead one uses nothing). */
function runningOn(containers: ContainerStore) {
  const users = new Map<string, { id: string; name: string; ip: string; mac: string }[]>();
  for (const listed of containers.list()) {
    const c = listed.state.status === "running" ? reconcile(containers, listed) : null;
    const net = c?.state.status === "running" ? c.state.network : undefined;
    if (!c || !net) continue;
    users.set(net.name, [
      ...(users.get(net.name) ?? []),
      {
        id: c.record.id,
        name: c.record.name,
        ip: `${net.ipAddress}/${net.prefixLen}`,
        mac: net.macAddress ?? "",
      },
    ]);
  }
  return (name: string) => users.get(name) ?? [];
}

/** `docker network inspect`'s shape. */
function networkView(net: NetworkConfig, users: ReturnType<typeof runningOn>) {
  return {
    Name: net.name === DEFAULT_NETWORK ? DEFAULT_NETWORK : net.name,
    Id: net.id,
    Created: net.created,
    Scope: "local",
    Driver: net.driver,
    EnableIPv6: false,
    IPAM: { Driver: "host-local", Options: {}, Config: [{ Subnet: net.subnet, Gateway: net.gateway }] },
    Internal: false,
    Attachable: false,
    Containers: Object.fromEntries(
      users(net.name).map((
        u,
      ) => [u.id, { Name: u.name, MacAddress: u.mac, IPv4Address: u.ip, IPv6Address: "" }]),
    ),
    Options: { "com.docker.network.bridge.name": net.bridge },
    Labels: {},
  };
}

export const networkCommand = defineCommand(
  {
    name: "network",
    usage: "COMMAND [OPTIONS] [ARG...]\n\nCommands:\n" +
      "  create [--subnet CIDR] NAME   Create a bridge network\n" +
      "  ls                            List networks; -q names only\n" +
      "  inspect NETWORK...            Display detailed information on one or more networks\n" +
      "  rm NETWORK...                 Remove networks no running container uses\n" +
      "  prune [-f]                    Remove networks no container uses",
    description: "Manage networks",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      subnet: {
        long: "subnet",
        value: "string",
        help: "create: subnet in CIDR format (default: a free private /16)",
      },
      driver: {
        short: "d",
        long: "driver",
        value: "string",
        default: "bridge",
        help: "create: driver (bridge)",
      },
      quiet: { short: "q", long: "quiet", help: "ls: only display network names" },
      force: { short: "f", long: "force", help: "prune: do not prompt for confirmation" },
      format: {
        long: "format",
        value: "string",
        help: "ls: 'json' for one JSON object per network, or a template such as '{{.Name}}'",
      },
    },
  },
  ({ options, args, globals }) => {
    const [sub, ...rest] = args;
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new FlokaError(
        `unknown network command ${JSON.stringify(sub)}: expected one of ${SUBCOMMANDS.join(", ")}`,
      );
    }
    const containers = openStore(globals);
    const networks = new NetworkStore(containers.store);
    switch (sub) {
      case "create": {
        if (rest.length !== 1) throw new FlokaError(`"network create" requires exactly 1 argument`);
        if (options.driver !== "bridge") {
          throw new FlokaError(`plugin "${options.driver}" not found: only bridge`);
        }
        console.log(networks.create(rest[0], options.subnet).id);
        return 0;
      }
      case "ls": {
        if (rest.length) throw new FlokaError(`"network ls" accepts no arguments`);
        const all = [networks.defaultNetwork(), ...networks.list().filter((n) => n.name !== DEFAULT_NETWORK)];
        const rows = [
          ...all.map((
            n,
          ) => [n.id.slice(0, 12), n.name === DEFAULT_NETWORK ? "bridge" : n.name, "bridge", "local"]),
          ["-", "host", "host", "local"],
          ["-", "none", "null", "local"],
        ];
        if (options.quiet) {
          for (const r of rows) console.log(r[1]);
          return 0;
        }
        const header = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"];
        const view = (r: string[]) => ({ ID: r[0], Name: r[1], Driver: r[2], Scope: r[3] });
        writeStdout(formatList(options.format, {
          items: rows,
          view,
          headers: { ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE" },
          sample: view(rows[0]),
          defaultTable: () => formatTable(header, rows),
        }));
        return 0;
      }
      case "inspect": {
        if (!rest.length) throw new FlokaError(`"network inspect" requires at least 1 argument`);
        const users = runningOn(containers);
        const found = [];
        let code = 0;
        for (const name of rest) {
          try {
            found.push(networkView(networks.resolve(name), users));
          } catch {
            console.error(`floka: network ${name} not found`);
            code = 1;
          }
        }
        console.log(JSON.stringify(found, null, 4));
        return code;
      }
      case "rm": {
        if (!rest.length) throw new FlokaError(`"network rm" requires at least 1 argument`);
        let code = 0;
        for (const name of rest) {
          try {
            networks.remove(name, (n) => runningOn(containers)(n).map((u) => u.name));
            console.log(name);
          } catch (err) {
            console.error(`floka: ${(err as Error).message}`);
            code = 1;
          }
        }
        return code;
      }
      case "prune": {
        if (rest.length) throw new FlokaError(`"network prune" accepts no arguments`);
        const warning = "WARNING! This will remove all custom networks not used by at least one container.";
        if (!options.force && !confirm(warning)) return 0;
        const removed = pruneNetworks(containers);
        printDeleted("Deleted Networks", removed);
        return 0;
      }
    }
    throw new FlokaError(`unknown network command ${JSON.stringify(sub)}`);
  },
);
