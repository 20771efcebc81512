/** `floka port`: a container's published ports, as `docker port` prints them. */
import { FlokaError } from "../../lib/errors.ts";
import { formatPort } from "../../lib/network.ts";
import { reconcile } from "../containers/reconcile.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";

export const portCommand = defineCommand(
  {
    name: "port",
    usage: "CONTAINER [PRIVATE_PORT[/PROTO]]",
    description: "List port mappings or a specific mapping for the container",
    minArgs: 1,
    maxArgs: 2,
    options: {},
  },
  ({ args, globals }) => {
    const store = openStore(globals);
    const [ref, filter] = args;
    const c = reconcile(store, store.find(ref));
    if (!c) throw new FlokaError(`No such container: ${ref}`);
    const ports = c.state.status === "running" ? c.record.hostConfig.portBindings ?? [] : [];
    if (filter === undefined) {
      for (const p of ports) console.log(formatPort(p));
      return 0;
    }
    const [port, proto = "tcp"] = filter.split("/");
    const found = ports.filter((p) => p.containerPort === Number(port) && p.protocol === proto);
    if (!found.length) throw new FlokaError(`No public port '${port}/${proto}' published for ${ref}`);
    for (const p of found) console.log(`${p.hostIp || "0.0.0.0"}:${p.hostPort}`);
    return 0;
  },
);
