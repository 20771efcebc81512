/**
 * Pseudo-terminals (src/runtime/pty.ts) on the host's /dev/ptmx: no root needed. The slave
 * side is read through poll so that the event loop, which `attachTerminal` needs, is never
 * blocked by a test waiting for bytes.
 */
import assert from "node:assert/strict";
import * as libc from "../../ffi/libc.ts";
import { attachTerminal, getWindowSize, openPty, openPtyPair, setWindowSize } from "../../src/runtime/pty.ts";

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function write(fd: number, text: string): void {
  libc.writeAll(fd, encoder.encode(text));
}

/** Reads `fd` until what was read contains `want`; fails after `ms`. */
async function readUntil(fd: number, want: string, ms = 5000): Promise<string> {
  const deadline = Date.now() + ms;
  const buf = new Uint8Array(4096);
  let text = "";
  while (!text.includes(want)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no ${JSON.stringify(want)} within ${ms} ms; got ${JSON.stringify(text)}`);
    const ready = await libc.poll([{ fd, events: libc.POLLIN }], left);
    if (ready === null || ready[0] === 0) continue;
    if (ready[0] & libc.POLLIN) text += decoder.decode(buf.subarray(0, libc.read(fd, buf)));
    else {throw new Error(
        `${fd} closed (revents ${ready[0]}) before ${JSON.stringify(want)}: ${JSON.stringify(text)}`,
      );}
  }
  return text;
}

/** struct termios: c_oflag at 4, c_lflag at 12. */
function termiosFlags(fd: number): { oflag: number; lflag: number } {
  const view = new DataView(libc.tcgetattr(fd).buffer);
  return { oflag: view.getUint32(4, true), lflag: view.getUint32(12, true) };
}
const OPOST = 0o1;
const ICANON = 0o2;
const ECHO = 0o10;

Deno.test("openPty: a master and the path of its slave; bytes go both ways through the line discipline", async () => {
  const { master, slavePath } = openPty();
  const slave = libc.open(slavePath, O_RDWR | O_NOCTTY | O_CLOEXEC);
  try {
    assert.match(slavePath, /^\/dev\/pts\/\d+$/);
    write(master, "typed\n");
    assert.equal(await readUntil(slave, "\n"), "typed\n");
    assert.equal(await readUntil(master, "typed\r\n"), "typed\r\n", "echoed back");
    write(slave, "printed\n");
    assert.equal(await readUntil(master, "\n"), "printed\r\n", "output processing: \\n becomes \\r\\n");
  } finally {
    libc.close(slave);
    libc.close(master);
  }
});

Deno.test("setWindowSize/getWindowSize: a round trip through either end; null for a non-terminal", () => {
  const { master, slave } = openPtyPair();
  const [r, w] = libc.pipe(O_CLOEXEC);
  try {
    setWindowSize(master, 40, 120);
    assert.deepEqual(getWindowSize(slave), { rows: 40, cols: 120 });
    setWindowSize(slave, 25, 80);
    assert.deepEqual(getWindowSize(master), { rows: 25, cols: 80 });
    assert.equal(getWindowSize(r), null);
  } finally {
    for (const fd of [master, slave, r, w]) libc.close(fd);
  }
});

Deno.test("openPtyPair: the slave is opened from the master (TIOCGPTPEER), both close-on-exec", async () => {
  const { master, slave } = openPtyPair();
  try {
    const FD_CLOEXEC = 1;
    assert.equal(libc.fcntl(master, 1, 0) & FD_CLOEXEC, FD_CLOEXEC);
    assert.equal(libc.fcntl(slave, 1, 0) & FD_CLOEXEC, FD_CLOEXEC);
    assert.match(Deno.readLinkSync(`/proc/self/fd/${slave}`), /^\/dev\/pts\/\d+$/);
    write(master, "x\n");
    assert.equal(await readUntil(slave, "\n"), "x\n");
  } finally {
    libc.close(slave);
    libc.close(master);
  }
});

/** A terminal session over pipes: what attachTerminal reads and where it writes. */
function pipes() {
  const [inRead, inWrite] = libc.pipe(O_CLOEXEC);
  const [outRead, outWrite] = libc.pipe(O_CLOEXEC);
  return {
    inRead,
    inWrite,
    outRead,
    outWrite,
    close: () => [inRead, inWrite, outRead, outWrite].forEach((fd) => libc.close(fd)),
  };
}

Deno.test("attachTerminal: relays input and output; ends when the process's terminal closes", async () => {
  const { master, slave } = openPtyPair();
  const p = pipes();
  try {
    const session = attachTerminal(master, {
      input: p.inRead,
      output: p.outWrite,
      raw: false,
      sizeFrom: null,
      until: new Promise(() => {}),
    });
    write(p.inWrite, "keys\n");
    assert.equal(await readUntil(slave, "\n"), "keys\n");
    write(slave, "screen\n");
    const shown = await readUntil(p.outRead, "screen\r\n");
    assert.ok(shown.includes("keys\r\n"), `the echo reaches the output too: ${JSON.stringify(shown)}`);
    libc.close(slave); // no one holds the terminal any more: reading the master gives EIO
    await session;
  } finally {
    libc.close(master);
    p.close();
  }
});

Deno.test("attachTerminal: once `until` settles, copies the output still in the terminal, then returns", async () => {
  const { master, slave } = openPtyPair();
  const p = pipes();
  try {
    let end!: () => void;
    const until = new Promise<void>((resolve) => end = resolve);
    const session = attachTerminal(master, {
      input: null,
      output: p.outWrite,
      raw: false,
      sizeFrom: null,
      until,
    });
    write(slave, "last words\n");
    end(); // the slave stays open (a background process would hold it): the session ends anyway
    await session;
    assert.equal(await readUntil(p.outRead, "last words\r\n"), "last words\r\n");
  } finally {
    libc.close(slave);
    libc.close(master);
    p.close();
  }
});

Deno.test("attachTerminal: follows the window size of `sizeFrom`", async () => {
  const host = openPtyPair(); // stands for Floka's own terminal
  const { master, slave } = openPtyPair();
  try {
    setWindowSize(host.master, 30, 90);
    let end!: () => void;
    const session = attachTerminal(master, {
      input: null,
      output: host.slave,
      raw: false,
      sizeFrom: host.slave,
      until: new Promise<void>((resolve) => end = resolve),
    });
    assert.deepEqual(getWindowSize(slave), { rows: 30, cols: 90 });
    end();
    await session;
  } finally {
    for (const fd of [slave, master, host.slave, host.master]) libc.close(fd);
  }
});

Deno.test("attachTerminal: the input terminal is raw meanwhile and restored after, and on a signal", async () => {
  const host = openPtyPair(); // stands for Floka's own terminal
  const { master, slave } = openPtyPair();
  const before = libc.tcgetattr(host.slave);
  try {
    let end!: () => void;
    const session = attachTerminal(master, {
      input: host.slave,
      output: host.slave,
      sizeFrom: null,
      until: new Promise<void>((resolve) => end = resolve),
      exitOnSignal: false,
    });
    const during = termiosFlags(host.slave);
    assert.equal(during.lflag & (ICANON | ECHO), 0, "no line editing, no echo");
    assert.equal(during.oflag & OPOST, 0, "no output processing: the container's terminal did it");

    Deno.kill(Deno.pid, "SIGTERM"); // forwarded by floka exec; here only the terminal is restored
    const deadline = Date.now() + 5000;
    while ((termiosFlags(host.slave).lflag & ICANON) === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(libc.tcgetattr(host.slave), before, "restored on SIGTERM");

    end();
    await session;
    assert.deepEqual(libc.tcgetattr(host.slave), before, "still the settings from before");
  } finally {
    for (const fd of [slave, master, host.slave, host.master]) libc.close(fd);
  }
});
