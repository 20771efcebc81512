/**
 * Splitting one logical line (continuations already joined) the way BuildKit's parser does
 * before any variable is known: the keyword, the leading `--flags`, and the arguments as
 * JSON, whitespace-separated words, or quote-aware words.
 */
import { isSpace } from "./lex.ts";

/** Docker splits arguments at these (no newline: a logical line has none). */
const WHITESPACE = /[\t\v\f\r ]+/;

export interface SplitLine {
  /** The keyword as written. */
  keyword: string;
  /** `--name[=value]` words with quotes and escapes removed, in order. */
  flags: string[];
  /** The rest of the line after the flags, trimmed. */
  rest: string;
}

/** Go's strings.TrimSpace. */
export function trimSpace(text: string): string {
  const chars = Array.from(text);
  let start = 0;
  let end = chars.length;
  while (start < end && isSpace(chars[start])) start++;
  while (end > start && isSpace(chars[end - 1])) end--;
  return chars.slice(start, end).join("");
}

export function trimLeftSpace(text: string): string {
  const chars = Array.from(text);
  let start = 0;
  while (start < chars.length && isSpace(chars[start])) start++;
  return chars.slice(start).join("");
}

/** `RUN --network=none echo hi` -> keyword RUN, flags [--network=none], rest `echo hi`. */
export function splitLine(line: string, escape: string): SplitLine {
  const trimmed = trimSpace(line);
  const m = WHITESPACE.exec(trimmed);
  if (!m) return { keyword: trimmed, flags: [], rest: "" };
  const keyword = trimmed.slice(0, m.index);
  const { flags, rest } = extractFlags(trimmed.slice(m.index + m[0].length), escape);
  return { keyword, flags, rest: trimSpace(rest) };
}

/**
 * Leading words that start with `--` are flags; the first other word (or a lone `--`)
 * ends them. Quotes group and are removed; the escape character makes the next one literal.
 */
export function extractFlags(text: string, escape: string): { flags: string[]; rest: string } {
  const chars = Array.from(text);
  const flags: string[] = [];
  let i = 0;
  for (;;) {
    while (i < chars.length && isSpace(chars[i])) i++;
    if (i >= chars.length) return { flags, rest: "" };
    if (chars[i] !== "-" || chars[i + 1] !== "-") return { flags, rest: chars.slice(i).join("") };
    let word = "";
    let quote = "";
    let quoted = false; // `--x=""` is a word even though it is empty after quote removal
    while (i < chars.length) {
      const ch = chars[i];
      if (quote === "" && isSpace(ch)) break;
      i++;
      if (quote !== "" && ch === quote) {
        quote = "";
      } else if (quote === "" && (ch === "'" || ch === '"')) {
        quote = ch;
        quoted = true;
      } else if (ch === escape) {
        if (i < chars.length) word += chars[i++];
        else if (quote !== "") quote = ""; // an escape at the end closes nothing, as Docker
      } else {
        word += ch;
      }
    }
    if (word === "--") return { flags, rest: chars.slice(i).join("") };
    if (quoted || word !== "") flags.push(word);
  }
}

/**
 * Quote-aware words for ENV, LABEL and ARG: split at unquoted whitespace, quotes and
 * escapes kept as written (expansion removes them later).
 */
export function parseWords(text: string, escape: string): string[] {
  const chars = Array.from(text);
  const words: string[] = [];
  let buf = "";
  let inWord = false;
  let quote = "";
  let blankOk = false; // a quoted empty string is still a word
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i];
    if (!inWord) {
      if (isSpace(ch)) continue;
      inWord = true;
    }
    if (quote === "") {
      if (isSpace(ch)) {
        if (blankOk || buf !== "") words.push(buf);
        buf = "";
        blankOk = false;
        inWord = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
      } else if (ch === escape) {
        if (i + 1 === chars.length) continue; // a trailing escape is dropped
        buf += ch;
        ch = chars[++i];
      }
      buf += ch;
      continue;
    }
    if (ch === quote) {
      quote = "";
    } else if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        quote = "";
        continue;
      }
      buf += ch;
      ch = chars[++i];
    }
    buf += ch;
  }
  if (inWord && (blankOk || buf !== "")) words.push(buf);
  return words;
}

/** Split at runs of whitespace (FROM, EXPOSE, and the non-JSON COPY, ADD, VOLUME). */
export function splitWhitespace(text: string): string[] {
  return text === "" ? [] : text.split(WHITESPACE);
}

/** A JSON array whose elements are not all strings: Docker rejects it outright. */
export class NotStringArrayError extends Error {
  constructor() {
    super("when using JSON array syntax, arrays must be comprised of strings only");
  }
}

/**
 * The exec form: a JSON array of strings, or null when the text is not a valid JSON array
 * (then Docker takes it as shell form). Throws NotStringArrayError for e.g. `[1, 2]`.
 */
export function parseJsonArray(text: string): string[] | null {
  const trimmed = trimLeftSpace(text);
  if (!trimmed.startsWith("[")) return null;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return null;
  }
  if (!Array.isArray(value)) return null;
  if (!value.every((v) => typeof v === "string")) throw new NotStringArrayError();
  return value as string[];
}
