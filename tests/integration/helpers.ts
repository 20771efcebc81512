/**
 * Helpers for Floka's integration tests. They run the CLI as a user would: a separate
 * `deno run main.ts --root <temp store> ...` process per command, its stdout, stderr and
 * exit code captured. Every test gets its own temporary store holding a busybox image and
 * removes it at the end, killing whatever container it left running.
 *
 * Containers need root (namespaces, mounts, cgroups): without it every integration test is
 * registered as ignored and one line says why.
 */
import { type BusyboxImageOptions, makeBusyboxImage } from "../fixtures/busybox_image.ts";

export const MAIN = new URL("../../main.ts", import.meta.url).pathname;
export const CGROUP_ROOT = "/sys/fs/cgroup";

function runningAsRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false; // no --allow-sys: we cannot tell, and cannot do root things either
  }
}

export const IS_ROOT = runningAsRoot();
export const SKIP_REASON = "integration tests skipped: they need root (namespaces, mounts, cgroups)";
let skipReported = false;

/**
 * Says once per `deno test` run why the integration tests are skipped. Each test file runs
 * in its own isolate with its own copy of this module, but they share the process and its
 * environment, which therefore remembers that the reason was given.
 */
function reportSkipOnce(): void {
  if (skipReported) return;
  skipReported = true;
  const marker = "FLOKA_INTEGRATION_SKIP_REPORTED";
  try {
    if (Deno.env.get(marker) === String(Deno.pid)) return;
    Deno.env.set(marker, String(Deno.pid));
  } catch { /* no --allow-env: say it once per file instead */ }
  console.error(SKIP_REASON);
}

/**
 * Registers an integration test; ignored (with one message for the whole run) when not
 * root, and when `missing` names what this host lacks for it (said on stderr): so a test
 * that cannot check anything here counts as skipped, never as passed.
 */
export function integrationTest(name: string, fn: () => Promise<void>, missing: string | null = null): void {
  if (!IS_ROOT) reportSkipOnce();
  else if (missing) console.error(`skipped "${name}": ${missing}`);
  Deno.test({ name, ignore: !IS_ROOT || missing !== null, fn });
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const decoder = new TextDecoder();

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `probe` until it returns something other than undefined/false. The deadline is a
 * safety net so a broken feature fails the test instead of hanging it; it is generous on
 * purpose and says nothing about how fast Floka is.
 */
export async function waitUntil<T>(
  what: string | (() => string),
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${typeof what === "string" ? what : what()}`);
    }
    await sleep(25);
  }
}

/** The `deno run` argv that runs the Floka CLI with `args`. */
export function flokaArgv(root: string, args: string[]): string[] {
  return ["run", "--allow-all", "--quiet", MAIN, "--root", root, ...args];
}

/** A Floka process left running in the background (e.g. a foreground `floka run`). */
export class Background {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  /** True once the Floka process itself has ended (its container may live on). */
  exited = false;
  private readonly readers: ReadableStreamDefaultReader<Uint8Array>[];
  private readonly pumps: Promise<void>;
  private finished: Promise<Result> | null = null;

  constructor(command: Deno.Command) {
    this.child = command.spawn();
    this.child.status.then(() => this.exited = true);
    // Keep draining both pipes so the container never blocks on a full pipe.
    this.readers = [this.child.stdout.getReader(), this.child.stderr.getReader()];
    this.pumps = Promise.all([
      pump(this.readers[0], (s) => this.stdout += s),
      pump(this.readers[1], (s) => this.stderr += s),
    ]).then(() => {});
  }

  /** Waits until the process's stdout contains `text`. */
  async waitForOutput(text: string): Promise<void> {
    const state = () => `stdout ${JSON.stringify(this.stdout)}, stderr ${JSON.stringify(this.stderr)}`;
    await waitUntil(() => `output ${JSON.stringify(text)} (${state()})`, () => {
      if (this.stdout.includes(text)) return true;
      if (this.exited) throw new Error(`floka ended before printing ${JSON.stringify(text)}: ${state()}`);
      return false;
    });
  }

  /**
   * Waits for the process and for its pipes to close. The container's processes hold the
   * pipes too: when they outlive `floka run`, that is an error, not a reason to hang.
   */
  finish(): Promise<Result> {
    this.finished ??= (async () => {
      const status = await this.child.status;
      if (!await settlesWithin(this.pumps, 20_000)) {
        throw new Error(
          `floka ended (exit ${status.code}) but processes it started still hold its stdout/stderr: ` +
            `stdout ${JSON.stringify(this.stdout)}, stderr ${JSON.stringify(this.stderr)}`,
        );
      }
      return { code: status.code, stdout: this.stdout, stderr: this.stderr };
    })();
    return this.finished;
  }

  /**
   * For the end of a test, whatever state it left: lets Floka end by itself (so it can clean
   * up after its container), else kills it, and stops reading pipes a stray process holds.
   */
  async reap(): Promise<void> {
    const ended = await settlesWithin(this.child.status, 10_000);
    if (!ended) {
      try {
        this.child.kill("SIGKILL");
      } catch { /* ended meanwhile */ }
      await this.child.status;
    }
    if (!await settlesWithin(this.pumps, 5_000)) {
      await Promise.all(this.readers.map((r) => r.cancel().catch(() => {})));
      await this.pumps;
    }
  }
}

function processExists(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** True when `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function pump(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  sink: (text: string) => void,
): Promise<void> {
  const streamDecoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      sink(streamDecoder.decode(value, { stream: true }));
    }
  } catch { /* cancelled */ }
  sink(streamDecoder.decode());
}

export interface FlokaOptions {
  /** Extra environment variables for the Floka process. */
  env?: Record<string, string>;
  /** Runs Floka through another program first, e.g. `setpriv ...`. */
  wrapper?: string[];
  /** Text fed to Floka's stdin (otherwise stdin is /dev/null). */
  stdin?: string;
}

/** A temporary Floka store with a busybox image, and the CLI pointed at it. */
export class Store {
  readonly backgrounds: Background[] = [];

  constructor(readonly root: string) {}

  get containersDir(): string {
    return `${this.root}/containers`;
  }

  imageDir(name = "busybox:latest"): string {
    return `${this.root}/images/${name}`;
  }

  private command(args: string[], opts: FlokaOptions): Deno.Command {
    const argv = flokaArgv(this.root, args);
    const [program, ...rest] = opts.wrapper
      ? [...opts.wrapper, Deno.execPath(), ...argv]
      : [Deno.execPath(), ...argv];
    return new Deno.Command(program, {
      args: rest,
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...opts.env },
    });
  }

  /** Runs `floka --root <store> ...args` to completion. */
  async floka(args: string[], opts: FlokaOptions = {}): Promise<Result> {
    const child = this.command(args, opts).spawn();
    if (opts.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(opts.stdin));
      await writer.close();
    }
    const out = await child.output();
    return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
  }

  /** `floka run ...args`. */
  run(args: string[], opts: FlokaOptions = {}): Promise<Result> {
    return this.floka(["run", ...args], opts);
  }

  /** Starts `floka ...args` in the background; it is reaped at the end of the test. */
  spawn(args: string[], opts: FlokaOptions = {}): Background {
    const bg = new Background(this.command(args, opts));
    this.backgrounds.push(bg);
    return bg;
  }

  /** Full IDs from `floka ps [-a] -q --no-trunc`, newest first. */
  async ids(all = true): Promise<string[]> {
    const r = await this.floka(["ps", ...(all ? ["-a"] : []), "-q", "--no-trunc"]);
    if (r.code !== 0) throw new Error(`floka ps failed (${r.code}): ${r.stderr}`);
    return r.stdout.split("\n").filter(Boolean);
  }

  /** `floka inspect REF`, parsed. */
  // deno-lint-ignore no-explicit-any
  async inspect(ref: string): Promise<any> {
    const r = await this.floka(["inspect", ref]);
    if (r.code !== 0) throw new Error(`floka inspect ${ref} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout)[0];
  }

  /** Waits until `floka ps` (running only) lists exactly one more container, and returns its ID. */
  async waitRunning(except: string[] = []): Promise<string> {
    return await waitUntil("a running container in `floka ps`", async () => {
      const ids = (await this.ids(false)).filter((id) => !except.includes(id));
      return ids.length === 1 ? ids[0] : undefined;
    });
  }

  /** Directories in `containers/` (containers and half-removed ones), without `.names`. */
  containerDirs(): string[] {
    return this.list(this.containersDir).filter((e) => e.isDirectory && e.name !== ".names").map((e) =>
      e.name
    )
      .sort();
  }

  /**
   * What containers have left in `containers/`: their directories, stray files, and name
   * reservations (`.names/<name>`). The store's own lock file does not count.
   */
  containerEntries(): string[] {
    const top = this.list(this.containersDir)
      .filter((e) => e.name !== ".lock" && e.name !== ".names")
      .map((e) => e.name);
    const names = this.list(`${this.containersDir}/.names`).map((e) => `.names/${e.name}`);
    return [...top, ...names].sort();
  }

  private list(dir: string): Deno.DirEntry[] {
    try {
      return [...Deno.readDirSync(dir)];
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  }

  /**
   * Kills every container still running and reaps every background Floka process. Only
   * background processes and detached supervisors can leave a container running, so a test
   * without either costs nothing.
   * This is cleanup after a failed test, when Floka itself may be broken: besides the CLI it
   * uses the container directories and their cgroups to find the processes to kill.
   */
  async cleanUp(): Promise<void> {
    // Detached containers' supervisors: killing one takes its container with it.
    const supervisors = this.containerDirs().flatMap((id) => {
      try {
        const state = JSON.parse(Deno.readTextFileSync(`${this.containersDir}/${id}/state.json`));
        return state.supervisorPid && state.status !== "exited" ? [state.supervisorPid as number] : [];
      } catch {
        return [];
      }
    });
    if (this.backgrounds.length === 0 && supervisors.length === 0) return;
    const pids = new Set<number>(supervisors);
    try {
      for (const id of await this.ids(false)) pids.add((await this.inspect(id)).State?.Pid ?? 0);
    } catch { /* the CLI is broken: the cgroups below still name the processes */ }
    const ids = this.containerDirs().filter((name) => /^[0-9a-f]{64}$/.test(name));
    for (const id of ids) {
      for (const dir of cgroupDirsOf(id)) {
        try {
          for (const pid of lines(Deno.readTextFileSync(`${dir}/cgroup.procs`))) pids.add(Number(pid));
        } catch { /* removed meanwhile */ }
      }
    }
    // By PID: a container orphaned by a killed `floka run` still holds our pipes.
    for (const pid of pids) {
      if (pid <= 0) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone meanwhile */ }
    }
    for (const bg of this.backgrounds) await bg.reap();
    // Killed supervisors must be gone before the reconcile below can tell they died.
    await waitUntil(
      "killed processes to be gone",
      () => [...pids].every((pid) => pid <= 0 || !processExists(pid)),
      5_000,
    )
      .catch(() => {});
    // Reconciling the containers whose supervisor was killed releases their networks
    // (CNI DEL, the namespace), which nothing else would do once the store is gone.
    await this.floka(["ps", "-a"]).catch(() => {});
    // What a killed `floka run` could not remove; the store is about to go, so nothing would.
    // A cgroup stays busy for a moment after its last process was killed.
    const left = () => ids.flatMap(cgroupDirsOf);
    await waitUntil("leftover cgroups to be removable", () => {
      for (const dir of left()) {
        try {
          Deno.removeSync(dir);
        } catch { /* still busy, or gone */ }
      }
      return left().length === 0;
    }, 5_000).catch(() => {/* leave them: a test already failed, or will say so */});
  }
}

/**
 * Makes a temporary store with a busybox image at `images/busybox:latest`, runs `fn` with it,
 * and removes everything afterwards, whatever happened.
 */
export async function withStore(
  fn: (store: Store) => Promise<void>,
  image: BusyboxImageOptions = {},
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "floka-it-" });
  const store = new Store(root);
  try {
    makeBusyboxImage(store.imageDir(), image);
    await fn(store);
  } finally {
    await store.cleanUp();
    await Deno.remove(root, { recursive: true });
  }
}

/** The host's mount table lines that mention `text`. */
export function hostMountsMentioning(text: string): string[] {
  return Deno.readTextFileSync("/proc/self/mountinfo").split("\n").filter((l) => l.includes(text));
}

/** True when the host uses the unified cgroup v2 hierarchy only. */
export function cgroupV2(): boolean {
  try {
    Deno.statSync(`${CGROUP_ROOT}/cgroup.controllers`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every cgroup directory `floka/<name>` whose name starts with `idOrPrefix`, in any hierarchy
 * (each v1 controller and v2). A prefix is enough: a container's default host name is one.
 */
export function cgroupDirsOf(idOrPrefix: string): string[] {
  const parents = [`${CGROUP_ROOT}/floka`];
  for (const entry of Deno.readDirSync(CGROUP_ROOT)) {
    if (entry.isDirectory) parents.push(`${CGROUP_ROOT}/${entry.name}/floka`);
  }
  const found: string[] = [];
  for (const parent of parents) {
    try {
      for (const entry of Deno.readDirSync(parent)) {
        if (entry.isDirectory && entry.name.startsWith(idOrPrefix)) found.push(`${parent}/${entry.name}`);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return found;
}

/** Docker's mapping of --cpu-shares to cgroup v2 cpu.weight. */
export function sharesToWeight(shares: number): number {
  return Math.floor(1 + ((shares - 2) * 9999) / 262142);
}

/** Lines of `text`, without the trailing empty one. */
export function lines(text: string): string[] {
  const all = text.split("\n");
  if (all.at(-1) === "") all.pop();
  return all;
}

/** Finds a program on the host's PATH. */
export function which(program: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const st = Deno.statSync(`${dir}/${program}`);
      if (st.isFile && ((st.mode ?? 0) & 0o111)) return `${dir}/${program}`;
    } catch { /* not here */ }
  }
  return null;
}

/** Mountinfo fields: mount point (5th) and per-mount options (6th), fstype after " - ". */
export interface MountEntry {
  mountPoint: string;
  options: string[];
  fstype: string;
  source: string;
  superOptions: string[];
}

export function parseMountinfo(text: string): MountEntry[] {
  return lines(text).map((line) => {
    const [left, right] = line.split(" - ");
    const fields = left.split(" ");
    const [fstype, source, superOptions] = right.split(" ");
    return {
      mountPoint: fields[4],
      options: fields[5].split(","),
      fstype,
      source,
      superOptions: (superOptions ?? "").split(","),
    };
  });
}

/** Asserts-friendly description of a result, for failure messages. */
export function show(r: Result): string {
  return `exit ${r.code}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`;
}
