/** `-e` and `--env-file`, as `run` and `exec` take them (Docker's flags and rules). */
import { envFileLines, envFromOption } from "../../lib/env.ts";
import { FlokaError } from "../../lib/errors.ts";

export const ENV_OPTIONS = {
  env: {
    short: "e",
    long: "env",
    value: "list",
    repeatable: true,
    help: "Set environment variables (KEY alone takes the host's value)",
  },
  envFile: {
    long: "env-file",
    value: "list",
    repeatable: true,
    help: "Read in a file of environment variables",
  },
} as const;

/** `--env-file` lines, then `-e`, as `KEY=VALUE` (a bare KEY takes the host's value or is dropped). */
export function givenEnv(opts: { env: string[]; envFile: string[] }): string[] {
  const fromFiles = opts.envFile.flatMap((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new FlokaError(`open ${file}: ${(err as Error).message}`);
    }
    return envFileLines(text);
  });
  return [...fromFiles, ...opts.env]
    .map((e) => envFromOption(e, (key) => Deno.env.get(key)))
    .filter((e) => e !== null);
}
