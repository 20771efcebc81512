import assert from "node:assert/strict";
import {
  type Command,
  expandInstruction,
  expandWord,
  expandWords,
  FlokafileError,
  parseFlokafile,
  type RawInstruction,
  runHeredocPlan,
} from "../../lib/flokafile/index.ts";

const VARS: ReadonlyMap<string, string> = new Map([
  ["HOME", "/root"],
  ["NAME", "world"],
  ["EMPTY", ""],
  ["SPACED", "  a  b "],
  ["PATHS", "/usr/local/bin/tool.tar.gz"],
  ["KOREAN", "한국어"],
]);

/** expandWord with VARS and `\` as escape. */
function w(word: string, vars: ReadonlyMap<string, string> = VARS): string {
  return expandWord(word, vars, "\\");
}

function assertWordError(word: string, message: string | RegExp): void {
  assert.throws(
    () => w(word),
    (err: unknown) => {
      assert.ok(err instanceof FlokafileError, `${word} threw ${err}`);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
    word,
  );
}

/** Parse a one-stage file and return its instructions (FROM excluded). */
function instructions(...lines: string[]): { list: RawInstruction[]; escape: string } {
  const parsed = parseFlokafile(["FROM busybox", ...lines].join("\n") + "\n", "Flokafile");
  return { list: parsed.stages[0].instructions, escape: parsed.escape };
}

/** Expand the single instruction after FROM. */
function expand(lines: string | string[], vars: ReadonlyMap<string, string> = VARS): Command {
  const { list, escape } = instructions(...(typeof lines === "string" ? [lines] : lines));
  assert.equal(list.length, 1);
  return expandInstruction(list[0], vars, escape);
}

function assertExpandError(lines: string | string[], message: string | RegExp, vars = VARS): void {
  assert.throws(
    () => expand(lines, vars),
    (err: unknown) => {
      assert.ok(err instanceof FlokafileError, `threw ${err}`);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------
// The word lexer: variables

Deno.test("expandWord: $VAR and ${VAR}; an unset variable is empty", () => {
  assert.equal(w("$HOME/bin"), "/root/bin");
  assert.equal(w("${HOME}bin"), "/rootbin");
  assert.equal(w("hello $NAME!"), "hello world!");
  assert.equal(w("$UNSET"), "");
  assert.equal(w("a${UNSET}b"), "ab");
  assert.equal(w("$HOMEX"), "", "the name is as long as it can be");
  assert.equal(w("$KOREAN"), "한국어");
  assert.equal(w("${SPACED}"), "  a  b ", "no splitting in a single word");
});

Deno.test("expandWord: a $ that starts no name stays", () => {
  assert.equal(w("$"), "$");
  assert.equal(w("a$"), "a$");
  assert.equal(w("$.x"), "$.x");
  assert.equal(w("100$ /x"), "100$ /x");
  assert.equal(w("a$/b"), "a$/b");
});

Deno.test("expandWord: positional and special parameters are never set", () => {
  assert.equal(w("x$1y"), "xy");
  assert.equal(w("$10"), "");
  assert.equal(w("$999abc"), "abc");
  for (const p of ["@", "*", "#", "?", "-", "$", "!", "0"]) {
    assert.equal(w(`[$${p}]`), "[]", p);
    assert.equal(w(`[\${${p}:-d}]`), "[d]", p);
  }
  assert.equal(w("$@@@"), "@@");
});

Deno.test("expandWord: ${VAR:-word} and ${VAR-word}", () => {
  assert.equal(w("${UNSET:-default}"), "default");
  assert.equal(w("${EMPTY:-default}"), "default");
  assert.equal(w("${NAME:-default}"), "world");
  assert.equal(w("${UNSET-default}"), "default");
  assert.equal(w("${EMPTY-default}"), "", "set but empty: no default without the colon");
  assert.equal(w("${NAME-default}"), "world");
  assert.equal(w("${UNSET:-$HOME/x}"), "/root/x");
  assert.equal(w("${UNSET:-${ALSO_UNSET:-deep}}"), "deep");
  assert.equal(w("${UNSET:-a b}"), "a b");
  assert.equal(w("${UNSET:-}"), "");
});

Deno.test("expandWord: ${VAR:+word} and ${VAR+word}", () => {
  assert.equal(w("${NAME:+alt}"), "alt");
  assert.equal(w("${EMPTY:+alt}"), "");
  assert.equal(w("${UNSET:+alt}"), "");
  assert.equal(w("${EMPTY+alt}"), "alt", "set but empty counts as set without the colon");
  assert.equal(w("${UNSET+alt}"), "");
  assert.equal(w("${NAME:+$HOME}"), "/root");
});

Deno.test("expandWord: ${VAR:?msg} and ${VAR?msg} fail when unset (or empty with the colon)", () => {
  assert.equal(w("${NAME:?}"), "world");
  assert.equal(w("${NAME?}"), "world");
  assert.equal(w("${EMPTY?}"), "");
  assertWordError("${UNSET:?}", "UNSET: is not allowed to be unset: ${UNSET:?}");
  assertWordError("${UNSET?}", "UNSET: is not allowed to be unset: ${UNSET?}");
  assertWordError("${EMPTY:?}", "EMPTY: is not allowed to be empty: ${EMPTY:?}");
  assertWordError(
    "${UNSET:?set it with --build-arg}",
    "UNSET: set it with --build-arg: ${UNSET:?set it with --build-arg}",
  );
});

Deno.test("expandWord: pattern removal # ## % %% and replacement / //", () => {
  assert.equal(w("${PATHS#*/}"), "usr/local/bin/tool.tar.gz");
  assert.equal(w("${PATHS##*/}"), "tool.tar.gz");
  assert.equal(w("${PATHS%.*}"), "/usr/local/bin/tool.tar");
  assert.equal(w("${PATHS%%.*}"), "/usr/local/bin/tool");
  assert.equal(w("${PATHS#nomatch}"), "/usr/local/bin/tool.tar.gz");
  assert.equal(w("${PATHS#}"), "/usr/local/bin/tool.tar.gz");
  assert.equal(w("${PATHS/\\//:}"), ":usr/local/bin/tool.tar.gz");
  assert.equal(w("${PATHS//\\//:}"), ":usr:local:bin:tool.tar.gz");
  assert.equal(w("${PATHS/?sr/opt}"), "/opt/local/bin/tool.tar.gz");
  assert.equal(w("${UNSET##*/}"), "");
  const vars = new Map([["V", "a*b*c"], ["D", "x.y"]]);
  assert.equal(w("${V%\\**}", vars), "a*b", "an escaped star is literal");
  assert.equal(w("${D/./-}", vars), "x-y", "regex characters are literal");
  assert.equal(w("${D/y/$&}", vars), "x.$&", "a replacement is text, not a regex template");
});

Deno.test("expandWord: substitution syntax errors", () => {
  assertWordError("${}", "syntax error: bad substitution: ${}");
  assertWordError("a${:}", "syntax error: bad substitution: a${:}");
  assertWordError("${{A}}", "syntax error: bad substitution: ${{A}}");
  assertWordError("${A", "syntax error: missing '}': ${A");
  assertWordError("${", "syntax error: missing '}': ${");
  assertWordError("${A:-x", "syntax error: missing '}': ${A:-x");
  assertWordError("${A:", "syntax error: missing '}': ${A:");
  assertWordError("${A:x}", "unsupported modifier (:x) in substitution: ${A:x}");
  assertWordError("${A=x}", "unsupported modifier (=) in substitution: ${A=x}");
  assertWordError("${A:=x}", "unsupported modifier (:=) in substitution: ${A:=x}");
  assertWordError("${A:#x}", "unsupported modifier (:#) in substitution: ${A:#x}");
  assertWordError("${#A}", "unsupported modifier (A) in substitution: ${#A}");
  assertWordError("${A/x}", "syntax error: missing '/' in ${}: ${A/x}");
  assertWordError("${PATHS#\\x}", /^invalid pattern \(\\x\) in substitution: invalid escape/);
  assert.equal(w("${A:-x}}"), "x}", "a second } is text");
});

// ---------------------------------------------------------------------------------------
// The word lexer: quotes and escapes

Deno.test("expandWord: single quotes are literal, double quotes expand", () => {
  assert.equal(w("'$HOME'"), "$HOME");
  assert.equal(w('"$HOME"'), "/root");
  assert.equal(w(`"it's $NAME"`), "it's world");
  assert.equal(w(`'say "$NAME"'`), 'say "$NAME"');
  assert.equal(w("he'll'o"), "hello");
  assert.equal(w(`"a b"c' d'`), "a bc d");
  assert.equal(w(`''`), "");
});

Deno.test("expandWord: the escape character", () => {
  assert.equal(w("\\$HOME"), "$HOME");
  assert.equal(w("\\${HOME}"), "${HOME}");
  assert.equal(w("\\\\$HOME"), "\\/root");
  assert.equal(w("a\\ b"), "a b");
  assert.equal(w("abc\\tdef"), "abctdef", "outside quotes any character can be escaped");
  assert.equal(w("it\\'s"), "it's");
  assert.equal(w("trailing\\"), "trailing");
  // Inside double quotes it escapes only " $ and itself.
  assert.equal(w('"a\\"b"'), 'a"b');
  assert.equal(w('"\\$HOME"'), "$HOME");
  assert.equal(w('"a\\\\b"'), "a\\b");
  assert.equal(w('"a\\tb"'), "a\\tb");
  // Inside single quotes it is plain.
  assert.equal(w("'a\\tb'"), "a\\tb");
  assert.equal(w("'a\\'"), "a\\");
});

Deno.test("expandWord: unterminated quotes are errors", () => {
  assertWordError("'abc", "unexpected end of statement while looking for matching single-quote: 'abc");
  assertWordError('"abc', 'unexpected end of statement while looking for matching double-quote: "abc');
  assertWordError('"abc\\"', /matching double-quote/);
  assertWordError("he\\\\'llo", /matching single-quote/);
});

Deno.test("expandWord: with ` as escape, backslashes are plain", () => {
  const vars = new Map([["DIR", "app"]]);
  assert.equal(expandWord("c:\\Users\\$DIR", vars, "`"), "c:\\Users\\app");
  assert.equal(expandWord("`$DIR c:\\", vars, "`"), "$DIR c:\\");
  assert.equal(expandWord('"a`"b"', vars, "`"), 'a"b');
});

Deno.test("expandWord: errors carry the location when given one", () => {
  assert.throws(
    () => expandWord("${X:?}", new Map(), "\\", { file: "Flokafile", line: 7 }),
    (err: unknown) => {
      assert.ok(err instanceof FlokafileError);
      assert.equal(err.message, "Flokafile:7: X: is not allowed to be unset: ${X:?}");
      assert.deepEqual(err.location, { file: "Flokafile", line: 7 });
      return true;
    },
  );
});

Deno.test("expandWords: splits at unquoted whitespace after expansion", () => {
  assert.deepEqual(expandWords("a $SPACED c", VARS, "\\"), ["a", "a", "b", "c"]);
  assert.deepEqual(expandWords(`"$SPACED" x`, VARS, "\\"), ["  a  b ", "x"]);
  assert.deepEqual(expandWords("hello\\ there", VARS, "\\"), ["hello there"]);
  assert.deepEqual(expandWords("x${UNSET:-1 2}y", VARS, "\\"), ["x1", "2y"]);
  assert.deepEqual(expandWords('""', VARS, "\\"), []);
  assert.deepEqual(expandWords("$UNSET", VARS, "\\"), []);
});

// ---------------------------------------------------------------------------------------
// Instructions: what is expanded and what is not

Deno.test("FROM: image and --platform expand; the stage name does not", () => {
  const parsed = parseFlokafile("ARG V\nFROM --platform=$P base:${V:-1} AS Build\n", "Flokafile");
  const from = parsed.stages[0].from;
  assert.deepEqual(expandInstruction(from, new Map([["V", "2"], ["P", "linux/arm64"]]), "\\"), {
    kind: "FROM",
    image: "base:2",
    stageName: "build",
    platform: "linux/arm64",
  });
  assert.deepEqual(expandInstruction(from, new Map([["P", "linux/amd64"]]), "\\"), {
    kind: "FROM",
    image: "base:1",
    stageName: "build",
    platform: "linux/amd64",
  });
  const plain = parseFlokafile("FROM scratch\n", "F").stages[0].from;
  assert.deepEqual(expandInstruction(plain, new Map(), "\\"), { kind: "FROM", image: "scratch" });
});

Deno.test("FROM: an image or platform that expands to nothing is an error", () => {
  const from = parseFlokafile("FROM --platform=$P $IMAGE\n", "Flokafile").stages[0].from;
  assert.throws(
    () => expandInstruction(from, new Map([["P", "linux/amd64"]]), "\\"),
    (err: unknown) =>
      err instanceof FlokafileError &&
      err.message === "Flokafile:1: base name ($IMAGE) should not be blank: FROM --platform=$P $IMAGE",
  );
  assert.throws(
    () => expandInstruction(from, new Map([["IMAGE", "a"]]), "\\"),
    (err: unknown) =>
      err instanceof FlokafileError &&
      err.message === "Flokafile:1: empty platform value from expression: $P",
  );
});

Deno.test("RUN, CMD, ENTRYPOINT: shell form is kept raw for the shell; exec form as given", () => {
  assert.deepEqual(expand("RUN echo $HOME '${NAME}' \\$x"), {
    kind: "RUN",
    shell: true,
    command: ["echo $HOME '${NAME}' \\$x"],
    heredocs: [],
  });
  assert.deepEqual(expand('RUN --network=none ["echo", "$HOME"]'), {
    kind: "RUN",
    shell: false,
    command: ["echo", "$HOME"],
    heredocs: [],
    network: "none",
  });
  assert.deepEqual(expand("CMD echo $NAME"), { kind: "CMD", shell: true, command: ["echo $NAME"] });
  assert.deepEqual(expand("CMD [\"a\", 'b']"), { kind: "CMD", shell: true, command: [`["a", 'b']`] });
  assert.deepEqual(expand('ENTRYPOINT ["/bin/app", "$X"]'), {
    kind: "ENTRYPOINT",
    shell: false,
    command: ["/bin/app", "$X"],
  });
  assert.deepEqual(expand("ENTRYPOINT []"), { kind: "ENTRYPOINT", shell: false, command: [] });
  assert.deepEqual(expand('SHELL ["/bin/bash", "-c"]'), { kind: "SHELL", command: ["/bin/bash", "-c"] });
});

Deno.test("RUN: heredocs are passed as written, tabs kept, nothing expanded", () => {
  assert.deepEqual(expand(["RUN <<-EOF", "\techo $NAME", "\tEOF"]), {
    kind: "RUN",
    shell: true,
    command: ["<<-EOF"],
    heredocs: [{ name: "EOF", content: "\techo $NAME\n", expand: true, chomp: true }],
  });
});

Deno.test("COPY/ADD: sources, destination, --chown, --chmod expand; --from does not", () => {
  const vars = new Map([["SRC", "app"], ["DEST", "/srv"], ["U", "www"], ["M", "0644"]]);
  assert.deepEqual(
    expand("COPY --from=build --chown=$U:$U --chmod=$M --link $SRC/*.js ${SRC}.json $DEST/", vars),
    {
      kind: "COPY",
      sources: ["app/*.js", "app.json"],
      dest: "/srv/",
      from: "build",
      chown: "www:www",
      chmod: "0644",
      link: true,
      heredocs: [],
    },
  );
  assert.deepEqual(expand('COPY ["$SRC dir", "/a b/"]', vars), {
    kind: "COPY",
    sources: ["app dir"],
    dest: "/a b/",
    link: false,
    heredocs: [],
  });
  assert.deepEqual(
    expand("ADD --checksum=sha256:$SUM https://example.com/a.tgz /a", new Map([["SUM", "24454f83"]])),
    {
      kind: "ADD",
      sources: ["https://example.com/a.tgz"],
      dest: "/a",
      link: false,
      heredocs: [],
      checksum: "sha256:24454f83",
    },
  );
  assert.deepEqual(expand("COPY --chown=$NOBODY a b", new Map()), {
    kind: "COPY",
    sources: ["a"],
    dest: "b",
    link: false,
    heredocs: [],
  });
});

Deno.test("COPY: heredoc sources become files named after the delimiter", () => {
  const command = expand([
    "COPY <<EOF config.yml <<'RAW' /etc/app/",
    "name: $NAME",
    "EOF",
    "name: $NAME",
    "RAW",
  ]);
  assert.deepEqual(command, {
    kind: "COPY",
    sources: ["EOF", "config.yml", "RAW"],
    dest: "/etc/app/",
    link: false,
    heredocs: [
      { name: "EOF", content: "name: world\n", expand: true, chomp: false },
      { name: "RAW", content: "name: $NAME\n", expand: false, chomp: false },
    ],
  });
});

Deno.test("COPY: heredoc bodies: tabs stripped for <<-, quotes plain, backslash escapes processed", () => {
  const chomped = expand(["COPY <<-EOF /x", "\t\tindented $NAME", "\tEOF"]);
  assert.equal(chomped.kind === "COPY" && chomped.heredocs[0].content, "indented world\n");
  const quoted = expand(["COPY <<EOF /x", `"quoted" '$NAME' "$NAME"`, "EOF"]);
  assert.equal(quoted.kind === "COPY" && quoted.heredocs[0].content, `"quoted" 'world' "world"\n`);
  const slashes = expand(["COPY <<EOF /x", "a\\", "b \\\\ \\$NAME", "EOF"]);
  assert.equal(slashes.kind === "COPY" && slashes.heredocs[0].content, "a\nb \\ $NAME\n");
  const raw = expand(["COPY <<'EOF' /x", "a\\", "b \\\\ \\$NAME", "EOF"]);
  assert.equal(raw.kind === "COPY" && raw.heredocs[0].content, "a\\\nb \\\\ \\$NAME\n");
});

Deno.test("COPY: a heredoc body with a bad substitution is an error at the instruction", () => {
  assertExpandError(
    ["COPY <<EOF /x", "${A", "EOF"],
    "Flokafile:2: unsupported modifier (\\n) in substitution: ${A",
  );
});

Deno.test("ENV: keys and values expand with the variables from before the instruction", () => {
  assert.deepEqual(expand("ENV A=1 B=\"$NAME two\" C=$A D='$NAME' E=a\\ b"), {
    kind: "ENV",
    pairs: [["A", "1"], ["B", "world two"], ["C", ""], ["D", "$NAME"], ["E", "a b"]],
  });
  assert.deepEqual(expand("ENV PATH $HOME/bin:$PATH"), { kind: "ENV", pairs: [["PATH", "/root/bin:"]] });
  assert.deepEqual(expand('ENV MSG "hello   there"'), { kind: "ENV", pairs: [["MSG", "hello   there"]] });
  assert.deepEqual(expand("ENV ${NAME}_DIR=/x"), { kind: "ENV", pairs: [["world_DIR", "/x"]] });
  assertExpandError(
    'ENV A="${UNSET:?is required}"',
    'Flokafile:2: UNSET: is required: "${UNSET:?is required}"',
  );
});

Deno.test("LABEL: quoted keys and values", () => {
  assert.deepEqual(expand('LABEL "com.example.vendor"="ACME $NAME" version=1.0 empty=""'), {
    kind: "LABEL",
    pairs: [["com.example.vendor", "ACME world"], ["version", "1.0"], ["empty", ""]],
  });
});

Deno.test("ARG: defaults expand in order; build args win and skip the default", () => {
  const { list } = instructions("ARG A=1 B=${A}2 C D=$NAME E=${NOPE:?}");
  const arg = list[0];
  assert.throws(() => expandInstruction(arg, VARS, "\\"), /NOPE: is not allowed to be unset/);
  const buildArgs = new Map([["E", "given"]]);
  assert.deepEqual(expandInstruction(arg, VARS, "\\", { buildArgs }), {
    kind: "ARG",
    args: [
      { name: "A", default: "1", value: "1" },
      { name: "B", default: "12", value: "12" },
      { name: "C" },
      { name: "D", default: "world", value: "world" },
      { name: "E", value: "given" },
    ],
  });
  const overridden = expandInstruction(arg, VARS, "\\", { buildArgs: new Map([["A", "9"], ["E", "e"]]) });
  assert.ok(overridden.kind === "ARG");
  assert.deepEqual(overridden.args.slice(0, 2), [{ name: "A", value: "9" }, {
    name: "B",
    default: "92",
    value: "92",
  }]);
});

Deno.test("WORKDIR, USER, STOPSIGNAL expand; MAINTAINER does not", () => {
  assert.deepEqual(expand("WORKDIR $HOME/my app"), { kind: "WORKDIR", path: "/root/my app" });
  assert.deepEqual(expand('WORKDIR "/quoted path"'), { kind: "WORKDIR", path: "/quoted path" });
  assert.deepEqual(expand("USER ${APP_USER:-nobody}:$GID"), { kind: "USER", user: "nobody:" });
  assert.deepEqual(expand("STOPSIGNAL ${SIG:-SIGQUIT}"), { kind: "STOPSIGNAL", signal: "SIGQUIT" });
  assert.deepEqual(expand("MAINTAINER $NAME <me@example.com>"), {
    kind: "MAINTAINER",
    name: "$NAME <me@example.com>",
  });
});

Deno.test("WORKDIR with ` as escape keeps Windows paths", () => {
  const parsed = parseFlokafile("# escape=`\nFROM a\nWORKDIR c:\\Users\\${NAME}`$\n", "Flokafile");
  assert.deepEqual(expandInstruction(parsed.stages[0].instructions[0], VARS, parsed.escape), {
    kind: "WORKDIR",
    path: "c:\\Users\\world$",
  });
});

Deno.test("EXPOSE: normalized port/proto, ranges listed, variables split, duplicates dropped", () => {
  const vars = new Map([["PORTS", "9000 9001/udp"], ["P", "8080"]]);
  assert.deepEqual(expand("EXPOSE 80 443/TCP 53/udp 8000-8002/tcp $PORTS ${P} 80/tcp 1-1", vars), {
    kind: "EXPOSE",
    ports: [
      "80/tcp",
      "443/tcp",
      "53/udp",
      "8000/tcp",
      "8001/tcp",
      "8002/tcp",
      "9000/tcp",
      "9001/udp",
      "8080/tcp",
      "1/tcp",
    ],
  });
  assert.deepEqual(expand("EXPOSE 8080:80 127.0.0.1:8443:443/tcp 132/sctp"), {
    kind: "EXPOSE",
    ports: ["80/tcp", "443/tcp", "132/sctp"],
  });
  assertExpandError("EXPOSE $P", "Flokafile:2: invalid containerPort: http", new Map([["P", "http"]]));
});

Deno.test("VOLUME: each path expands; an empty one is an error", () => {
  assert.deepEqual(expand("VOLUME $HOME/data /logs"), { kind: "VOLUME", paths: ["/root/data", "/logs"] });
  assert.deepEqual(expand('VOLUME ["/var/$NAME dir"]'), { kind: "VOLUME", paths: ["/var/world dir"] });
  assertExpandError(
    "VOLUME $UNSET",
    "Flokafile:2: VOLUME specified can not be an empty string: VOLUME $UNSET",
  );
});

Deno.test("HEALTHCHECK: Docker's Test array and durations in nanoseconds", () => {
  assert.deepEqual(expand("HEALTHCHECK NONE"), { kind: "HEALTHCHECK", test: null });
  assert.deepEqual(
    expand(
      "HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=500ms --start-interval=2s --retries=5 CMD curl -f $URL",
    ),
    {
      kind: "HEALTHCHECK",
      test: ["CMD-SHELL", "curl -f $URL"],
      interval: 90e9,
      timeout: 1.5e9,
      startPeriod: 500e6,
      startInterval: 2e9,
      retries: 5,
    },
  );
  assert.deepEqual(expand('HEALTHCHECK --interval=0s --retries=0 CMD ["/bin/check", "-q"]'), {
    kind: "HEALTHCHECK",
    test: ["CMD", "/bin/check", "-q"],
  });
  assert.deepEqual(expand("HEALTHCHECK --timeout=1h1us CMD true"), {
    kind: "HEALTHCHECK",
    test: ["CMD-SHELL", "true"],
    timeout: 3600e9 + 1000,
  });
});

Deno.test("ONBUILD: the trigger text is stored unexpanded, with its heredocs", () => {
  assert.deepEqual(expand("ONBUILD COPY $SRC /app"), { kind: "ONBUILD", instruction: "COPY $SRC /app" });
  assert.deepEqual(expand(["onbuild   RUN echo \\", "  hi"]), {
    kind: "ONBUILD",
    instruction: "RUN echo   hi",
  });
  assert.deepEqual(expand(["ONBUILD RUN <<EOF", "echo $X", "EOF"]), {
    kind: "ONBUILD",
    instruction: "RUN <<EOF\necho $X\nEOF",
  });
});

Deno.test("expandInstruction: the parsed file is usable stage by stage", () => {
  const parsed = parseFlokafile(
    [
      "ARG GO=1.22",
      "FROM golang:${GO} AS build",
      "WORKDIR /src",
      "ENV CGO_ENABLED=0",
      "RUN go build -o /out/app .",
      "FROM scratch",
      "COPY --from=build /out/app /app",
      'ENTRYPOINT ["/app"]',
    ].join("\n"),
    "Flokafile",
  );
  const meta = expandInstruction(parsed.metaArgs[0], new Map(), parsed.escape);
  assert.deepEqual(meta, { kind: "ARG", args: [{ name: "GO", default: "1.22", value: "1.22" }] });
  const kinds = parsed.stages.map((s) =>
    [s.from, ...s.instructions].map((i) =>
      expandInstruction(i, new Map([["GO", "1.22"]]), parsed.escape).kind
    )
  );
  assert.deepEqual(kinds, [["FROM", "WORKDIR", "ENV", "RUN"], ["FROM", "COPY", "ENTRYPOINT"]]);
  const first = expandInstruction(parsed.stages[0].from, new Map([["GO", "1.22"]]), parsed.escape);
  assert.deepEqual(first, { kind: "FROM", image: "golang:1.22", stageName: "build" });
});

// ---------------------------------------------------------------------------------------
// How BuildKit runs RUN heredocs

Deno.test("runHeredocPlan: a lone heredoc runs its body; with #! it becomes a script file", () => {
  const plain = expand(["RUN <<-EOF", "\techo a", "\techo b", "\tEOF"]);
  assert.ok(plain.kind === "RUN");
  assert.deepEqual(runHeredocPlan(plain), { command: "echo a\necho b\n" });
  const script = expand(["RUN <<EOF", "#!/usr/bin/env python3", "print(1)", "EOF"]);
  assert.ok(script.kind === "RUN");
  assert.deepEqual(runHeredocPlan(script), {
    command: "/dev/pipes/EOF",
    script: { path: "/dev/pipes/EOF", content: "#!/usr/bin/env python3\nprint(1)\n", mode: 0o755 },
  });
});

Deno.test("runHeredocPlan: a command with heredocs gets the bodies back for the shell", () => {
  const run = expand(["RUN python3 <<EOF > /out && cat <<-X", "print(1)", "EOF", "\tx", "\tX"]);
  assert.ok(run.kind === "RUN");
  assert.deepEqual(runHeredocPlan(run), {
    command: "python3 <<EOF > /out && cat <<-X\nprint(1)\nEOF\n\tx\nX",
  });
  const none = expand("RUN echo hi");
  assert.ok(none.kind === "RUN");
  assert.equal(runHeredocPlan(none), null);
});
