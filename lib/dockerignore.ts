/**
 * `.dockerignore` rules: which paths of a build context `floka build` leaves out, with the
 * rules of Docker's `moby/patternmatcher` (and its `ignorefile` reader):
 *
 * - one pattern a line; a line starting with `#` is a comment, blank lines are skipped,
 *   each pattern is trimmed, `filepath.Clean`ed, and a leading `/` is dropped;
 * - `*` matches any run of characters but `/`, `?` one character but `/`, `[...]` a class
 *   (`[^...]` negated, `a-z` ranges), `\x` the character x, `**` any number of directories
 *   (`**` at the start makes a suffix match, `dir/**` a prefix match);
 * - a pattern that matches a directory also matches everything below it;
 * - `!pattern` is an exception: the last pattern that matches a path (or one of its parent
 *   directories) decides, so `docs` then `!docs/README.md` keeps only the README of docs.
 *
 * Paths are relative to the context, `/`-separated. The context root itself is never
 * ignored. This module also holds Go's `filepath.Match` for COPY's wildcard sources, since
 * both share the pattern syntax.
 */
import { FlokaError } from "./errors.ts";

/** One compiled pattern. */
export interface IgnorePattern {
  /** The cleaned pattern, without its `!`. */
  readonly pattern: string;
  /** An exception (`!pattern`): a path it matches is kept again. */
  readonly exception: boolean;
  /** Whether the pattern itself (not a parent rule) matches `path`. */
  readonly matches: (path: string) => boolean;
}

/** A parsed ignore file, in file order. */
export interface IgnoreRules {
  readonly patterns: readonly IgnorePattern[];
  readonly hasExceptions: boolean;
}

/**
 * What matching a directory learned, handed to matchPath for its children so that each
 * pattern is tested once per path instead of once per parent: `hits[i]` says whether
 * pattern i matched the directory or one of its parents.
 */
export interface MatchState {
  readonly hits: readonly boolean[];
}

const UTF8_BOM = "\uFEFF";

/** The rules of an ignore file's text. Throws a FlokaError naming a malformed pattern. */
export function parseIgnore(text: string): IgnoreRules {
  const lines: string[] = [];
  const raw = text.startsWith(UTF8_BOM) ? text.slice(1) : text;
  for (const line of raw.split(/\r?\n/)) {
    // A comment is recognised before trimming, as Docker does: " # x" is a pattern.
    if (line.startsWith("#")) continue;
    let pattern = line.trim();
    if (pattern === "") continue;
    const exception = pattern.startsWith("!");
    if (exception) pattern = pattern.slice(1).trim();
    if (pattern !== "") {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    }
    lines.push(exception ? "!" + pattern : pattern);
  }
  return compileIgnore(lines);
}

/** Rules from patterns as `docker build` takes them (also fit for `COPY --exclude`). */
export function compileIgnore(patterns: readonly string[]): IgnoreRules {
  const compiled: IgnorePattern[] = [];
  for (const text of patterns) {
    let pattern = text.trim();
    if (pattern === "") continue;
    pattern = cleanPath(pattern);
    const exception = pattern.startsWith("!");
    if (exception) {
      if (pattern.length === 1) throw new FlokaError(`illegal exclusion pattern: "!"`);
      pattern = pattern.slice(1);
    }
    compiled.push({ pattern, exception, matches: compilePattern(pattern) });
  }
  return { patterns: compiled, hasExceptions: compiled.some((p) => p.exception) };
}

/**
 * Whether `relPath` is ignored, and the state to pass when matching its children. Without
 * `parent`, the parent directories of `relPath` are matched here.
 */
export function matchPath(
  rules: IgnoreRules,
  relPath: string,
  parent?: MatchState,
): { ignored: boolean; state: MatchState } {
  const path = normalize(relPath);
  if (path === "") return { ignored: false, state: { hits: rules.patterns.map(() => false) } };
  const ancestors = parent ? [] : parentsOf(path);
  const hits = rules.patterns.map((p, i) =>
    (parent ? parent.hits[i] : ancestors.some(p.matches)) || p.matches(path)
  );
  return { ignored: lastHitIgnores(rules, hits), state: { hits } };
}

/** Whether `relPath` (relative to the context) is left out of it. */
export function isIgnored(rules: IgnoreRules, relPath: string): boolean {
  return matchPath(rules, relPath).ignored;
}

/**
 * Whether an exception could match something below the directory `dirPath`, so that an
 * ignored directory must still be walked. Errs on the side of yes for `**`, classes and
 * escapes, whose reach is hard to bound.
 */
export function mayContainExceptions(rules: IgnoreRules, dirPath: string): boolean {
  if (!rules.hasExceptions) return false;
  const dir = normalize(dirPath);
  const dirParts = dir === "" ? [] : dir.split("/");
  return rules.patterns.some((p) => p.exception && mayMatchBelow(p.pattern, dirParts));
}

function mayMatchBelow(pattern: string, dirParts: readonly string[]): boolean {
  if (/\*\*|\[|\\/.test(pattern)) return true;
  // Without `**`, a pattern of N components matches only paths of N components.
  const parts = pattern.split("/");
  if (parts.length <= dirParts.length) return false;
  return dirParts.every((name, i) => globMatch(parts[i], name));
}

/** The ruling of the last pattern that hit: an exception keeps the path. */
function lastHitIgnores(rules: IgnoreRules, hits: readonly boolean[]): boolean {
  for (let i = hits.length - 1; i >= 0; i--) {
    if (hits[i]) return !rules.patterns[i].exception;
  }
  return false;
}

/** `a/b/c` -> [`a`, `a/b`]. */
function parentsOf(path: string): string[] {
  const out: string[] = [];
  for (let at = path.indexOf("/"); at !== -1; at = path.indexOf("/", at + 1)) out.push(path.slice(0, at));
  return out;
}

/** A context-relative path as the matcher wants it: cleaned, no leading `/`, "" for the root. */
function normalize(relPath: string): string {
  return cleanPath("/" + relPath).slice(1);
}

// ---------------------------------------------------------------------------------------
// Paths and patterns.

/** Go's `filepath.Clean` for `/` paths: no `.`, no `x/..`, no doubled or trailing `/`. */
export function cleanPath(path: string): string {
  const rooted = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part !== "..") out.push(part);
    else if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (!rooted) out.push("..");
  }
  const joined = out.join("/");
  return rooted ? "/" + joined : joined || ".";
}

/** Whether a COPY source has wildcards (`*`, `?`, `[`) that are not escaped with `\`. */
export function hasWildcards(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const ch = path[i];
    if (ch === "\\") i++;
    else if (ch === "*" || ch === "?" || ch === "[") return true;
  }
  return false;
}

const globCache = new Map<string, RegExp>();

/**
 * Go's `filepath.Match(pattern, name)`: `*` and `?` never match `/`, `[...]` classes,
 * `\x` escapes. Throws a FlokaError for a malformed pattern.
 */
export function globMatch(pattern: string, name: string): boolean {
  let re = globCache.get(pattern);
  if (!re) {
    re = new RegExp(`^${translate(pattern, false).source}$`, "u");
    globCache.set(pattern, re);
  }
  return re.test(name);
}

/** How a dockerignore pattern is tested: patternmatcher's four kinds. */
function compilePattern(pattern: string): (path: string) => boolean {
  const { source, kind } = translate(pattern, true);
  switch (kind) {
    case "exact":
      return (path) => path === pattern;
    case "prefix": {
      const prefix = pattern.slice(0, -2); // without the trailing `**`
      return (path) => path.startsWith(prefix);
    }
    case "suffix": {
      // A leading `**` followed by plain text: `**/foo` matches `foo` and `x/y/foo`.
      const suffix = pattern.slice(2);
      return (path) => path.endsWith(suffix) || (suffix.startsWith("/") && path === suffix.slice(1));
    }
    case "regexp": {
      const re = new RegExp(`^${source}$`, "u");
      return (path) => re.test(path);
    }
  }
}

type PatternKind = "exact" | "prefix" | "suffix" | "regexp";

/**
 * A pattern as a regular expression source, and the kind of test patternmatcher would use
 * for it. With `globstar`, `**` spans directories (dockerignore); without, it is two `*`.
 */
function translate(pattern: string, globstar: boolean): { source: string; kind: PatternKind } {
  const chars = Array.from(pattern);
  let source = "";
  let kind: PatternKind = "exact";
  let i = 0;
  while (i < chars.length) {
    const start = i;
    const ch = chars[i];
    if (ch === "*" && globstar && chars[i + 1] === "*") {
      i += chars[i + 2] === "/" ? 3 : 2; // `**/` is `**`
      if (i < chars.length) {
        source += "(?:.*/)?";
        kind = "regexp";
      } else if (kind === "exact") {
        kind = "prefix";
      } else {
        source += ".*";
        kind = "regexp";
      }
      if (start === 0) kind = "suffix"; // later wildcards turn it back into a regexp
      continue;
    }
    i++;
    if (ch === "*") {
      source += "[^/]*";
      kind = "regexp";
    } else if (ch === "?") {
      source += "[^/]";
      kind = "regexp";
    } else if (ch === "[") {
      const cls = readClass(chars, i, pattern);
      source += cls.source;
      i = cls.next;
      kind = "regexp";
    } else if (ch === "\\") {
      if (i >= chars.length) throw badPattern(pattern);
      source += escapeRe(chars[i++]);
      kind = "regexp";
    } else {
      source += escapeRe(ch);
    }
  }
  return { source, kind };
}

/** A `[...]` class starting after its `[`, with filepath.Match's rules; never matches `/`. */
function readClass(
  chars: readonly string[],
  start: number,
  pattern: string,
): { source: string; next: number } {
  let i = start;
  const negated = chars[i] === "^";
  if (negated) i++;
  let items = "";
  for (let count = 0;; count++) {
    if (i >= chars.length) throw badPattern(pattern);
    if (chars[i] === "]" && count > 0) {
      i++;
      break;
    }
    const lo = classChar(chars, i, pattern);
    i = lo.next;
    if (chars[i] !== "-") {
      items += escapeClass(lo.ch);
      continue;
    }
    const hi = classChar(chars, i + 1, pattern);
    i = hi.next;
    // A reversed range matches nothing in Go; JavaScript would reject it.
    if (lo.ch.codePointAt(0)! <= hi.ch.codePointAt(0)!) {
      items += `${escapeClass(lo.ch)}-${escapeClass(hi.ch)}`;
    }
  }
  return { source: negated ? `[^/${items}]` : items ? `[${items}]` : "[]", next: i };
}

/** One character of a class: `\x` is x; `-` and `]` cannot start a range. */
function classChar(chars: readonly string[], i: number, pattern: string): { ch: string; next: number } {
  const ch = chars[i];
  if (ch === undefined || ch === "-" || ch === "]") throw badPattern(pattern);
  if (ch !== "\\") return { ch, next: i + 1 };
  if (i + 1 >= chars.length) throw badPattern(pattern);
  return { ch: chars[i + 1], next: i + 2 };
}

function escapeRe(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? "\\" + ch : ch;
}

function escapeClass(ch: string): string {
  return /[\\\]\[^-]/.test(ch) ? "\\" + ch : ch;
}

function badPattern(pattern: string): FlokaError {
  return new FlokaError(`syntax error in pattern ${JSON.stringify(pattern)}`);
}
