import assert from "node:assert/strict";
import { FlokaError } from "../../lib/errors.ts";
import {
  FlokafileError,
  parseFlokafile,
  parseTrigger,
  type RawInstruction,
} from "../../lib/flokafile/index.ts";

/** A Flokafile from its lines. */
function df(...lines: string[]): string {
  return lines.join("\n") + "\n";
}

function parse(text: string) {
  return parseFlokafile(text, "Flokafile");
}

/** The instructions of the first stage. */
function body(...lines: string[]): RawInstruction[] {
  return parse(df("FROM busybox", ...lines)).stages[0].instructions;
}

function only(...lines: string[]): RawInstruction {
  const instructions = body(...lines);
  assert.equal(instructions.length, 1, JSON.stringify(instructions));
  return instructions[0];
}

function assertParseError(text: string, message: string | RegExp): void {
  assert.throws(
    () => parse(text),
    (err: unknown) => {
      assert.ok(err instanceof FlokafileError, `threw ${err}`);
      assert.ok(err instanceof FlokaError);
      assert.equal(err.exitCode, 125);
      assert.ok(!err.message.includes("\n"), `message is one line: ${err.message}`);
      if (typeof message === "string") assert.equal(err.message, message);
      else assert.match(err.message, message);
      return true;
    },
  );
}

// ---------------------------------------------------------------------------------------
// Stages, meta ARGs, locations

Deno.test("parse: one stage with its instructions, locations and original text", () => {
  const parsed = parse(df("FROM busybox", "RUN echo hi", "", 'CMD ["sh"]'));
  assert.equal(parsed.escape, "\\");
  assert.equal(parsed.syntax, undefined);
  assert.deepEqual(parsed.metaArgs, []);
  assert.equal(parsed.stages.length, 1);
  const [stage] = parsed.stages;
  assert.equal(stage.index, 0);
  assert.equal(stage.name, undefined);
  assert.deepEqual(stage.from, {
    name: "FROM",
    flags: {},
    args: ["busybox"],
    json: false,
    heredocs: [],
    original: "FROM busybox",
    location: { file: "Flokafile", line: 1, endLine: 1 },
  });
  assert.deepEqual(stage.instructions.map((i) => [i.name, i.location.line, i.original]), [
    ["RUN", 2, "RUN echo hi"],
    ["CMD", 4, 'CMD ["sh"]'],
  ]);
});

Deno.test("parse: the file name given is the one in every location", () => {
  const parsed = parseFlokafile("FROM a\n", "ctx/Flokafile.dev");
  assert.equal(parsed.stages[0].from.location.file, "ctx/Flokafile.dev");
});

Deno.test("parse: ARGs before the first FROM are meta args; stages are numbered", () => {
  const parsed = parse(
    df(
      "ARG VERSION=1.0",
      "ARG BASE",
      "FROM base:${VERSION} AS Build",
      "RUN make",
      "FROM scratch",
      "COPY --from=build /a /b",
    ),
  );
  assert.deepEqual(parsed.metaArgs.map((a) => a.args), [["VERSION=1.0"], ["BASE"]]);
  assert.deepEqual(parsed.stages.map((s) => [s.index, s.name, s.from.args]), [
    [0, "build", ["base:${VERSION}", "AS", "Build"]],
    [1, undefined, ["scratch"]],
  ]);
  assert.deepEqual(parsed.stages[1].instructions[0].flags, { from: "build" });
});

Deno.test("parse: an ARG after FROM belongs to the stage", () => {
  const parsed = parse(df("FROM a", "ARG X"));
  assert.deepEqual(parsed.metaArgs, []);
  assert.equal(parsed.stages[0].instructions[0].name, "ARG");
});

Deno.test("parse: instruction names are case-insensitive and stored upper-case", () => {
  const parsed = parse(df("from busybox as Base", "rUn echo hi", "Copy a b", "workdir /x"));
  assert.equal(parsed.stages[0].name, "base");
  assert.deepEqual(parsed.stages[0].instructions.map((i) => i.name), ["RUN", "COPY", "WORKDIR"]);
  assert.equal(parsed.stages[0].instructions[0].original, "rUn echo hi");
});

Deno.test("parse: FROM --platform and AS", () => {
  const from = parse(df("FROM --platform=$BUILDPLATFORM golang:1.22 AS builder")).stages[0].from;
  assert.deepEqual(from.flags, { platform: "$BUILDPLATFORM" });
  assert.deepEqual(from.args, ["golang:1.22", "AS", "builder"]);
});

// ---------------------------------------------------------------------------------------
// Comments, blank lines, continuations

Deno.test("parse: comments and blank lines are skipped, indented ones too", () => {
  const parsed = parse(
    df("# a comment", "", "   # indented comment", "FROM a", "\t", "  RUN x # not a comment"),
  );
  assert.deepEqual(parsed.stages[0].from.location.line, 4);
  const [run] = parsed.stages[0].instructions;
  assert.deepEqual(run.args, ["x # not a comment"]);
  assert.equal(run.location.line, 6);
  assert.equal(run.original, "RUN x # not a comment");
});

Deno.test("parse: a continuation joins lines, keeping the next line's indentation", () => {
  const run = only("RUN apt-get update && \\", "    apt-get install -y curl");
  assert.deepEqual(run.args, ["apt-get update &&     apt-get install -y curl"]);
  assert.equal(run.original, "RUN apt-get update &&     apt-get install -y curl");
  assert.deepEqual(run.location, { file: "Flokafile", line: 2, endLine: 3 });
});

Deno.test("parse: spaces after the escape still make a continuation", () => {
  assert.deepEqual(only("RUN a \\  \t", "b").args, ["a b"]);
});

Deno.test("parse: comment lines inside a continuation are dropped", () => {
  const run = only("RUN echo a \\", "  # explain b", "# explain c", "  b \\", "  c");
  assert.deepEqual(run.args, ["echo a   b   c"]);
  const next = body("RUN a \\", "# c", "  b", "USER x");
  assert.deepEqual(next.map((i) => [i.name, i.location.line]), [["RUN", 2], ["USER", 5]]);
});

Deno.test("parse: an empty continuation line is skipped with a warning", () => {
  const parsed = parse(df("FROM a", "RUN echo a \\", "", "  b"));
  assert.deepEqual(parsed.stages[0].instructions[0].args, ["echo a   b"]);
  assert.equal(parsed.warnings.length, 1);
  assert.equal(parsed.warnings[0].location.line, 2);
  assert.match(parsed.warnings[0].message, /empty continuation line/);
});

Deno.test("parse: an escaped escape at the end is not a continuation", () => {
  const instructions = body("RUN echo a\\\\", "USER b");
  assert.deepEqual(instructions[0].args, ["echo a\\\\"]);
  assert.equal(instructions[1].name, "USER");
});

Deno.test("parse: a continuation on the last line ends the instruction", () => {
  const parsed = parseFlokafile("FROM a\nRUN echo \\", "Flokafile");
  assert.deepEqual(parsed.stages[0].instructions[0].args, ["echo"]);
});

Deno.test("parse: a line holding only the escape continues the instruction", () => {
  assert.deepEqual(only("RUN a \\", "\\", "b").args, ["a b"]);
});

Deno.test("parse: CRLF line endings and a byte-order mark", () => {
  const parsed = parseFlokafile("\uFEFFFROM a\r\nRUN x \\\r\n  y\r\nUSER u\r\n", "Flokafile");
  assert.deepEqual(parsed.stages[0].from.args, ["a"]);
  assert.deepEqual(parsed.stages[0].instructions.map((i) => i.args), [["x   y"], ["u"]]);
});

// ---------------------------------------------------------------------------------------
// Parser directives

Deno.test("directives: escape=` makes backslashes plain (Windows paths)", () => {
  const parsed = parse(df(
    "# escape=`",
    "FROM mcr.microsoft.com/windows/servercore",
    "COPY testfile.txt c:\\",
    "RUN dir c:\\",
    "WORKDIR c:\\Users\\app",
    "RUN echo one `",
    "  two",
  ));
  assert.equal(parsed.escape, "`");
  assert.deepEqual(parsed.stages[0].instructions.map((i) => [i.name, i.args]), [
    ["COPY", ["testfile.txt", "c:\\"]],
    ["RUN", ["dir c:\\"]],
    ["WORKDIR", ["c:\\Users\\app"]],
    ["RUN", ["echo one   two"]],
  ]);
});

Deno.test("directives: syntax and check are recorded; keys are case-insensitive; spaces allowed", () => {
  const parsed = parse(df("# SYNTAX = docker/dockerfile:1.7", "#check=skip=all", "#  Escape = `", "FROM a"));
  assert.equal(parsed.syntax, "docker/dockerfile:1.7");
  assert.equal(parsed.check, "skip=all");
  assert.equal(parsed.escape, "`");
});

Deno.test("directives: only at the very top (after a comment, blank line or instruction they are comments)", () => {
  assert.equal(parse(df("# hello", "# escape=`", "FROM a")).escape, "\\");
  assert.equal(parse(df("", "# escape=`", "FROM a")).escape, "\\");
  assert.equal(parse(df("FROM a", "# escape=`", "RUN x")).escape, "\\");
  assert.equal(parse(df("# unknown=directive", "# escape=`", "FROM a")).escape, "\\");
  assert.equal(parse(df("  # escape=`", "FROM a")).escape, "`");
  assert.equal(parse(df("# syntax=x", "FROM a", "# syntax=y")).syntax, "x");
});

Deno.test("directives: a repeated directive and a bad escape character are errors", () => {
  assertParseError(
    df("# escape=`", "# escape=\\", "FROM a"),
    "Flokafile:2: only one escape parser directive can be used: # escape=\\",
  );
  assertParseError(
    df("# syntax=a", "# escape=`", "# Syntax=b", "FROM a"),
    /^Flokafile:3: only one syntax parser directive/,
  );
  assertParseError(
    df("# escape=x", "FROM a"),
    "Flokafile:1: invalid escape token (only \\ and ` are allowed): x",
  );
});

// ---------------------------------------------------------------------------------------
// Exec and shell forms

Deno.test("forms: RUN, CMD, ENTRYPOINT in exec (JSON) and shell form", () => {
  const [run1, run2, cmd1, cmd2, ep1, ep2] = body(
    'RUN ["echo", "a b"]',
    "RUN echo 'a b' \"$HOME\"",
    'CMD [ "nginx", "-g", "daemon off;" ]',
    "CMD nginx -g 'daemon off;'",
    'ENTRYPOINT ["/entry.sh"]',
    "ENTRYPOINT exec /entry.sh",
  );
  assert.deepEqual([run1.json, run1.args], [true, ["echo", "a b"]]);
  assert.deepEqual([run2.json, run2.args], [false, ["echo 'a b' \"$HOME\""]]);
  assert.deepEqual([cmd1.json, cmd1.args], [true, ["nginx", "-g", "daemon off;"]]);
  assert.deepEqual([cmd2.json, cmd2.args], [false, ["nginx -g 'daemon off;'"]]);
  assert.deepEqual([ep1.json, ep1.args], [true, ["/entry.sh"]]);
  assert.deepEqual([ep2.json, ep2.args], [false, ["exec /entry.sh"]]);
});

Deno.test("forms: a malformed JSON array falls back to shell form", () => {
  for (const text of [`["a", 'b']`, `["a",]`, `["a"] extra`, `[a]`, `["unterminated`]) {
    const cmd = only(`CMD ${text}`);
    assert.deepEqual([cmd.json, cmd.args], [false, [text]], text);
  }
});

Deno.test("forms: a JSON array of non-strings is an error", () => {
  assertParseError(
    df("FROM a", "CMD [1, 2]"),
    "Flokafile:2: when using JSON array syntax, arrays must be comprised of strings only: CMD [1, 2]",
  );
  assertParseError(df("FROM a", 'COPY ["a", null]'), /^Flokafile:2: when using JSON array syntax/);
});

Deno.test("forms: JSON escapes are decoded; empty arrays clear CMD and ENTRYPOINT", () => {
  assert.deepEqual(only('CMD ["a\\tb", "\\u00e9"]').args, ["a\tb", "é"]);
  const [cmd, ep] = body("CMD []", "ENTRYPOINT []");
  assert.deepEqual([cmd.json, cmd.args, ep.json, ep.args], [true, [], true, []]);
});

Deno.test("forms: SHELL must be a non-empty JSON array", () => {
  const shell = only('SHELL ["/bin/bash", "-o", "pipefail", "-c"]');
  assert.deepEqual([shell.json, shell.args], [true, ["/bin/bash", "-o", "pipefail", "-c"]]);
  assertParseError(
    df("FROM a", "SHELL /bin/bash -c"),
    "Flokafile:2: SHELL requires the arguments to be in JSON form: SHELL /bin/bash -c",
  );
  assertParseError(
    df("FROM a", `SHELL ["a", 'b']`),
    /^Flokafile:2: SHELL requires the arguments to be in JSON form/,
  );
  assertParseError(df("FROM a", "SHELL []"), "Flokafile:2: SHELL requires at least one argument: SHELL []");
});

Deno.test("forms: RUN, CMD and ENTRYPOINT without a command are errors", () => {
  assertParseError(df("FROM a", "RUN"), "Flokafile:2: RUN requires at least one argument: RUN");
  assertParseError(df("FROM a", "RUN []"), "Flokafile:2: RUN requires at least one argument: RUN []");
  assertParseError(df("FROM a", "RUN --network=none"), /^Flokafile:2: RUN requires at least one argument/);
  assertParseError(df("FROM a", "CMD"), "Flokafile:2: CMD requires at least one argument: CMD");
  assertParseError(
    df("FROM a", "ENTRYPOINT   "),
    "Flokafile:2: ENTRYPOINT requires at least one argument: ENTRYPOINT",
  );
});

// ---------------------------------------------------------------------------------------
// Flags

Deno.test("flags: values, booleans, quotes; `--` ends the flags", () => {
  const copy = only('COPY --from=build --chown="app user:staff" --chmod=0755 --link a b /dst/');
  assert.deepEqual(copy.flags, { from: "build", chown: "app user:staff", chmod: "0755", link: true });
  assert.deepEqual(copy.args, ["a", "b", "/dst/"]);
  assert.deepEqual(only("COPY --link=TRUE a b").flags, { link: true });
  assert.deepEqual(only("COPY --link=false a b").flags, {});
  assert.deepEqual(only("COPY -- --weird-name /dst").args, ["--weird-name", "/dst"]);
  assert.deepEqual(only("RUN --network=host -- --version").args, ["--version"]);
  assert.deepEqual(only("COPY --chown= a b").flags, { chown: "" });
});

Deno.test("flags: RUN --network accepts default, none and host", () => {
  for (const mode of ["default", "none", "host"]) {
    assert.deepEqual(only(`RUN --network=${mode} true`).flags, { network: mode });
  }
  assertParseError(
    df("FROM a", "RUN --network=bridge true"),
    "Flokafile:2: invalid network mode (use default, none or host): --network=bridge",
  );
});

Deno.test("flags: BuildKit features Floka lacks are rejected clearly", () => {
  assertParseError(
    df("FROM a", "RUN --mount=type=cache,target=/root/.cache go build"),
    "Flokafile:2: RUN --mount is not supported by Floka: --mount=type=cache,target=/root/.cache",
  );
  assertParseError(
    df("FROM a", "RUN --security=insecure true"),
    /^Flokafile:2: RUN --security is not supported by Floka/,
  );
  assertParseError(
    df("FROM a", "COPY --parents a/b /c"),
    "Flokafile:2: COPY --parents is not supported by Floka: --parents",
  );
  assertParseError(
    df("FROM a", "COPY --exclude=*.md . /c"),
    /^Flokafile:2: COPY --exclude is not supported by Floka/,
  );
  assertParseError(
    df("FROM a", "ADD --keep-git-dir https://x/y.git /c"),
    /^Flokafile:2: ADD --keep-git-dir is not supported/,
  );
  assertParseError(df("FROM a", "ADD --unpack=true a.tar /c"), /^Flokafile:2: ADD --unpack is not supported/);
  // Explicitly off is harmless.
  assert.deepEqual(only("COPY --parents=false a b").flags, {});
});

Deno.test("flags: ADD --checksum and --chown; FROM --platform", () => {
  assert.deepEqual(only("ADD --checksum=sha256:abc --chown=1:2 https://x/a.tgz /a").flags, {
    checksum: "sha256:abc",
    chown: "1:2",
  });
});

Deno.test("flags: unknown, repeated, valueless and malformed flags are errors", () => {
  assertParseError(df("FROM a", "COPY --foo=bar a b"), "Flokafile:2: unknown flag: --foo");
  assertParseError(
    df("FROM a", "COPY --from=a --from=b x y"),
    "Flokafile:2: duplicate flag specified: --from",
  );
  assertParseError(df("FROM a", "COPY --from x y"), "Flokafile:2: missing a value on flag: --from");
  assertParseError(df("FROM a", "COPY --link= x y"), "Flokafile:2: missing a value on flag: --link");
  assertParseError(
    df("FROM a", "COPY --link=maybe x y"),
    "Flokafile:2: expecting boolean value for flag --link, not: maybe",
  );
  assertParseError(df("FROM a", "WORKDIR --x=1 /a"), "Flokafile:2: unknown flag: --x");
  assertParseError(df("FROM --platform=a --from=b a"), "Flokafile:1: unknown flag: --from");
  assertParseError(df("FROM a", "ENV --x A=1"), "Flokafile:2: unknown flag: --x");
});

// ---------------------------------------------------------------------------------------
// COPY, ADD, VOLUME

Deno.test("copy: shell form splits at whitespace, JSON form keeps spaces", () => {
  const [a, b] = body("COPY  src/a   src/b  /app/", 'COPY ["my file.txt", "/dest dir/"]');
  assert.deepEqual([a.json, a.args], [false, ["src/a", "src/b", "/app/"]]);
  assert.deepEqual([b.json, b.args], [true, ["my file.txt", "/dest dir/"]]);
});

Deno.test("copy: needs a source and a destination", () => {
  assertParseError(
    df("FROM a", "COPY a"),
    "Flokafile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined: COPY a",
  );
  assertParseError(df("FROM a", 'ADD ["a"]'), /^Flokafile:2: ADD requires at least two arguments/);
  assertParseError(df("FROM a", "COPY"), /^Flokafile:2: COPY requires at least two arguments/);
});

Deno.test("copy: --from cannot use variables", () => {
  assertParseError(
    df("FROM a", "COPY --from=$STAGE /a /b"),
    "Flokafile:2: variable expansion is not supported for --from (use FROM with a global ARG instead): --from=$STAGE",
  );
  assert.deepEqual(only("COPY --from=0 /a /b").flags, { from: "0" });
  assert.deepEqual(only("COPY --from= /a /b").flags, {});
});

Deno.test("volume: JSON or space-separated; empty paths are errors", () => {
  const [a, b] = body("VOLUME /data /logs", 'VOLUME ["/var/lib/my data"]');
  assert.deepEqual([a.json, a.args], [false, ["/data", "/logs"]]);
  assert.deepEqual([b.json, b.args], [true, ["/var/lib/my data"]]);
  assertParseError(df("FROM a", "VOLUME"), "Flokafile:2: VOLUME requires at least one argument: VOLUME");
  assertParseError(
    df("FROM a", 'VOLUME ["/a", " "]'),
    /^Flokafile:2: VOLUME specified can not be an empty string/,
  );
});

// ---------------------------------------------------------------------------------------
// ENV, LABEL, ARG

Deno.test("env: k=v pairs with quotes and escapes kept as written", () => {
  const env = only("ENV A=1 B=\"two words\" C=three\\ words D='$x' E=");
  assert.deepEqual(env.args, ["A=1", 'B="two words"', "C=three\\ words", "D='$x'", "E="]);
});

Deno.test("env: the legacy form takes the rest of the line as the value", () => {
  assert.deepEqual(only("ENV MY_VAR  some value  here").args, ["MY_VAR", "some value  here"]);
  assert.deepEqual(only("ENV PATH /usr/bin:$PATH").args, ["PATH", "/usr/bin:$PATH"]);
});

Deno.test("env: errors", () => {
  assertParseError(df("FROM a", "ENV"), "Flokafile:2: ENV requires at least one argument: ENV");
  assertParseError(
    df("FROM a", "ENV ONLYNAME"),
    /^Flokafile:2: ENV must have two arguments .*: ENV ONLYNAME$/,
  );
  assertParseError(
    df("FROM a", "ENV A=1 B"),
    `Flokafile:2: syntax error: can't find = in "B", must be of the form: name=value: B`,
  );
  assertParseError(df("FROM a", "ENV =x"), "Flokafile:2: ENV names can not be blank: =x");
  assertParseError(
    df("FROM a", 'ENV A="unterminated'),
    /^Flokafile:2: unexpected end of statement while looking for matching double-quote/,
  );
});

Deno.test("label: pairs with quoted keys and values; legacy form", () => {
  assert.deepEqual(
    only('LABEL "com.example.vendor"="ACME Inc" version=1.0 description="multi \\', 'line"').args,
    ['"com.example.vendor"="ACME Inc"', "version=1.0", 'description="multi line"'],
  );
  assert.deepEqual(only("LABEL maintainer someone@example.com").args, ["maintainer", "someone@example.com"]);
  assertParseError(df("FROM a", "LABEL"), "Flokafile:2: LABEL requires at least one argument: LABEL");
  assertParseError(df("FROM a", "LABEL =v"), "Flokafile:2: LABEL names can not be blank: =v");
});

Deno.test("arg: names, defaults, several per line", () => {
  assert.deepEqual(only('ARG A B=2 C="x y" D=').args, ["A", "B=2", 'C="x y"', "D="]);
  assertParseError(df("FROM a", "ARG"), "Flokafile:2: ARG requires at least one argument: ARG");
  assertParseError(df("FROM a", "ARG =1"), "Flokafile:2: ARG names can not be blank: =1");
});

// ---------------------------------------------------------------------------------------
// WORKDIR, USER, STOPSIGNAL, MAINTAINER, EXPOSE

Deno.test("single-value instructions take the rest of the line", () => {
  const [w, u, s, m] = body(
    "WORKDIR /my app",
    "USER app:staff",
    "STOPSIGNAL SIGTERM",
    "MAINTAINER Jane Doe <jane@example.com>",
  );
  assert.deepEqual(w.args, ["/my app"]);
  assert.deepEqual(u.args, ["app:staff"]);
  assert.deepEqual(s.args, ["SIGTERM"]);
  assert.deepEqual(m.args, ["Jane Doe <jane@example.com>"]);
  for (const name of ["WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"]) {
    assertParseError(df("FROM a", name), `Flokafile:2: ${name} requires exactly one argument: ${name}`);
  }
});

Deno.test("expose: words, checked now when they hold no variable", () => {
  assert.deepEqual(only("EXPOSE 80 443/tcp 53/udp 8000-8010 $PORT").args, [
    "80",
    "443/tcp",
    "53/udp",
    "8000-8010",
    "$PORT",
  ]);
  assertParseError(df("FROM a", "EXPOSE"), "Flokafile:2: EXPOSE requires at least one argument: EXPOSE");
  assertParseError(df("FROM a", "EXPOSE http"), "Flokafile:2: invalid containerPort: http");
  assertParseError(df("FROM a", "EXPOSE 70000"), "Flokafile:2: invalid containerPort: 70000");
  assertParseError(df("FROM a", "EXPOSE 80/icmp"), "Flokafile:2: invalid proto: 80/icmp");
  assertParseError(df("FROM a", "EXPOSE 90-80"), "Flokafile:2: invalid containerPort: 90-80");
});

// ---------------------------------------------------------------------------------------
// HEALTHCHECK

Deno.test("healthcheck: NONE, exec form, shell form, flags", () => {
  const [none, exec, shell] = body(
    "HEALTHCHECK NONE",
    'HEALTHCHECK --interval=5m --timeout=3s CMD ["curl", "-f", "http://localhost/"]',
    "HEALTHCHECK --retries=3 --start-period=1s --start-interval=500ms cmd curl -f http://localhost/ || exit 1",
  );
  assert.deepEqual([none.args, none.json], [["NONE"], false]);
  assert.deepEqual([exec.args, exec.json, exec.flags], [
    ["CMD", "curl", "-f", "http://localhost/"],
    true,
    { interval: "5m", timeout: "3s" },
  ]);
  assert.deepEqual([shell.args, shell.json], [["cmd", "curl -f http://localhost/ || exit 1"], false]);
  assert.deepEqual(shell.flags, { retries: "3", "start-period": "1s", "start-interval": "500ms" });
});

Deno.test("healthcheck: errors", () => {
  assertParseError(
    df("FROM a", "HEALTHCHECK"),
    "Flokafile:2: HEALTHCHECK requires at least one argument: HEALTHCHECK",
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK NONE x"),
    "Flokafile:2: HEALTHCHECK NONE takes no arguments: HEALTHCHECK NONE x",
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK RUN x"),
    `Flokafile:2: unknown type "RUN" in HEALTHCHECK (try CMD): RUN`,
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK CMD"),
    "Flokafile:2: missing command after HEALTHCHECK CMD: HEALTHCHECK CMD",
  );
  assertParseError(df("FROM a", "HEALTHCHECK CMD []"), /^Flokafile:2: missing command after HEALTHCHECK CMD/);
  assertParseError(
    df("FROM a", "HEALTHCHECK --interval=5 CMD x"),
    "Flokafile:2: invalid duration for --interval (e.g. 30s, 1m30s, 500ms): 5",
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK --timeout=1d CMD x"),
    /^Flokafile:2: invalid duration for --timeout/,
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK --interval=10us CMD x"),
    "Flokafile:2: --interval cannot be less than 1ms: 10us",
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK --retries=-1 CMD x"),
    "Flokafile:2: --retries cannot be negative (-1): -1",
  );
  assertParseError(
    df("FROM a", "HEALTHCHECK --retries=many CMD x"),
    "Flokafile:2: invalid value for --retries: many",
  );
  assertParseError(df("FROM a", "HEALTHCHECK --port=1 CMD x"), "Flokafile:2: unknown flag: --port");
});

// ---------------------------------------------------------------------------------------
// ONBUILD

Deno.test("onbuild: the trigger is parsed as an instruction of its own", () => {
  const onbuild = only("ONBUILD COPY --chown=app . /src");
  assert.deepEqual(onbuild.args, ["COPY --chown=app . /src"]);
  assert.ok(onbuild.onbuild);
  assert.equal(onbuild.onbuild.name, "COPY");
  assert.deepEqual(onbuild.onbuild.flags, { chown: "app" });
  assert.deepEqual(onbuild.onbuild.args, [".", "/src"]);
  assert.equal(onbuild.onbuild.location.line, 2);
  assert.deepEqual(only('onbuild run ["make"]').onbuild?.args, ["make"]);
});

Deno.test("onbuild: ONBUILD ONBUILD, FROM and MAINTAINER triggers and bad triggers are errors", () => {
  assertParseError(df("FROM a", "ONBUILD"), "Flokafile:2: ONBUILD requires at least one argument: ONBUILD");
  assertParseError(
    df("FROM a", "ONBUILD onbuild RUN x"),
    /^Flokafile:2: chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/,
  );
  assertParseError(
    df("FROM a", "ONBUILD FROM b"),
    "Flokafile:2: FROM isn't allowed as an ONBUILD trigger: ONBUILD FROM b",
  );
  assertParseError(
    df("FROM a", "ONBUILD maintainer me"),
    /^Flokafile:2: MAINTAINER isn't allowed as an ONBUILD trigger/,
  );
  assertParseError(df("FROM a", "ONBUILD FORM x"), "Flokafile:2: unknown instruction: FORM x");
  assertParseError(df("FROM a", "ONBUILD COPY a"), /^Flokafile:2: COPY requires at least two arguments/);
});

// ---------------------------------------------------------------------------------------
// Heredocs

Deno.test("heredoc: RUN <<EOF runs the body", () => {
  const run = only("RUN <<EOF", "apt-get update", "apt-get install -y curl", "EOF");
  assert.deepEqual(run.args, ["<<EOF"]);
  assert.deepEqual(run.heredocs, [{
    name: "EOF",
    content: "apt-get update\napt-get install -y curl\n",
    expand: true,
    chomp: false,
  }]);
  assert.deepEqual(run.location, { file: "Flokafile", line: 2, endLine: 5 });
});

Deno.test("heredoc: the body is verbatim: comments, continuations, instructions, blank lines", () => {
  const [run, user] = body(
    "RUN <<EOF",
    "# not a comment",
    "echo a \\",
    "",
    "FROM x",
    "  EOF",
    "EOF",
    "USER me",
  );
  assert.equal(run.heredocs[0].content, "# not a comment\necho a \\\n\nFROM x\n  EOF\n");
  assert.deepEqual([user.name, user.location.line], ["USER", 9]);
});

Deno.test("heredoc: <<- recognizes a tab-indented terminator and records chomp", () => {
  const run = only("RUN <<-EOT", "\techo a", "\t\techo b", "\tEOT");
  assert.deepEqual(run.heredocs, [{
    name: "EOT",
    content: "\techo a\n\t\techo b\n",
    expand: true,
    chomp: true,
  }]);
  // Without `-`, an indented terminator is body text.
  const plain = only("RUN <<EOT", "\tEOT", "EOT");
  assert.equal(plain.heredocs[0].content, "\tEOT\n");
});

Deno.test("heredoc: a quoted delimiter, wholly or in part, turns expansion off", () => {
  const cases: [string, string, boolean][] = [
    ['<<"EOF"', "EOF", false],
    ["<<'EOF'", "EOF", false],
    ['<<E"O"F', "EOF", false],
    ["<<'one two'", "one two", false],
    ["<<EOF", "EOF", true],
    ["<<  EOF", "EOF", true],
    ["<<-'EOF'", "EOF", false],
    ["<<file.txt", "file.txt", true],
  ];
  for (const [word, name, expand] of cases) {
    const run = only(`RUN cat ${word}`, "x", name);
    assert.deepEqual(run.heredocs.map((h) => [h.name, h.expand]), [[name, expand]], word);
  }
});

Deno.test("heredoc: several on one line are read one after the other", () => {
  const copy = only("COPY <<FILE1 <<FILE2 /dest/", "content 1", "FILE1", "content 2", "FILE2");
  assert.deepEqual(copy.args, ["<<FILE1", "<<FILE2", "/dest/"]);
  assert.deepEqual(copy.heredocs.map((h) => [h.name, h.content]), [["FILE1", "content 1\n"], [
    "FILE2",
    "content 2\n",
  ]]);
  // A terminator of the other heredoc is plain text inside this one.
  const crossed = only("RUN <<X <<Y", "Y", "X", "X", "Y");
  assert.deepEqual(crossed.heredocs.map((h) => [h.name, h.content]), [["X", "Y\n"], ["Y", "X\n"]]);
});

Deno.test("heredoc: as the stdin of a command, with redirections, after flags and continuations", () => {
  const [py, cat, net] = body(
    "RUN python3 <<EOF",
    "print('hi')",
    "EOF",
    "RUN cat <<EOF > /etc/motd \\",
    "  && echo done",
    "hello",
    "EOF",
    "RUN --network=none 3<<EOF cat /dev/fd/3",
    "x",
    "EOF",
  );
  assert.deepEqual([py.args, py.heredocs[0].content], [["python3 <<EOF"], "print('hi')\n"]);
  assert.deepEqual([cat.args, cat.heredocs[0].content], [
    ["cat <<EOF > /etc/motd   && echo done"],
    "hello\n",
  ]);
  assert.deepEqual([net.flags, net.heredocs[0].name], [{ network: "none" }, "EOF"]);
});

Deno.test("heredoc: an empty body; a last line without newline", () => {
  assert.equal(only("RUN <<EOF", "EOF").heredocs[0].content, "");
  const parsed = parseFlokafile("FROM a\nRUN <<EOF\nx\nEOF", "Flokafile");
  assert.equal(parsed.stages[0].instructions[0].heredocs[0].content, "x\n");
});

Deno.test("heredoc: not in JSON form, not in quotes, not in other instructions", () => {
  assert.deepEqual(only('RUN ["<<EOF"]').heredocs, []);
  assert.deepEqual(only('RUN echo "<<EOF"').heredocs, []);
  assert.deepEqual(only("RUN echo '<<EOF'").heredocs, []);
  assert.deepEqual(only("RUN cat <<<here-string").heredocs, []);
  const [cmd, user] = body("CMD cat <<EOF", "USER EOF");
  assert.deepEqual([cmd.heredocs, user.args], [[], ["EOF"]]);
});

Deno.test("heredoc: in an ONBUILD trigger", () => {
  const onbuild = only("ONBUILD RUN <<EOF", "echo child", "EOF");
  assert.deepEqual(onbuild.heredocs.map((h) => h.content), ["echo child\n"]);
  assert.deepEqual(onbuild.onbuild?.heredocs.map((h) => h.content), ["echo child\n"]);
});

Deno.test("heredoc: COPY with the delimiter and the destination", () => {
  const copy = only("COPY --chmod=755 <<-EOF /usr/local/bin/hello", "\t#!/bin/sh", "\techo hello", "\tEOF");
  assert.deepEqual(copy.args, ["<<-EOF", "/usr/local/bin/hello"]);
  assert.deepEqual(copy.flags, { chmod: "755" });
  assert.equal(copy.heredocs[0].content, "\t#!/bin/sh\n\techo hello\n");
  assertParseError(
    df("FROM a", "COPY a <<EOF", "x", "EOF"),
    "Flokafile:2: COPY cannot accept a heredoc as a destination: <<EOF",
  );
});

Deno.test("heredoc: an unterminated heredoc is an error at its instruction", () => {
  assertParseError(
    df("FROM a", "RUN <<EOF", "echo hi", "EOT"),
    `Flokafile:2: unterminated heredoc "EOF": RUN <<EOF`,
  );
  assertParseError(
    df("FROM a", "COPY <<A <<B /x", "a", "A", "b"),
    `Flokafile:2: unterminated heredoc "B": COPY <<A <<B /x`,
  );
  assertParseError(df("FROM a", "RUN <<'EOF'", "x", "'EOF'"), /^Flokafile:2: unterminated heredoc "EOF"/);
});

// ---------------------------------------------------------------------------------------
// Errors about the file as a whole

Deno.test("errors: unknown instruction, with Docker's wording", () => {
  assertParseError(df("FROM busybox", "", "FORM busybox"), "Flokafile:3: unknown instruction: FORM busybox");
  assertParseError(df("FROM a", "RUNN --x=1 echo"), "Flokafile:2: unknown instruction: RUNN --x=1 echo");
});

Deno.test("errors: an empty file, or only comments", () => {
  assertParseError("", "Flokafile:1: file with no instructions");
  assertParseError(
    df("# syntax=docker/dockerfile:1", "", "# nothing"),
    "Flokafile:3: file with no instructions",
  );
});

Deno.test("errors: an instruction before FROM, or no FROM at all", () => {
  assertParseError(
    df("ARG A", "RUN echo", "FROM a"),
    "Flokafile:2: no build stage in current context: RUN echo",
  );
  assertParseError(df("ARG A"), /^Flokafile:1: no stage to build/);
});

Deno.test("errors: FROM argument count, stage names", () => {
  assertParseError(df("FROM"), "Flokafile:1: FROM requires either one or three arguments: FROM");
  assertParseError(df("FROM a b"), "Flokafile:1: FROM requires either one or three arguments: FROM a b");
  assertParseError(df("FROM a AS"), /^Flokafile:1: FROM requires either one or three arguments/);
  assertParseError(df("FROM a TO b"), /^Flokafile:1: FROM requires either one or three arguments/);
  assertParseError(df("FROM a AS 1st"), /^Flokafile:1: invalid name for build stage .*: 1st$/);
  assertParseError(df("FROM a AS my$stage"), /^Flokafile:1: invalid name for build stage .*: my\$stage$/);
  assertParseError(
    df("FROM a AS build", "FROM b AS Build"),
    `Flokafile:2: duplicate stage name "build" (first used on line 1): FROM b AS Build`,
  );
  assertParseError(df("FROM a AS scratch"), /^Flokafile:1: "scratch" is reserved and cannot name a stage/);
  assert.equal(parse(df("FROM a AS my-stage_1.0")).stages[0].name, "my-stage_1.0");
});

Deno.test("errors: substitution syntax is checked before the build", () => {
  assertParseError(df("FROM a", "WORKDIR /app/${"), "Flokafile:2: syntax error: missing '}': /app/${");
  assertParseError(
    df("FROM a", "ENV A=${B:x}"),
    "Flokafile:2: unsupported modifier (:x) in substitution: ${B:x}",
  );
  assertParseError(df("FROM a", "COPY ${} /b"), "Flokafile:2: syntax error: bad substitution: ${}");
  assertParseError(df("FROM ${IMAGE"), /^Flokafile:1: syntax error: missing '}'/);
  assertParseError(
    df("FROM a", "USER 'app"),
    /^Flokafile:2: unexpected end of statement while looking for matching single-quote/,
  );
  // `${VAR:?}` depends on the variables: only the build can tell.
  assert.equal(only("WORKDIR ${DIR:?must be set}").args[0], "${DIR:?must be set}");
  // Not expanded by Docker, so not checked: RUN, CMD, MAINTAINER.
  assert.deepEqual(only("RUN echo ${").args, ["echo ${"]);
});

Deno.test("errors: the offending text is shortened to one short line", () => {
  const long = "x".repeat(200);
  assert.throws(
    () => parse(df("FROM a", `BOGUS ${long}`)),
    (err: unknown) => {
      assert.ok(err instanceof FlokafileError);
      assert.equal(err.message, `Flokafile:2: unknown instruction: BOGUS ${"x".repeat(71)}...`);
      assert.equal(err.reason, "unknown instruction");
      assert.deepEqual(err.location, { file: "Flokafile", line: 2, endLine: 2 });
      return true;
    },
  );
});

Deno.test("errors: they come in file order", () => {
  assertParseError(df("FROM a", "BOGUS", "RUN <<EOF"), /^Flokafile:2: unknown instruction/);
});

// ---------------------------------------------------------------------------------------
// ONBUILD triggers from a base image

Deno.test("parseTrigger: a stored trigger is one instruction located at the child's FROM", () => {
  const at = { file: "Flokafile", line: 4 };
  const copy = parseTrigger("COPY --chown=app . /src", at);
  assert.deepEqual([copy.name, copy.flags, copy.args, copy.location], ["COPY", { chown: "app" }, [
    ".",
    "/src",
  ], at]);
  const run = parseTrigger("RUN <<EOF\necho $X\nEOF", at);
  assert.deepEqual(run.heredocs, [{ name: "EOF", content: "echo $X\n", expand: true, chomp: false }]);
  assert.throws(
    () => parseTrigger("RUN a\nRUN b", at),
    /^FlokafileError: Flokafile:4: onbuild trigger should be a single expression/,
  );
  assert.throws(() => parseTrigger("", at), /onbuild trigger should be a single expression/);
  assert.throws(
    () => parseTrigger("FROM x", at),
    /Flokafile:4: FROM isn't allowed as an ONBUILD trigger: FROM x/,
  );
  assert.throws(() => parseTrigger("BOGUS x", at), /Flokafile:4: unknown instruction: BOGUS x/);
});
