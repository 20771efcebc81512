/**
 * Shared pieces of the property-based (fuzz) tests: seeds that are printed and can be
 * replayed, the run count, the "Floka's own error or nothing" check, and mutations of
 * valid inputs.
 *
 * Every property prints one line when it starts:
 *
 *     fuzz reference parse: seed=1234 runs=1000 (replay: FLOKA_FUZZ_SEED=1234 FLOKA_FUZZ_RUNS=1000 deno test --allow-all tests/fuzz/)
 *
 * and a failure repeats that command with the counterexample. `FLOKA_FUZZ_SEED=<n>` gives
 * every property that seed (the same seed and run count replay the same inputs);
 * `FLOKA_FUZZ_RUNS=<n>` sets every property's number of runs, for longer local runs (each
 * property has its own default, small enough that the folder stays fast).
 */
import fc from "fast-check";
import { FlokaError } from "../../lib/errors.ts";

const seedText = Deno.env.get("FLOKA_FUZZ_SEED");
const runsText = Deno.env.get("FLOKA_FUZZ_RUNS");

function parseIntEnv(name: string, text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  if (!/^-?\d+$/.test(text)) throw new Error(`${name} must be an integer, not ${JSON.stringify(text)}`);
  return Number(text);
}

const fixedSeed = parseIntEnv("FLOKA_FUZZ_SEED", seedText);
const fixedRuns = parseIntEnv("FLOKA_FUZZ_RUNS", runsText);

/** The seed of one property: FLOKA_FUZZ_SEED, else a fresh one (a 32-bit integer). */
function seedOf(): number {
  return fixedSeed ?? ((Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0);
}

export function replayHint(seed: number, runs: number): string {
  return `FLOKA_FUZZ_SEED=${seed} FLOKA_FUZZ_RUNS=${runs} deno test --allow-all tests/fuzz/`;
}

/** Runs of a property: FLOKA_FUZZ_RUNS when set, else the property's default. */
export function runsOf(defaultRuns: number): number {
  return fixedRuns ?? defaultRuns;
}

/**
 * Checks `property` with a printed seed; a failure throws with fast-check's report (the
 * counterexample, shrunk) and the command that replays it.
 */
export async function checkProperty<Ts>(
  name: string,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  defaultRuns: number,
): Promise<void> {
  const seed = seedOf();
  const numRuns = runsOf(defaultRuns);
  console.log(`fuzz ${name}: seed=${seed} runs=${numRuns} (replay: ${replayHint(seed, numRuns)})`);
  const details = await fc.check(property as fc.IAsyncProperty<Ts>, { seed, numRuns });
  if (details.failed) {
    const report = fc.defaultReportMessage(details) ?? "property failed";
    const error = details.errorInstance;
    const why = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw new Error(
      `fuzz ${name} failed with seed ${seed}.\nReplay: ${replayHint(seed, numRuns)}\n` +
        `(fast-check path: ${details.counterexamplePath ?? "-"})\n${report}\nError: ${why}`,
      { cause: error },
    );
  }
}

/** The outcome of calling `fn`: its value, or the FlokaError it threw; anything else is rethrown. */
export function flokaOutcome<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: FlokaError } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof FlokaError) return { ok: false, error: err };
    throw crash(err);
  }
}

export async function flokaOutcomeAsync<T>(
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: FlokaError }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (err instanceof FlokaError) return { ok: false, error: err };
    throw crash(err);
  }
}

/** A thrown value that is not a FlokaError: a crash, reported with its kind and stack. */
function crash(err: unknown): Error {
  const kind = err instanceof Error ? err.name : typeof err;
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return new Error(`crash: a ${kind} instead of a FlokaError: ${detail}`, { cause: err });
}

/**
 * Messages that betray a JavaScript failure wrapped into a FlokaError (the unpacker turns
 * every error into one): a TypeError's text is not a clear error either.
 */
const JS_FAILURE =
  /Cannot read propert|Cannot set propert|is not a function|is not iterable|is not defined|Maximum call stack|Invalid array length|undefined \(reading|null \(reading/;

export function assertClearMessage(error: FlokaError): void {
  if (JS_FAILURE.test(error.message)) {
    throw new Error(`a FlokaError that wraps a JavaScript failure: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Mutations: a valid input with a few random edits.

type Edit =
  | { op: "insert"; at: number; text: string }
  | { op: "delete"; at: number; length: number }
  | { op: "duplicate"; at: number; length: number }
  | { op: "replace"; at: number; text: string };

function editArb(piece: fc.Arbitrary<string>): fc.Arbitrary<Edit> {
  const at = fc.nat({ max: 10_000 });
  const length = fc.integer({ min: 1, max: 8 });
  return fc.oneof(
    fc.record({ op: fc.constant("insert" as const), at, text: piece }),
    fc.record({ op: fc.constant("delete" as const), at, length }),
    fc.record({ op: fc.constant("duplicate" as const), at, length }),
    fc.record({ op: fc.constant("replace" as const), at, text: piece }),
  );
}

function applyEdit(text: string, edit: Edit): string {
  const at = edit.at % (text.length + 1);
  switch (edit.op) {
    case "insert":
      return text.slice(0, at) + edit.text + text.slice(at);
    case "delete":
      return text.slice(0, at) + text.slice(at + edit.length);
    case "duplicate":
      return text.slice(0, at + edit.length) + text.slice(at, at + edit.length) +
        text.slice(at + edit.length);
    case "replace":
      return text.slice(0, at) + edit.text + text.slice(at + edit.text.length);
  }
}

/** `base` with up to `maxEdits` edits whose inserted text comes from `piece`. */
export function mutated(
  base: fc.Arbitrary<string>,
  piece: fc.Arbitrary<string>,
  maxEdits = 4,
): fc.Arbitrary<string> {
  return fc.tuple(base, fc.array(editArb(piece), { minLength: 1, maxLength: maxEdits }))
    .map(([text, edits]) => edits.reduce(applyEdit, text));
}

/** Strings made of `units` (each one character or a short string). */
export function stringOf(units: readonly string[], maxLength = 40): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...units), maxLength });
}

/** Text of any code points, lone surrogates and control characters included. */
export function anyText(maxLength = 60): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: "binary", maxLength }),
    fc.string({ unit: "grapheme", maxLength }),
    fc.string({ maxLength }),
  );
}
