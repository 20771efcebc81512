import assert from "node:assert/strict";
import { errnoMessage, errnoName } from "../../lib/errno.ts";
import {
  describeError,
  EXIT_CANNOT_EXECUTE,
  EXIT_FLOKA,
  EXIT_NOT_FOUND,
  FlokaError,
  SyscallError,
} from "../../lib/errors.ts";

Deno.test("SyscallError message names the call, its quoted arguments, errno name and text", () => {
  const err = new SyscallError("mount", ["overlay", "/x/rootfs"], 22);
  assert.equal(err.message, 'mount("overlay", "/x/rootfs"): EINVAL (Invalid argument)');
  assert.equal(err.call, "mount");
  assert.deepEqual(err.args, ["overlay", "/x/rootfs"]);
  assert.equal(err.errno, 22);
  assert.equal(err.errnoName, "EINVAL");
  assert.equal(err.name, "SyscallError");
});

Deno.test("SyscallError shows numbers and null unquoted, strings JSON-quoted", () => {
  const err = new SyscallError("setns", [3, "0x40000000", null], 9);
  assert.equal(err.message, 'setns(3, "0x40000000", null): EBADF (Bad file descriptor)');
  assert.equal(new SyscallError("getpid", [], 1).message, "getpid(): EPERM (Operation not permitted)");
  // A string with a quote stays one unambiguous argument.
  assert.equal(
    new SyscallError("chdir", ['/a"b'], 2).message,
    'chdir("/a\\"b"): ENOENT (No such file or directory)',
  );
});

Deno.test("SyscallError is a FlokaError with Floka's exit code 125", () => {
  const err = new SyscallError("chroot", ["/x"], 2);
  assert.ok(err instanceof FlokaError);
  assert.ok(err instanceof Error);
  assert.equal(err.exitCode, EXIT_FLOKA);
  assert.equal(EXIT_FLOKA, 125);
});

Deno.test("FlokaError exit codes: 125 by default, Docker's 126 and 127 when given", () => {
  assert.equal(EXIT_CANNOT_EXECUTE, 126);
  assert.equal(EXIT_NOT_FOUND, 127);
  const plain = new FlokaError("something failed");
  assert.equal(plain.exitCode, 125);
  assert.equal(plain.message, "something failed");
  assert.equal(plain.name, "FlokaError");
  assert.equal(new FlokaError("not found", EXIT_NOT_FOUND).exitCode, 127);
  assert.equal(new FlokaError("cannot exec", EXIT_CANNOT_EXECUTE).exitCode, 126);
});

Deno.test("describeError gives the message of an Error and the text of anything else", () => {
  assert.equal(describeError(new Error("boom")), "boom");
  assert.equal(describeError(new FlokaError("no such image")), "no such image");
  assert.equal(describeError("plain string"), "plain string");
  assert.equal(describeError(42), "42");
});

Deno.test("errnoName and errnoMessage know the common Linux errnos", () => {
  const cases: [number, string, string][] = [
    [1, "EPERM", "Operation not permitted"],
    [2, "ENOENT", "No such file or directory"],
    [3, "ESRCH", "No such process"],
    [13, "EACCES", "Permission denied"],
    [16, "EBUSY", "Device or resource busy"],
    [17, "EEXIST", "File exists"],
    [20, "ENOTDIR", "Not a directory"],
    [22, "EINVAL", "Invalid argument"],
    [28, "ENOSPC", "No space left on device"],
    [36, "ENAMETOOLONG", "File name too long"],
    [38, "ENOSYS", "Function not implemented"],
    [39, "ENOTEMPTY", "Directory not empty"],
    [40, "ELOOP", "Too many levels of symbolic links"],
    [95, "ENOTSUP", "Operation not supported"],
    [110, "ETIMEDOUT", "Connection timed out"],
  ];
  for (const [errno, name, message] of cases) {
    assert.equal(errnoName(errno), name, `errno ${errno}`);
    assert.equal(errnoMessage(errno), message, `errno ${errno}`);
  }
});

Deno.test("unknown errno numbers still give a readable name and message", () => {
  assert.equal(errnoName(999), "errno 999");
  assert.match(errnoMessage(999), /^Unknown error/);
  assert.equal(errnoName(0), "errno 0");
  assert.equal(errnoName(41), "errno 41"); // a hole in Linux's numbering
  const err = new SyscallError("frob", ["/x"], 999);
  assert.equal(err.errnoName, "errno 999");
  assert.match(err.message, /^frob\("\/x"\): errno 999 \(Unknown error/);
});
