/**
 * `.dockerignore` parsing and matching against the behaviour of Docker's patternmatcher:
 * wildcards, `**`, classes and escapes, parent directories, `!` exceptions (the last
 * matching pattern wins), and whether an ignored directory must still be walked.
 */
import assert from "node:assert/strict";
import {
  cleanPath,
  compileIgnore,
  globMatch,
  hasWildcards,
  type IgnoreRules,
  isIgnored,
  matchPath,
  type MatchState,
  mayContainExceptions,
  parseIgnore,
} from "../../lib/dockerignore.ts";
import { FlokaError } from "../../lib/errors.ts";

/** The patterns that parseIgnore kept, `!` included. */
function patternsOf(rules: IgnoreRules): string[] {
  return rules.patterns.map((p) => (p.exception ? "!" : "") + p.pattern);
}

function ignoredBy(patterns: string[], path: string): boolean {
  return isIgnored(compileIgnore(patterns), path);
}

Deno.test("parseIgnore: comments, blank lines, spaces, BOM, CRLF", () => {
  const text = "\uFEFF# a comment\n\n  node_modules  \r\n*.log\n   \n # not a comment\n";
  assert.deepEqual(patternsOf(parseIgnore(text)), ["node_modules", "*.log", "# not a comment"]);
});

Deno.test("parseIgnore: patterns are cleaned and a leading / is dropped", () => {
  const text = "/build/\n./a/./b\nx/../y\n//abs//path/\n! /secret/\n!keep/./me\n";
  assert.deepEqual(patternsOf(parseIgnore(text)), ["build", "a/b", "y", "abs/path", "!secret", "!keep/me"]);
  assert.ok(isIgnored(parseIgnore("/build"), "build/out.o"));
});

Deno.test("parseIgnore: a lone ! and a malformed pattern are errors", () => {
  assert.throws(
    () => parseIgnore("!\n"),
    (e) => e instanceof FlokaError && /illegal exclusion/.test(e.message),
  );
  assert.throws(() => parseIgnore("!   \n"), FlokaError);
  for (const bad of ["[", "a[b", "[]", "[a-]", "[-a]", "a\\"]) {
    assert.throws(() => parseIgnore(bad), FlokaError, bad);
  }
});

Deno.test("isIgnored: *, ? and classes stay within one path component", () => {
  const cases: [string, string, boolean][] = [
    ["*", "fileutils.go", true],
    ["*.go", "fileutils.go", true],
    ["*.go", "pkg/fileutils.go", false],
    ["a/*.txt", "a/file.txt", true],
    ["a/*.txt", "a/dir/file.txt", false],
    ["abc?def", "abcZdef", true],
    ["abc?def", "abcdef", false],
    ["a?b", "a/b", false],
    ["a[b-d]e", "ace", true],
    ["a[b-d]e", "aae", false],
    ["a[^b-d]e", "aze", true],
    ["a[^b-d]e", "ace", false],
    ["a[^x]b", "a/b", false],
    [".*", ".foo", true],
    [".*", "foo", false],
    ["abc.def", "abcZdef", false],
    ["a(b)c/def", "a(b)c/def", true],
    ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
    ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
    ["a\\*b", "a*b", true],
    ["a\\*b", "axb", false],
    ["a\\\\", "a\\", true],
    ["arr[[]0].txt", "arr[0].txt", true],
  ];
  for (const [pattern, path, want] of cases) {
    assert.equal(ignoredBy([pattern], path), want, `${pattern} ~ ${path}`);
  }
});

Deno.test("isIgnored: ** matches any number of directories", () => {
  const cases: [string, string, boolean][] = [
    ["**", "file", true],
    ["**", "dir/file", true],
    ["**/", "file", true],
    ["**/**", "dir/file", true],
    ["dir/**", "dir/file", true],
    ["dir/**", "dir/dir2/file", true],
    ["dir/**", "dir", false],
    ["**/dir", "dir", true],
    ["**/dir", "a/b/dir", true],
    ["**/dir2/*", "dir/dir2/file", true],
    ["**/dir2/**", "dir/dir2/dir3/file", true],
    ["**file", "dir/dir/file", true],
    ["**/file*.txt", "dir/dir/file.txt", true],
    ["**/**/*.txt", "dir/dir/file.txt", true],
    ["**/**/*.txt2", "dir/dir/file.txt", false],
    ["**/*.txt", "file.txt", true],
    ["a**/*.txt", "a/dir/dir/file.txt", true],
    ["a/*.txt**", "a/file.txt", true],
    ["**/foo/bar", "foo/bar", true],
    ["**/foo/bar", "dir/dir2/foo/bar", true],
    ["**/.foo", ".foo", true],
    ["**/.foo", "bar.foo", false],
    ["src/**/test", "src/test", true],
    ["src/**/test", "src/a/b/test", true],
    ["src/**/test", "src/a/btest", false],
  ];
  for (const [pattern, path, want] of cases) {
    assert.equal(ignoredBy([pattern], path), want, `${pattern} ~ ${path}`);
  }
});

Deno.test("isIgnored: a pattern that matches a directory ignores everything below it", () => {
  assert.ok(ignoredBy(["docs"], "docs/a/b/c.md"));
  assert.ok(ignoredBy(["*/tmp"], "a/tmp/x/y"));
  assert.ok(!ignoredBy(["docs"], "docsx/a"));
  assert.ok(!ignoredBy(["docs/a"], "docs"));
});

Deno.test("isIgnored: the context root is never ignored", () => {
  for (const root of ["", ".", "/", "./"]) assert.ok(!ignoredBy(["*", "**"], root));
});

Deno.test("isIgnored: paths are normalized before matching", () => {
  assert.ok(ignoredBy(["a/b"], "./a/b"));
  assert.ok(ignoredBy(["a/b"], "/a/b/"));
  assert.ok(ignoredBy(["a/b"], "a//b"));
});

Deno.test("isIgnored: exceptions, the last matching pattern wins", () => {
  assert.ok(!ignoredBy(["*.go", "!fileutils.go"], "fileutils.go"));
  assert.ok(ignoredBy(["*.go", "!fileutils.go"], "other.go"));
  assert.ok(ignoredBy(["!fileutils.go", "*.go"], "fileutils.go"));
  assert.ok(ignoredBy(["*.md", "!README*.md", "README-secret.md"], "README-secret.md"));
  assert.ok(!ignoredBy(["*.md", "!README*.md", "README-secret.md"], "README.md"));
  assert.ok(!ignoredBy(["**", "!util/docker/web"], "util/docker/web/foo"));
  assert.ok(ignoredBy(["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo"));
});

Deno.test("isIgnored: a directory is excluded but an exception inside it is kept", () => {
  for (const dir of ["docs", "docs/", "docs/*"]) {
    const rules = parseIgnore(`${dir}\n!docs/README.md\n`);
    assert.ok(!isIgnored(rules, "docs/README.md"), dir);
    assert.ok(isIgnored(rules, "docs/other.md"), dir);
    assert.ok(isIgnored(rules, "docs/sub/README.md"), dir);
    assert.ok(mayContainExceptions(rules, "docs"), dir);
    assert.ok(!mayContainExceptions(rules, "src"), dir);
    assert.ok(!mayContainExceptions(rules, "docs/sub"), dir);
  }
});

Deno.test("mayContainExceptions: bounded by the exceptions' literal components", () => {
  const rules = parseIgnore("*\n!src/*/keep\n");
  assert.ok(mayContainExceptions(rules, "src"));
  assert.ok(mayContainExceptions(rules, "src/a"));
  assert.ok(!mayContainExceptions(rules, "src/a/keep")); // nothing below a file-level match
  assert.ok(!mayContainExceptions(rules, "lib"));
  assert.ok(!mayContainExceptions(parseIgnore("*\n"), "src"));
  // `**` may reach anywhere: walk every ignored directory.
  const deep = parseIgnore("vendor\n!**/*.md\n");
  assert.ok(mayContainExceptions(deep, "vendor/a/b"));
  assert.ok(!isIgnored(deep, "vendor/a/b/x.md"));
});

Deno.test("matchPath: matching with the parent's state equals matching from scratch", () => {
  const rules = parseIgnore("docs\n!docs/keep\n**/*.tmp\nbuild/**\n!build/out/*.bin\n");
  const paths = [
    "docs",
    "docs/keep",
    "docs/keep/a.tmp",
    "docs/x",
    "build",
    "build/out",
    "build/out/a.bin",
    "build/out/a.txt",
    "src",
    "src/a.tmp",
    "src/b.ts",
  ];
  const states = new Map<string, MatchState>();
  for (const path of paths) {
    const parent = path.includes("/") ? states.get(path.slice(0, path.lastIndexOf("/"))) : undefined;
    const walked = matchPath(rules, path, parent);
    states.set(path, walked.state);
    assert.equal(walked.ignored, isIgnored(rules, path), path);
  }
  assert.deepEqual(
    paths.filter((p) => isIgnored(rules, p)),
    ["docs", "docs/keep/a.tmp", "docs/x", "build/out", "build/out/a.txt", "src/a.tmp"],
  );
});

Deno.test("globMatch: Go's filepath.Match for one path component", () => {
  assert.ok(globMatch("*.txt", "a.txt"));
  assert.ok(!globMatch("*.txt", "a/b.txt"));
  assert.ok(globMatch("index.?s", "index.ts"));
  assert.ok(!globMatch("index.?s", "index.s"));
  assert.ok(globMatch("[a-c]*", "banana"));
  assert.ok(!globMatch("[^a-c]*", "banana"));
  assert.ok(globMatch("arr[[]0].txt", "arr[0].txt"));
  assert.ok(globMatch("\\*", "*"));
  assert.ok(!globMatch("\\*", "x"));
  assert.ok(globMatch("**", "abc"));
  assert.ok(!globMatch("**", "a/b"));
  assert.ok(globMatch("é?", "éü"));
  assert.throws(() => globMatch("[a", "a"), FlokaError);
});

Deno.test("hasWildcards: unescaped *, ? and [", () => {
  for (const yes of ["*.txt", "a?", "[ab]", "dir/*/x"]) assert.ok(hasWildcards(yes), yes);
  for (const no of ["plain", "a\\*b", "dir/file.txt", "a]b"]) assert.ok(!hasWildcards(no), no);
});

Deno.test("cleanPath: Go's filepath.Clean", () => {
  const cases: [string, string][] = [
    ["", "."],
    [".", "."],
    ["a/./b/", "a/b"],
    ["a//b", "a/b"],
    ["a/../b", "b"],
    ["a/../..", ".."],
    ["../../x", "../../x"],
    ["/../x", "/x"],
    ["/", "/"],
    ["//a/", "/a"],
  ];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});
