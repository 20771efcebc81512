import assert from "node:assert/strict";
import { DEFAULT_PATH, envFileLines, envFromOption, envKey, envValue, mergeEnv } from "../../lib/env.ts";
import { FlokaError } from "../../lib/errors.ts";

const host = (vars: Record<string, string>) => (key: string) => vars[key];

Deno.test("envFromOption: KEY=VALUE is kept as given, including '=' in the value and empty values", () => {
  const none = host({});
  assert.equal(envFromOption("FOO=bar", none), "FOO=bar");
  assert.equal(envFromOption("FOO=", none), "FOO=");
  assert.equal(envFromOption("URL=a=b=c", none), "URL=a=b=c");
  assert.equal(envFromOption("MSG=hello world", none), "MSG=hello world");
});

Deno.test("envFromOption: KEY alone takes the host's value", () => {
  assert.equal(envFromOption("HOME", host({ HOME: "/root" })), "HOME=/root");
  assert.equal(envFromOption("EMPTY", host({ EMPTY: "" })), "EMPTY=");
});

Deno.test("envFromOption: KEY alone is dropped (null) when the host has no such variable", () => {
  assert.equal(envFromOption("NOT_SET_ANYWHERE", host({})), null);
});

Deno.test("envFromOption: the host value is not consulted when a value is given", () => {
  assert.equal(envFromOption("HOME=/x", host({ HOME: "/root" })), "HOME=/x");
});

Deno.test("envFromOption: an invalid key is a FlokaError", () => {
  for (const bad of ["=value", "", "MY VAR=1", " =x"]) {
    assert.throws(
      () => envFromOption(bad, host({})),
      (err) =>
        err instanceof FlokaError && err.message === `invalid environment variable: ${JSON.stringify(bad)}`,
      bad,
    );
  }
});

Deno.test("envFileLines: skips comments and blank lines, handles CRLF, strips leading spaces", () => {
  const text = "# a comment\n\nA=1\r\nB\r\n   C=3\n\t# indented comment\n   \nD=x # not a comment\n";
  assert.deepEqual(envFileLines(text), ["A=1", "B", "C=3", "D=x # not a comment"]);
  assert.deepEqual(envFileLines(""), []);
  assert.deepEqual(envFileLines("X=1"), ["X=1"]);
});

Deno.test("envKey: the part before the first '='", () => {
  assert.equal(envKey("A=b=c"), "A");
  assert.equal(envKey("LONE"), "LONE");
});

Deno.test("mergeEnv: overrides replace in place, new keys are appended in order", () => {
  const base = ["PATH=/usr/bin:/bin", "LANG=C", "TERM=xterm"];
  const merged = mergeEnv(base, ["LANG=C.UTF-8", "NEW=1", "PATH=/opt/bin", "OTHER=2"]);
  assert.deepEqual(merged, ["PATH=/opt/bin", "LANG=C.UTF-8", "TERM=xterm", "NEW=1", "OTHER=2"]);
  assert.deepEqual(base, ["PATH=/usr/bin:/bin", "LANG=C", "TERM=xterm"], "base is not modified");
});

Deno.test("mergeEnv: a later override of the same key wins", () => {
  assert.deepEqual(mergeEnv(["A=1"], ["A=2", "A=3"]), ["A=3"]);
  assert.deepEqual(mergeEnv([], ["B=1", "B=2"]), ["B=2"]);
});

Deno.test("mergeEnv: keys are compared whole (A does not replace AB)", () => {
  assert.deepEqual(mergeEnv(["AB=1"], ["A=2"]), ["AB=1", "A=2"]);
});

Deno.test("envValue: the value of the last entry with that key", () => {
  const env = ["PATH=/bin", "A=x=y", "B=", "A=second"];
  assert.equal(envValue(env, "PATH"), "/bin");
  assert.equal(envValue(env, "A"), "second");
  assert.equal(envValue(env, "B"), "");
  assert.equal(envValue(env, "MISSING"), undefined);
  assert.equal(envValue(["AB=1"], "A"), undefined);
  assert.equal(envValue(["URL=a=b"], "URL"), "a=b");
});

Deno.test("DEFAULT_PATH is Docker's default PATH", () => {
  assert.equal(DEFAULT_PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
});
