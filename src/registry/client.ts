/**
 * A client for the OCI distribution API (registry v2): manifests and blobs, pulled and
 * pushed (the push side: HEAD a blob, mount it from another repository or upload it in one
 * PUT or in PATCHed chunks, then PUT the manifest).
 *
 * A registry stores content-addressed blobs (layers, configs) and manifests that name them
 * by digest, under repository names:
 *
 *     GET /v2/<repository>/manifests/<tag or digest>   the image's manifest or index
 *     GET /v2/<repository>/blobs/<digest>              a layer or config, by content
 *
 * Nothing a registry sends is trusted. A manifest fetched by digest must hash to that digest;
 * one fetched by tag is named by the hash of its bytes (checked against the registry's
 * `Docker-Content-Digest`), and from then on every blob it lists is named by digest, so the
 * caller that verifies each blob while streaming it (this client hands out streams) has
 * verified the whole image from one hash. The manifest's media type is checked against what
 * the registry claims, because a document read as the wrong kind could be made to mean
 * something else.
 *
 * Around that core sits what a real registry needs: the `WWW-Authenticate` dance (Bearer
 * tokens from a token server, or Basic credentials; see auth.ts), blob downloads redirected
 * to storage elsewhere (S3, a CDN) whose signed URLs must not receive the registry's
 * `Authorization` header, retries of server errors with backoff, and failures reported as
 * one line that says what to do about them.
 */
import { type Digest, isDigest, sha256 } from "../../lib/digest.ts";
import { FlokaError, oneLine } from "../../lib/errors.ts";
import { INDEX_TYPES, MANIFEST_TYPES, MediaType } from "../../lib/oci.ts";
import { isInsecureRegistry, type Reference, registryEndpoint } from "../../lib/reference.ts";
import { VERSION } from "../version.ts";
import {
  basicAuthorization,
  type BearerToken,
  type Challenge,
  parseTokenResponse,
  parseWwwAuthenticate,
  pullScope,
  tokenRequestUrl,
} from "./auth.ts";
import type { CredentialLookup } from "./credentials.ts";

/** A registry failure, with a one-line message meant for the user (exit code 125). */
export class RegistryError extends FlokaError {
  constructor(message: string) {
    super(message);
    this.name = "RegistryError";
  }
}

/** A request that got no answer in time; retried like a dropped connection. */
class TimeoutError extends Error {}

/** A manifest or index as the registry sent it, with its verified digest and media type. */
export interface FetchedManifest {
  mediaType: string;
  digest: Digest;
  bytes: Uint8Array;
}

export interface RegistryClientOptions {
  /** Where credentials come from (see credentials.ts); none means anonymous pulls only. */
  credentials?: CredentialLookup;
  /** Registries to reach over plain HTTP, besides the loopback ones. */
  insecure?: readonly string[];
  /** The fetch to use; tests pass a recording one. */
  fetch?: typeof fetch;
  /** How many times a request is repeated after a 5xx or a dropped connection (default 3). */
  retries?: number;
  /** Delay before the first retry in ms, doubled for each further one (default 500). */
  backoffMs?: number;
  /**
   * How long to wait for a response's headers, in ms (default 30 s). A body is not timed:
   * a large layer on a slow link legitimately takes long.
   */
  timeoutMs?: number;
}

/** The manifest kinds Floka can use, in the order it prefers them. */
const ACCEPTED_MANIFEST_TYPES: readonly string[] = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
];

/**
 * Registries must accept manifests of at least 4 MiB and need not store larger ones; reading
 * more than that from a response would let a hostile server fill memory.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Error bodies are read only this far: enough for any real message. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;
const MAX_REDIRECTS = 10;
const USER_AGENT = `floka/${VERSION}`;
/** The distribution spec's tag and repository-name grammar. */
const TAG = /^[\w][\w.-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** The repository name goes into URL paths and token scopes: only the spec's grammar. */
function checkRepository(ref: Reference): void {
  if (!REPOSITORY.test(ref.repository)) {
    throw new RegistryError(`invalid repository name ${JSON.stringify(ref.repository)} for ${ref.registry}`);
  }
}

/** What a request is for, to word its errors. */
interface Subject {
  ref: Reference;
  /** The reference as the user would write it, for messages. */
  shown: string;
  kind: "manifest" | "blob";
  digest?: Digest;
  /** What the request is for, to word a refusal; "pull" when absent. */
  action?: "pull" | "push";
}

/** Per-request authentication state, so each way of answering a 401 is tried once. */
interface AuthAttempt {
  fetchedToken: boolean;
  sentBasic: boolean;
  sentCredentials: boolean;
  /** The Bearer token sent last, to tell a stale cached token from one refreshed meanwhile. */
  sentToken: string | null;
}

/** An AuthAttempt before anything was sent. */
function newAuthAttempt(): AuthAttempt {
  return { fetchedToken: false, sentBasic: false, sentCredentials: false, sentToken: null };
}

export class RegistryClient {
  readonly #credentials: CredentialLookup;
  readonly #insecure: readonly string[];
  readonly #fetch: typeof fetch;
  readonly #retries: number;
  readonly #backoffMs: number;
  readonly #timeoutMs: number;
  /** Bearer tokens by registry and scope, kept for the client's life (or their expiry). */
  readonly #tokens = new Map<string, BearerToken>();
  /** Token requests in flight, by the same key. */
  readonly #pendingTokens = new Map<string, Promise<BearerToken>>();
  /** Registries known to want Basic credentials: sent up front to spare a 401 each time. */
  readonly #basicRegistries = new Set<string>();

  constructor(opts: RegistryClientOptions = {}) {
    this.#credentials = opts.credentials ?? (() => null);
    this.#insecure = opts.insecure ?? [];
    this.#fetch = opts.fetch ?? fetch;
    this.#retries = Math.max(0, opts.retries ?? 3);
    this.#backoffMs = Math.max(0, opts.backoffMs ?? 500);
    this.#timeoutMs = Math.max(1, opts.timeoutMs ?? 30_000);
  }

  /**
   * Fetches a manifest or index by tag or digest (default: the reference's digest, else its
   * tag, else `latest`), verifying its digest and media type.
   */
  async getManifest(ref: Reference, digestOrTag?: string): Promise<FetchedManifest> {
    checkRepository(ref);
    const wanted = digestOrTag ?? ref.digest ?? ref.tag ?? "latest";
    const byDigest = wanted.includes(":");
    // The tag becomes part of a URL path: `..` or `/` in it would address something else.
    if (!byDigest && !TAG.test(wanted)) {
      throw new RegistryError(`invalid tag ${JSON.stringify(wanted)} for ${ref.registry}/${ref.repository}`);
    }
    if (byDigest && !isDigest(wanted)) {
      throw new RegistryError(
        `invalid manifest digest ${JSON.stringify(wanted)} for ${ref.registry}/${ref.repository}: ` +
          "expected sha256:<64 hex digits>",
      );
    }
    const shown = `${ref.registry}/${ref.repository}${byDigest ? "@" : ":"}${wanted}`;
    const subject: Subject = { ref, shown, kind: "manifest" };
    const res = await this.#get(subject, `manifests/${wanted}`, {
      Accept: ACCEPTED_MANIFEST_TYPES.join(", "),
    });
    const bytes = await readLimited(
      res,
      MAX_MANIFEST_BYTES,
      () => new RegistryError(`manifest ${shown} is larger than ${MAX_MANIFEST_BYTES} bytes; refusing it`),
    );
    const digest = await sha256(bytes);

    if (byDigest && digest !== wanted) {
      throw new RegistryError(
        `manifest digest mismatch for ${shown}: the registry sent content with digest ${digest}`,
      );
    }
    const claimed = res.headers.get("Docker-Content-Digest")?.trim();
    // Only a sha256 claim can be checked; a registry naming another algorithm is not lying,
    // and the computed sha256 is what Floka names the manifest by anyway.
    if (claimed && claimed.startsWith("sha256:") && claimed !== digest) {
      throw new RegistryError(
        `manifest digest mismatch for ${shown}: the registry says ${claimed} but the content is ${digest}`,
      );
    }
    const mediaType = manifestMediaType(bytes, res.headers.get("Content-Type"), shown);
    return { mediaType, digest, bytes };
  }

  /**
   * Opens a blob for streaming. The caller must verify the bytes against `digest` as it reads
   * them (and must read or cancel the stream). `size` is the announced length, if any.
   */
  async getBlob(
    ref: Reference,
    digest: Digest,
  ): Promise<{ body: ReadableStream<Uint8Array>; size: number | null }> {
    checkRepository(ref);
    if (!isDigest(digest)) {
      throw new RegistryError(
        `invalid blob digest ${JSON.stringify(digest)}: expected sha256:<64 hex digits>`,
      );
    }
    const shown = `${ref.registry}/${ref.repository}@${digest}`;
    const subject: Subject = { ref, shown, kind: "blob", digest };
    // Identity encoding: a transparently gunzipped response would no longer match its digest.
    const res = await this.#get(subject, `blobs/${digest}`, { "Accept-Encoding": "identity" });
    const claimed = res.headers.get("Docker-Content-Digest")?.trim();
    if (claimed && claimed.startsWith("sha256:") && claimed !== digest) {
      await res.body?.cancel();
      throw new RegistryError(`blob digest mismatch for ${shown}: the registry says it sent ${claimed}`);
    }
    if (!res.body) throw new RegistryError(`the registry sent no content for blob ${shown}`);
    const length = res.headers.get("Content-Length");
    const encoding = res.headers.get("Content-Encoding");
    const size = length !== null && /^\d+$/.test(length) && (!encoding || encoding === "identity")
      ? Number(length)
      : null;
    return { body: res.body, size };
  }

  /** The registry's origin: `https://host[:port]`, or `http://` for insecure registries. */
  /**
   * Checks that the credentials the lookup gives for `registry` are accepted, as
   * `docker login` does: `GET /v2/`, answering its challenge with them (Basic, or a Bearer
   * token fetched with them and no scope).
   */
  async checkLogin(registry: string): Promise<void> {
    const creds = this.#credentials(registry);
    if (!creds) throw new RegistryError(`no credentials to check for ${registry}`);
    const url = new URL(`${this.#origin(registry)}/v2/`);
    const subject: Subject = { ref: { registry, repository: "" }, shown: registry, kind: "manifest" };
    const failed = (why: string) => new RegistryError(`login to ${registry} failed: ${why}`);
    let { res } = await this.#send(url, {}, null, registry);
    if (res.status === 401) {
      const challenges = parseWwwAuthenticate(res.headers.get("WWW-Authenticate") ?? "");
      await res.body?.cancel();
      const bearer = challenges.find((c) => c.scheme === "bearer");
      let authorization = basicAuthorization(creds);
      if (bearer) {
        try {
          authorization = `Bearer ${(await this.#fetchToken(bearer, subject, "")).token}`;
        } catch (err) {
          if (err instanceof RegistryError && err.message.startsWith("unauthorized")) {
            throw failed("unauthorized: incorrect username or password");
          }
          throw err;
        }
      }
      ({ res } = await this.#send(url, {}, authorization, registry));
    }
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403) {
      throw failed("unauthorized: incorrect username or password");
    }
    if (!res.ok) throw failed(`${res.status} ${res.statusText}`);
  }

  // --- push: the upload side of the distribution API ------------------------------------

  /**
   * Whether `ref`'s repository already holds the blob: `HEAD /v2/<name>/blobs/<digest>`.
   * A redirect (to storage elsewhere) means it does.
   */
  async blobExists(ref: Reference, digest: Digest): Promise<boolean> {
    const subject = pushSubject(ref, "blob", digest);
    const url = new URL(`${this.#origin(ref.registry)}/v2/${ref.repository}/blobs/${digest}`);
    const res = await this.#pushRequest(subject, "HEAD", url, {}, null, pushScope(ref.repository), true);
    if (res.status === 404) {
      await res.body?.cancel();
      return false;
    }
    if (res.ok || (res.status >= 300 && res.status < 400)) {
      await res.body?.cancel();
      return true;
    }
    throw await pushStatusError(res, subject, `the check for blob ${digest}`);
  }

  /**
   * Starts a blob upload: `POST /v2/<name>/blobs/uploads/`. With `mount`, asks the registry
   * to link the blob from another repository it holds instead (201: done); a registry that
   * cannot (202) starts an ordinary upload, whose location is returned.
   */
  async startUpload(
    ref: Reference,
    mount?: { digest: Digest; from: string },
  ): Promise<{ mounted: true } | { mounted: false; location: URL }> {
    const subject = pushSubject(ref, "blob", mount?.digest);
    const url = new URL(`${this.#origin(ref.registry)}/v2/${ref.repository}/blobs/uploads/`);
    let scope = pushScope(ref.repository);
    if (mount) {
      checkRepository({ registry: ref.registry, repository: mount.from });
      checkDigest(mount.digest);
      url.searchParams.set("mount", mount.digest);
      url.searchParams.set("from", mount.from);
      // One token covering both repositories, as Docker asks for it.
      scope = `${scope} ${pullScope(mount.from)}`;
    }
    const res = await this.#pushRequest(subject, "POST", url, {}, new Uint8Array(), scope, true);
    if (res.status === 201 && mount) {
      await res.body?.cancel();
      return { mounted: true };
    }
    if (res.status === 202 || res.status === 201) {
      await res.body?.cancel();
      // Without a Location, the upload's UUID names it at the path the spec gives.
      const uuid = res.headers.get("Docker-Upload-UUID")?.trim();
      const location = res.headers.get("Location") ??
        (uuid && /^[\w.-]+$/.test(uuid) ? `/v2/${ref.repository}/blobs/uploads/${uuid}` : null);
      return { mounted: false, location: resolveLocation(location, url) };
    }
    throw await pushStatusError(res, subject, mount ? `the mount of blob ${mount.digest}` : "a blob upload");
  }

  /**
   * Sends one chunk of an upload (`PATCH`, `Content-Range: <first>-<last>`) and returns where
   * the upload continues. The registry's `Range` answer must cover exactly what was sent.
   */
  async uploadChunk(
    ref: Reference,
    location: URL,
    chunk: Uint8Array<ArrayBuffer>,
    offset: number,
    digest?: Digest,
  ): Promise<URL> {
    const subject = pushSubject(ref, "blob", digest);
    const last = offset + chunk.length - 1;
    const res = await this.#pushRequest(
      subject,
      "PATCH",
      location,
      {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${offset}-${last}`,
      },
      chunk,
      pushScope(ref.repository),
      false,
    );
    if (res.status !== 202) {
      throw await pushStatusError(
        res,
        subject,
        `the upload of ${digest ?? "a blob"} (bytes ${offset}-${last})`,
      );
    }
    await res.body?.cancel();
    const end = rangeEnd(res.headers.get("Range"));
    if (end !== null && end !== last) {
      throw new RegistryError(
        `${ref.registry} stored bytes 0-${end} of ${digest ?? "a blob"} after receiving 0-${last}; giving up`,
      );
    }
    const next = res.headers.get("Location");
    return next ? resolveLocation(next, location) : location;
  }

  /**
   * Ends an upload: `PUT <location>?digest=<digest>`, with the whole blob (a monolithic
   * upload) or nothing more (after chunks). The registry verifies the digest itself.
   */
  async finishUpload(
    ref: Reference,
    location: URL,
    digest: Digest,
    body: Uint8Array<ArrayBuffer> = new Uint8Array(),
  ): Promise<void> {
    const subject = pushSubject(ref, "blob", digest);
    checkDigest(digest);
    const url = withDigestParam(location, digest);
    const res = await this.#pushRequest(
      subject,
      "PUT",
      url,
      {
        "Content-Type": "application/octet-stream",
      },
      body,
      pushScope(ref.repository),
      false,
    );
    if (res.status !== 201 && res.status !== 204) {
      throw await pushStatusError(res, subject, `the upload of blob ${digest}`);
    }
    await res.body?.cancel();
    const claimed = res.headers.get("Docker-Content-Digest")?.trim();
    if (claimed && claimed.startsWith("sha256:") && claimed !== digest) {
      throw new RegistryError(`${ref.registry} stored blob ${digest} as ${claimed}`);
    }
  }

  /**
   * Stores a manifest under `tag`: `PUT /v2/<name>/manifests/<tag>` with its media type as
   * Content-Type. Returns the digest the registry says it stored (`Docker-Content-Digest`),
   * or null when it says none.
   */
  async putManifest(
    ref: Reference,
    tag: string,
    mediaType: string,
    bytes: Uint8Array<ArrayBuffer>,
  ): Promise<string | null> {
    checkRepository(ref);
    if (!TAG.test(tag)) {
      throw new RegistryError(`invalid tag ${JSON.stringify(tag)} for ${ref.registry}/${ref.repository}`);
    }
    const subject: Subject = {
      ref,
      shown: `${ref.registry}/${ref.repository}:${tag}`,
      kind: "manifest",
      action: "push",
    };
    const url = new URL(`${this.#origin(ref.registry)}/v2/${ref.repository}/manifests/${tag}`);
    const res = await this.#pushRequest(
      subject,
      "PUT",
      url,
      { "Content-Type": mediaType },
      bytes,
      pushScope(ref.repository),
      true,
    );
    if (res.status !== 201 && res.status !== 200 && res.status !== 204) {
      throw await pushStatusError(res, subject, `manifest ${subject.shown}`);
    }
    await res.body?.cancel();
    return res.headers.get("Docker-Content-Digest")?.trim() || null;
  }

  /**
   * One push-side request, answering authentication challenges for `scope` as #get does.
   * The Authorization header goes only to the registry's own origin (an upload location
   * may point elsewhere). Returns any other response for the caller to judge.
   */
  async #pushRequest(
    subject: Subject,
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: Uint8Array<ArrayBuffer> | null,
    scope: string,
    retryable: boolean,
  ): Promise<Response> {
    const registry = subject.ref.registry;
    const origin = new URL(this.#origin(registry)).origin;
    const attempt = newAuthAttempt();
    for (;;) {
      const ours = url.origin === origin;
      const authorization = ours ? this.#authorizationFor(registry, scope, attempt) : null;
      const res = await this.#sendBody(method, url, headers, body, authorization, retryable);
      if (res.status === 401 && ours) {
        const challenges = parseWwwAuthenticate(res.headers.get("WWW-Authenticate") ?? "");
        const errorText = await registryErrorText(res);
        if (await this.#answerChallenges(challenges, subject, scope, attempt)) continue;
        throw unauthorized(subject, attempt.sentCredentials, errorText);
      }
      return res;
    }
  }

  /**
   * One request with a body, redirects not followed (an upload answers 201/202, never 3xx
   * that Floka should chase). Only requests that are safe to repeat are retried after a 5xx
   * or a dropped connection: a PATCH may have been half applied.
   */
  async #sendBody(
    method: string,
    url: URL,
    headers: Record<string, string>,
    body: Uint8Array<ArrayBuffer> | null,
    authorization: string | null,
    retryable: boolean,
  ): Promise<Response> {
    // Sending a body takes time the header timeout must not cut short (100 kB/s allowed).
    const timeoutMs = this.#timeoutMs + (body ? Math.ceil(body.length / 100) : 0);
    const { res } = await this.#retrying(retryable, () => url.host, async () => {
      const h = new Headers({ "User-Agent": USER_AGENT, ...headers });
      if (authorization) h.set("Authorization", authorization);
      return {
        res: await this.#fetchTimed(url, { method, headers: h, body, redirect: "manual" }, timeoutMs),
      };
    });
    return res;
  }

  /**
   * Runs `once` again after a dropped connection, a timeout or a 5xx answer (when
   * `retryable`, at most `retries` times, with doubling delays). A RegistryError is final;
   * other failures become one line naming `host()`, the host last spoken to.
   */
  async #retrying<T extends { res: Response }>(
    retryable: boolean,
    host: () => string,
    once: () => Promise<T>,
  ): Promise<T> {
    for (let attempt = 0;; attempt++) {
      const retry = retryable && attempt < this.#retries;
      let result: T;
      try {
        result = await once();
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        if (retry && (err instanceof TimeoutError || isTransientNetworkError(err))) {
          await sleep(this.#backoffMs * 2 ** attempt);
          continue;
        }
        if (err instanceof TimeoutError) throw new RegistryError(`${err.message} (${attempt + 1} attempts)`);
        throw networkError(host(), err);
      }
      if (result.res.status >= 500 && retry) {
        await result.res.body?.cancel();
        await sleep(this.#backoffMs * 2 ** attempt);
        continue;
      }
      return result;
    }
  }

  #origin(registry: string): string {
    const scheme = isInsecureRegistry(registry, this.#insecure) ? "http" : "https";
    return `${scheme}://${registryEndpoint(registry)}`;
  }

  /**
   * GETs `/v2/<repository>/<path>`, answering authentication challenges, and returns the
   * successful response (body unread) or throws a RegistryError.
   */
  async #get(subject: Subject, path: string, extraHeaders: Record<string, string>): Promise<Response> {
    const { ref } = subject;
    const origin = this.#origin(ref.registry);
    const url = new URL(`${origin}/v2/${ref.repository}/${path}`);
    const scope = pullScope(ref.repository);
    const attempt = newAuthAttempt();
    for (;;) {
      const authorization = this.#authorizationFor(ref.registry, scope, attempt);
      const { res, finalUrl } = await this.#send(url, extraHeaders, authorization, ref.registry);
      if (res.status === 401 && finalUrl.origin === url.origin) {
        const challenges = parseWwwAuthenticate(res.headers.get("WWW-Authenticate") ?? "");
        const errorText = await registryErrorText(res);
        if (await this.#answerChallenges(challenges, subject, scope, attempt)) continue;
        // Docker Hub answers a pull of a repository that does not exist like one of a
        // private repository, so as not to reveal which private ones exist.
        const insufficientScope = challenges.some((c) => c.params.error === "insufficient_scope");
        throw unauthorized(subject, attempt.sentCredentials, errorText, insufficientScope);
      }
      if (!res.ok) {
        const elsewhere = finalUrl.origin === url.origin ? null : finalUrl.host;
        throw await statusError(res, subject, elsewhere, this.#retries);
      }
      return res;
    }
  }

  /** The Authorization header to send to the registry, from what earlier 401s taught. */
  #authorizationFor(registry: string, scope: string, attempt: AuthAttempt): string | null {
    const key = tokenKey(registry, scope);
    const token = this.#tokens.get(key);
    if (token) {
      if (token.expiresAt > Date.now()) {
        attempt.sentToken = token.token;
        return `Bearer ${token.token}`;
      }
      this.#tokens.delete(key);
    }
    if (this.#basicRegistries.has(registry)) {
      const creds = this.#credentials(registry);
      if (creds) {
        attempt.sentBasic = true;
        attempt.sentCredentials = true;
        return basicAuthorization(creds);
      }
    }
    return null;
  }

  /**
   * Acts on a 401's challenges; true when the request is worth repeating. Bearer is preferred
   * when a registry offers both, as Docker does: it never sends the password to the registry.
   */
  async #answerChallenges(
    challenges: Challenge[],
    subject: Subject,
    scope: string,
    attempt: AuthAttempt,
  ): Promise<boolean> {
    const registry = subject.ref.registry;
    const bearer = challenges.find((c) => c.scheme === "bearer");
    if (bearer) {
      // A token fetched for this very request and still refused will not improve; a cached
      // one may simply have been revoked or expired early, so it earns one fresh fetch.
      if (attempt.fetchedToken) return false;
      const key = tokenKey(registry, scope);
      const cached = this.#tokens.get(key);
      // Another request (a parallel layer download) already replaced the token we sent.
      if (cached && cached.token !== attempt.sentToken) return true;
      this.#tokens.delete(key);
      attempt.sentCredentials ||= this.#credentials(registry) !== null;
      // Parallel requests that meet the same 401 share one trip to the token server.
      let pending = this.#pendingTokens.get(key);
      if (!pending) {
        pending = this.#fetchToken(bearer, subject, scope).finally(() => this.#pendingTokens.delete(key));
        this.#pendingTokens.set(key, pending);
      }
      const token = await pending;
      attempt.fetchedToken = true;
      this.#tokens.set(key, token);
      return true;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      if (attempt.sentBasic || !this.#credentials(registry)) return false;
      this.#basicRegistries.add(registry);
      return true;
    }
    return false;
  }

  /** Asks a Bearer challenge's token server for a pull token, with credentials if known. */
  async #fetchToken(challenge: Challenge, subject: Subject, scope: string): Promise<BearerToken> {
    const registry = subject.ref.registry;
    const url = tokenRequestUrl(challenge, scope);
    if (!url) {
      throw new RegistryError(
        `registry ${registry} asked for a Bearer token without a usable realm ` +
          `(${JSON.stringify(challenge.params.realm ?? "")})`,
      );
    }
    const creds = this.#credentials(registry);
    let authorization: string | null = null;
    if (creds) {
      // A password goes over plain HTTP only where the user accepted plain HTTP anyway.
      if (url.protocol === "http:" && !isInsecureRegistry(url.host, this.#insecure)) {
        throw new RegistryError(
          `registry ${registry} sends credentials to a plain-HTTP token server ${url.host}; refusing`,
        );
      }
      authorization = basicAuthorization(creds);
    }
    const { res } = await this.#send(url, {}, authorization, registry);
    if (res.status === 401 || res.status === 403) {
      const errorText = await registryErrorText(res);
      throw unauthorized(subject, creds !== null, errorText);
    }
    if (!res.ok) {
      const errorText = await registryErrorText(res);
      throw new RegistryError(
        `token server ${url.host} answered ${res.status} ${res.statusText} for ${registry}` +
          (errorText ? `: ${errorText}` : ""),
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(await readLimited(res, MAX_ERROR_BODY_BYTES, null)));
    } catch {
      body = null;
    }
    const token = parseTokenResponse(body);
    if (!token) throw new RegistryError(`token server ${url.host} sent no token for ${registry}`);
    return token;
  }

  /** fetch, giving up when no response headers arrive in time (the timer ends with them). */
  #fetchWithTimeout(url: URL, headers: Headers): Promise<Response> {
    return this.#fetchTimed(url, { headers, redirect: "manual" }, this.#timeoutMs);
  }

  /** fetch with `init`, giving up when no response headers arrive within `timeoutMs`. */
  async #fetchTimed(url: URL, init: RequestInit, timeoutMs: number): Promise<Response> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await this.#fetch(url, { ...init, signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) {
        const limit = timeoutMs < 1000 ? `${timeoutMs} ms` : `${timeoutMs / 1000} s`;
        throw new TimeoutError(`${url.host} did not answer within ${limit}`);
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One GET, following redirects by hand so the `Authorization` header goes only to the
   * origin it was meant for: a blob redirected to a signed storage URL must not hand that
   * storage the user's registry token (and the storage would reject the request besides).
   * 5xx answers and dropped connections are repeated from the start, with doubling delays:
   * a signed URL from a failed attempt may already be stale. Returns the last response.
   */
  async #send(
    start: URL,
    headers: Record<string, string>,
    authorization: string | null,
    registry: string,
  ): Promise<{ res: Response; finalUrl: URL }> {
    let url = start;
    return await this.#retrying(true, () => url.host, async () => {
      url = start;
      let redirects = 0;
      for (;;) {
        const h = new Headers({ "User-Agent": USER_AGENT, ...headers });
        if (authorization && url.origin === start.origin) h.set("Authorization", authorization);
        const res = await this.#fetchWithTimeout(url, h);
        const location = res.headers.get("Location");
        if (res.status < 300 || res.status >= 400 || !location) return { res, finalUrl: url };
        await res.body?.cancel();
        if (++redirects > MAX_REDIRECTS) {
          throw new RegistryError(`too many redirects fetching from ${registry} (last: ${url.host})`);
        }
        const next = new URL(location, url);
        if (next.protocol !== "https:" && next.protocol !== "http:") {
          throw new RegistryError(`${url.host} redirected to an unsupported URL scheme ${next.protocol}`);
        }
        url = next;
      }
    });
  }
}

function tokenKey(registry: string, scope: string): string {
  return `${registry}\n${scope}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The manifest's media type: the body's `mediaType` field, else the Content-Type header.
 * When both are known manifest types they must agree, and the document's shape must match
 * the type (an index lists manifests, a manifest has a config and layers): reading one kind
 * of document as another is how manifest-confusion attacks work.
 */
function manifestMediaType(bytes: Uint8Array, contentType: string | null, shown: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new RegistryError(`invalid manifest for ${shown}: the registry sent something that is not JSON`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new RegistryError(`invalid manifest for ${shown}: not a JSON object`);
  }
  const record = doc as Record<string, unknown>;
  const header = contentType?.split(";")[0].trim().toLowerCase() || null;
  const field = typeof record.mediaType === "string" ? record.mediaType : null;
  const headerIsManifest = header !== null && ACCEPTED_MANIFEST_TYPES.includes(header);
  // A generic Content-Type (application/json, octet-stream) says nothing; only a manifest
  // type in the header is a claim the body can contradict.
  if (field !== null && headerIsManifest && field !== header) {
    throw new RegistryError(
      `invalid manifest for ${shown}: media type ${field} in the body disagrees with Content-Type ${header}`,
    );
  }
  const mediaType = field ?? (headerIsManifest ? header : null);
  if (mediaType === null) {
    throw new RegistryError(
      `invalid manifest for ${shown}: no media type (Content-Type ${header ?? "missing"})`,
    );
  }
  if (!ACCEPTED_MANIFEST_TYPES.includes(mediaType)) {
    throw new RegistryError(`unsupported manifest media type ${mediaType} for ${shown}`);
  }
  if (record.schemaVersion !== 2) {
    throw new RegistryError(
      `invalid manifest for ${shown}: schemaVersion ${JSON.stringify(record.schemaVersion)}, expected 2`,
    );
  }
  const isIndex = INDEX_TYPES.includes(mediaType);
  const shapeOk = isIndex
    ? Array.isArray(record.manifests)
    : MANIFEST_TYPES.includes(mediaType) && typeof record.config === "object" &&
      record.config !== null && Array.isArray(record.layers);
  if (!shapeOk) {
    throw new RegistryError(
      `invalid manifest for ${shown}: the document does not have the shape of ${mediaType}`,
    );
  }
  return mediaType;
}

/** Reads a response body whole, throwing `tooLarge()` (or truncating if null) past `limit`. */
async function readLimited(
  res: Response,
  limit: number,
  tooLarge: (() => Error) | null,
): Promise<Uint8Array<ArrayBuffer>> {
  const announced = Number(res.headers.get("Content-Length") ?? NaN);
  if (tooLarge && announced > limit) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel();
        if (tooLarge) throw tooLarge();
        chunks.push(value.subarray(0, value.length - (total - limit)));
        total = limit;
        break;
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof RegistryError) throw err;
    throw new RegistryError(
      `connection to ${new URL(res.url || "http://registry").host} broke: ${(err as Error).message}`,
    );
  } finally {
    reader.releaseLock();
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * The registry's own explanation from an error body, `{"errors":[{"code","message"}]}`, as
 * `message` (or the code spelled as words), or null when the body holds none.
 */
async function registryErrorText(res: Response): Promise<string | null> {
  let text: string;
  try {
    text = new TextDecoder().decode(await readLimited(res, MAX_ERROR_BODY_BYTES, null));
  } catch {
    return null;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  const errors = (body as { errors?: unknown })?.errors;
  if (!Array.isArray(errors)) {
    // Token servers speak OAuth2: {"error": "...", "error_description": "..."}.
    const record = body as Record<string, unknown> | null;
    const oauth = record?.error_description ?? record?.error ?? record?.details;
    return typeof oauth === "string" && oauth ? oneLine(oauth) : null;
  }
  const parts: string[] = [];
  for (const e of errors) {
    if (typeof e !== "object" || e === null) continue;
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof message === "string" && message) parts.push(oneLine(message));
    else if (typeof code === "string" && code) parts.push(code.toLowerCase().replaceAll("_", " "));
  }
  return parts.length ? parts.join("; ") : null;
}

function unauthorized(
  subject: Subject,
  sentCredentials: boolean,
  detail: string | null,
  insufficientScope = false,
): RegistryError {
  const registry = subject.ref.registry;
  const what = subject.kind === "blob" ? `${registry}/${subject.ref.repository}` : subject.shown;
  // "authentication required" from the registry repeats the message's own words.
  const said = detail && !/^authentication required$/i.test(detail) ? `: ${detail}` : "";
  const why = sentCredentials
    ? ` (the saved credentials were rejected${said})`
    : insufficientScope
    ? " (or the repository does not exist)"
    : "";
  if (subject.action === "push") {
    return new RegistryError(
      `denied: authentication required to push to ${registry}/${subject.ref.repository}` +
        ` — run 'floka login ${registry}'${sentCredentials ? why : ""}`,
    );
  }
  return new RegistryError(
    `unauthorized: authentication required to pull ${what}; run 'floka login ${registry}'${why}`,
  );
}

/** The error for a final non-2xx response (401s with a challenge are handled before). */
async function statusError(
  res: Response,
  subject: Subject,
  redirectedTo: string | null,
  retries: number,
): Promise<RegistryError> {
  const registry = subject.ref.registry;
  const detail = await registryErrorText(res);
  const from = redirectedTo === null ? registry : `${redirectedTo} (redirected from ${registry})`;
  switch (res.status) {
    case 401:
      return unauthorized(subject, false, detail);
    case 403:
      return new RegistryError(
        `denied: ${from} refused access to ${subject.shown}${detail ? `: ${detail}` : ""}`,
      );
    case 404:
      return subject.kind === "manifest"
        ? new RegistryError(`manifest unknown: ${subject.shown} not found in ${registry}`)
        : new RegistryError(
          `blob unknown: ${subject.digest} not found in ${registry}/${subject.ref.repository}`,
        );
    case 429:
      return new RegistryError(
        `toomanyrequests: rate limited by ${registry}; retry after ${
          retryAfter(res.headers.get("Retry-After"))
        }`,
      );
  }
  const attempts = res.status >= 500 ? ` after ${retries + 1} attempts` : "";
  return new RegistryError(
    `${from} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ""} for ${subject.shown}` +
      `${attempts}${detail ? `: ${detail}` : ""}`,
  );
}

/** Retry-After is either delay-seconds or an HTTP date. */
function retryAfter(value: string | null): string {
  const text = value?.trim();
  if (!text) return "a while (the registry did not say how long)";
  if (/^\d+$/.test(text)) return `${text} second${text === "1" ? "" : "s"}`;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? oneLine(text) : date.toUTCString();
}

/** Whether a fetch failure may go away by itself (worth a retry), unlike DNS, refusal, TLS. */
function isTransientNetworkError(err: unknown): boolean {
  const text = errorChain(err);
  return /connection reset|connection closed|broken pipe|unexpected eof|timed out|incomplete message/i.test(
    text,
  ) && !/refused|dns error|certificate|tls/i.test(text);
}

/** The message of an error and its causes, joined: Deno puts the useful part in `cause`. */
function errorChain(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ");
}

/** A fetch failure as one line naming the host and what went wrong. */
function networkError(host: string, err: unknown): RegistryError {
  const chain = errorChain(err);
  // Deno's messages nest: "fetch failed: error sending request for url (...): client error
  // (Connect): tcp connect error: Connection refused (os error 111)". Keep the innermost part.
  const detail = chain
    .replace(/^.*\bclient error \([^)]*\): /s, "")
    .replace(/^.*error sending request for url \([^)]*\): /s, "")
    .replace(/^fetch failed: /, "")
    .trim();
  if (/dns error|failed to lookup address|name or service not known|no address associated/i.test(chain)) {
    const hostname = host.replace(/:\d+$/, "");
    return new RegistryError(
      `unknown host ${hostname}: cannot resolve its address (${detail.replace(/^dns error: /, "")})`,
    );
  }
  if (/connection refused/i.test(chain)) {
    return new RegistryError(`connection refused by ${host}: is the registry running and is the port right?`);
  }
  if (/certificate|tls|ssl|handshake|InvalidContentType|corrupt message|alert/i.test(chain)) {
    const hint = /InvalidContentType|corrupt message/i.test(chain)
      ? " (is it a plain-HTTP registry? list it as insecure)"
      : "";
    return new RegistryError(`TLS handshake with ${host} failed: ${detail}${hint}`);
  }
  if (/timed out/i.test(chain)) return new RegistryError(`connection to ${host} timed out`);
  return new RegistryError(`cannot reach ${host}: ${detail}`);
}

// --- push helpers ----------------------------------------------------------------------

/** The scope a client needs to push to a repository (Docker asks for pull as well). */
export function pushScope(repository: string): string {
  return `repository:${repository}:push,pull`;
}

function checkDigest(digest: Digest): void {
  if (!isDigest(digest)) {
    throw new RegistryError(`invalid blob digest ${JSON.stringify(digest)}: expected sha256:<64 hex digits>`);
  }
}

function pushSubject(ref: Reference, kind: "blob" | "manifest", digest?: Digest): Subject {
  checkRepository(ref);
  if (digest !== undefined) checkDigest(digest);
  const shown = `${ref.registry}/${ref.repository}${digest ? `@${digest}` : ""}`;
  return { ref, shown, kind, digest, action: "push" };
}

/**
 * Where an upload continues: a `Location` header, absolute or relative to the request it
 * answers (distribution sends `/v2/<name>/blobs/uploads/<uuid>?_state=...`).
 */
export function resolveLocation(location: string | null, base: URL): URL {
  if (!location?.trim()) {
    throw new RegistryError(`${base.host} started an upload but sent no Location to continue it at`);
  }
  let url: URL;
  try {
    url = new URL(location.trim(), base);
  } catch {
    throw new RegistryError(`${base.host} sent an unusable upload Location ${JSON.stringify(location)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new RegistryError(`${base.host} sent an upload Location with scheme ${url.protocol}`);
  }
  return url;
}

/** `location` with `digest=<digest>` added to its query, keeping what is there (`_state`). */
export function withDigestParam(location: URL, digest: string): URL {
  const url = new URL(location);
  const query = url.search.replace(/^\?/, "");
  url.search = `${query ? `${query}&` : ""}digest=${encodeURIComponent(digest)}`;
  return url;
}

/** The last byte a registry says it holds, from `Range: 0-<last>` (or `bytes=0-<last>`). */
export function rangeEnd(range: string | null): number | null {
  const m = /^(?:bytes=)?\s*0-(\d+)\s*$/.exec(range ?? "");
  return m ? Number(m[1]) : null;
}

/** The error for a push request's final non-2xx response. */
async function pushStatusError(res: Response, subject: Subject, what: string): Promise<RegistryError> {
  const registry = subject.ref.registry;
  const repo = `${registry}/${subject.ref.repository}`;
  const detail = res.body ? await registryErrorText(res) : null;
  const said = detail ? `: ${detail}` : "";
  switch (res.status) {
    case 401:
      return unauthorized(subject, false, detail);
    case 403:
      return new RegistryError(`denied: ${registry} refused to let you push to ${repo}${said}`);
    case 404:
      return new RegistryError(`name unknown: ${registry} has no repository ${repo} to push to${said}`);
    case 429:
      return new RegistryError(
        `toomanyrequests: rate limited by ${registry}; retry after ${
          retryAfter(res.headers.get("Retry-After"))
        }`,
      );
  }
  if (res.status === 400 || res.status === 415) {
    return new RegistryError(
      `${registry} rejected ${what}${
        said || ` (${res.status}${res.statusText ? ` ${res.statusText}` : ""})`
      }`,
    );
  }
  return new RegistryError(
    `${registry} answered ${res.status}${res.statusText ? ` ${res.statusText}` : ""} to ${what}${said}`,
  );
}
