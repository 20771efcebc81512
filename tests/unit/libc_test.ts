import assert from "node:assert/strict";
import * as libc from "../../ffi/libc.ts";
import { FlokaError, SyscallError } from "../../lib/errors.ts";
import * as L from "../../lib/linux.ts";

const decoder = new TextDecoder();

/** Asserts that `fn` throws a SyscallError for `call` with `errno`, and returns it. */
function syscallError(fn: () => unknown, call: string, errno: number): SyscallError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SyscallError, `expected a SyscallError, got ${caught}`);
  assert.equal(caught.call, call);
  assert.equal(caught.errno, errno, caught.message);
  return caught;
}

Deno.test("cString: NUL-terminated UTF-8 bytes", () => {
  const bytes = libc.cString("/etc/hosts")!;
  assert.equal(bytes.length, "/etc/hosts".length + 1);
  assert.equal(bytes[bytes.length - 1], 0);
  assert.equal(decoder.decode(bytes.subarray(0, -1)), "/etc/hosts");
  const empty = libc.cString("")!;
  assert.deepEqual([...empty], [0]);
  const utf8 = libc.cString("é")!;
  assert.deepEqual([...utf8], [0xc3, 0xa9, 0]);
});

Deno.test("cString: null is a C NULL, an embedded NUL is refused", () => {
  assert.equal(libc.cString(null), null);
  assert.throws(() => libc.cString("a\0b"), TypeError);
});

Deno.test("cStringArray: a NULL-terminated array of pointers to the strings", () => {
  const items = ["/bin/sh", "-c", "echo hi", ""];
  const { array, keep } = libc.cStringArray(items);
  assert.equal(array.length, items.length + 1);
  assert.equal(array[items.length], 0n);
  assert.equal(keep.length, items.length);
  items.forEach((s, i) => {
    assert.notEqual(array[i], 0n);
    const ptr = Deno.UnsafePointer.create(array[i]);
    assert.ok(ptr !== null);
    assert.equal(Deno.UnsafePointerView.getCString(ptr), s);
    // The pointer points into the kept buffer, which is what keeps the string alive.
    assert.equal(array[i], BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(keep[i]))));
  });
});

Deno.test("cStringArray: an empty list is just the NULL terminator", () => {
  const { array } = libc.cStringArray([]);
  assert.equal(array.length, 1);
  assert.equal(array[0], 0n);
});

Deno.test("cStringArray refuses a string with an embedded NUL", () => {
  assert.throws(() => libc.cStringArray(["ok", "bad\0"]), TypeError);
});

Deno.test("makedev encodes dev_t as glibc does", () => {
  assert.equal(libc.makedev(1, 3), 259n); // /dev/null
  assert.equal(libc.makedev(1, 5), 261n); // /dev/zero
  assert.equal(libc.makedev(5, 0), 1280n); // /dev/tty
  assert.equal(libc.makedev(0, 0), 0n);
  assert.equal(libc.makedev(136, 1), 34817n); // /dev/pts/1
  // glibc: (major & 0xfff) << 8 | (major & ~0xfff) << 32 | (minor & 0xff) | (minor & ~0xff) << 12
  assert.equal(libc.makedev(259, 65536), 0x10010300n);
  assert.equal(libc.makedev(4096, 0), 0x100000000000n);
  assert.equal(libc.makedev(0, 256), 0x100000n);
  // 32-bit major and minor fill all 64 bits of dev_t.
  assert.equal(libc.makedev(0xffffffff, 0xffffffff), 0xffffffffffffffffn);
  assert.equal(libc.makedev(0x12345, 0x6789a), 0x120006783459an);
});

Deno.test("makedev agrees with the kernel's st_rdev of /dev/null", () => {
  const st = Deno.statSync("/dev/null");
  assert.equal(libc.makedev(1, 3), BigInt(st.rdev!));
});

Deno.test("a failing call throws SyscallError naming the call, argument and errno (chdir ENOENT)", () => {
  const missing = `/nonexistent-floka-unit-${crypto.randomUUID()}`;
  const before = Deno.cwd();
  const err = syscallError(() => libc.chdir(missing), "chdir", 2);
  assert.equal(err.errnoName, "ENOENT");
  assert.deepEqual(err.args, [missing]);
  assert.equal(err.message, `chdir("${missing}"): ENOENT (No such file or directory)`);
  assert.ok(err instanceof FlokaError);
  assert.equal(Deno.cwd(), before);
});

Deno.test("chdir to an existing directory works and changes the process cwd", () => {
  const before = Deno.cwd();
  const dir = Deno.makeTempDirSync();
  try {
    libc.chdir(dir);
    assert.equal(Deno.realPathSync(Deno.cwd()), Deno.realPathSync(dir));
  } finally {
    Deno.chdir(before);
    Deno.removeSync(dir);
  }
});

Deno.test("errno is read per call: ENOTDIR, EBADF and EINVAL map to their names", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/file`, "x");
    const notDir = syscallError(() => libc.chdir(`${dir}/file`), "chdir", 20);
    assert.equal(notDir.errnoName, "ENOTDIR");
    const missing = syscallError(() => libc.open(`${dir}/missing`, L.O_RDONLY), "open", 2);
    assert.equal(missing.message, `open("${dir}/missing", "0x0"): ENOENT (No such file or directory)`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const badFd = syscallError(() => libc.close(-1), "close", 9);
  assert.equal(badFd.message, "close(-1): EBADF (Bad file descriptor)");
  syscallError(() => libc.setns(-1, 0), "setns", 9);
  // An unknown unshare flag is refused before any privilege check.
  const inval = syscallError(() => libc.unshare(0x1), "unshare", 22);
  assert.equal(inval.message, 'unshare("0x1"): EINVAL (Invalid argument)');
  syscallError(() => libc.prctl(0x7fff_0001), "prctl", 22);
});

Deno.test("mknod in a missing directory fails with ENOENT and shows mode and major:minor", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/missing/null`;
    const err = syscallError(() => libc.mknod(path, L.S_IFCHR | 0o666, 1, 3), "mknod", 2);
    assert.equal(err.message, `mknod("${path}", "0o20666", "1:3"): ENOENT (No such file or directory)`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("execve of a missing program returns by throwing ENOENT", () => {
  const path = `/nonexistent-floka-unit-${crypto.randomUUID()}/prog`;
  const err = syscallError(() => libc.execve(path, [path], ["A=1"]), "execve", 2);
  assert.equal(err.message, `execve("${path}"): ENOENT (No such file or directory)`);
});

function channel(): [number, number] {
  return libc.socketpair(L.AF_UNIX, L.SOCK_STREAM | L.SOCK_CLOEXEC);
}

Deno.test("socketpair + writeAll + readToEnd round trip the bytes once the writer closes", async () => {
  const [hostEnd, childEnd] = channel();
  assert.notEqual(hostEnd, childEnd);
  libc.writeAll(childEnd, new TextEncoder().encode('{"exitCode":127,"message":"not found"}'));
  libc.close(childEnd);
  const data = await libc.readToEnd(hostEnd);
  libc.close(hostEnd);
  assert.equal(decoder.decode(data), '{"exitCode":127,"message":"not found"}');
});

Deno.test("the socket pair is bidirectional (the host's start byte goes the other way)", () => {
  const [hostEnd, childEnd] = channel();
  try {
    libc.writeAll(hostEnd, new Uint8Array([1]));
    const buf = new Uint8Array(1);
    assert.equal(libc.read(childEnd, buf), 1);
    assert.equal(buf[0], 1);
    libc.close(hostEnd);
    assert.equal(libc.read(childEnd, buf), 0); // end of file once the other end is closed
  } finally {
    libc.close(childEnd);
  }
});

Deno.test("readToEnd reassembles data larger than one read, in order", async () => {
  const [hostEnd, childEnd] = channel();
  const payload = new Uint8Array(20_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 8)) & 0xff;
  const reading = libc.readToEnd(hostEnd); // reads off the main thread while we write
  libc.writeAll(childEnd, payload);
  libc.close(childEnd);
  const data = await reading;
  libc.close(hostEnd);
  assert.equal(data.length, payload.length);
  assert.deepEqual(data, payload);
});

Deno.test("readToEnd of a channel closed without data is empty", async () => {
  const [hostEnd, childEnd] = channel();
  libc.close(childEnd);
  const data = await libc.readToEnd(hostEnd);
  libc.close(hostEnd);
  assert.equal(data.length, 0);
});

Deno.test("read of a bad fd throws SyscallError EBADF", () => {
  const err = syscallError(() => libc.read(-1, new Uint8Array(1)), "read", 9);
  assert.equal(err.message, "read(-1): EBADF (Bad file descriptor)");
});

Deno.test("kill: signal 0 to this process is true, to a missing pid is false", () => {
  assert.equal(libc.kill(Deno.pid, 0), true);
  assert.equal(libc.kill(99_999_999, 0), false); // above any pid_max: ESRCH
});

Deno.test("kill of a process that exited and was reaped reports false", async () => {
  const child = new Deno.Command("true").spawn();
  await child.status;
  // The pid could in theory be reused at once; it practically never is within this test.
  assert.equal(libc.kill(child.pid, 0), false);
});

Deno.test("umask returns the previous mask", () => {
  const old = libc.umask(0o027);
  try {
    assert.equal(libc.umask(0o022), 0o027);
  } finally {
    libc.umask(old);
  }
});

Deno.test("geteuid matches Deno's own view", () => {
  assert.equal(libc.geteuid(), Deno.uid());
});
