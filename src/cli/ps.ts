/** `floka ps`: list containers as `docker ps` does. */
import { formatTable } from "../../lib/table.ts";
import { humanDuration } from "../../lib/units.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container } from "../containers/store.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { dockerTime, formatList } from "./format.ts";
import { writeStdout } from "./output.ts";

function ellipsis(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

/** `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Restarting (1) 1 second ago`, `Created`. */
export function statusText(c: Container, now: number): string {
  const { state } = c;
  if (state.status === "running") {
    return `Up ${humanDuration(now - Date.parse(state.startedAt ?? c.record.created))}`;
  }
  if (state.status === "restarting") {
    const ago = humanDuration(now - Date.parse(state.finishedAt ?? c.record.created));
    return `Restarting (${state.exitCode}) ${ago} ago`;
  }
  if (state.status === "exited") {
    const ago = humanDuration(now - Date.parse(state.finishedAt ?? c.record.created));
    return `Exited (${state.exitCode}) ${ago} ago`;
  }
  return "Created";
}

export function psRows(containers: Container[], now: number, noTrunc: boolean): string[][] {
  return containers.map((c) => {
    const command = [c.record.path, ...c.record.args].join(" ");
    return [
      noTrunc ? c.record.id : c.record.id.slice(0, 12),
      c.record.image,
      JSON.stringify(noTrunc ? command : ellipsis(command, 20)),
      `${humanDuration(now - Date.parse(c.record.created))} ago`,
      statusText(c, now),
      c.record.name,
    ];
  });
}

/** Headers of `ps --format 'table ...'`, by field. */
const PS_HEADERS: Readonly<Record<string, string>> = {
  ID: "CONTAINER ID",
  Image: "IMAGE",
  Command: "COMMAND",
  CreatedAt: "CREATED AT",
  RunningFor: "CREATED",
  Status: "STATUS",
  Names: "NAMES",
  State: "STATE",
  Ports: "PORTS",
  Size: "SIZE",
  Labels: "LABELS",
  Mounts: "MOUNTS",
  Networks: "NETWORKS",
  LocalVolumes: "LOCAL VOLUMES",
};

/** `0.0.0.0:8080->80/tcp`, as `docker ps` shows published ports. */
function portsText(c: Container): string {
  return (c.record.hostConfig.portBindings ?? [])
    .map((p) => `${p.hostIp || "0.0.0.0"}:${p.hostPort}->${p.containerPort}/${p.protocol}`)
    .join(", ");
}

/** A container with `docker ps --format`'s field names and values. */
export function psView(c: Container, now: number, noTrunc: boolean): Record<string, unknown> {
  const command = [c.record.path, ...c.record.args].join(" ");
  const mounts = c.record.hostConfig.mounts ?? [];
  return {
    Command: JSON.stringify(noTrunc ? command : ellipsis(command, 20)),
    CreatedAt: dockerTime(new Date(c.record.created)),
    ID: noTrunc ? c.record.id : c.record.id.slice(0, 12),
    Image: c.record.image,
    Labels: "",
    LocalVolumes: String(mounts.filter((m) => m.type === "volume").length),
    Mounts: mounts.map((m) => m.type === "volume" ? m.name ?? "" : m.source ?? "").filter(Boolean).join(","),
    Names: c.record.name,
    Networks: c.record.hostConfig.networkMode,
    Ports: portsText(c),
    RunningFor: `${humanDuration(now - Date.parse(c.record.created))} ago`,
    Size: "0B",
    State: c.state.status,
    Status: statusText(c, now),
  };
}

export const psCommand = defineCommand(
  {
    name: "ps",
    usage: "[OPTIONS]",
    description: "List containers",
    minArgs: 0,
    maxArgs: 0,
    options: {
      all: { short: "a", long: "all", help: "Show all containers (default shows just running)" },
      quiet: { short: "q", long: "quiet", help: "Only display container IDs" },
      noTrunc: { long: "no-trunc", help: "Don't truncate output" },
      format: {
        long: "format",
        value: "string",
        help: "Format output: 'table', 'table TEMPLATE', 'json', or a template ('{{.ID}} {{.Names}}')",
      },
    },
  },
  ({ options, globals }) => {
    const store = openStore(globals);
    const containers = store.list()
      .map((c) => reconcile(store, c))
      .filter((c) =>
        c !== null && (options.all || c.state.status !== "exited" && c.state.status !== "created")
      ) as Container[];
    if (options.quiet) {
      for (const c of containers) console.log(options.noTrunc ? c.record.id : c.record.id.slice(0, 12));
      return 0;
    }
    const now = Date.now();
    const header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"];
    writeStdout(formatList(options.format, {
      items: containers,
      view: (c) => psView(c, now, options.noTrunc),
      headers: PS_HEADERS,
      sample: Object.fromEntries(Object.keys(PS_HEADERS).map((k) => [k, ""])),
      defaultTable: () => formatTable(header, psRows(containers, now, options.noTrunc)),
    }));
    return 0;
  },
);
