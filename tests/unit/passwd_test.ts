import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import { parseGroup, parsePasswd, resolveUser } from "../../lib/passwd.ts";

const PASSWD = [
  "# comment line",
  "root:x:0:0:root:/root:/bin/sh",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "alice:x:1000:1000:Alice:/home/alice:/bin/sh",
  "nohome:x:1001:1001::",
  "",
].join("\n");

const GROUP = [
  "root:x:0:",
  "daemon:x:1:",
  "alice:x:1000:",
  "wheel:x:10:alice,bob",
  "audio:x:29:alice",
  "staff:x:50:bob",
  "",
].join("\n");

Deno.test('resolveUser(""): root with its home from passwd', () => {
  assert.deepEqual(resolveUser("", PASSWD, GROUP), { uid: 0, gid: 0, groups: [0], home: "/root" });
});

Deno.test('resolveUser(""): root even when the image has no passwd file', () => {
  assert.deepEqual(resolveUser("", "", ""), { uid: 0, gid: 0, groups: [0], home: "/" });
});

Deno.test("resolveUser by name: uid, primary gid, supplementary groups and home", () => {
  const u = resolveUser("alice", PASSWD, GROUP);
  assert.equal(u.uid, 1000);
  assert.equal(u.gid, 1000);
  assert.equal(u.home, "/home/alice");
  assert.deepEqual(u.groups.toSorted((a, b) => a - b), [10, 29, 1000]);
  assert.equal(u.groups[0], 1000);
});

Deno.test("resolveUser by uid finds the passwd entry", () => {
  assert.deepEqual(resolveUser("1000", PASSWD, GROUP), resolveUser("alice", PASSWD, GROUP));
  assert.deepEqual(resolveUser("1", PASSWD, GROUP), { uid: 1, gid: 1, groups: [1], home: "/usr/sbin" });
});

Deno.test("resolveUser uid:gid: explicit gid, only that group", () => {
  const u = resolveUser("1000:50", PASSWD, GROUP);
  assert.deepEqual(u, { uid: 1000, gid: 50, groups: [50], home: "/home/alice" });
});

Deno.test("resolveUser name:group resolves the group by name", () => {
  const u = resolveUser("alice:staff", PASSWD, GROUP);
  assert.deepEqual(u, { uid: 1000, gid: 50, groups: [50], home: "/home/alice" });
});

Deno.test("resolveUser: an unknown name is an error naming the user", () => {
  assert.throws(
    () => resolveUser("mallory", PASSWD, GROUP),
    (err) =>
      err instanceof FlokaError &&
      err.message === "unable to find user mallory: no matching entries in passwd file" &&
      err.exitCode === 125,
  );
});

Deno.test("resolveUser: an unknown group name is an error naming the group", () => {
  assert.throws(
    () => resolveUser("alice:nogroup", PASSWD, GROUP),
    (err) =>
      err instanceof FlokaError &&
      err.message === "unable to find group nogroup: no matching entries in group file",
  );
});

Deno.test("resolveUser: a numeric uid not in passwd is allowed, with gid 0 and home /", () => {
  assert.deepEqual(resolveUser("4242", PASSWD, GROUP), { uid: 4242, gid: 0, groups: [0], home: "/" });
  assert.deepEqual(resolveUser("4242:4343", PASSWD, GROUP), {
    uid: 4242,
    gid: 4343,
    groups: [4343],
    home: "/",
  });
  assert.deepEqual(resolveUser("4242", "", ""), { uid: 4242, gid: 0, groups: [0], home: "/" });
});

Deno.test("resolveUser: an empty home field means /", () => {
  assert.equal(resolveUser("nohome", PASSWD, GROUP).home, "/");
});

Deno.test("resolveUser: a name is matched exactly, not by prefix", () => {
  assert.throws(() => resolveUser("ali", PASSWD, GROUP), /unable to find user ali/);
});

Deno.test("parsePasswd and parseGroup skip comments and blank lines", () => {
  const users = parsePasswd(PASSWD);
  assert.deepEqual(users.map((u) => u.name), ["root", "daemon", "alice", "nohome"]);
  const groups = parseGroup(GROUP);
  assert.deepEqual(groups.find((g) => g.name === "wheel"), {
    name: "wheel",
    gid: 10,
    members: ["alice", "bob"],
  });
  assert.deepEqual(groups.find((g) => g.name === "root")?.members, []);
});
