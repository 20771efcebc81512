/** `floka volume create|ls|inspect|rm|prune`: named volumes, as `docker volume` manages them. */
import { FlokaError } from "../../lib/errors.ts";
import type { ContainerStore } from "../containers/store.ts";
import { type Volume, VolumeStore, type VolumeUsers } from "../containers/volumes.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { confirm, printDeleted, reclaimedLine } from "./prune.ts";

const SUBCOMMANDS = ["create", "ls", "inspect", "rm", "prune"] as const;

/** The containers (full IDs), running or not, whose record mounts each volume. */
export function volumeUsers(containers: ContainerStore): VolumeUsers {
  const users = new Map<string, string[]>();
  for (const c of containers.list()) {
    for (const m of c.record.hostConfig.mounts ?? []) {
      if (m.type !== "volume" || !m.name) continue;
      users.set(m.name, [...(users.get(m.name) ?? []), c.record.id]);
    }
  }
  return (name) => users.get(name) ?? [];
}

/** `docker volume inspect`'s shape. */
export function volumeView(v: Volume) {
  return {
    CreatedAt: v.meta.createdAt.replace(/\.\d+Z$/, "Z"),
    Driver: "local",
    Labels: Object.keys(v.meta.labels).length ? v.meta.labels : null,
    Mountpoint: v.mountpoint,
    Name: v.name,
    Options: null,
    Scope: "local",
  };
}

function parseLabels(labels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) {
    const eq = l.indexOf("=");
    const key = eq < 0 ? l : l.slice(0, eq);
    if (!key) throw new FlokaError(`invalid label: ${JSON.stringify(l)}`);
    out[key] = eq < 0 ? "" : l.slice(eq + 1);
  }
  return out;
}

export const volumeCommand = defineCommand(
  {
    name: "volume",
    usage: "COMMAND [OPTIONS] [ARG...]\n\nCommands:\n" +
      "  create [NAME]          Create a volume (a random name without one); --label KEY=VALUE\n" +
      "  ls                     List volumes; -q names only, --format json\n" +
      "  inspect VOLUME...      Display detailed information on one or more volumes\n" +
      "  rm [-f] VOLUME...      Remove volumes no container uses\n" +
      "  prune [-f]             Remove all volumes no container uses",
    description: "Manage volumes",
    minArgs: 1,
    maxArgs: Infinity,
    options: {
      quiet: { short: "q", long: "quiet", help: "ls: only display volume names" },
      format: { long: "format", value: "string", help: "ls, inspect: 'json' for one JSON object per volume" },
      force: { short: "f", long: "force", help: "rm: no error for a missing volume; prune: do not prompt" },
      label: { long: "label", value: "list", repeatable: true, help: "create: set metadata on the volume" },
      driver: {
        short: "d",
        long: "driver",
        value: "string",
        default: "local",
        help: "create: volume driver",
      },
    },
  },
  ({ options, args, globals }) => {
    const [sub, ...rest] = args;
    if (!(SUBCOMMANDS as readonly string[]).includes(sub)) {
      throw new FlokaError(
        `unknown volume command ${JSON.stringify(sub)}: expected one of ${SUBCOMMANDS.join(", ")}`,
      );
    }
    const containers = openStore(globals);
    const volumes = new VolumeStore(containers.store);
    switch (sub) {
      case "create": {
        if (rest.length > 1) throw new FlokaError(`"volume create" accepts at most 1 argument`);
        if (options.driver !== "local") {
          throw new FlokaError(`volume driver ${options.driver} not found: only local is supported`);
        }
        const { volume } = volumes.create(rest[0], parseLabels(options.label));
        console.log(volume.name);
        return 0;
      }
      case "ls": {
        if (rest.length) throw new FlokaError(`"volume ls" accepts no arguments`);
        const all = volumes.list();
        if (options.quiet) {
          for (const v of all) console.log(v.name);
        } else if (options.format === "json") {
          for (const v of all) {
            const { Driver, Labels, Mountpoint, Name, Scope } = volumeView(v);
            console.log(JSON.stringify({ Driver, Labels: Labels ?? {}, Mountpoint, Name, Scope }));
          }
        } else if (options.format) {
          throw new FlokaError(`unsupported format ${JSON.stringify(options.format)}: use json`);
        } else {
          // Docker's tabwriter: columns at least 10 wide, 3 spaces of padding.
          const width = Math.max(10, "DRIVER".length + 3);
          const rows = [["DRIVER", "VOLUME NAME"], ...all.map((v) => ["local", v.name])];
          for (const [driver, name] of rows) console.log(driver.padEnd(width) + name);
        }
        return 0;
      }
      case "inspect": {
        if (!rest.length) throw new FlokaError(`"volume inspect" requires at least 1 argument`);
        const found = [];
        let code = 0;
        for (const name of rest) {
          const v = volumes.get(name);
          if (v) found.push(volumeView(v));
          else {
            console.error(`floka: No such volume: ${name}`);
            code = 1;
          }
        }
        if (options.format === "json") { for (const v of found) console.log(JSON.stringify(v)); }
        else console.log(JSON.stringify(found, null, 4));
        return code;
      }
      case "rm": {
        if (!rest.length) throw new FlokaError(`"volume rm" requires at least 1 argument`);
        const errors = containers.locked(() =>
          volumes.remove(rest, volumeUsers(containers), options.force, (name) => console.log(name))
        );
        for (const e of errors) console.error(`floka: ${e}`);
        return errors.length ? 1 : 0;
      }
      case "prune": {
        if (rest.length) throw new FlokaError(`"volume prune" accepts no arguments`);
        if (
          !options.force &&
          !confirm("WARNING! This will remove all local volumes not used by at least one container.")
        ) return 0;
        const { names, bytes } = containers.locked(() => volumes.prune(volumeUsers(containers)));
        printDeleted("Deleted Volumes", names);
        console.log(reclaimedLine(bytes));
        return 0;
      }
    }
    throw new FlokaError(`unknown volume command ${JSON.stringify(sub)}`);
  },
);
