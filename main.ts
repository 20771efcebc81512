/**
 * Floka's entry point. `containerize` is checked first and loads only the container setup
 * code: it runs on every container start, so it must not pay for the CLI, npm packages or
 * anything else. The specifier is computed so that Deno does not load both module graphs
 * up front (`deno compile` is told to include both).
 */
const entry = Deno.args[0] === "containerize" ? "./src/runtime/containerize_main.ts" : "./src/cli/program.ts";
const { main } = await import(entry);
if (entry.endsWith("program.ts")) Deno.exit(await main(Deno.args));
else main(Deno.args.slice(1));
