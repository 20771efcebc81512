/**
 * Loads a module (given relative to src/cli/) only when a command needs it. The specifier
 * goes through a variable so that Deno does not build that module's graph at start-up: the
 * pull chain reaches npm packages, whose resolution alone cost every `floka run` about 3 ms.
 * `deno task compile` includes `src/` so the binary has these modules too.
 */
export function load<T>(specifier: string): Promise<T> {
  return import(new URL(specifier, import.meta.url).href);
}
