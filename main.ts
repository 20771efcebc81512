/**
 * Floka's entry point. `containerize` is checked first and loads only the container setup
 * code: it runs on every container start, so it must not pay for the CLI, npm packages or
 * anything else.
 */
if (Deno.args[0] === "containerize") {
  const { main } = await import("./src/runtime/containerize_main.ts");
  main(Deno.args.slice(1));
} else {
  const { main } = await import("./src/cli/program.ts");
  Deno.exit(await main(Deno.args));
}
