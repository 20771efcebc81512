/**
 * Property-based tests of the Flokafile parser (lib/flokafile/): for any text, and for valid
 * Flokafiles with a few random edits, parseFlokafile returns a parsed file or throws a
 * FlokafileError whose message starts with `FILE:LINE: `; the instructions it returns then
 * expand (with any variables) to a command or to such an error, never to a crash.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { FlokaError } from "../../lib/errors.ts";
import {
  expandInstruction,
  FlokafileError,
  parseFlokafile,
  parseTrigger,
  type RawInstruction,
  runHeredocPlan,
} from "../../lib/flokafile/index.ts";
import { anyText, checkProperty, flokaOutcome, mutated, runsOf, stringOf } from "./fuzz.ts";

const FILE = "ctx/Flokafile";

const VALID = [
  "FROM busybox\nRUN echo hi\n",
  '# syntax=docker/dockerfile:1\n# escape=\\\nARG BASE=alpine:3.19\nFROM ${BASE} AS build\nARG A=1 B="x y" C=${A:-2}\nENV PATH=/usr/local/bin:$PATH \\\n    HOME=/root\nRUN set -e; \\\n  # a comment inside\n  echo "$A" \\\n  && echo done\nCMD ["sh", "-c", "echo $HOME"]\n',
  '# escape=`\nFROM mcr/img\nRUN dir `\n  /w\nWORKDIR C:\\\\x\nENTRYPOINT ["a","b"]\n',
  'FROM alpine\nRUN <<EOF\n#!/bin/sh\necho one\nEOF\nCOPY <<-"END" /etc/motd\n\thello $USER\n\tEND\nRUN python3 <<PY > /out\nprint(1)\nPY\n',
  'FROM a AS one\nFROM b AS two\nCOPY --from=one --chown=1:1 --chmod=0644 /src /dst/\nADD --link https://x/y.tgz /opt/\nCOPY ["a b", "c", "/d/"]\n',
  'FROM scratch\nEXPOSE 80 443/tcp 53/udp 8000-8002\nVOLUME ["/data", "/logs"]\nVOLUME /a /b\nUSER 1000:1000\nSTOPSIGNAL SIGTERM\nLABEL a=b "c d"=e\nLABEL legacy value with spaces\nENV OLD style value\n',
  'FROM a\nHEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1\nHEALTHCHECK NONE\nSHELL ["/bin/bash", "-c"]\nONBUILD RUN echo child\nONBUILD COPY . /app\nMAINTAINER someone\n',
  "ARG V=1\nFROM img:${V}\nARG V\nRUN --network=none echo ${V#1} ${V%%x*} ${V/1/2} ${V:+set} ${V-unset}\nENV X=${V:?required}\n",
  "\uFEFFFROM a\r\nRUN x \\\r\n  y\r\n\r\nUSER u\r\n",
];

/** Pieces of Flokafile syntax, and characters that are not. */
// deno-fmt-ignore
const PIECES = [
  "\n", "\r\n", "\\\n", "`\n", " ", "\t", "\\", "`", "#", "# escape=`\n", "# escape=\\\n", "# syntax=x\n",
  "# check=skip=all\n", "FROM ", "RUN ", "CMD ", "COPY ", "ADD ", "ENV ", "ARG ", "LABEL ", "EXPOSE ",
  "VOLUME ", "HEALTHCHECK ", "ONBUILD ", "SHELL ", "WORKDIR ", "USER ", "STOPSIGNAL ", "MAINTAINER ",
  "ENTRYPOINT ", " AS ", "--from=", "--chown=", "--chmod=", "--link", "--network=", "--mount=x",
  "--interval=", "--retries=", "--platform=", "--", "=", "$", "${", "}", "${A:-", "${A#", "${A/", ":?",
  ":+", "%%", "##", "*", "?", '"', "'", "[", "]", '["a"]', "[1]", "[]", ",", "<<", "<<-", "<<EOF",
  "<<'EOF'", "EOF", "\nEOF\n", "80", "/tcp", "-", "65536", "1s", "1ms", "a", "x", "\0", "\uFEFF", "\u0085",
  "\u00a0", "\u2028", "\uD800", "é", "NONE", "CMD",
];

const pieces = stringOf(PIECES, 40);

const lineArb = fc.tuple(
  fc.constantFrom(
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "EXPOSE",
    "VOLUME",
    "HEALTHCHECK",
    "ONBUILD",
    "SHELL",
    "WORKDIR",
    "USER",
    "STOPSIGNAL",
    "MAINTAINER",
    "from",
    "#",
    "",
  ),
  fc.oneof(stringOf(PIECES, 8), anyText(12)),
).map(([keyword, rest]) => `${keyword} ${rest}`);

/** A file of instruction-like lines, most of them after a FROM. */
const structured = fc.tuple(fc.boolean(), fc.array(lineArb, { maxLength: 8 })).map(([from, lines]) =>
  (from ? ["FROM base", ...lines] : lines).join("\n")
);

const flokafileText = fc.oneof(
  { arbitrary: anyText(200), weight: 1 },
  { arbitrary: pieces, weight: 2 },
  { arbitrary: structured, weight: 3 },
  { arbitrary: mutated(fc.constantFrom(...VALID), fc.oneof(stringOf(PIECES, 3), anyText(3)), 5), weight: 4 },
);

/** The file's lines as the parser counts them (a final newline starts no line). */
function lineCount(text: string): number {
  return (text.match(/[^\n]*\n|[^\n]+$/g) ?? []).length;
}

/** A parser or expansion error must be a FlokafileError at a line of this file, on one line. */
function assertLocated(error: FlokaError, text: string): void {
  assert.ok(error instanceof FlokafileError, `a FlokafileError, not a ${error.name}: ${error.message}`);
  const m = /^ctx\/Flokafile:(\d+): /.exec(error.message);
  assert.ok(m, `the message names ${FILE}:LINE: ${JSON.stringify(error.message)}`);
  const line = Number(m[1]);
  assert.ok(line >= 1 && line <= Math.max(1, lineCount(text)), `line ${line} is in the file`);
  assert.ok(!/[\r\n]/.test(error.message), `one line: ${JSON.stringify(error.message)}`);
}

const varsArb = fc.dictionary(
  fc.oneof(fc.constantFrom("A", "V", "BASE", "HOME", "PATH", "USER"), stringOf(["A", "_", "1", "é"], 4)),
  fc.oneof(stringOf(["x", " ", "1", "*", "/", "$", "\\", '"'], 6), anyText(6)),
  { maxKeys: 4 },
).map((d) => new Map(Object.entries(d)));

function expandAll(instr: RawInstruction, vars: Map<string, string>, escape: string, text: string): void {
  const buildArgs = new Map([...vars].slice(0, 1));
  const outcome = flokaOutcome(() => expandInstruction(instr, vars, escape, { buildArgs }));
  if (!outcome.ok) {
    assertLocated(outcome.error, text);
    return;
  }
  const command = outcome.value;
  if (command.kind === "RUN") runHeredocPlan(command);
  if (instr.onbuild) expandAll(instr.onbuild, vars, escape, text);
}

Deno.test("fuzz: parseFlokafile parses any text or throws a FlokafileError naming FILE:LINE", async () => {
  await checkProperty(
    "flokafile parse",
    fc.property(flokafileText, (text) => {
      const outcome = flokaOutcome(() => parseFlokafile(text, FILE));
      if (!outcome.ok) {
        assertLocated(outcome.error, text);
        return;
      }
      const parsed = outcome.value;
      assert.ok(parsed.stages.length > 0, "a parsed file has a stage");
      assert.ok(parsed.escape === "\\" || parsed.escape === "`");
      for (
        const instr of [...parsed.metaArgs, ...parsed.stages.flatMap((s) => [s.from, ...s.instructions])]
      ) {
        assert.ok(instr.location.line >= 1 && instr.location.line <= lineCount(text));
        assert.equal(instr.name, instr.name.toUpperCase());
      }
    }),
    1000,
  );
});

Deno.test("fuzz: every instruction of a parsed Flokafile expands or throws a located FlokafileError", async () => {
  let parsedFiles = 0;
  await checkProperty(
    "flokafile expand",
    fc.property(flokafileText, varsArb, (text, vars) => {
      const outcome = flokaOutcome(() => parseFlokafile(text, FILE));
      if (!outcome.ok) return;
      const parsed = outcome.value;
      parsedFiles++;
      for (const instr of parsed.metaArgs) expandAll(instr, vars, parsed.escape, text);
      for (const stage of parsed.stages) {
        for (const instr of [stage.from, ...stage.instructions]) expandAll(instr, vars, parsed.escape, text);
      }
    }),
    1000,
  );
  // Not vacuous: many generated files do parse (the mutations keep most of them valid).
  assert.ok(parsedFiles >= runsOf(1000) / 10, `only ${parsedFiles} files parsed`);
});

Deno.test("fuzz: an ONBUILD trigger from an image config parses or throws a FlokafileError at the FROM", async () => {
  const at = { file: FILE, line: 3 };
  await checkProperty(
    "flokafile onbuild trigger",
    fc.property(
      fc.oneof(anyText(60), lineArb, mutated(fc.constantFrom("RUN echo hi", "COPY a b"), pieces)),
      (trigger) => {
        const outcome = flokaOutcome(() => parseTrigger(trigger, at));
        if (!outcome.ok) {
          assert.ok(outcome.error instanceof FlokafileError);
          assert.match(outcome.error.message, /^ctx\/Flokafile:3: /);
        }
      },
    ),
    300,
  );
});

// ---------------------------------------------------------------------------------------
// Regressions: inputs the properties above found.

Deno.test("flokafile regression: HEALTHCHECK followed by U+FEFF is a FlokafileError, not a TypeError", () => {
  // JavaScript's \s takes U+FEFF, Go's unicode.IsSpace (and so trimSpace) does not: the
  // type/command split found nothing and destructured null.
  for (const text of ["FROM a\nHEALTHCHECK \uFEFF\n", "FROM a\nONBUILD HEALTHCHECK \uFEFFCMD x\n"]) {
    assert.throws(() => parseFlokafile(text, FILE), (err) => {
      assert.ok(err instanceof FlokafileError, String(err));
      assert.match(err.message, /^ctx\/Flokafile:2: unknown type "\uFEFF(CMD)?" in HEALTHCHECK/);
      return true;
    });
  }
  const parsed = parseFlokafile("FROM a\nHEALTHCHECK CMD\u00a0true\n", FILE);
  assert.deepEqual(parsed.stages[0].instructions[0].args, ["CMD", "true"]);
});

Deno.test("flokafile regression: an ONBUILD trigger's scanner errors are located at the FROM", () => {
  assert.throws(
    () => parseTrigger("RUN <<EOF\necho", { file: FILE, line: 7 }),
    /^FlokafileError: ctx\/Flokafile:7: unterminated heredoc "EOF": RUN <<EOF$/,
  );
});

Deno.test("flokafile regression: a lone carriage return does not break the one-line message", () => {
  assert.throws(() => parseFlokafile("FROM a\r\uFEFFFROM a\n", FILE), (err) => {
    assert.ok(err instanceof FlokafileError);
    assert.equal(
      err.message,
      "ctx/Flokafile:1: FROM requires either one or three arguments: FROM a \uFEFFFROM a",
    );
    return true;
  });
});
