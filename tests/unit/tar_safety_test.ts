import assert from "node:assert/strict";
import {
  checkDeviceNumbers,
  checkId,
  entryPath,
  parsePaxTime,
  paxXattrs,
  TarEntryError,
  timeOfDate,
  whiteoutOf,
  xattrAllowed,
} from "../../lib/tar_safety.ts";

const encoder = new TextEncoder();

/** One PAX record, "LEN KEY=VALUE\n", with LEN counting itself. */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const body = [...encoder.encode(` ${key}=`), ...value, 0x0a];
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return new Uint8Array([...encoder.encode(String(length)), ...body]);
}

function refused(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (err) => err instanceof TarEntryError && reason.test(err.message));
}

Deno.test("entryPath: names become components relative to the layer root", () => {
  assert.deepEqual(entryPath("etc/passwd"), ["etc", "passwd"]);
  assert.deepEqual(entryPath("./etc/passwd"), ["etc", "passwd"]);
  assert.deepEqual(entryPath("usr/lib/"), ["usr", "lib"]);
  assert.deepEqual(entryPath("a//b/./c"), ["a", "b", "c"]);
  assert.deepEqual(entryPath("a/b/../c"), ["a", "c"]);
  assert.deepEqual(entryPath("a/.."), []);
  assert.deepEqual(entryPath("./"), []);
  assert.deepEqual(entryPath("."), []);
  assert.deepEqual(entryPath(""), []);
});

Deno.test("entryPath: an absolute name is read relative to the root, as tar and containerd do", () => {
  assert.deepEqual(entryPath("/etc/passwd"), ["etc", "passwd"]);
  assert.deepEqual(entryPath("//etc"), ["etc"]);
  assert.deepEqual(entryPath("/"), []);
});

Deno.test("entryPath: '..' that climbs out of the layer is refused", () => {
  for (const name of ["..", "../x", "../../etc/x", "a/../../x", "./../x", "/../etc", "a/b/../../../x"]) {
    refused(() => entryPath(name), /^path leaves the layer$/);
  }
});

Deno.test("entryPath: a NUL byte is refused", () => {
  refused(() => entryPath("a\0b"), /NUL/);
});

Deno.test("whiteoutOf: plain names are not whiteouts", () => {
  assert.equal(whiteoutOf("passwd"), null);
  assert.equal(whiteoutOf(".wh"), null);
  assert.equal(whiteoutOf("x.wh.y"), null);
});

Deno.test("whiteoutOf: .wh.NAME deletes NAME, .wh..wh..opq is opaque, other .wh..wh. are ignored", () => {
  assert.deepEqual(whiteoutOf(".wh.passwd"), { kind: "delete", name: "passwd" });
  assert.deepEqual(whiteoutOf(".wh..bashrc"), { kind: "delete", name: ".bashrc" });
  assert.deepEqual(whiteoutOf(".wh..wh..opq"), { kind: "opaque" });
  assert.deepEqual(whiteoutOf(".wh..wh.plnk"), { kind: "ignore" });
  assert.deepEqual(whiteoutOf(".wh..wh.aufs"), { kind: "ignore" });
});

Deno.test("whiteoutOf: whiteouts of nothing, '.' or '..' are refused", () => {
  for (const base of [".wh.", ".wh..", ".wh..."]) refused(() => whiteoutOf(base), /invalid whiteout/);
});

Deno.test("checkDeviceNumbers: Linux's 12-bit major and 20-bit minor", () => {
  checkDeviceNumbers(0, 0);
  checkDeviceNumbers(4095, 1048575);
  refused(() => checkDeviceNumbers(4096, 0), /major number 4096 is out of range/);
  refused(() => checkDeviceNumbers(0, 1048576), /minor number 1048576 is out of range/);
  refused(() => checkDeviceNumbers(-1, 0), /out of range/);
  refused(() => checkDeviceNumbers(1.5, 0), /out of range/);
  refused(() => checkDeviceNumbers(2 ** 60, 0), /out of range/);
});

Deno.test("checkId: ids up to 2^32-2; (uid_t)-1 and beyond are refused", () => {
  assert.equal(checkId(0, "uid"), 0);
  assert.equal(checkId(1000000000, "gid"), 1000000000);
  assert.equal(checkId(0xfffffffe, "uid"), 0xfffffffe);
  refused(() => checkId(0xffffffff, "uid"), /^uid 4294967295 is out of range$/);
  refused(() => checkId(-1, "gid"), /gid -1/);
  refused(() => checkId(Number.NaN, "uid"), /out of range/);
});

Deno.test("parsePaxTime: seconds with up to nanosecond fractions, negative ones too", () => {
  assert.deepEqual(parsePaxTime("1700000000"), { sec: 1700000000, nsec: 0 });
  assert.deepEqual(parsePaxTime("1700000000.5"), { sec: 1700000000, nsec: 500000000 });
  assert.deepEqual(parsePaxTime("1.123456789123"), { sec: 1, nsec: 123456789 });
  assert.deepEqual(parsePaxTime("12."), { sec: 12, nsec: 0 });
  assert.deepEqual(parsePaxTime("-1.25"), { sec: -2, nsec: 750000000 });
  assert.deepEqual(parsePaxTime("-3"), { sec: -3, nsec: 0 });
  assert.equal(parsePaxTime(""), null);
  assert.equal(parsePaxTime("1e9"), null);
  assert.equal(parsePaxTime("abc"), null);
});

Deno.test("timeOfDate: whole seconds and the millisecond remainder", () => {
  assert.deepEqual(timeOfDate(new Date(1_500_000_000_250)), { sec: 1_500_000_000, nsec: 250_000_000 });
  assert.deepEqual(timeOfDate(new Date(-1500)), { sec: -2, nsec: 500_000_000 });
  assert.deepEqual(timeOfDate(new Date(Number.NaN)), { sec: 0, nsec: 0 });
});

Deno.test("paxXattrs: SCHILY.xattr values are kept as raw bytes, binary included", () => {
  const cap = new Uint8Array([1, 0, 0, 2, 0x80, 0x20, 0, 0, 0, 0, 0, 0, 0xff, 0x0a, 0x3d, 0, 0, 0, 0, 0]);
  const pax = new Uint8Array([
    ...paxRecord("path", encoder.encode("usr/bin/ping")),
    ...paxRecord("SCHILY.xattr.security.capability", cap),
    ...paxRecord("SCHILY.xattr.user.comment", encoder.encode("héllo = world")),
    ...paxRecord("mtime", encoder.encode("1.5")),
  ]);
  const xattrs = paxXattrs(pax);
  assert.deepEqual([...xattrs.keys()], ["security.capability", "user.comment"]);
  assert.deepEqual(xattrs.get("security.capability"), cap);
  assert.equal(new TextDecoder().decode(xattrs.get("user.comment")), "héllo = world");
});

Deno.test("paxXattrs: bsdtar's LIBARCHIVE.xattr (percent-encoded name, base64 value)", () => {
  const pax = paxRecord("LIBARCHIVE.xattr.user.a%3Db", encoder.encode(btoa("\x00\x01\xff")));
  assert.deepEqual(paxXattrs(pax).get("user.a=b"), new Uint8Array([0, 1, 255]));
  refused(
    () => paxXattrs(paxRecord("LIBARCHIVE.xattr.user.x", encoder.encode("!!not base64"))),
    /malformed PAX/,
  );
});

Deno.test("paxXattrs: a malformed record ends the parse without reading past the header", () => {
  const good = paxRecord("SCHILY.xattr.user.a", encoder.encode("1"));
  assert.equal(
    paxXattrs(new Uint8Array([...good, ...encoder.encode("999 SCHILY.xattr.user.b=2\n")])).size,
    1,
  );
  assert.equal(paxXattrs(encoder.encode("x SCHILY.xattr.user.b=2\n")).size, 0);
  assert.equal(paxXattrs(encoder.encode("3 SCHILY.xattr.user.b=2\n")).size, 0);
  assert.equal(paxXattrs(new Uint8Array()).size, 0);
});

Deno.test("xattrAllowed: overlayfs's own attributes never come from a layer", () => {
  assert.ok(xattrAllowed("security.capability"));
  assert.ok(xattrAllowed("user.mime_type"));
  assert.ok(xattrAllowed("trusted.foo"));
  assert.ok(!xattrAllowed("trusted.overlay.opaque"));
  assert.ok(!xattrAllowed("trusted.overlay.redirect"));
  assert.ok(!xattrAllowed("user.overlay.metacopy"));
  assert.ok(!xattrAllowed(""));
});
