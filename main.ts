/**
 * Floka's entry point. The commands Floka runs itself (`containerize` on every container
 * start, `supervise` for a detached container) are dispatched first and load only their
 * own code: they must not pay for the CLI, npm packages or anything else. The specifier is
 * computed so that Deno does not load the module graphs up front (`deno compile` is told
 * to include them all).
 */
const INTERNAL: Record<string, string> = {
  containerize: "./src/runtime/containerize_main.ts",
  supervise: "./src/runtime/supervisor_main.ts",
  "exec-inside": "./src/runtime/exec_main.ts", // the inside of `floka exec`
  "network-release": "./src/network/release_main.ts", // CNI DEL after a container's last run
};
const internal = INTERNAL[Deno.args[0]];
const { main } = await import(internal ?? "./src/cli/program.ts");
Deno.exit(await main(internal ? Deno.args.slice(1) : Deno.args));
