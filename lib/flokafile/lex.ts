/**
 * The shell-like word lexer BuildKit applies to Dockerfile words: quote removal, escapes and
 * `$VAR` / `${VAR...}` substitution, optionally followed by splitting at whitespace.
 *
 * It is not a shell: no command substitution, no globbing, and special parameters (`$1`,
 * `$@`, `$$`...) are names that are never set. Errors are `ShellLexError`s without a
 * location; the callers add one.
 */

/** Returns a variable's value, or undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

export interface LexOptions {
  /** The Dockerfile's escape character: `\` or a backtick. */
  escape: string;
  /** Keep quote characters in the result (they still group words). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result (the escaped character is still literal). */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (COPY heredoc bodies). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to "". */
  skipUnsetEnv?: boolean;
}

export class ShellLexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShellLexError";
  }
}

/** One word: the result with quotes removed and variables expanded, spaces kept. */
export function processWord(word: string, lookup: Lookup, options: LexOptions): string {
  return new WordLexer(word, lookup, options).run().result;
}

/** The same, then split into words at unquoted whitespace (an empty result gives none). */
export function processWords(word: string, lookup: Lookup, options: LexOptions): string[] {
  return new WordLexer(word, lookup, options).run().words;
}

/** Go's unicode.IsSpace. */
export function isSpace(ch: string): boolean {
  return /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u.test(ch);
}

const END = "";

/** Collects words; a space ends the current word, quoted text never splits. */
class WordCollector {
  readonly words: string[] = [];
  private buf = "";
  private inWord = false;

  addChar(ch: string): void {
    if (!isSpace(ch)) {
      this.addRawChar(ch);
    } else if (this.inWord && this.buf !== "") {
      this.words.push(this.buf);
      this.buf = "";
      this.inWord = false;
    }
  }

  addRawChar(ch: string): void {
    this.buf += ch;
    this.inWord = true;
  }

  /** Expanded variables split like literal text. */
  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  addRawString(text: string): void {
    this.buf += text;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf !== "") {
      this.words.push(this.buf);
      this.buf = "";
      this.inWord = false;
    }
    return this.words;
  }
}

// $@ $* $# $? $- $$ $! $0: POSIX special parameters, single-character names.
const SPECIAL_PARAMS = new Set(["@", "*", "#", "?", "-", "$", "!", "0"]);

class WordLexer {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;

  constructor(text: string, private readonly lookup: Lookup, private readonly options: LexOptions) {
    this.chars = Array.from(text);
    this.rawEscapes = options.rawEscapes ?? false;
  }

  run(): { result: string; words: string[] } {
    return this.processUntil(END, this.rawEscapes);
  }

  private peek(): string {
    return this.chars[this.pos] ?? END;
  }

  private next(): string {
    const ch = this.chars[this.pos] ?? END;
    if (ch !== END) this.pos++;
    return ch;
  }

  /** Process up to `stop` (consumed) or the end; nested for `${VAR:-word}` and patterns. */
  private processUntil(stop: string, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new WordCollector();
      const quotes = !this.options.skipProcessQuotes;
      while (this.peek() !== END) {
        const ch = this.peek();
        if (stop !== END && ch === stop) {
          this.next();
          return { result, words: words.finish() };
        }
        if (ch === "$") {
          const value = this.processDollar();
          result += value;
          words.addString(value);
          continue;
        }
        if (ch === "<" || (quotes && (ch === "'" || ch === '"'))) {
          const text = ch === "<"
            ? this.processPossibleHeredoc()
            : ch === "'"
            ? this.processSingleQuote()
            : this.processDoubleQuote();
          result += text;
          words.addRawString(text);
          continue;
        }
        let c = this.next();
        if (c === this.options.escape) {
          if (this.rawEscapes) {
            words.addRawChar(c);
            result += c;
          }
          c = this.next();
          if (c === END) break; // an escape at the very end is dropped
          words.addRawChar(c);
        } else {
          words.addChar(c);
        }
        result += c;
      }
      if (stop !== END) {
        throw new ShellLexError(`unexpected end of statement while looking for matching ${stop}`);
      }
      return { result, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  /** Everything up to the next `'` is literal; there is no way to escape a `'` inside. */
  private processSingleQuote(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next();
    let result = raw ? open : "";
    for (;;) {
      const ch = this.next();
      if (ch === END) {
        throw new ShellLexError("unexpected end of statement while looking for matching single-quote");
      }
      if (ch === "'") return raw ? result + ch : result;
      result += ch;
    }
  }

  /** `$` expands; the escape character escapes only `"`, `$` and itself, else it stays. */
  private processDoubleQuote(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next();
    let result = raw ? open : "";
    for (;;) {
      const peeked = this.peek();
      if (peeked === END) {
        throw new ShellLexError("unexpected end of statement while looking for matching double-quote");
      }
      if (peeked === '"') {
        const ch = this.next();
        return raw ? result + ch : result;
      }
      if (peeked === "$") {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.options.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === END) continue; // then the loop reports the missing quote
        if (after === '"' || after === "$" || after === this.options.escape) ch = this.next();
      }
      result += ch;
    }
  }

  /** `<<` and the blanks after it stay with the word that follows (heredoc detection). */
  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== "<") return "<";
    this.next();
    let spaces = "";
    while (this.peek() === " " || this.peek() === "\t" || this.peek() === "\r") spaces += this.next();
    return `<<${spaces}`;
  }

  private processName(): string {
    let name = "";
    while (this.peek() !== END) {
      const ch = this.peek();
      if (name === "" && /^\p{Nd}$/u.test(ch)) {
        // Positional parameter: all the digits ($10 is "10", unlike sh).
        while (/^\p{Nd}$/u.test(this.peek())) name += this.next();
        return name;
      }
      if (name === "" && SPECIAL_PARAMS.has(ch)) return this.next();
      if (!/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }

  private getVar(name: string): string | undefined {
    return this.lookup(name);
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== "{") {
      const name = this.processName();
      if (name === "") return "$";
      const value = this.getVar(name);
      if (value === undefined && this.options.skipUnsetEnv) return `$${name}`;
      return value ?? "";
    }
    this.next(); // {
    const first = this.peek();
    if (first === END) throw new ShellLexError("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") {
      throw new ShellLexError("syntax error: bad substitution");
    }
    const name = this.processName();
    let ch = this.next();
    if (ch === END) throw new ShellLexError("syntax error: missing '}'");
    if (ch === "}") {
      const value = this.getVar(name);
      if (value === undefined && this.options.skipUnsetEnv) return `\${${name}}`;
      return value ?? "";
    }
    if (ch === "/") return this.processReplace(name);

    let modifier = ch;
    const nullIsUnset = ch === ":";
    if (nullIsUnset) {
      ch = this.next();
      if (ch === END) throw new ShellLexError("syntax error: missing '}'");
      modifier += ch;
    }
    if (!["+", "-", "?", "#", "%"].includes(ch) || (nullIsUnset && (ch === "#" || ch === "%"))) {
      throw new ShellLexError(
        `unsupported modifier (${JSON.stringify(modifier).slice(1, -1)}) in substitution`,
      );
    }
    // Patterns keep their escapes: `\*` there means a literal star.
    const word = this.nested("}", ch === "#" || ch === "%", "syntax error: missing '}'");
    const value = this.getVar(name);
    if (value === undefined && this.options.skipUnsetEnv) return `\${${name}${modifier}${word}}`;
    const unset = value === undefined || (nullIsUnset && value === "");
    switch (ch) {
      case "-":
        return unset ? word : value ?? "";
      case "+":
        return unset ? "" : word;
      case "?":
        if (value === undefined) throw new ShellLexError(`${name}: ${word || "is not allowed to be unset"}`);
        if (unset) throw new ShellLexError(`${name}: ${word || "is not allowed to be empty"}`);
        return value;
      default: {
        // # and % remove the shortest matching prefix/suffix, ## and %% the longest.
        const greedy = word.startsWith(ch);
        const pattern = greedy ? word.slice(1) : word;
        return ch === "#"
          ? trimPrefix(pattern, value ?? "", greedy)
          : trimSuffix(pattern, value ?? "", greedy);
      }
    }
  }

  /** `${VAR/pattern/replacement}` (first match) and `${VAR//pattern/replacement}` (all). */
  private processReplace(name: string): string {
    const all = this.peek() === "/";
    if (all) this.next();
    const pattern = this.nested("/", true, "syntax error: missing '/' in ${}");
    const replacement = this.nested("}", true, "syntax error: missing '}'");
    const value = this.getVar(name);
    if (value === undefined && this.options.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    const re = patternRegExp(pattern, true, false, all);
    return (value ?? "").replace(re, () => replacement);
  }

  private nested(stop: string, rawEscapes: boolean, missing: string): string {
    try {
      return this.processUntil(stop, rawEscapes).result;
    } catch (err) {
      if (this.peek() === END) throw new ShellLexError(missing);
      throw err;
    }
  }
}

/**
 * A shell pattern (`*`, `?`, `\` escapes; no brackets) as a regular expression. `\}` and
 * `\/` only protect the `${}` syntax and mean `}` and `/`.
 */
function patternRegExp(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? "^" : "";
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === "*") {
      out += greedy ? "[^\\n]*" : "[^\\n]*?"; // Go's `.`: anything but a newline
    } else if (ch === "?") {
      out += "[^\\n]";
    } else if (ch === "\\") {
      const after = chars[i + 1];
      if (after === "}" || after === "/") continue;
      if (after !== "*" && after !== "?" && after !== "\\") {
        throw new ShellLexError(
          `invalid pattern (${pattern}) in substitution: invalid escape '\\${after ?? ""}'`,
        );
      }
      out += `\\${after}`;
      i++;
    } else if ("[]{}.+()|^$".includes(ch)) {
      out += `\\${ch}`;
    } else {
      out += ch;
    }
  }
  return new RegExp(out, global ? "gu" : "u");
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = patternRegExp(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Reverse a pattern keeping each escape before the character it escapes. */
function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const tokens: string[] = [];
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === "\\" && i + 1 < chars.length) {
      tokens.push(chars[i] + chars[i + 1]);
      i++;
    } else {
      tokens.push(chars[i]);
    }
  }
  return tokens.reverse().join("");
}

function reverse(text: string): string {
  return Array.from(text).reverse().join("");
}

/** The shortest/longest matching suffix is the shortest/longest prefix of the reversed text. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}
