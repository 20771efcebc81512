/**
 * Pseudo-terminals, for `floka run -t` and `floka exec -t`. A pseudo-terminal is a pair of character devices:
 * the master, which a terminal emulator (here: Floka on the host) holds, and the slave
 * (`/dev/pts/N`), which the program uses as its terminal. Bytes written to the master are
 * the program's keyboard input, after the slave's line discipline (echo, Ctrl-C to SIGINT,
 * line editing unless raw); what the program writes to the slave is read from the master.
 *
 * Each devpts mount with `newinstance` (every container has one) numbers its own terminals,
 * and a terminal is reachable by path only through the devpts it belongs to. That is why
 * the container's side opens its terminal from the container's /dev/ptmx (as runc does)
 * and hands the master to the host over a Unix socket: inside, `tty` then says
 * `/dev/pts/0`, and nothing of the host's /dev/pts is involved.
 *
 * `attachTerminal` is the host's half of the session: raw mode on the host terminal, the
 * copying in both directions, and window size changes (SIGWINCH). This module imports only
 * ffi/ and lib/: `exec-inside` loads it on every `exec -t`.
 */
import * as libc from "../../ffi/libc.ts";
import { SyscallError } from "../../lib/errors.ts";

// ioctl requests (asm-generic/ioctls.h; x86_64 and aarch64 agree).
const TIOCSCTTY = 0x540e;
const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;
const TIOCGPTPEER = 0x5441;

// open(2) flags.
const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const F_SETFL = 4;

// errno values.
const EIO = 5;
const EAGAIN = 11;
const ENOTTY = 25;
const EINVAL = 22;

/** A new pseudo-terminal: its master (close-on-exec) and the path of its slave. */
export interface Pty {
  master: number;
  slavePath: string;
}

/**
 * Opens a new pseudo-terminal from /dev/ptmx as the calling thread resolves it (the host's,
 * or a container's once its mount namespace is joined). The slave is not opened.
 */
export function openPty(): Pty {
  const master = libc.posixOpenpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  try {
    libc.grantpt(master);
    libc.unlockpt(master);
    return { master, slavePath: libc.ptsname(master) };
  } catch (err) {
    libc.close(master);
    throw err;
  }
}

/**
 * Opens a new pseudo-terminal and its slave, both close-on-exec. The slave is opened from
 * the master (TIOCGPTPEER, Linux 4.13) rather than by path: inside a container the path
 * would be looked up in a /dev the container's processes control.
 */
export function openPtyPair(): { master: number; slave: number } {
  const master = libc.posixOpenpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  try {
    libc.unlockpt(master);
    let slave: number;
    try {
      slave = libc.ioctlValue(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    } catch (err) {
      if (!(err instanceof SyscallError && (err.errno === EINVAL || err.errno === ENOTTY))) throw err;
      slave = libc.open(libc.ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC); // an older kernel
    }
    return { master, slave };
  } catch (err) {
    libc.close(master);
    throw err;
  }
}

/**
 * Makes terminal `fd` the controlling terminal of this process in a session of its own
 * (setsid, then TIOCSCTTY), as a login does: Ctrl-C and job control then work on it.
 */
export function makeControllingTerminal(fd: number): void {
  libc.setsid();
  libc.ioctlValue(fd, TIOCSCTTY, 0);
}

export interface WindowSize {
  rows: number;
  cols: number;
}

/** Puts the terminal on `fd` in raw mode for `fn`, and always back as it was. */
export async function withRawTerminal<T>(fd: number, fn: () => Promise<T>): Promise<T> {
  const saved = libc.tcgetattr(fd);
  const restore = () => {
    try {
      libc.tcsetattr(fd, saved);
    } catch { /* the terminal is gone */ }
  };
  libc.tcsetattr(fd, libc.cfmakeraw(libc.tcgetattr(fd)));
  addEventListener("unload", restore);
  try {
    return await fn();
  } finally {
    restore();
    removeEventListener("unload", restore);
  }
}

/** Sets the window size of terminal `fd` (the kernel sends SIGWINCH to its foreground group). */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]); // struct winsize: row, col, xpixel, ypixel
  libc.ioctl(fd, TIOCSWINSZ, new Uint8Array(ws.buffer));
}

/** The window size of terminal `fd`, or null when `fd` is not a terminal. */
export function getWindowSize(fd: number): WindowSize | null {
  const ws = new Uint16Array(4);
  try {
    libc.ioctl(fd, TIOCGWINSZ, new Uint8Array(ws.buffer));
  } catch (err) {
    if (err instanceof SyscallError && (err.errno === ENOTTY || err.errno === EINVAL || err.errno === 9)) {
      return null; // not a terminal, or not open (EBADF)
    }
    throw err;
  }
  return { rows: ws[0], cols: ws[1] };
}

/** Reads what `fd` has ready; 0 at its end, which for a terminal that hung up is EIO. */
function readInput(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  try {
    return libc.read(fd, buf);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === EIO) return 0;
    throw err;
  }
}

function setNonblocking(fd: number): void {
  libc.fcntl(fd, F_SETFL, libc.fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
}

/** Signals that end a terminal session; see `AttachOptions.exitOnSignal`. */
const TERMINATING: readonly Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];
const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };

export interface AttachOptions {
  /** Copied to the terminal as keyboard input (floka's stdin with `-i`), or null for none. */
  input: number | null;
  /** Where the terminal's output goes; default 1 (stdout). */
  output?: number;
  /** Also told every chunk of output (the container's log). */
  onOutput?: (chunk: Uint8Array) => void;
  /** Puts the `input` terminal in raw mode meanwhile; default: when `input` is a terminal. */
  raw?: boolean;
  /** The terminal whose window size the pseudo-terminal follows; default: stdout's, else stdin's. */
  sizeFrom?: number | null;
  /** The session ends when this settles (the process on the terminal ended), once its last output is copied. */
  until: Promise<unknown>;
  /**
   * What SIGINT, SIGTERM, SIGHUP and SIGQUIT do meanwhile. Either way the host terminal is
   * first put back in its normal mode, so that a signal never leaves it raw. With true (the
   * default) Floka then exits with 128+N; `floka exec` says false, because it forwards them
   * to the process, and the session ends when that process does.
   */
  exitOnSignal?: boolean;
}

/** Bytes still to copy from the master to the output after the process ended, at most this long. */
const DRAIN_MS = 500;
/** ... and stop earlier when the terminal stays quiet this long (another process holds it open). */
const QUIET_MS = 50;

/**
 * Relays between Floka's stdin/stdout and the pseudo-terminal `master` until `until`
 * settles, then copies what the terminal still holds and returns. Floka's own terminal is
 * in raw mode meanwhile (keys go to the container's line discipline untouched, Ctrl-C
 * included; output is not processed twice) and always restored to its settings from
 * before: on return, on a thrown error, on a terminating signal and at exit (`unload`,
 * which Deno.exit dispatches). Window size changes of the host's terminal (SIGWINCH) are
 * passed on with TIOCSWINSZ.
 *
 * Waiting happens in poll(2) off the main thread, woken through a pipe when the session
 * ends, so nothing is left pending afterwards; reads and writes of ready descriptors are
 * made on the main thread. Input waits while the terminal is full (the master is
 * nonblocking), so a program that does not read cannot stall the output.
 */
export async function attachTerminal(master: number, opts: AttachOptions): Promise<void> {
  const output = opts.output ?? 1;
  const input = opts.input;
  const raw = input !== null && (opts.raw ?? getWindowSize(input) !== null);
  const sizeFrom = opts.sizeFrom !== undefined
    ? opts.sizeFrom
    : getWindowSize(1) !== null
    ? 1
    : getWindowSize(0) !== null
    ? 0
    : null;
  const exitOnSignal = opts.exitOnSignal ?? true;

  let saved: Uint8Array<ArrayBuffer> | null = null;
  const restore = () => {
    if (saved === null) return;
    try {
      libc.tcsetattr(input!, saved);
    } catch { /* the terminal is gone (SIGHUP) */ }
    saved = null;
  };
  const resize = () => {
    const size = sizeFrom === null ? null : getWindowSize(sizeFrom);
    if (size && size.rows > 0 && size.cols > 0) setWindowSize(master, size.rows, size.cols);
  };
  const onSignal = new Map(TERMINATING.map((sig) => [sig, () => {
    restore();
    if (exitOnSignal) Deno.exit(128 + SIGNAL_NUMBERS[sig]);
  }]));

  setNonblocking(master);
  const [wakeRead, wakeWrite] = libc.pipe(O_CLOEXEC | O_NONBLOCK);
  let ended = false;
  let closed = false;
  const end = () => {
    ended = true;
    // After the session the pipe's descriptor numbers may belong to someone else.
    if (!closed) libc.write(wakeWrite, new Uint8Array(1));
  };
  opts.until.then(end, end);

  const chunk = new Uint8Array(65536);
  /** Copies what the master holds to the output; false once the terminal is closed on the other side. */
  const copyOut = (): boolean => {
    for (;;) {
      let n: number;
      try {
        n = libc.read(master, chunk);
      } catch (err) {
        if (err instanceof SyscallError && err.errno === EAGAIN) return true;
        if (err instanceof SyscallError && err.errno === EIO) return false; // no slave open any more
        throw err;
      }
      if (n === 0) return false;
      opts.onOutput?.(chunk.subarray(0, n));
      libc.writeAll(output, chunk.subarray(0, n));
    }
  };
  /** Writes as much of `data` to the master as fits; returns the rest, null when done or closed. */
  const copyIn = (data: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | null => {
    let done = 0;
    while (done < data.length) {
      try {
        done += libc.write(master, data.subarray(done));
      } catch (err) {
        if (err instanceof SyscallError && err.errno === EAGAIN) return data.slice(done);
        if (err instanceof SyscallError && err.errno === EIO) return null;
        throw err;
      }
    }
    return null;
  };

  addEventListener("unload", restore);
  for (const [sig, handler] of onSignal) Deno.addSignalListener(sig, handler);
  if (sizeFrom !== null) Deno.addSignalListener("SIGWINCH", resize);
  try {
    resize();
    if (raw) {
      // cfmakeraw, as Docker's client does; Deno.stdin.setRaw would keep output processing
      // on, and every "\r\n" from the container would reach the screen as "\r\r\n".
      const settings = libc.tcgetattr(input!);
      libc.tcsetattr(input!, libc.cfmakeraw(settings));
      saved = settings;
    }
    let outputOpen = true;
    let inputOpen = input !== null;
    let pending: Uint8Array<ArrayBuffer> | null = null;
    const inBuf = new Uint8Array(16384);
    while (outputOpen && !ended) {
      const fds = [
        { fd: wakeRead, events: libc.POLLIN },
        { fd: master, events: libc.POLLIN | (pending ? libc.POLLOUT : 0) },
      ];
      if (inputOpen && !pending) fds.push({ fd: input!, events: libc.POLLIN });
      const revents = await libc.poll(fds, -1);
      if (revents === null) continue; // EINTR
      const [, fromMaster, fromInput = 0] = revents;
      if (fromMaster & (libc.POLLIN | libc.POLLHUP | libc.POLLERR)) outputOpen = copyOut();
      if (pending && fromMaster & libc.POLLOUT) pending = copyIn(pending);
      if (fromInput & (libc.POLLIN | libc.POLLHUP | libc.POLLERR | libc.POLLNVAL)) {
        const n = fromInput & libc.POLLNVAL ? 0 : readInput(input!, inBuf);
        if (n === 0) inputOpen = false; // end of input: the program keeps its terminal
        else pending = copyIn(inBuf.slice(0, n));
      }
    }
    // The process ended. Its last output may still be on its way through the terminal
    // (the kernel moves it in a worker); once no one holds the slave, reading returns it
    // all and then EIO. A background process that keeps the terminal open does not keep
    // the session going: stop when the terminal goes quiet.
    const deadline = Date.now() + DRAIN_MS;
    while (outputOpen && Date.now() < deadline) {
      const revents = await libc.poll([{ fd: master, events: libc.POLLIN }], QUIET_MS);
      if (revents === null) continue;
      if (revents[0] === 0) break;
      outputOpen = copyOut();
    }
  } finally {
    restore();
    removeEventListener("unload", restore);
    for (const [sig, handler] of onSignal) Deno.removeSignalListener(sig, handler);
    if (sizeFrom !== null) Deno.removeSignalListener("SIGWINCH", resize);
    closed = true;
    libc.close(wakeRead);
    libc.close(wakeWrite);
  }
}
