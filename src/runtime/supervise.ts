/**
 * The supervisor: the Floka process that owns a container while it runs, in the foreground
 * (`floka run`, `floka start -a`) or detached (`floka run -d`, `floka start`). It starts
 * the process, feeds everything it writes to the container's log (and, in the foreground,
 * to Floka's own stdout and stderr), records how it ended, restarts it as its `--restart`
 * policy says, and removes it at the end when it was run with `--rm`.
 */
import * as libc from "../../ffi/libc.ts";
import { describeError, EXIT_FLOKA, FlokaError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";
import type { StartFailure } from "../../lib/spec.ts";
import { logPath, LogWriter } from "../containers/logs.ts";
import type {
  Container,
  ContainerRecord,
  ContainerState,
  ContainerStore,
  RestartPolicy,
} from "../containers/store.ts";
import { removeAnonymousVolumes } from "../containers/volumes.ts";
import type { CgroupManager } from "./cgroups.ts";
import type { StartReport } from "./detach.ts";
import type { ExecRequest } from "./exec.ts";
import { AttachServer, attachSocketPath, STDERR, STDOUT } from "./attach.ts";
import { attachTerminal, setWindowSize, type WindowSize } from "./pty.ts";
import { type ProcessEnd, startProcess, type Stdio } from "./run.ts";

export interface SuperviseOptions {
  /** Copy the container's output to Floka's own stdout and stderr too. */
  foreground: boolean;
  /**
   * `-i`: in the foreground the container reads Floka's stdin; detached, a pipe that
   * attached clients (`floka attach`) write to. Otherwise its stdin is /dev/null.
   */
  stdin: boolean;
  /**
   * `-t`: the container's command has a terminal of its own, which the supervisor relays
   * (to Floka's own terminal in the foreground) and logs.
   */
  terminal: boolean;
  /** Told once, when the first start has run the command (null) or failed. */
  onStarted?: (failure: StartFailure | null) => void;
  /**
   * `floka run -it`: a client attaches right after the start, with a terminal of this
   * size; what the command writes before it does is kept for it.
   */
  attachingTerminal?: WindowSize;
}

/** Docker's restart delay: 100 ms, doubled at each restart, at most a minute. */
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 60_000;
/** A process that ran this long starts the delays over, as in Docker. */
const RESET_AFTER_MS = 10_000;

/** Whether a policy restarts a process that ended with `exitCode` after `restarts` restarts. */
export function shouldRestart(
  policy: RestartPolicy | undefined,
  exitCode: number,
  restarts: number,
  manuallyStopped: boolean,
): boolean {
  if (!policy || policy.name === "no" || manuallyStopped) return false;
  if (policy.name === "on-failure") {
    return exitCode !== 0 && (policy.maximumRetryCount === 0 || restarts < policy.maximumRetryCount);
  }
  return true; // always, unless-stopped
}

/**
 * Runs the container (`first` creates it, or reads it back for `floka start`) until its
 * process ends for good; returns the last exit code. A start failure (the command cannot
 * be run) is thrown as StartError.
 */
export async function supervise(
  store: ContainerStore,
  first: () => Container,
  cgroups: CgroupManager,
  opts: SuperviseOptions,
): Promise<number> {
  let container: Container | undefined;
  let delay = FIRST_DELAY_MS;
  let onStarted = opts.onStarted;
  for (;;) {
    const load = container ? () => store.find(container!.record.id) : () => (container = first());
    const io = new ContainerIo(opts, (id, request) => execDetached(store, cgroups, id, request));
    opts = { ...opts, attachingTerminal: undefined }; // only the first run's client is waiting
    const started = Date.now();
    let end: ProcessEnd | undefined;
    try {
      end = await startProcess(store, () => io.attach(load()), cgroups, {
        stdio: io.stdio,
        ownTerminal: opts.terminal,
        releaseNetworkInBackground: true,
        windowSize: opts.attachingTerminal,
        onTerminal: (master, ended) => io.relayTerminal(master, ended),
        drain: () => io.drain(),
        onStarted: (failure) => {
          onStarted?.(failure);
          onStarted = undefined;
        },
      });
    } finally {
      await io.close(end?.exitCode ?? null);
    }
    const { record } = container!;
    const state = stateOf(store, record.id);
    if (!state) return end.exitCode; // removed meanwhile (`floka rm -f`)
    const restarts = state.restartCount ?? 0;
    if (!shouldRestart(record.hostConfig.restartPolicy, end.exitCode, restarts, !!state.manuallyStopped)) {
      if (record.hostConfig.autoRemove) removeWithVolumes(store, record);
      return end.exitCode;
    }
    if (Date.now() - started >= RESET_AFTER_MS) delay = FIRST_DELAY_MS;
    store.updateState(record.id, (s) => ({ ...s, status: "restarting", restartCount: restarts + 1 }));
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, MAX_DELAY_MS);
    // `floka stop` or `rm -f` during the delay ends it here.
    const now = stateOf(store, record.id);
    if (!now) return end.exitCode;
    if (now.manuallyStopped) {
      store.updateState(record.id, (s) => ({ ...s, status: "exited" }));
      if (record.hostConfig.autoRemove) removeWithVolumes(store, record);
      return end.exitCode;
    }
  }
}

/** The container's state, or null once it has been removed. */
function stateOf(store: ContainerStore, id: string): ContainerState | null {
  try {
    return store.find(id).state;
  } catch {
    return null;
  }
}

/**
 * The container's stdin, stdout and stderr for one run of its process: pipes whose every
 * byte goes to the json-file log (and to Floka's own stdout and stderr in the foreground).
 */
class ContainerIo {
  readonly stdio: Stdio;
  #open: number[] = [];
  #copies: Promise<void>[] = [];
  #log: LogWriter | null = null;
  #attach: AttachServer | null = null;
  #pending: [stream: "stdout" | "stderr", fd: number][] = [];
  /** A detached `-i` container's stdin: its read end is the container's, attached clients write the other. */
  #input: { read: number; write: number } | null = null;
  /** A `-t` container's terminal, while it is relayed: attached clients resize it. */
  #master: number | null = null;

  constructor(
    private readonly opts: SuperviseOptions,
    private readonly exec: (id: string, request: unknown) => Promise<StartReport>,
  ) {
    const devNull = this.#keep(libc.open("/dev/null", L.O_RDWR | L.O_CLOEXEC));
    if (opts.stdin && !opts.foreground) {
      const [read, write] = libc.pipe(L.O_CLOEXEC);
      this.#input = { read: this.#keep(read), write: this.#keep(write) };
    }
    if (opts.terminal) {
      // The terminal containerize opens inside the container replaces all three.
      this.stdio = [devNull, devNull, devNull];
      return;
    }
    const stdin = this.#input?.read ?? (opts.stdin ? 0 : devNull);
    const [outRead, outWrite] = libc.pipe(L.O_CLOEXEC);
    const [errRead, errWrite] = libc.pipe(L.O_CLOEXEC);
    this.#keep(outWrite);
    this.#keep(errWrite);
    this.#pending = [["stdout", outRead], ["stderr", errRead]];
    this.stdio = [stdin, outWrite, errWrite];
  }

  #keep(fd: number): number {
    this.#open.push(fd);
    return fd;
  }

  /** Starts copying once the container (and so its log file) is known. */
  attach(container: Container): Container {
    this.#log = new LogWriter(
      logPath(container.dir, container.record.id),
      container.record.hostConfig.logConfig,
    );
    const input = this.#input;
    this.#attach = new AttachServer(attachSocketPath(container.record.id), {
      stdin: input ? (chunk) => libc.writeAll(input.write, chunk) : undefined,
      resize: ({ rows, cols }) => {
        if (this.#master !== null) setWindowSize(this.#master, rows, cols);
      },
      exec: (request) => this.exec(container.record.id, request),
    }, !!this.opts.attachingTerminal);
    for (const [stream, fd] of this.#pending) this.#copies.push(this.#copy(stream, fd));
    this.#pending = [];
    return container;
  }

  /** `-t`: relays the container's terminal until its process has ended, logging its output. */
  relayTerminal(master: number, ended: Promise<unknown>): void {
    this.#master = master;
    const output = this.opts.foreground ? 1 : this.stdio[1];
    const relay = attachTerminal(master, {
      input: this.#input?.read ?? (this.opts.foreground && this.opts.stdin ? 0 : null),
      output,
      until: ended,
      exitOnSignal: false,
      onOutput: (chunk) => {
        this.#log?.write("stdout", chunk);
        this.#attach?.send(STDOUT, chunk);
      },
    });
    this.#copies.push(relay.finally(() => {
      this.#master = null;
      libc.close(master);
    }));
  }

  async #copy(stream: "stdout" | "stderr", fd: number): Promise<void> {
    const out = stream === "stdout" ? Deno.stdout : Deno.stderr;
    let echo = this.opts.foreground;
    try {
      await libc.readChunks(fd, (chunk) => {
        this.#log?.write(stream, chunk);
        this.#attach?.send(stream === "stdout" ? STDOUT : STDERR, chunk);
        if (!echo) return;
        try {
          for (let done = 0; done < chunk.length;) done += out.writeSync(chunk.subarray(done));
        } catch {
          echo = false; // our reader went away (`| head`): the log still gets everything
        }
      });
    } finally {
      libc.close(fd);
    }
  }

  /**
   * Called once the process has ended: every process of the container is gone with its
   * PID 1, so once our own write ends are closed the pipes reach their end.
   */
  async drain(): Promise<void> {
    for (const fd of this.#open) libc.close(fd);
    this.#open = [];
    for (const [, fd] of this.#pending) libc.close(fd);
    this.#pending = [];
    await Promise.allSettled(this.#copies);
    this.#log?.close();
  }

  /** After `drain`: attached clients are told the exit code and let go. */
  async close(exitCode: number | null): Promise<void> {
    await this.drain();
    await this.#attach?.close(exitCode);
  }
}

/**
 * `floka exec -d` through the supervisor: the command is its child, so it is reaped when
 * it ends. exec.ts is loaded on the first request: a supervisor that never gets one does
 * not pay for it.
 */
async function execDetached(
  store: ContainerStore,
  cgroups: CgroupManager,
  id: string,
  request: unknown,
): Promise<StartReport> {
  try {
    const { execInContainer } = await import("./exec.ts");
    const req = { ...(request as ExecRequest), detach: true, tty: false, interactive: false };
    await execInContainer(store, id, req, cgroups, { bySupervisor: true });
    return { started: true };
  } catch (err) {
    return { exitCode: err instanceof FlokaError ? err.exitCode : EXIT_FLOKA, message: describeError(err) };
  }
}

/** `--rm`: the container goes, and its anonymous volumes with it, as in Docker. */
function removeWithVolumes(store: ContainerStore, record: ContainerRecord): void {
  store.remove(record.id);
  removeAnonymousVolumes(store.store, record.hostConfig.mounts);
}
