/**
 * How Floka starts itself again (`floka containerize`): the compiled binary runs itself;
 * from source, Deno runs main.ts with no config, lock file or npm resolution, which the
 * containerize path does not need and which would only slow every container start.
 */
export function selfCommand(args: string[]): { program: string; args: string[] } {
  if (Deno.build.standalone) return { program: Deno.execPath(), args };
  const main = new URL("../../main.ts", import.meta.url).pathname;
  return {
    program: Deno.execPath(),
    args: ["run", "--allow-all", "--no-config", "--no-lock", "--quiet", main, ...args],
  };
}
