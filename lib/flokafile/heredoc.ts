/**
 * Heredocs: finding `<<EOF` words on an instruction line, and what BuildKit does with the
 * bodies. Detection always lexes with `\` as the escape character, whatever the file's
 * escape directive says, as BuildKit does.
 */
import { type LexOptions, processWords, ShellLexError } from "./lex.ts";
import type { Heredoc, RunCommand } from "./types.ts";
import { parseJsonArray, splitLine } from "./words.ts";

/** `[fd]<<[-][blanks]word` where word holds no `<`. */
const HEREDOC_WORD = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

const UNSET = () => undefined;

/** The instructions whose (non-JSON) arguments may hold heredocs. */
const HEREDOC_INSTRUCTIONS = new Set(["RUN", "COPY", "ADD"]);

/**
 * The heredoc a single word introduces, or null if the word is not one (`<<`, `<EOF`,
 * `<<EOF sh`...). Throws ShellLexError when the delimiter's quotes are unbalanced.
 */
export function parseHeredocWord(word: string): Omit<Heredoc, "content"> | null {
  const m = HEREDOC_WORD.exec(word);
  if (!m || m[3] === "") return null;
  const options: LexOptions = { escape: "\\", skipUnsetEnv: true };
  const unquoted = processWords(m[3], UNSET, options);
  if (unquoted.length !== 1) return null;
  const raw = processWords(m[3], UNSET, { ...options, rawQuotes: true });
  if (raw.length !== 1) throw new ShellLexError(`inconsistent lexing of heredoc: ${m[3]}`);
  // Any quote in the delimiter, anywhere, turns expansion off (as in sh).
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  return { name: unquoted[0], expand: quotes(unquoted[0]) === quotes(raw[0]), chomp: m[2] === "-" };
}

/** The heredocs introduced on an instruction line, in order (bodies not read yet). */
export function heredocsOnLine(line: string, escape: string): Omit<Heredoc, "content">[] {
  if (!line.includes("<<") || !mayHoldHeredocs(line, escape)) return [];
  let words: string[];
  try {
    words = processWords(line, UNSET, {
      escape: "\\",
      rawQuotes: true,
      rawEscapes: true,
      skipUnsetEnv: true,
    });
  } catch {
    return []; // Docker ignores lines its lexer cannot split here
  }
  const docs: Omit<Heredoc, "content">[] = [];
  for (const word of words) {
    const doc = parseHeredocWord(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/** RUN, COPY and ADD in shell form, also as an ONBUILD trigger. */
function mayHoldHeredocs(line: string, escape: string): boolean {
  let { keyword, rest } = splitLine(line, escape);
  if (keyword.toUpperCase() === "ONBUILD") ({ keyword, rest } = splitLine(rest, escape));
  if (!HEREDOC_INSTRUCTIONS.has(keyword.toUpperCase())) return false;
  try {
    return parseJsonArray(rest) === null;
  } catch {
    return false; // a non-string JSON array: the instruction parser reports it
  }
}

/** The body with leading tabs removed from every line, for `<<-`. */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, "");
}

/** How BuildKit runs a shell-form RUN that has heredocs. */
export interface RunHeredocPlan {
  /** The shell-form command string to run with the SHELL. */
  command: string;
  /**
   * A script to provide first: when the whole command is one heredoc whose body starts
   * with `#!`, BuildKit mounts it read-only at `path` (mode 0755) and runs that path.
   */
  script?: { path: string; content: string; mode: number };
}

/**
 * BuildKit's three cases: `RUN <<EOF` whose body starts with `#!` runs the body as a script
 * file; `RUN <<EOF` otherwise runs the body (tabs stripped for `<<-`) as the shell command;
 * any other command (`RUN python3 <<EOF`, several heredocs) gets the line followed by the
 * bodies and delimiters, so the shell itself feeds them as stdin.
 * Returns null for a RUN without heredocs or in exec form.
 */
export function runHeredocPlan(run: RunCommand): RunHeredocPlan | null {
  if (!run.shell || run.heredocs.length === 0 || run.command.length !== 1) return null;
  const line = run.command[0];
  if (parseHeredocWordSafe(line)) {
    const doc = run.heredocs[0];
    const body = doc.chomp ? chompHeredoc(doc.content) : doc.content;
    if (body.startsWith("#!")) {
      const path = `/dev/pipes/${doc.name}`;
      return { command: path, script: { path, content: body, mode: 0o755 } };
    }
    return { command: body };
  }
  return { command: [line, ...run.heredocs.map((d) => d.content + d.name)].join("\n") };
}

function parseHeredocWordSafe(word: string): boolean {
  try {
    return parseHeredocWord(word) !== null;
  } catch {
    return false;
  }
}
