/**
 * Variable substitution on Flokafile words with errors located in the file: the lexer in
 * lex.ts with the file's escape character and a map of variables.
 */
import { flokafileError } from "./errors.ts";
import { type LexOptions, type Lookup, processWord, processWords, ShellLexError } from "./lex.ts";
import type { Location, Vars } from "./types.ts";

export function lookupIn(vars: Vars): Lookup {
  return (name) => vars.get(name);
}

function lexing<T>(word: string, location: Location | undefined, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof ShellLexError) throw flokafileError(location, err.message, word);
    throw err;
  }
}

/**
 * One word with variables expanded and quotes removed; spaces are kept (`ENV A="x y"`).
 * An unset variable expands to "". Errors (`${`, `${VAR:?msg}`) are FlokafileErrors.
 */
export function expandWord(word: string, vars: Vars, escape: string, location?: Location): string {
  return lexing(word, location, () => processWord(word, lookupIn(vars), { escape }));
}

/** The same, then split at unquoted whitespace (EXPOSE does this). */
export function expandWords(word: string, vars: Vars, escape: string, location?: Location): string[] {
  return lexing(word, location, () => processWords(word, lookupIn(vars), { escape }));
}

/** With a lookup function instead of a map (ARG defaults see earlier ARGs). */
export function expandWordWith(
  word: string,
  lookup: Lookup,
  options: LexOptions,
  location?: Location,
): string {
  return lexing(word, location, () => processWord(word, lookup, options));
}

// Every variable set and non-empty: only syntax can fail, `${VAR:?}` cannot.
const ALL_SET: Lookup = () => "x";

/** Reject a word whose substitution syntax is wrong whatever the variables (`${`, `${A:x}`). */
export function checkWordSyntax(word: string, escape: string, location: Location): void {
  if (!word.includes("$") && !word.includes("'") && !word.includes('"')) return;
  lexing(word, location, () => processWord(word, ALL_SET, { escape }));
}
