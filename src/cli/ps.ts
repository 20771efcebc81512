/** `floka ps`: list containers as `docker ps` does. */
import { formatTable } from "../../lib/table.ts";
import { humanDuration } from "../../lib/units.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container } from "../containers/store.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
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
    const header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"];
    writeStdout(formatTable(header, psRows(containers, Date.now(), options.noTrunc)));
    return 0;
  },
);
