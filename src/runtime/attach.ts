/**
 * `floka attach`: a container's supervisor serves its output, and takes input for it, on
 * a Unix socket of its own (`attachSocketPath`), as Docker's daemon serves
 * attach streams. Any number of clients may attach and detach while the container runs.
 *
 * The protocol, frames both ways: one byte of kind, four bytes of length (big-endian),
 * then the payload. The supervisor sends 1 stdout, 2 stderr and 3 exit (the exit code as
 * four bytes, after which it closes the connection). The client sends 0 stdin (only a
 * container run with `-i` reads it) and 4 resize (rows and columns, two bytes each), which
 * a `-t` container's terminal takes as its window size. `floka exec -d` sends 5 exec (a
 * JSON request) and gets 6 started (a JSON report): the supervisor starts the command and
 * reaps it when it ends, as Docker's shim does.
 */
import { FlokaError } from "../../lib/errors.ts";
import { getWindowSize, type WindowSize } from "./pty.ts";

/**
 * Where a container's attach socket lives. Not in the container's directory: a Unix
 * socket's path must fit in 108 bytes, which a store's path plus a 64-digit ID can exceed.
 */
export function attachSocketPath(id: string): string {
  return `/run/floka/${id}.sock`;
}

const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
const EXIT = 3;
const RESIZE = 4;
const EXEC = 5;
const EXEC_STARTED = 6;
/** At most this much output waits for the first client. */
const HELD_MAX = 1 << 20;

/** What attached clients send the supervisor. */
export interface AttachInput {
  /** Bytes for the container's stdin (a `-i` container's). */
  stdin?: (chunk: Uint8Array<ArrayBuffer>) => void;
  /** A new window size for the container's terminal (a `-t` container's). */
  resize?: (size: WindowSize) => void;
  /** Starts a detached command in the container (`floka exec -d`); its start report. */
  exec?: (request: unknown) => Promise<unknown>;
}

function frame(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(1, payload.length);
  out[0] = kind;
  out.set(payload, 5);
  return out;
}

/** The supervisor's end: accepts clients, sends them output, hands their input on. */
export class AttachServer {
  #listener: Deno.Listener;
  #clients = new Set<Deno.Conn>();
  #closed = false;
  /** Output kept for the first client (`holdForFirst`), null once it came. */
  #held: Uint8Array[] | null;
  #heldBytes = 0;

  /**
   * With `holdForFirst`, what the container writes before the first client attaches is
   * kept (up to HELD_MAX bytes) and sent to it: `floka run -it` attaches right after the
   * start and must not miss the first prompt.
   */
  constructor(readonly path: string, onInput: AttachInput, holdForFirst = false) {
    this.#held = holdForFirst ? [] : null;
    Deno.mkdirSync(path.slice(0, path.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    try {
      Deno.removeSync(path); // a supervisor killed earlier left it
    } catch { /* none */ }
    this.#listener = Deno.listen({ transport: "unix", path });
    this.#accept(onInput);
  }

  async #accept(onInput: AttachInput): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#clients.add(conn);
        const held = this.#held;
        this.#held = null;
        for (const data of held ?? []) conn.write(data).catch(() => this.#drop(conn));
        this.#serve(conn, onInput);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #serve(conn: Deno.Conn, onInput: AttachInput): Promise<void> {
    try {
      for await (const [kind, payload] of frames(conn)) {
        if (kind === STDIN) onInput.stdin?.(payload);
        if (kind === RESIZE && payload.length >= 4) {
          const view = new DataView(payload.buffer, payload.byteOffset, 4);
          onInput.resize?.({ rows: view.getUint16(0), cols: view.getUint16(2) });
        }
        if (kind === EXEC && onInput.exec) {
          const report = await onInput.exec(JSON.parse(new TextDecoder().decode(payload)));
          await conn.write(frame(EXEC_STARTED, new TextEncoder().encode(JSON.stringify(report))));
        }
      }
    } catch {
      // The client went away.
    }
    this.#drop(conn);
  }

  #drop(conn: Deno.Conn): void {
    if (!this.#clients.delete(conn)) return;
    try {
      conn.close();
    } catch { /* closed already */ }
  }

  /** Sends what the container wrote to every attached client; a slow or gone one is dropped. */
  send(kind: typeof STDOUT | typeof STDERR, chunk: Uint8Array): void {
    if (this.#held && this.#heldBytes + chunk.length <= HELD_MAX) {
      this.#held.push(frame(kind, chunk));
      this.#heldBytes += chunk.length;
    }
    if (!this.#clients.size) return;
    const data = frame(kind, chunk);
    for (const conn of this.#clients) {
      conn.write(data).catch(() => this.#drop(conn));
    }
  }

  /** Tells the clients how the process ended, and stops serving. */
  async close(exitCode: number | null): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    const code = new Uint8Array(4);
    new DataView(code.buffer).setInt32(0, exitCode ?? -1);
    await Promise.allSettled([...this.#clients].map(async (conn) => {
      if (exitCode !== null) await conn.write(frame(EXIT, code));
      this.#drop(conn);
    }));
    try {
      Deno.removeSync(this.path);
    } catch { /* gone */ }
  }
}

/** Docker's `--detach-keys`: `ctrl-p,ctrl-q` (the default), `ctrl-a`, or plain characters. */
export function parseDetachKeys(text: string): Uint8Array {
  const keys = text.split(",").map((key) => {
    const ctrl = /^ctrl-(.)$/i.exec(key);
    if (ctrl) {
      const ch = ctrl[1].toLowerCase();
      if (ch >= "a" && ch <= "z") return ch.charCodeAt(0) - 0x60;
      const special: Record<string, number> = { "@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31 };
      if (ch in special) return special[ch];
    } else if (key.length === 1) {
      return key.charCodeAt(0);
    }
    throw new FlokaError(`invalid detach keys (${text}): ${JSON.stringify(key)} is not a key`);
  });
  return new Uint8Array(keys);
}

/** Finds the detach sequence in typed input, across reads; `push` says whether it is complete. */
export class DetachKeys {
  #matched = 0;
  constructor(private readonly keys: Uint8Array) {}

  /**
   * The part of `chunk` to send on, and whether the sequence was typed. Keys that start the
   * sequence are held back until it is complete or broken, as Docker does.
   */
  push(chunk: Uint8Array): { send: Uint8Array; detach: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.#matched]) {
        this.#matched++;
        if (this.#matched === this.keys.length) return { send: new Uint8Array(out), detach: true };
        continue;
      }
      if (this.#matched) out.push(...this.keys.subarray(0, this.#matched));
      this.#matched = byte === this.keys[0] ? 1 : 0;
      if (!this.#matched) out.push(byte);
    }
    return { send: new Uint8Array(out), detach: false };
  }
}

export interface AttachResult {
  /** The container's exit code, or null when the client detached (or the supervisor went away). */
  exitCode: number | null;
}

/**
 * The client's end: relays `input` (Floka's stdin, or null) to the container and the
 * container's output to Floka's stdout and stderr, until the process ends or `detachKeys`
 * are typed.
 */
export async function attachClient(
  path: string,
  input: ReadableStream<Uint8Array> | null,
  detachKeys: Uint8Array,
  terminal = false,
): Promise<AttachResult> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    throw new FlokaError(
      `cannot attach: the container's supervisor does not answer (${(err as Error).message})`,
    );
  }
  let detached = false;
  const keys = new DetachKeys(detachKeys);
  const reader = input?.getReader();
  // The container's terminal takes the size of ours, now and whenever it changes.
  const resize = () => {
    const size = getWindowSize(1) ?? getWindowSize(0);
    if (!size) return;
    const payload = new Uint8Array(4);
    new DataView(payload.buffer).setUint16(0, size.rows);
    new DataView(payload.buffer).setUint16(2, size.cols);
    conn.write(frame(RESIZE, payload)).catch(() => {});
  };
  if (terminal) {
    resize();
    Deno.addSignalListener("SIGWINCH", resize);
  }
  const sending = (async () => {
    if (!reader) return;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        const { send, detach } = keys.push(value);
        if (send.length) await conn.write(frame(STDIN, send));
        if (detach) {
          detached = true;
          conn.close();
          return;
        }
      }
    } catch {
      // The connection is closed: the container ended.
    }
  })();
  const result = await readFrames(conn).catch(() => ({ exitCode: null }));
  if (terminal) Deno.removeSignalListener("SIGWINCH", resize);
  await reader?.cancel().catch(() => {});
  await sending;
  try {
    conn.close();
  } catch { /* closed on detach */ }
  return detached ? { exitCode: null } : result;
}

/**
 * Asks the supervisor at `path` to start a detached command (`floka exec -d`); its start
 * report, or null when no supervisor answers there.
 */
export async function requestExec(path: string, request: unknown): Promise<unknown | null> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return null;
  }
  try {
    await conn.write(frame(EXEC, new TextEncoder().encode(JSON.stringify(request))));
    for await (const [kind, payload] of frames(conn)) {
      if (kind === EXEC_STARTED) return JSON.parse(new TextDecoder().decode(payload));
      if (kind === EXIT) return null; // the container ended meanwhile
    }
    return null;
  } catch {
    return null;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the supervisor */ }
  }
}

/**
 * The exit code a supervisor tells its attached clients, its output ignored: how `floka
 * wait` learns the code of a `--rm` container, which is gone once it has ended. Null when
 * the supervisor does not answer or goes away without one.
 */
export async function awaitExitCode(path: string): Promise<number | null> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return null;
  }
  const { exitCode } = await readFrames(conn, false).catch(() => ({ exitCode: null }));
  try {
    conn.close();
  } catch { /* closed by the supervisor */ }
  return exitCode;
}

async function readFrames(conn: Deno.Conn, relay = true): Promise<AttachResult> {
  for await (const [kind, payload] of frames(conn)) {
    if (kind === EXIT) return { exitCode: new DataView(payload.buffer, payload.byteOffset, 4).getInt32(0) };
    if (!relay) continue;
    const out = kind === STDERR ? Deno.stderr : Deno.stdout;
    for (let done = 0; done < payload.length;) done += out.writeSync(payload.subarray(done));
  }
  return { exitCode: null };
}

/** The frames read from `conn`, as [kind, payload], until it closes. */
async function* frames(conn: Deno.Conn): AsyncGenerator<[number, Uint8Array<ArrayBuffer>]> {
  let pending = new Uint8Array(0);
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    const joined = new Uint8Array(pending.length + n);
    joined.set(pending);
    joined.set(buf.subarray(0, n), pending.length);
    let at = 0;
    while (joined.length - at >= 5) {
      const length = new DataView(joined.buffer, at + 1, 4).getUint32(0);
      if (joined.length - at - 5 < length) break;
      yield [joined[at], joined.slice(at + 5, at + 5 + length)];
      at += 5 + length;
    }
    pending = joined.slice(at);
  }
}
