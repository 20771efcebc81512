/**
 * `floka generate kube`: containers as a Kubernetes Pod manifest (and a NodePort Service for
 * their published ports), in the shape `podman generate kube` prints. The conversion is pure:
 * the CLI looks up the images and the bind sources and hands them in. The YAML is written by
 * hand; every string goes through `yamlString()`, which quotes whatever YAML would read as
 * something else.
 */
import type { ContainerRecord } from "./store.ts";

/** What the CLI knows of a container's image. */
export interface KubeImage {
  /** Pulled from a registry: the cluster can pull it as `reference`. */
  pulled: boolean;
  /** The fully qualified reference (`docker.io/library/busybox:latest`) of a pulled image. */
  reference: string;
  /** The image's own config, to leave out what the container only inherited. */
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[];
    WorkingDir?: string;
  } | null;
}

/** One container to convert. */
export interface KubeContainer {
  record: ContainerRecord;
  /** null when the image is no longer in the store. */
  image: KubeImage | null;
  /** What each bind source is on the host (missing: not there now). */
  bindKinds?: Record<string, "Directory" | "File" | "missing">;
}

export interface KubeOptions {
  /** Also a NodePort Service for the published ports, after `---`. */
  service?: boolean;
}

const YAML_WORDS = /^(?:true|false|yes|no|on|off|y|n|null|~)$/i;
const PLAIN = /^[A-Za-z/][A-Za-z0-9_./@+=,:-]*$/;

/** `s` as a YAML scalar that reads back as that same string (plain when safe, else double-quoted). */
export function yamlString(s: string): string {
  if (PLAIN.test(s) && !s.endsWith(":") && !YAML_WORDS.test(s)) return s;
  // A JSON string is a YAML double-quoted scalar; YAML also wants its non-printables escaped.
  return JSON.stringify(s).replace(
    /[\u007f-\u0084\u0086-\u009f\ufeff\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A comment line's text, on one line. */
function comment(text: string): string {
  return `# ${text.replace(/[\r\n]+/g, " ")}`;
}

/** A Kubernetes name (RFC 1123 label): lowercase letters, digits and `-`, at most 63. */
export function kubeName(name: string): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+/, "").slice(0, 63)
    .replace(/-+$/, "");
  return cleaned || "container";
}

const Ki = 1024, Mi = Ki * 1024, Gi = Mi * 1024, Ti = Gi * 1024;

/** Bytes as a Kubernetes quantity: `512Mi`, `1Gi`, or plain bytes when no binary unit divides them. */
export function memoryQuantity(bytes: number): string {
  for (const [unit, size] of [["Ti", Ti], ["Gi", Gi], ["Mi", Mi], ["Ki", Ki]] as const) {
    if (bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/** CPUs as a Kubernetes quantity: whole CPUs plain (`2`), else millicores (`500m`). */
export function cpuQuantity(millicores: number): string {
  const m = Math.max(1, Math.round(millicores));
  return m % 1000 === 0 ? String(m / 1000) : `${m}m`;
}

const RESTART: Record<string, string> = {
  "no": "Never",
  "on-failure": "OnFailure",
  "always": "Always",
  "unless-stopped": "Always",
};

function sameList(a: readonly string[] | null | undefined, b: readonly string[] | null | undefined): boolean {
  const x = a ?? [], y = b ?? [];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Docker's ENTRYPOINT/CMD as Kubernetes' command/args: only what differs from the image when known. */
export function commandAndArgs(
  record: ContainerRecord,
  image: KubeImage | null,
): { command?: string[]; args?: string[] } {
  const { entrypoint, cmd } = record.config;
  const cfg = image?.config;
  if (!cfg) {
    return {
      ...(entrypoint?.length ? { command: entrypoint } : {}),
      ...(cmd?.length ? { args: cmd } : {}),
    };
  }
  if (!sameList(entrypoint, cfg.Entrypoint)) {
    // A command of the Pod's own drops the image's Cmd: the args must come along.
    return { command: entrypoint ?? [], ...(cmd?.length ? { args: cmd } : {}) };
  }
  if (!sameList(cmd, cfg.Cmd)) return { args: cmd ?? [] };
  return {};
}

/** The environment the Pod must set: without PATH and HOSTNAME, nor what the image sets itself. */
export function podEnv(record: ContainerRecord, image: KubeImage | null): { name: string; value: string }[] {
  const inherited = new Set(image?.config?.Env ?? []);
  return record.config.env
    .filter((e) => !inherited.has(e))
    .map((e) => {
      const i = e.indexOf("=");
      return i < 0 ? { name: e, value: "" } : { name: e.slice(0, i), value: e.slice(i + 1) };
    })
    .filter((e) => e.name !== "PATH" && e.name !== "HOSTNAME");
}

/** The container's CPU limit in millicores (`--cpus`, else `--cpu-quota`/`--cpu-period`), 0 for none. */
function cpuMillicores(record: ContainerRecord): number {
  const h = record.hostConfig;
  if (h.nanoCpus) return h.nanoCpus / 1e6;
  if (h.cpuQuota && h.cpuQuota > 0) return (h.cpuQuota / (h.cpuPeriod || 100_000)) * 1000;
  return 0;
}

function list(indent: string, items: readonly string[]): string[] {
  return items.map((i) => `${indent}- ${yamlString(i)}`);
}

interface PodVolume {
  name: string;
  lines: string[];
}

/** One container's entry in `spec.containers`, and the Pod volumes its mounts use. */
function containerYaml(
  c: KubeContainer,
  name: string,
  volumes: PodVolume[],
  usedNames: Set<string>,
): string[] {
  const { record, image } = c;
  const out: string[] = [];
  out.push(`  - name: ${yamlString(name)}`);
  if (image?.pulled) {
    out.push(`    image: ${yamlString(image.reference)}`);
  } else {
    out.push(
      image
        ? `    ${
          comment(`${record.image} is a local image: push it to a registry the cluster can pull from first`)
        }`
        : `    ${
          comment(
            `${record.image} is no longer in the store: push it to a registry the cluster can pull from first`,
          )
        }`,
    );
    out.push(`    image: ${yamlString(record.image)}`);
  }
  const { command, args } = commandAndArgs(record, image);
  if (command) out.push(command.length ? "    command:" : "    command: []", ...list("    ", command));
  if (args) out.push(args.length ? "    args:" : "    args: []", ...list("    ", args));
  const env = podEnv(record, image);
  if (env.length) {
    out.push("    env:");
    for (const e of env) out.push(`    - name: ${yamlString(e.name)}`, `      value: ${yamlString(e.value)}`);
  }
  const wd = record.config.workingDir;
  if (wd && wd !== "/" && wd !== (image?.config?.WorkingDir ?? "")) {
    out.push(`    workingDir: ${yamlString(wd)}`);
  }
  const ports = record.hostConfig.portBindings ?? [];
  if (ports.length) {
    out.push("    ports:");
    for (const p of ports) {
      out.push(`    - containerPort: ${p.containerPort}`, `      hostPort: ${p.hostPort}`);
      if (p.hostIp) out.push(`      hostIP: ${yamlString(p.hostIp)}`);
      out.push(`      protocol: ${p.protocol.toUpperCase()}`);
    }
  }
  const limits: string[] = [];
  if (record.hostConfig.memory > 0) {
    limits.push(`        memory: ${memoryQuantity(record.hostConfig.memory)}`);
  }
  const cpu = cpuMillicores(record);
  if (cpu > 0) limits.push(`        cpu: ${cpuQuantity(cpu)}`);
  if (limits.length) out.push("    resources:", "      limits:", ...limits);
  if (record.hostConfig.pidsLimit && record.hostConfig.pidsLimit > 0) {
    out.push(
      `    ${
        comment(`--pids-limit ${record.hostConfig.pidsLimit} has no per-container equivalent in a Pod`)
      }`,
    );
  }
  const user = record.config.user;
  if (user) {
    const [uid, gid] = user.split(":");
    const numeric = (s: string | undefined) => s !== undefined && /^\d+$/.test(s);
    const security: string[] = [];
    if (numeric(uid)) security.push(`      runAsUser: ${Number(uid)}`);
    if (numeric(gid)) security.push(`      runAsGroup: ${Number(gid)}`);
    if (!numeric(uid) || (gid !== undefined && !numeric(gid))) {
      out.push(
        `    ${comment(`user ${user}: Kubernetes takes numeric IDs only; set runAsUser/runAsGroup by hand`)}`,
      );
    }
    if (record.hostConfig.readOnly) security.push("      readOnlyRootFilesystem: true");
    if (security.length) out.push("    securityContext:", ...security);
  } else if (record.hostConfig.readOnly) {
    out.push("    securityContext:", "      readOnlyRootFilesystem: true");
  }
  if (record.config.tty) out.push("    tty: true");
  if (record.config.openStdin) out.push("    stdin: true");
  const mounts = record.hostConfig.mounts ?? [];
  if (mounts.length) {
    out.push("    volumeMounts:");
    for (const m of mounts) {
      const volume = podVolume(c, m, usedNames);
      volumes.push(volume);
      out.push(`    - name: ${yamlString(volume.name)}`, `      mountPath: ${yamlString(m.target)}`);
      if (m.readOnly) out.push("      readOnly: true");
    }
  }
  return out;
}

function uniqueName(base: string, used: Set<string>): string {
  let name = kubeName(base);
  for (let i = 1; used.has(name); i++) name = kubeName(`${base.slice(0, 55)}-${i}`);
  used.add(name);
  return name;
}

type Mount = NonNullable<ContainerRecord["hostConfig"]["mounts"]>[number];

function podVolume(c: KubeContainer, m: Mount, used: Set<string>): PodVolume {
  if (m.type === "bind") {
    const name = uniqueName(`${m.source.replace(/^\/+/, "") || "root"}-host`, used);
    const kind = c.bindKinds?.[m.source];
    const type = kind === "File" || kind === "Directory"
      ? kind
      : kind === "missing" && m.createSource
      ? "DirectoryOrCreate"
      : undefined;
    return {
      name,
      lines: [
        `  - name: ${yamlString(name)}`,
        "    hostPath:",
        `      path: ${yamlString(m.source)}`,
        ...(type ? [`      type: ${type}`] : []),
      ],
    };
  }
  if (m.type === "volume" && !m.anonymous) {
    const name = uniqueName(`${m.name ?? "volume"}-pvc`, used);
    return {
      name,
      lines: [
        `  - name: ${yamlString(name)}`,
        "    persistentVolumeClaim:",
        `      claimName: ${yamlString(m.name ?? "")}`,
      ],
    };
  }
  // tmpfs, and an anonymous volume (it goes with the container): the Pod's own scratch space.
  const tmpfs = m.type === "tmpfs";
  const name = uniqueName(tmpfs ? `tmpfs-${m.target.replace(/^\/+/, "")}` : "anonymous-volume", used);
  const size = tmpfs ? m.options?.find((o) => o.startsWith("size="))?.slice(5) : undefined;
  const sizeBytes = size !== undefined ? parseSize(size) : null;
  const empty = [
    ...(tmpfs ? ["      medium: Memory"] : []),
    ...(sizeBytes ? [`      sizeLimit: ${memoryQuantity(sizeBytes)}`] : []),
  ];
  return {
    name,
    lines: [`  - name: ${yamlString(name)}`, empty.length ? "    emptyDir:" : "    emptyDir: {}", ...empty],
  };
}

/** A tmpfs `size=` (`64m`, `1g`, bytes), or null when it is not one of those. */
function parseSize(text: string): number | null {
  const m = /^(\d+)([kmg]?)$/i.exec(text);
  if (!m) return null;
  const unit = { "": 1, k: Ki, m: Mi, g: Gi }[m[2].toLowerCase() as "" | "k" | "m" | "g"];
  return Number(m[1]) * unit;
}

/** The Pod (and with `service`, the Service) for `containers`, as YAML. */
export function generateKube(containers: readonly KubeContainer[], options: KubeOptions = {}): string {
  if (!containers.length) throw new Error("generateKube: no containers");
  const first = containers[0].record;
  const podName = `${kubeName(first.name)}-pod`;
  const app = kubeName(first.name);
  const out: string[] = [
    comment(`Generated by Floka for ${containers.map((c) => c.record.name).join(", ")}`),
    "apiVersion: v1",
    "kind: Pod",
    "metadata:",
    `  name: ${yamlString(podName)}`,
    "  labels:",
    `    app: ${yamlString(app)}`,
    "spec:",
  ];
  const policies = containers.map((c) => c.record.hostConfig.restartPolicy?.name ?? "no");
  if (policies.some((p) => p !== policies[0])) {
    out.push(
      `  ${
        comment(
          `the containers' restart policies differ (${
            policies.join(", ")
          }): a Pod has one, the first container's`,
        )
      }`,
    );
  }
  if (policies[0] === "unless-stopped") {
    out.push(`  ${comment("Docker's unless-stopped has no Kubernetes equivalent: Always")}`);
  }
  out.push(`  restartPolicy: ${RESTART[policies[0]] ?? "Never"}`);
  if (first.hostConfig.networkMode === "host") out.push("  hostNetwork: true");
  if (
    first.config.hostname && first.config.hostname !== first.id.slice(0, 12) &&
    first.hostConfig.networkMode !== "host"
  ) {
    out.push(`  hostname: ${yamlString(kubeName(first.config.hostname))}`);
  }
  out.push("  containers:");
  const volumes: PodVolume[] = [];
  const usedContainerNames = new Set<string>();
  const usedVolumeNames = new Set<string>();
  for (const c of containers) {
    out.push(...containerYaml(c, uniqueName(c.record.name, usedContainerNames), volumes, usedVolumeNames));
  }
  if (volumes.length) {
    out.push("  volumes:");
    for (const v of volumes) out.push(...v.lines);
  }
  if (options.service) out.push(...serviceYaml(containers, podName, app));
  return out.join("\n") + "\n";
}

/** A NodePort Service for every published port. */
function serviceYaml(containers: readonly KubeContainer[], podName: string, app: string): string[] {
  const ports = containers.flatMap((c) => c.record.hostConfig.portBindings ?? []);
  if (!ports.length) return ["---", comment("no published ports: no Service")];
  const out = [
    "---",
    "apiVersion: v1",
    "kind: Service",
    "metadata:",
    `  name: ${yamlString(podName)}`,
    "  labels:",
    `    app: ${yamlString(app)}`,
    "spec:",
    "  type: NodePort",
    "  selector:",
    `    app: ${yamlString(app)}`,
    "  ports:",
  ];
  const seen = new Set<string>();
  for (const p of ports) {
    const name = `${p.containerPort}-${p.protocol}`;
    if (seen.has(name)) continue;
    seen.add(name);
    out.push(
      `  - name: ${name}`,
      `    port: ${p.containerPort}`,
      `    targetPort: ${p.containerPort}`,
      `    protocol: ${p.protocol.toUpperCase()}`,
    );
    if (p.hostPort >= 30000 && p.hostPort <= 32767) {
      out.push(`    nodePort: ${p.hostPort}`);
    } else {
      out.push(
        `    ${
          comment(
            `host port ${p.hostPort} is outside the default NodePort range 30000-32767: the cluster picks one`,
          )
        }`,
      );
    }
  }
  return out;
}
