/**
 * The container store: one directory per container under `containers/<id>/`, holding
 * `config.json` (what was asked for, written once), `state.json` (what is happening now,
 * replaced atomically), the generated /etc files, and the overlay's `upper/`, `work/` and
 * `rootfs/` mount point. Names are reserved in `containers/.names/<name>` (holding the
 * ID), so starting a container costs the same with ten containers or ten thousand. Every
 * change is made under `containers/.lock`.
 */
import { FlokaError } from "../../lib/errors.ts";
import { readJsonIfExists, withLock, writeFileAtomic, writeJsonAtomic } from "../store/files.ts";
import type { StoreRoot } from "../store/root.ts";
import type { MountSpec } from "./volumes.ts";
import type { PortBinding } from "../../lib/network.ts";
import type { NetworkState } from "../network/attach.ts";
import type { CgroupLimits } from "../runtime/cgroups.ts";

export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  /** The image as the user named it, normalised (`busybox:latest`). */
  image: string;
  /** The image's directories stacked as overlay lower layers, top first. */
  lowerDirs: string[];
  /** The command: Path and Args as `docker inspect` shows them. */
  path: string;
  args: string[];
  config: {
    hostname: string;
    env: string[];
    workingDir: string;
    user: string;
    entrypoint: string[] | null;
    cmd: string[] | null;
    /** The signal `floka stop` sends first: the image's STOPSIGNAL, else SIGTERM. */
    stopSignal?: string;
    /** `-t`: the command gets a terminal of its own, relayed by its supervisor. */
    tty?: boolean;
    /** `-i`: the command's stdin stays open (for `floka attach` when detached). */
    openStdin?: boolean;
  };
  /** The resource limits (cgroups.ts), then the rest of what the host sets up. */
  hostConfig: CgroupLimits & {
    autoRemove: boolean;
    /** `--network`: "none", "host", "bridge" (the default network, `floka`) or a network's name. */
    networkMode: string;
    /** `-p`/`-P`, host ports resolved when the container was made. */
    portBindings?: PortBinding[];
    /** `--dns`: resolvers that replace the host's in the container's resolv.conf. */
    dns?: string[];
    /** `--add-host NAME:IP`: extra /etc/hosts entries. */
    extraHosts?: { name: string; ip: string }[];
    /** `--restart`: what the supervisor does when the container's process ends. */
    restartPolicy?: RestartPolicy;
    /** `--init`: a small init (the host's catatonit or tini) runs as PID 1. */
    init?: boolean;
    /** `--log-opt`: bounds of the json-file log. */
    logConfig?: { maxSize: number; maxFile: number };
    /** `-v`, `--mount`, `--tmpfs`: binds, named volumes and tmpfs mounts, in order. */
    mounts?: MountSpec[];
    /** `--read-only`: the root filesystem is mounted read-only. */
    readOnly?: boolean;
    /** `--cap-add`/`--cap-drop` as given, names normalised (`CAP_NET_ADMIN`, `ALL`). */
    capAdd?: string[];
    capDrop?: string[];
    /** `--privileged`: every capability, the host's devices, no masked paths, no seccomp. */
    privileged?: boolean;
    /** `--security-opt no-new-privileges`. */
    noNewPrivileges?: boolean;
    /** `--security-opt seccomp=`: "unconfined", or the profile's JSON, read when the container was made. */
    seccompProfile?: string;
  };
}

/** Docker's restart policies; `maximumRetryCount` counts for `on-failure` only (0: no limit). */
export interface RestartPolicy {
  name: "no" | "on-failure" | "always" | "unless-stopped";
  maximumRetryCount: number;
}

export type ContainerStatus = "created" | "running" | "restarting" | "exited";

export interface ContainerState {
  status: ContainerStatus;
  /** Host PID of the container's PID 1 while it runs, else 0. */
  pid: number;
  /** /proc/PID/stat start time of that PID, to tell it from a reused PID. */
  pidStartTime?: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** The kernel's OOM killer ended a process of the container (its memory limit was hit). */
  oomKilled?: boolean;
  error?: string;
  /** How many times the supervisor has restarted the container's process. */
  restartCount?: number;
  /** `floka stop`/`kill` ended it: no restart policy brings it back. */
  manuallyStopped?: boolean;
  /** The Floka process that waits for the container (`floka run`, or a detached supervisor). */
  supervisorPid?: number;
  supervisorStartTime?: number;
  /** While the process runs on a network of its own: its namespace, address and ports. */
  network?: NetworkState;
}

export interface Container {
  record: ContainerRecord;
  state: ContainerState;
  dir: string;
}

export class ContainerStore {
  constructor(readonly store: StoreRoot) {}

  dir(id: string): string {
    return `${this.store.containers}/${id}`;
  }

  /** Runs `fn` under the containers' lock: no container is made or removed meanwhile. */
  locked<T>(fn: () => T): T {
    return withLock(`${this.store.containers}/.lock`, fn);
  }

  private namePath(name: string): string {
    return `${this.store.containers}/.names/${name}`;
  }

  /** The ID of the complete container called `name`, or null. A stale reservation is ignored. */
  private idOfName(name: string): string | null {
    let id: string;
    try {
      id = Deno.readTextFileSync(this.namePath(name)).trim();
    } catch {
      return null;
    }
    return this.read(id) ? id : null;
  }

  /** True when a container is called `name`. */
  nameInUse(name: string): boolean {
    return this.idOfName(name) !== null;
  }

  /**
   * Makes the container's directory with its record and `created` state, refusing a name
   * in use. `prepare` fills the directory; on any failure the directory is removed.
   */
  create(record: ContainerRecord, prepare: (dir: string) => void): Container {
    return this.locked(() => {
      const holder = this.idOfName(record.name);
      if (holder) {
        throw new FlokaError(
          `the container name "/${record.name}" is already in use by container "${holder}". ` +
            `Remove (or rename) that container to be able to reuse that name.`,
        );
      }
      const dir = this.dir(record.id);
      Deno.mkdirSync(dir, { mode: 0o700 });
      try {
        prepare(dir);
        const state: ContainerState = { status: "created", pid: 0 };
        writeJsonAtomic(`${dir}/state.json`, state);
        Deno.mkdirSync(`${this.store.containers}/.names`, { recursive: true });
        writeFileAtomic(this.namePath(record.name), record.id + "\n");
        // config.json last: a directory without it is an unfinished create and is ignored.
        writeJsonAtomic(`${dir}/config.json`, record);
        return { record, state, dir };
      } catch (err) {
        Deno.removeSync(dir, { recursive: true });
        // An OS error (a full or read-only disk) is no bug: one line for the user, no stack.
        if (typeof (err as { code?: unknown }).code === "string") {
          throw new FlokaError(`cannot create the container: ${(err as Error).message}`);
        }
        throw err;
      }
    });
  }

  private read(id: string): Container | null {
    const dir = this.dir(id);
    const record = readJsonIfExists<ContainerRecord>(`${dir}/config.json`);
    const state = readJsonIfExists<ContainerState>(`${dir}/state.json`);
    return record && state ? { record, state, dir } : null;
  }

  /** Every complete container, newest first. */
  list(): Container[] {
    return this.ids()
      .map((id) => this.read(id))
      .filter((c) => c !== null)
      .sort((a, b) => b.record.created.localeCompare(a.record.created));
  }

  /** A container by full ID, name, or unique ID prefix. */
  find(ref: string): Container {
    const name = ref.replace(/^\//, "");
    const byName = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) ? this.idOfName(name) : null;
    const exact = this.read(/^[0-9a-f]{64}$/.test(ref) ? ref : byName ?? "");
    if (exact) return exact;
    const prefixed = /^[0-9a-f]+$/.test(ref) ? this.ids().filter((id) => id.startsWith(ref)) : [];
    const found = prefixed.length === 1 ? this.read(prefixed[0]) : null;
    if (found) return found;
    if (prefixed.length > 1) throw new FlokaError(`multiple containers match "${ref}": use more of the ID`);
    throw new FlokaError(`No such container: ${ref}`);
  }

  /** IDs of the container directories (complete or not). */
  private ids(): string[] {
    try {
      return [...Deno.readDirSync(this.store.containers)]
        .filter((e) => e.isDirectory && /^[0-9a-f]{64}$/.test(e.name))
        .map((e) => e.name);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /**
   * Replaces the container's state with `update(current)` under the lock. Returns false when
   * the container is gone (removed meanwhile by `rm -f`).
   */
  updateState(id: string, update: (current: ContainerState) => ContainerState): boolean {
    return this.locked(() => {
      const c = this.read(id);
      if (!c) return false;
      writeJsonAtomic(`${c.dir}/state.json`, update(c.state));
      return true;
    });
  }

  /** Finishes removals that a killed Floka left halfway (`.removing-<id>` directories). */
  private sweepInterruptedRemovals(): void {
    for (const entry of Deno.readDirSync(this.store.containers)) {
      if (entry.name.startsWith(".removing-")) {
        Deno.removeSync(`${this.store.containers}/${entry.name}`, { recursive: true });
      }
    }
  }

  /** Deletes the container's directory; its rootfs must not be mounted (it never is on the host). */
  remove(id: string): void {
    this.locked(() => {
      const dir = this.dir(id);
      // Rename first so a crash halfway never leaves a container that looks complete.
      const doomed = `${this.store.containers}/.removing-${id}`;
      const record = readJsonIfExists<ContainerRecord>(`${dir}/config.json`);
      try {
        Deno.renameSync(dir, doomed);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return;
        throw err;
      }
      if (record && this.idOfName(record.name) === null) {
        try {
          Deno.removeSync(this.namePath(record.name));
        } catch { /* never reserved, or taken over */ }
      }
      Deno.removeSync(doomed, { recursive: true });
      this.sweepInterruptedRemovals();
    });
  }
}
