/** `floka ps`: list containers as `docker ps` does. */
import { Command } from "@commander-js/extra-typings";
import { formatTable } from "../../lib/table.ts";
import { humanDuration } from "../../lib/units.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container } from "../containers/store.ts";
import { type Globals, openStore } from "./context.ts";

function ellipsis(text: string, max: number): string {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

/** `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`. */
export function statusText(c: Container, now: number): string {
  const { state } = c;
  if (state.status === "running") {
    return `Up ${humanDuration(now - Date.parse(state.startedAt ?? c.record.created))}`;
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

export function psCommand(globals: Globals) {
  return new Command("ps")
    .description("List containers (running ones unless -a)")
    .helpOption("-h, --help", "Print usage")
    .option("-a, --all", "Show all containers (default shows just running)")
    .option("-q, --quiet", "Only display container IDs")
    .option("--no-trunc", "Don't truncate output")
    .action((opts) => {
      const store = openStore(globals);
      const containers = store.list()
        .map((c) => reconcile(store, c))
        .filter((c) => opts.all || c.state.status === "running");
      if (opts.quiet) {
        for (const c of containers) console.log(opts.trunc ? c.record.id.slice(0, 12) : c.record.id);
        return;
      }
      const header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"];
      Deno.stdout.writeSync(
        new TextEncoder().encode(formatTable(header, psRows(containers, Date.now(), !opts.trunc))),
      );
    });
}
