/**
 * From text to logical lines, as BuildKit's parser reads a Dockerfile: parser directives at
 * the top, comments, line continuations with the escape character, and heredoc bodies.
 *
 * A parser directive (`# escape=\``, `# syntax=...`, `# check=...`) counts only while no
 * other line has been seen: the first blank line, other comment or instruction ends them.
 */
import { flokafileError } from "./errors.ts";
import { heredocsOnLine } from "./heredoc.ts";
import { ShellLexError } from "./lex.ts";
import type { Heredoc, Location, Warning } from "./types.ts";
import { trimLeftSpace } from "./words.ts";

/** One instruction's text with its heredoc bodies. */
export interface LogicalLine {
  /** Continuations joined, comment lines inside them dropped, first line left-trimmed. */
  text: string;
  location: Location;
  heredocs: Heredoc[];
}

// Go's \s is [\t\n\f\r ], narrower than JavaScript's.
const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;
const KNOWN_DIRECTIVES = new Set(["escape", "syntax", "check"]);

/** Reads a Flokafile one instruction at a time; directives are known once reading starts. */
export class LineScanner {
  escape = "\\";
  syntax?: string;
  check?: string;
  readonly warnings: Warning[] = [];
  /** Physical lines, each with its line ending. */
  private readonly lines: string[];
  private index = 0;
  private directivesDone = false;
  private readonly seenDirectives = new Set<string>();
  private continuation = makeContinuation("\\");

  constructor(text: string, private readonly file: string) {
    const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
    this.lines = body.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  }

  /** The number of physical lines read so far (the current line number). */
  get lineNumber(): number {
    return this.index;
  }

  *logicalLines(): Generator<LogicalLine> {
    while (this.index < this.lines.length) {
      const first = trimLeftSpace(trimNewline(this.lines[this.index++]));
      const line = this.index;
      this.directive(first);
      if (isComment(first)) continue;
      let [text, more] = this.trimContinuation(first);
      if (!more && text === "") continue;
      let emptyContinuation = false;
      while (more && this.index < this.lines.length) {
        const raw = trimNewline(this.lines[this.index++]);
        if (isComment(raw)) continue;
        if (trimLeftSpace(raw) === "") {
          emptyContinuation = true; // Docker warns: a future release will reject it
          continue;
        }
        let part: string;
        [part, more] = this.trimContinuation(raw);
        text += part;
      }
      const location: Location = { file: this.file, line, endLine: this.index };
      if (emptyContinuation) {
        this.warnings.push({ message: `empty continuation line found in: ${text.trim()}`, location });
      }
      const heredocs = this.readHeredocs(text, location);
      location.endLine = this.index;
      yield { text, location, heredocs };
    }
  }

  /** Record a directive while they are still allowed; anything else ends them. */
  private directive(line: string): void {
    if (this.directivesDone) return;
    const m = line.startsWith("#") ? DIRECTIVE.exec(trimLeftSpace(line.slice(1))) : null;
    const key = m?.[1].toLowerCase();
    if (!m || key === undefined || !KNOWN_DIRECTIVES.has(key)) {
      this.directivesDone = true;
      return;
    }
    const location = { file: this.file, line: this.index };
    if (this.seenDirectives.has(key)) {
      throw flokafileError(location, `only one ${key} parser directive can be used`, line);
    }
    this.seenDirectives.add(key);
    const value = m[2];
    if (key === "escape") {
      if (value !== "\\" && value !== "`") {
        throw flokafileError(location, "invalid escape token (only \\ and ` are allowed)", value);
      }
      this.escape = value;
      this.continuation = makeContinuation(value);
    } else if (key === "syntax") {
      this.syntax = value;
    } else {
      this.check = value;
    }
  }

  /** [the line without its continuation mark, whether the next line continues it]. */
  private trimContinuation(line: string): [string, boolean] {
    const m = this.continuation.exec(line);
    if (!m) return [line, false];
    return [line.slice(0, m.index) + (m[1] ?? ""), true];
  }

  /** Heredoc bodies follow the instruction's last line, one after the other. */
  private readHeredocs(text: string, location: Location): Heredoc[] {
    let found;
    try {
      found = heredocsOnLine(text, this.escape);
    } catch (err) {
      if (err instanceof ShellLexError) throw flokafileError(location, err.message, text);
      throw err;
    }
    return found.map((doc) => {
      let content = "";
      while (this.index < this.lines.length) {
        const raw = this.lines[this.index++];
        let candidate = trimNewline(raw);
        if (doc.chomp) candidate = candidate.replace(/^\t+/, "");
        if (candidate === doc.name) return { ...doc, content };
        content += raw;
      }
      throw flokafileError(location, `unterminated heredoc "${doc.name}"`, text);
    });
  }
}

/** The escape character at the end (spaces and tabs after it allowed), unless escaped. */
function makeContinuation(escape: string): RegExp {
  const e = escape === "\\" ? "\\\\" : escape;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function trimNewline(line: string): string {
  return line.replace(/[\r\n]+$/, "");
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith("#");
}
