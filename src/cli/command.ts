/** The shape of a Floka command: its command-line spec and what it does. */
import type { CommandSpec, ParsedOptions } from "../../lib/argv.ts";
import type { GlobalOptions } from "./context.ts";

export interface Invocation<S extends CommandSpec> {
  options: ParsedOptions<S>;
  args: string[];
  globals: GlobalOptions;
}

export interface CliCommand {
  spec: CommandSpec;
  /** Runs the command; resolves to the process exit code. */
  // deno-lint-ignore no-explicit-any
  action(invocation: Invocation<any>): number | Promise<number>;
}

/** Ties a spec to its action with the option types inferred from the spec. */
export function defineCommand<const S extends CommandSpec>(
  spec: S,
  action: (invocation: Invocation<S>) => number | Promise<number>,
): CliCommand {
  return { spec, action };
}
