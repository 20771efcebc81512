/**
 * `floka system df` (what images, containers, volumes and the build cache take, and what a
 * prune would give back) and `floka system prune` (stopped containers, unused networks, then unused images,
 * the build cache, and with `--volumes` unused volumes), as `docker system` has them; and
 * `floka system check [--repair]` (verify the store and the state, repair what is safe), as
 * `podman system check` has it.
 */
import { humanDuration, humanSize } from "../../lib/units.ts";
import { reconcile } from "../containers/reconcile.ts";
import type { Container, ContainerStore } from "../containers/store.ts";
import { VolumeStore } from "../containers/volumes.ts";
import { contentStore, type Image, imageId, listImages, shortImageId } from "../images/images.ts";
import { checkStore, formatFinding } from "../store/check.ts";
import { defineCommand } from "./command.ts";
import { openStore } from "./context.ts";
import { pruneNetworks } from "./network.ts";
import { writeStdout } from "./output.ts";
import {
  buildCacheUsage,
  type CommandGroup,
  commandGroup,
  confirm,
  imageFootprint,
  imageKey,
  isStopped,
  printDeleted,
  pruneBuildCache,
  pruneContainers,
  pruneImages,
  reclaimedLine,
  treeSize,
  usesImage,
} from "./prune.ts";
import { volumeUsers } from "./volume.ts";

export interface UsageRow {
  type: string;
  total: number;
  active: number;
  size: number;
  reclaimable: number;
  /** Docker shows the reclaimable share in percent for all but the build cache. */
  percent: boolean;
}

export interface DiskUsage {
  rows: UsageRow[];
  images: { image: Image; id: string; size: number; containers: number }[];
  containers: { container: Container; size: number }[];
  volumes: { name: string; links: number; size: number }[];
}

/** Measures the store: every size is the bytes of files on disk, hard links once, shared layers once. */
export async function diskUsage(store: ContainerStore): Promise<DiskUsage> {
  const content = contentStore(store.store);
  const containers = store.list().map((c) => reconcile(store, c)).filter((c) => c !== null);

  // Images: one per manifest (or hand-placed directory), however many names it has.
  const images = new Map<string, Image>();
  for (const image of listImages(store.store)) images.set(imageKey(image), image);
  const footprints = new Map([...images].map(([k, i]) => [k, imageFootprint(content, i)]));
  const activeKeys = [...images].filter(([, i]) => containers.some((c) => usesImage(c, i))).map(([k]) => k);
  const allImagePaths = new Set([...footprints.values()].flat());
  const imagesSize = treeSize(allImagePaths);
  const activeSize = treeSize(new Set(activeKeys.flatMap((k) => footprints.get(k)!)));

  const containerSizes = containers.map((c) => ({ container: c, size: treeSize([c.dir]) }));
  const stoppedSize = containerSizes.filter((c) => isStopped(c.container)).reduce((n, c) => n + c.size, 0);

  const users = volumeUsers(store);
  const volumes = new VolumeStore(store.store).list().map((v) => ({
    name: v.name,
    links: users(v.name).length,
    size: treeSize([v.mountpoint]),
  }));

  const cache = buildCacheUsage(content, allImagePaths);
  const percent = true;
  return {
    rows: [
      {
        type: "Images",
        total: images.size,
        active: activeKeys.length,
        size: imagesSize,
        reclaimable: Math.max(0, imagesSize - activeSize),
        percent,
      },
      {
        type: "Containers",
        total: containers.length,
        active: containers.filter((c) => !isStopped(c)).length,
        size: containerSizes.reduce((n, c) => n + c.size, 0),
        reclaimable: stoppedSize,
        percent,
      },
      {
        type: "Local Volumes",
        total: volumes.length,
        active: volumes.filter((v) => v.links > 0).length,
        size: volumes.reduce((n, v) => n + v.size, 0),
        reclaimable: volumes.filter((v) => v.links === 0).reduce((n, v) => n + v.size, 0),
        percent,
      },
      {
        type: "Build Cache",
        total: cache.count,
        active: 0,
        size: cache.bytes,
        reclaimable: cache.bytes,
        percent: false,
      },
    ],
    images: await Promise.all([...images.values()].map(async (image) => ({
      image,
      id: shortImageId(await imageId(image)),
      size: treeSize(footprints.get(imageKey(image))!),
      containers: containers.filter((c) => usesImage(c, image)).length,
    }))),
    containers: containerSizes,
    volumes,
  };
}

/** `1.2MB (50%)`: Docker's integer percentage of the total, none when the total is 0. */
export function reclaimableText(row: UsageRow): string {
  const size = humanSize(row.reclaimable);
  return row.percent && row.size > 0 ? `${size} (${Math.floor(row.reclaimable * 100 / row.size)}%)` : size;
}

/** Docker's tabwriter for `system df`: columns at least 10 wide, 3 spaces of padding. */
export function dfTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, col) => Math.max(10, ...rows.map((r) => (r[col] ?? "").length + 3)));
  return rows.map((r) =>
    r.map((cell, col) => col === r.length - 1 ? cell : cell.padEnd(widths[col]!)).join("")
  )
    .join("\n") + "\n";
}

export function dfSummary(usage: DiskUsage): string {
  return dfTable([
    ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
    ...usage.rows.map((
      r,
    ) => [r.type, String(r.total), String(r.active), humanSize(r.size), reclaimableText(r)]),
  ]);
}

function dfVerbose(usage: DiskUsage): string {
  const now = Date.now();
  const ago = (iso: string) => `${humanDuration(now - Date.parse(iso))} ago`;
  return [
    "Images space usage:",
    "",
    dfTable([
      ["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "CONTAINERS"],
      ...usage.images.map((
        i,
      ) => [i.image.repository, i.image.tag, i.id, humanSize(i.size), String(i.containers)]),
    ]),
    "Containers space usage:",
    "",
    dfTable([
      ["CONTAINER ID", "IMAGE", "SIZE", "CREATED", "STATUS", "NAMES"],
      ...usage.containers.map(({ container: c, size }) => [
        c.record.id.slice(0, 12),
        c.record.image,
        humanSize(size),
        ago(c.record.created),
        c.state.status,
        c.record.name,
      ]),
    ]),
    "Local Volumes space usage:",
    "",
    dfTable([
      ["VOLUME NAME", "LINKS", "SIZE"],
      ...usage.volumes.map((v) => [v.name, String(v.links), humanSize(v.size)]),
    ]),
    "Build cache usage: " + humanSize(usage.rows[3]!.size),
    "",
  ].join("\n");
}

const systemDf = defineCommand(
  {
    name: "system df",
    usage: "[OPTIONS]",
    description: "Show disk usage",
    minArgs: 0,
    maxArgs: 0,
    options: {
      verbose: { short: "v", long: "verbose", help: "Show detailed information on space usage" },
    },
  },
  async ({ options, globals }) => {
    const usage = await diskUsage(openStore(globals));
    writeStdout(options.verbose ? dfVerbose(usage) : dfSummary(usage));
    return 0;
  },
);

const systemPrune = defineCommand(
  {
    name: "system prune",
    usage: "[OPTIONS]",
    description: "Remove unused data",
    minArgs: 0,
    maxArgs: 0,
    options: {
      all: { short: "a", long: "all", help: "Remove all unused images not just dangling ones" },
      force: { short: "f", long: "force", help: "Do not prompt for confirmation" },
      volumes: { long: "volumes", help: "Prune volumes" },
    },
  },
  async ({ options, globals }) => {
    const warning = [
      "WARNING! This will remove:",
      "  - all stopped containers",
      "  - all networks not used by at least one container",
      ...(options.volumes ? ["  - all volumes not used by at least one container"] : []),
      options.all
        ? "  - all images without at least one container associated to them"
        : "  - all dangling images",
      options.all ? "  - all build cache" : "  - unused build cache",
      "",
    ].join("\n");
    if (!options.force && !confirm(warning)) return 0;
    const store = openStore(globals);
    const containers = await pruneContainers(store);
    let total = containers.bytes;
    printDeleted("Deleted Containers", containers.ids);
    for (const e of containers.errors) console.error(`floka: ${e}`);
    const networks = pruneNetworks(store);
    printDeleted("Deleted Networks", networks);
    if (options.volumes) {
      const volumes = store.locked(() => new VolumeStore(store.store).prune(volumeUsers(store)));
      total += volumes.bytes;
      printDeleted("Deleted Volumes", volumes.names);
    }
    const images = pruneImages(store, options.all);
    total += images.bytes;
    printDeleted("Deleted Images", images.lines);
    const cache = pruneBuildCache(store, options.all);
    total += cache.bytes;
    printDeleted("Deleted build cache objects", cache.keys);
    console.log(reclaimedLine(total));
    return containers.errors.length ? 1 : 0;
  },
);

const systemCheck = defineCommand(
  {
    name: "system check",
    usage: "[OPTIONS]",
    description: "Check the store and the state for consistency, and repair what is safe",
    minArgs: 0,
    maxArgs: 0,
    options: {
      repair: {
        short: "r",
        long: "repair",
        help: "Repair what is safe to repair (leftovers of killed commands, corrupt blobs, damaged images)",
      },
      format: { long: "format", value: "string", choices: ["json"], help: "Print the result as JSON (json)" },
    },
  },
  async ({ options, globals }) => {
    const result = await checkStore(openStore(globals), { repair: options.repair });
    if (options.format === "json") {
      writeStdout(JSON.stringify(result) + "\n");
    } else {
      const lines = result.findings.map(formatFinding);
      const { blobs, layers, images, containers } = result.checked;
      const repaired = result.findings.filter((f) => f.status === "repaired").length;
      const left = result.findings.length - repaired;
      lines.push(
        `checked ${blobs} blobs, ${layers} layers, ${images} images, ${containers} containers: ` +
          (result.findings.length === 0
            ? "no problems found"
            : `${result.findings.length} problems found, ${repaired} repaired, ${left} left`),
      );
      writeStdout(lines.join("\n") + "\n");
    }
    return result.ok ? 0 : 1;
  },
);

/** `floka system check|df|prune`. */
export const systemCommand: CommandGroup = commandGroup("system", "Manage Floka", [
  systemCheck,
  systemDf,
  systemPrune,
]);
