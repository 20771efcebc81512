/**
 * A real registry for tests: Debian's `docker-registry` (the CNCF distribution server, the
 * code behind Docker Hub's registry) started on a free 127.0.0.1 port with its storage in a
 * temporary directory, plus ways to fill it with images made by independent tools (umoci
 * builds the OCI image, skopeo pushes it), so Floka is tested against what other tools
 * produce rather than against itself.
 *
 * Authentication comes in the registry's two modes:
 *
 * - `htpasswd`: the registry checks Basic credentials itself against an htpasswd file
 *   (bcrypt entries only, hence `htpasswd -B`).
 * - `tokenAuth`: the registry accepts only JWTs signed by a key it trusts and sends clients
 *   to a token server (the `realm`). The token server here is a few lines of `Deno.serve`:
 *   it signs RS256 JWTs with a throwaway key whose self-signed certificate is the
 *   registry's `rootcertbundle`, and puts that certificate in the JWT's `x5c` header, which
 *   is how distribution 2.8 finds the verification key. With `htpasswd` as well, the token
 *   server demands those credentials; without, it hands anyone a token.
 *
 * Everything is torn down by `stop()`: the registry process killed and reaped, the token
 * server shut down, the temporary directory removed.
 */
import { DEFAULT_PATH } from "../../lib/env.ts";
import { makeBusyboxImage } from "../fixtures/busybox_image.ts";

export const REGISTRY_BIN = "/usr/bin/docker-registry";
const SERVICE = "floka-test-registry";
const ISSUER = "floka-test-token-issuer";

export interface UserPassword {
  user: string;
  password: string;
}

export interface RegistryOptions {
  /** Require these credentials (Basic, or at the token server with `tokenAuth`). */
  htpasswd?: UserPassword;
  /** Run a token server and make the registry demand its Bearer tokens. */
  tokenAuth?: boolean;
}

/** One request the token server answered, for tests to check what clients sent. */
export interface TokenRequest {
  authorization: string | null;
  service: string | null;
  scopes: string[];
  granted: boolean;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, as it appears in image references. */
  host: string;
  /** The token server's origin (`http://127.0.0.1:PORT`) in token mode. */
  tokenServer?: string;
  /** Requests made to the token server, oldest first. */
  tokenRequests: TokenRequest[];
  /** The credentials the registry demands, if any. */
  credentials?: UserPassword;
  /** What the registry printed (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** Whether the tools this harness needs are installed; a reason to skip if not. */
export function registryToolsMissing(): string | null {
  const missing = [REGISTRY_BIN, "/usr/bin/skopeo", "/usr/bin/umoci", "/usr/bin/htpasswd", "/usr/bin/openssl"]
    .filter((path) => {
      try {
        Deno.statSync(path);
        return false;
      } catch {
        return true;
      }
    });
  return missing.length
    ? `needs ${missing.join(", ")} (apt-get install docker-registry skopeo umoci apache2-utils openssl)`
    : null;
}

/** A port nothing listens on right now (the kernel picks it; we let go of it at once). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const decoder = new TextDecoder();

/** A self-signed RSA certificate for `commonName`, its key and certificate written as PEM. */
export async function selfSignedCert(keyPath: string, certPath: string, commonName: string): Promise<void> {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyPath,
    "-out",
    certPath,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
  ]);
}

/** Runs a command to completion, throwing with its stderr when it fails. */
export async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${decoder.decode(out.stderr).trim()}`,
    );
  }
  return decoder.decode(out.stdout);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await Deno.makeTempDir({ prefix: "floka-registry-" });
  const cleanups: (() => Promise<void>)[] = [() => Deno.remove(dir, { recursive: true })];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  try {
    return await start(dir, opts, cleanups, cleanup);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function start(
  dir: string,
  opts: RegistryOptions,
  cleanups: (() => Promise<void>)[],
  cleanup: () => Promise<void>,
): Promise<TestRegistry> {
  const port = freePort();
  const host = `127.0.0.1:${port}`;
  const tokenRequests: TokenRequest[] = [];
  let authSection = "";
  let tokenServer: string | undefined;

  if (opts.tokenAuth) {
    await selfSignedCert(`${dir}/token.key`, `${dir}/token.crt`, ISSUER);
    const signer = await jwtSigner(`${dir}/token.key`, `${dir}/token.crt`);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => tokenHandler(req, signer, opts.htpasswd, tokenRequests),
    );
    cleanups.push(() => server.shutdown());
    tokenServer = `http://127.0.0.1:${server.addr.port}`;
    authSection = `auth:
  token:
    realm: ${tokenServer}/token
    service: ${SERVICE}
    issuer: ${ISSUER}
    rootcertbundle: ${dir}/token.crt
`;
  } else if (opts.htpasswd) {
    // The registry only understands bcrypt entries.
    const line = await run("htpasswd", ["-Bbn", opts.htpasswd.user, opts.htpasswd.password]);
    await Deno.writeTextFile(`${dir}/htpasswd`, line.trim() + "\n");
    authSection = `auth:
  htpasswd:
    realm: floka-test
    path: ${dir}/htpasswd
`;
  }

  const config = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dir}/storage
  delete:
    enabled: true
http:
  addr: ${host}
${authSection}`;
  await Deno.writeTextFile(`${dir}/config.yml`, config);

  const child = new Deno.Command(REGISTRY_BIN, {
    args: ["serve", `${dir}/config.yml`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Drain its output so a chatty registry never blocks on a full pipe.
  let output = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      if (output.length < 200_000) output += decoder.decode(chunk);
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  cleanups.push(async () => {
    if (!exited) child.kill("SIGKILL");
    await status;
    await drained;
  });

  // Ready when /v2/ answers at all: 200 when open, 401 when it wants credentials.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited at startup: ${output.trim()}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${host}: ${output.trim()}`);
    await sleep(20);
  }

  return {
    host,
    tokenServer,
    tokenRequests,
    credentials: opts.htpasswd,
    log: () => output,
    stop: cleanup,
  };
}

// --- token server --------------------------------------------------------------------

type Signer = (claims: Record<string, unknown>) => Promise<string>;

function pemBody(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function base64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return base64(bytes).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
}

/** Signs JWTs RS256 with `keyFile` (PKCS#8, as openssl 3 writes it), naming `certFile` in x5c. */
async function jwtSigner(keyFile: string, certFile: string): Promise<Signer> {
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBody(await Deno.readTextFile(keyFile)),
    { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const x5c = [base64(pemBody(await Deno.readTextFile(certFile)))];
  return async (claims) => {
    const input = `${base64url(JSON.stringify({ typ: "JWT", alg: "RS256", x5c }))}.${
      base64url(JSON.stringify(claims))
    }`;
    const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, new TextEncoder().encode(input));
    return `${input}.${base64url(new Uint8Array(signature))}`;
  };
}

/**
 * Docker's token endpoint: `GET /token?service=...&scope=repository:name:actions` (scope may
 * repeat), answering `{"token", "access_token", "expires_in"}`. It grants whatever is asked:
 * the tests are about the protocol, not about a permission model.
 */
async function tokenHandler(
  req: Request,
  sign: Signer,
  required: UserPassword | undefined,
  log: TokenRequest[],
): Promise<Response> {
  const url = new URL(req.url);
  const authorization = req.headers.get("Authorization");
  const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean);
  const entry: TokenRequest = {
    authorization,
    service: url.searchParams.get("service"),
    scopes,
    granted: false,
  };
  log.push(entry);
  if (url.pathname !== "/token") return new Response("not found", { status: 404 });
  if (required) {
    const expected = `Basic ${base64(new TextEncoder().encode(`${required.user}:${required.password}`))}`;
    if (authorization !== expected) {
      return Response.json(
        { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] },
        { status: 401, headers: { "WWW-Authenticate": 'Basic realm="floka-test-token"' } },
      );
    }
  }
  const access = scopes.map((scope) => {
    // repository:<name>:<actions>; the name may itself hold a colon (host:port/...) only
    // in exotic setups, so split from both ends.
    const first = scope.indexOf(":");
    const last = scope.lastIndexOf(":");
    return {
      type: scope.slice(0, first),
      name: scope.slice(first + 1, last),
      actions: scope.slice(last + 1).split(",").filter(Boolean),
    };
  });
  const now = Math.floor(Date.now() / 1000);
  const token = await sign({
    iss: ISSUER,
    sub: required?.user ?? "",
    aud: SERVICE,
    exp: now + 300,
    nbf: now - 60,
    iat: now,
    jti: crypto.randomUUID(),
    access,
  });
  entry.granted = true;
  return Response.json({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() });
}

// --- images ---------------------------------------------------------------------------

/**
 * `umoci new` of `image` (`layout:tag`, the layout made by `umoci init`) with a config a
 * busybox shell runs with: Cmd sh, the usual PATH, linux/`architecture`.
 */
export async function umociShellImage(image: string, architecture = "amd64"): Promise<void> {
  await run("umoci", ["new", "--image", image]);
  await run("umoci", [
    "config",
    "--image",
    image,
    "--config.cmd",
    "sh",
    "--config.env",
    `PATH=${DEFAULT_PATH}`,
    "--os",
    "linux",
    "--architecture",
    architecture,
  ]);
}

export interface PushOptions {
  tag?: string;
  /** Manifest format at the destination: OCI (default) or Docker schema 2. */
  format?: "oci" | "v2s2";
  /** Layer compression at the destination (default gzip). zstd needs the OCI format. */
  compress?: "gzip" | "zstd";
  /** Credentials to push with. */
  credentials?: UserPassword;
}

export interface PushedImage {
  /** The digest of the manifest as stored in the registry. */
  digest: `sha256:${string}`;
  /** The manifest's bytes as the registry serves them. */
  manifest: Uint8Array;
  /** `host/name:tag`. */
  reference: string;
}

/**
 * Builds a one-layer busybox image with umoci and pushes it with skopeo to
 * `host/name:tag`. Each image gets a unique file (`/etc/floka-image-id`) so its layer is new
 * to every registry: otherwise skopeo reuses a blob it pushed before, in whatever
 * compression it had, and `compress: "zstd"` would quietly stay gzip.
 */
export async function pushImage(host: string, name: string, opts: PushOptions = {}): Promise<PushedImage> {
  const tag = opts.tag ?? "latest";
  const work = await Deno.makeTempDir({ prefix: "floka-push-" });
  try {
    makeBusyboxImage(`${work}/busybox`);
    const rootfs = `${work}/busybox/rootfs`;
    await Deno.writeTextFile(`${rootfs}/etc/floka-image-id`, `${crypto.randomUUID()}\n`);
    const layout = `${work}/layout`;
    await run("umoci", ["init", "--layout", layout]);
    await umociShellImage(`${layout}:${tag}`);
    await run("umoci", ["insert", "--image", `${layout}:${tag}`, rootfs, "/"]);
    const reference = `${host}/${name}:${tag}`;
    const args = [
      "--insecure-policy", // a test registry has no signatures to check
      "copy",
      "--quiet",
      "--dest-tls-verify=false",
      "--digestfile",
      `${work}/digest`,
    ];
    if (opts.format) args.push("--format", opts.format);
    if (opts.compress === "zstd") args.push("--dest-compress-format", "zstd");
    args.push(
      opts.credentials
        ? `--dest-creds=${opts.credentials.user}:${opts.credentials.password}`
        : "--dest-no-creds",
    );
    args.push(`oci:${layout}:${tag}`, `docker://${reference}`);
    await run("skopeo", args);
    const digest = (await Deno.readTextFile(`${work}/digest`)).trim() as `sha256:${string}`;
    const inspectArgs = ["inspect", "--raw", "--tls-verify=false"];
    inspectArgs.push(
      opts.credentials ? `--creds=${opts.credentials.user}:${opts.credentials.password}` : "--no-creds",
    );
    inspectArgs.push(`docker://${reference}`);
    const raw = await new Deno.Command("skopeo", { args: inspectArgs, stdout: "piped", stderr: "piped" })
      .output();
    if (!raw.success) throw new Error(`skopeo inspect ${reference} failed: ${decoder.decode(raw.stderr)}`);
    return { digest, manifest: raw.stdout, reference };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}
