/**
 * How a registry tells a client to authenticate, and how the client answers.
 *
 * A registry that wants credentials answers `401 Unauthorized` with a `WWW-Authenticate`
 * header (RFC 7235) holding one or more challenges:
 *
 * - `Basic realm="..."`: send `Authorization: Basic base64(user:password)` on every request.
 * - `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:x:pull"`:
 *   the registry does not check passwords itself. The client asks the token server named by
 *   `realm` for a short-lived token covering a *scope* (`repository:<name>:pull`), anonymously
 *   or with Basic credentials, receives JSON `{"token": ...}` (or OAuth2's `access_token`),
 *   and repeats the request with `Authorization: Bearer <token>`. This is the flow of Docker
 *   Hub, GHCR, Quay and the CNCF distribution server in token mode.
 *
 * The header grammar is looser than it looks: commas separate both parameters and challenges,
 * quoted values may contain commas and backslash-escaped quotes, names are case-insensitive,
 * and a scheme may carry a bare token68 instead of parameters. The parser here accepts all of
 * that and never throws: a header it cannot make sense of yields fewer challenges, and the
 * caller then reports the 401 as it is.
 */

/** One challenge of a `WWW-Authenticate` header. */
export interface Challenge {
  /** The scheme, lowercased: `bearer`, `basic`, ... */
  scheme: string;
  /** Parameters by lowercased name, values unquoted and unescaped. */
  params: Record<string, string>;
  /** A bare token68 credential hint (`Negotiate abc==`), when the scheme carries one. */
  token68?: string;
}

/** Username and password for a registry, as `floka login` stores them. */
export interface Credentials {
  username: string;
  password: string;
}

/** RFC 7230 `tchar`: the characters of a token (scheme and parameter names, bare values). */
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
/** RFC 7235 token68 characters, before its optional trailing `=` padding. */
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

/**
 * Parses a `WWW-Authenticate` header value (or several joined with commas, which is what
 * `Headers.get` returns when a response carries the header more than once).
 */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  const s = header;
  let i = 0;
  let current: Challenge | null = null;

  const skipSpace = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\t")) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i])) i++;
    return s.slice(start, i);
  };
  /**
   * An unquoted value. The grammar says token, but servers in the wild send URLs unquoted
   * (`realm=https://...`), so it runs to the next comma or space instead.
   */
  const readBare = (): string => {
    const start = i;
    while (i < s.length && s[i] !== "," && s[i] !== " " && s[i] !== "\t") i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    // s[i] is the opening quote. An unterminated string runs to the end of the header: a
    // truncated header is more useful read generously than thrown away.
    i++;
    let value = "";
    while (i < s.length && s[i] !== '"') {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      value += s[i];
      i++;
    }
    i++; // the closing quote (or one past the end)
    return value;
  };
  /** A token68 right after a scheme: token68 characters, `=` padding, then end or comma. */
  const tryToken68 = (): string | null => {
    let j = i;
    while (j < s.length && TOKEN68_CHAR.test(s[j])) j++;
    if (j === i) return null;
    while (j < s.length && s[j] === "=") j++;
    let k = j;
    while (k < s.length && (s[k] === " " || s[k] === "\t")) k++;
    // Followed by anything but the end or a comma, it was the name of a parameter. `abc=`
    // followed by a comma is a padded token68: a parameter needs a non-empty value.
    if (k < s.length && s[k] !== ",") return null;
    const text = s.slice(i, j);
    i = j;
    return text;
  };

  while (i < s.length) {
    skipSpace();
    if (s[i] === ",") {
      i++;
      continue;
    }
    if (s[i] === '"') {
      readQuoted(); // a stray quoted string: skip it whole, commas and all
      continue;
    }
    const name = readToken();
    if (!name) {
      // A character no grammar rule allows here: skip it rather than loop or give up.
      i++;
      continue;
    }
    skipSpace();
    if (s[i] === "=" && current) {
      // `name=value`: a parameter of the challenge being read.
      i++;
      skipSpace();
      const value = s[i] === '"' ? readQuoted() : readBare();
      const key = name.toLowerCase();
      // The first occurrence wins: a duplicated parameter is an error in the header, and
      // letting a later copy override an earlier one would let an appended value win.
      if (!(key in current.params)) current.params[key] = value;
      continue;
    }
    if (s[i] === "=") {
      // A parameter before any scheme: nothing to attach it to. Skip its value.
      i++;
      skipSpace();
      if (s[i] === '"') readQuoted();
      else readBare();
      continue;
    }
    // Otherwise `name` is a scheme starting a new challenge.
    current = { scheme: name.toLowerCase(), params: {} };
    challenges.push(current);
    const token68 = tryToken68();
    if (token68 !== null) current.token68 = token68;
  }
  return challenges;
}

/** The `Authorization` value for Basic credentials. */
export function basicAuthorization(creds: Credentials): string {
  return `Basic ${base64Utf8(`${creds.username}:${creds.password}`)}`;
}

/** Base64 of a string's UTF-8 bytes (`btoa` alone only takes Latin-1). */
export function base64Utf8(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** The scope a client needs to pull from a repository. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/**
 * The URL to ask a Bearer challenge's token server for a token covering `scope`, or null
 * when the challenge has no usable realm. Only http(s) realms are accepted: the realm comes
 * from the network, and any other scheme would make `fetch` read something else (`file:`).
 */
export function tokenRequestUrl(challenge: Challenge, scope: string): URL | null {
  const realm = challenge.params.realm;
  if (!realm) return null;
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    return null;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return null;
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  // A login check asks for no scope: only whether the credentials are good.
  if (scope) url.searchParams.set("scope", scope);
  return url;
}

/** A token from a token server, with when it stops being worth sending. */
export interface BearerToken {
  token: string;
  /** Milliseconds since the epoch; Infinity when the server did not say. */
  expiresAt: number;
}

/**
 * Reads a token server's JSON answer. Docker's token spec calls the field `token`, OAuth2
 * calls it `access_token`; servers send one or both. `expires_in` is in seconds; the token
 * is treated as expired a little early so a request is not sent with one about to lapse.
 * Returns null when the answer holds no token.
 */
export function parseTokenResponse(body: unknown, now = Date.now()): BearerToken | null {
  if (typeof body !== "object" || body === null) return null;
  const record = body as Record<string, unknown>;
  const token = typeof record.token === "string" && record.token
    ? record.token
    : typeof record.access_token === "string" && record.access_token
    ? record.access_token
    : null;
  if (!token) return null;
  const expiresIn = typeof record.expires_in === "number" && record.expires_in > 0 ? record.expires_in : null;
  const margin = 10;
  const expiresAt = expiresIn === null ? Infinity : now + Math.max(expiresIn - margin, 1) * 1000;
  return { token, expiresAt };
}
