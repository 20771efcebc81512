/** `floka login` and `floka logout`: registry credentials, as `docker login` keeps them. */
import { FlokaError } from "../../lib/errors.ts";
import { defineCommand } from "./command.ts";
import { load } from "./lazy.ts";
import { insecureRegistries } from "./context.ts";

const DEFAULT_REGISTRY = "docker.io";

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return (await new Response(stream).text()).replace(/\r?\n$/, "");
}

/** Reads a line from the terminal; with `hidden` the typed characters are not echoed. */
function prompt(question: string, hidden: boolean): string {
  if (!Deno.stdin.isTerminal()) {
    throw new FlokaError("cannot ask for credentials: stdin is not a terminal (use -u and --password-stdin)");
  }
  Deno.stderr.writeSync(new TextEncoder().encode(question));
  if (!hidden) return globalThis.prompt("")?.trim() ?? "";
  Deno.stdin.setRaw(true);
  try {
    const buf = new Uint8Array(1);
    const bytes: number[] = [];
    while (Deno.stdin.readSync(buf) === 1 && buf[0] !== 0x0d && buf[0] !== 0x0a) {
      if (buf[0] === 0x03) throw new FlokaError("login cancelled");
      if (buf[0] === 0x7f) bytes.pop();
      else bytes.push(buf[0]);
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  }
}

export const loginCommand = defineCommand(
  {
    name: "login",
    usage: "[OPTIONS] [SERVER]",
    description: "Log in to a registry (Docker Hub when no server is given)",
    minArgs: 0,
    maxArgs: 1,
    options: {
      username: { short: "u", long: "username", value: "string", help: "Username" },
      password: { short: "p", long: "password", value: "string", help: "Password" },
      passwordStdin: { long: "password-stdin", help: "Take the password from stdin" },
    },
  },
  async ({ options, args }) => {
    const registry = args[0] ?? DEFAULT_REGISTRY;
    if (options.password !== undefined && options.passwordStdin) {
      throw new FlokaError("--password and --password-stdin are mutually exclusive");
    }
    if (options.password !== undefined) {
      console.error("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    const username = options.username ?? prompt("Username: ", false);
    const password = options.passwordStdin
      ? await readAll(Deno.stdin.readable)
      : options.password ?? prompt("Password: ", true);
    if (!username || !password) throw new FlokaError("a username and a password are needed to log in");
    const [{ RegistryClient }, { saveCredentials }] = await Promise.all([
      load<typeof import("../registry/client.ts")>("../registry/client.ts"),
      load<typeof import("../registry/credentials.ts")>("../registry/credentials.ts"),
    ]);
    const client = new RegistryClient({
      credentials: () => ({ username, password }),
      insecure: insecureRegistries(),
    });
    await client.checkLogin(registry);
    await saveCredentials(registry, username, password);
    console.log("Login Succeeded");
    return 0;
  },
);

export const logoutCommand = defineCommand(
  {
    name: "logout",
    usage: "[SERVER]",
    description: "Log out from a registry (Docker Hub when no server is given)",
    minArgs: 0,
    maxArgs: 1,
    options: {},
  },
  async ({ args }) => {
    const registry = args[0] ?? DEFAULT_REGISTRY;
    const { removeCredentials } = await load<typeof import("../registry/credentials.ts")>(
      "../registry/credentials.ts",
    );
    if (!(await removeCredentials(registry))) throw new FlokaError(`not logged in to ${registry}`);
    console.log(`Removing login credentials for ${registry}`);
    return 0;
  },
);
