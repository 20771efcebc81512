import assert from "node:assert/strict";
import { parseHeredocWord } from "../../lib/flokafile/heredoc.ts";
import { ShellLexError } from "../../lib/flokafile/lex.ts";
import { parseExposedPort, parseGoDuration, PortError } from "../../lib/flokafile/values.ts";
import { extractFlags, parseWords } from "../../lib/flokafile/words.ts";

Deno.test("parseGoDuration: Go's time.ParseDuration forms, in nanoseconds", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["30s", 30e9],
    ["1m30s", 90e9],
    ["1.5h", 5400e9],
    ["300ms", 300e6],
    ["2us", 2000],
    ["2\u00b5s", 2000],
    ["2\u03bcs", 2000],
    ["7ns", 7],
    [".5s", 500e6],
    ["1.s", 1e9],
    ["-2s", -2e9],
    ["+1m", 60e9],
    ["1h2m3s4ms", 3723004e6],
  ];
  for (const [text, ns] of cases) assert.equal(parseGoDuration(text), ns, text);
  for (const bad of ["", "5", "1d", "s", ".s", "1 s", "-", "1.2.3s", "1sec"]) {
    assert.equal(parseGoDuration(bad), null, bad);
  }
});

Deno.test("parseExposedPort: Docker's port specifications", () => {
  assert.deepEqual(parseExposedPort("80"), ["80/tcp"]);
  assert.deepEqual(parseExposedPort("53/UDP"), ["53/udp"]);
  assert.deepEqual(parseExposedPort("7000-7002/sctp"), ["7000/sctp", "7001/sctp", "7002/sctp"]);
  assert.deepEqual(parseExposedPort("5-5"), ["5/tcp"]);
  assert.deepEqual(parseExposedPort("8080:80"), ["80/tcp"]);
  assert.deepEqual(parseExposedPort("[::1]:8080:80/udp"), ["80/udp"]);
  assert.deepEqual(
    parseExposedPort("8000-8001:80"),
    ["80/tcp"],
    "a host range with a single port is allowed",
  );
  const bad: [string, string][] = [
    ["/tcp", "invalid port: no port specified"],
    ["80/http", "invalid proto"],
    ["x", "invalid containerPort"],
    ["65536", "invalid containerPort"],
    ["-1", "invalid containerPort"],
    ["10-5", "invalid containerPort"],
    ["x:80", "invalid hostPort"],
    ["1-3:5-6", "invalid ranges specified for container and host Ports"],
    ["300.1.1.1:80:80", "invalid IP address"],
  ];
  for (const [text, reason] of bad) {
    assert.throws(
      () => parseExposedPort(text),
      (err) => err instanceof PortError && err.reason === reason,
      text,
    );
  }
});

Deno.test("parseHeredocWord: delimiters, quotes, chomp; what is not a heredoc", () => {
  assert.deepEqual(parseHeredocWord("<<EOF"), { name: "EOF", expand: true, chomp: false });
  assert.deepEqual(parseHeredocWord("<<-'EOF'"), { name: "EOF", expand: false, chomp: true });
  assert.deepEqual(parseHeredocWord('2<<"E O F"'), { name: "E O F", expand: false, chomp: false });
  assert.deepEqual(parseHeredocWord("<<eo\\'f"), { name: "eo'f", expand: true, chomp: false });
  assert.deepEqual(parseHeredocWord("<<$EOF"), { name: "$EOF", expand: true, chomp: false });
  for (const word of ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"]) {
    assert.equal(parseHeredocWord(word), null, word);
  }
  for (const word of ["<<'EOF", '<<"EOF', "<<EOF'"]) {
    assert.throws(() => parseHeredocWord(word), ShellLexError, word);
  }
});

Deno.test("extractFlags: flag words, quotes, escapes, where they stop", () => {
  assert.deepEqual(extractFlags("--a=1 --b='x y' --c rest of line", "\\"), {
    flags: ["--a=1", "--b=x y", "--c"],
    rest: "rest of line",
  });
  assert.deepEqual(extractFlags('--a=x\\ y --b="" z', "\\"), { flags: ["--a=x y", "--b="], rest: "z" });
  assert.deepEqual(extractFlags("--a -- --b", "\\"), { flags: ["--a"], rest: " --b" });
  assert.deepEqual(extractFlags("-x --a", "\\"), { flags: [], rest: "-x --a" });
  assert.deepEqual(extractFlags("--only", "\\"), { flags: ["--only"], rest: "" });
});

Deno.test("parseWords: quotes and escapes stay; empty quoted words count", () => {
  assert.deepEqual(parseWords(`A=1 B="x y" C='p q' D=a\\ b E=""`, "\\"), [
    "A=1",
    'B="x y"',
    "C='p q'",
    "D=a\\ b",
    'E=""',
  ]);
  assert.deepEqual(parseWords(`""  ''`, "\\"), ['""', "''"]);
  assert.deepEqual(parseWords("A=`  B", "`"), ["A=` ", "B"], "an escaped space stays in the word");
  assert.deepEqual(parseWords("trailing\\", "\\"), ["trailing"]);
});
