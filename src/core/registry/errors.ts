import { type ErrorCode, StowageError } from '../errors';
import { displayProxy } from './proxy';

/** What a request was about, for messages: "registry 127.0.0.1:5000, repository team/app". */
export interface RequestContext {
  registry: string;
  repository?: string;
  /** What was asked for, e.g. "manifest v1", "blob sha256:…", "tags". */
  what: string;
  /** A push's request ("upload of blob …"): messages say "… failed", not "Failed to fetch …". */
  write?: boolean;
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

/** An error code as registries spell them (DENIED, MANIFEST_UNKNOWN, TOOMANYREQUESTS). */
const ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Parses a Distribution error body (`{"errors":[{"code","message"}]}`); tolerant of anything else.
 * What it says goes into messages: a code only when it is one, the message cut short and without
 * control characters (a terminal would act on them: clear the screen, set its title).
 */
export function parseErrorBody(text: string): { code?: string; message?: string } {
  try {
    const body = JSON.parse(text) as RegistryErrorBody;
    const first = Array.isArray(body.errors) ? body.errors[0] : undefined;
    if (first && typeof first === 'object') {
      const message =
        typeof first.message === 'string'
          ? first.message
              .slice(0, 300)
              .replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ')
              .trim()
          : '';
      return {
        ...(typeof first.code === 'string' && ERROR_CODE.test(first.code) ? { code: first.code } : {}),
        ...(message ? { message } : {}),
      };
    }
  } catch {
    // not JSON: fall through
  }
  return {};
}

function where(ctx: RequestContext): string {
  return ctx.repository ? `${ctx.repository} on ${ctx.registry}` : ctx.registry;
}

/** How to sign in, with the CLI and in VS Code. */
export function signIn(registry: string): string {
  return `stowage login ${registry} or docker login ${registry}; in VS Code, Stowage: Sign In to Registry`;
}

/** Turns an HTTP failure into a typed error that says what failed, where, and what to do. */
export function httpError(
  status: number,
  ctx: RequestContext,
  bodyText = '',
  retryAfter?: string,
  /** The request carried the user's credentials (Basic): a 401 then means they were refused. */
  withCredentials = false,
): StowageError {
  const { code: registryCode, message } = parseErrorBody(bodyText);
  const said = registryCode ? ` (${registryCode}${message ? `: ${message}` : ''})` : '';
  const base = `${ctx.what} of ${where(ctx)}: HTTP ${status}${said}.`;
  let code: ErrorCode = 'REGISTRY_ERROR';
  let hint: string | undefined;
  if (status === 401 || registryCode === 'UNAUTHORIZED') {
    code = 'UNAUTHORIZED';
    hint = withCredentials
      ? `${ctx.registry} refused the stored user name and password; sign in again (${signIn(ctx.registry)}).`
      : `Sign in to ${ctx.registry} (${signIn(ctx.registry)}) and try again.`;
  } else if (status === 403 || registryCode === 'DENIED') {
    code = 'DENIED';
    hint = `Your account has no access to ${where(ctx)}; check the name and your permissions.`;
  } else if (status === 404 || registryCode === 'MANIFEST_UNKNOWN' || registryCode === 'NAME_UNKNOWN') {
    code = 'NOT_FOUND';
    hint =
      registryCode === 'NAME_UNKNOWN'
        ? `The repository does not exist on ${ctx.registry}; check its name.`
        : `${ctx.registry} does not have it: check the repository name${ctx.what.startsWith('manifest') ? ' and the tag or digest' : ''}.`;
  } else if (status === 429 || registryCode === 'TOOMANYREQUESTS') {
    code = 'TOO_MANY_REQUESTS';
    hint = `The registry is rate-limiting requests${retryAfter ? ` (retry after ${retryAfter})` : ''}; wait, sign in, or use a mirror.`;
  } else if (status >= 500) {
    hint = `${ctx.registry} failed on its side (it was tried more than once); try again later, or ask its operators.`;
  }
  const text = ctx.write
    ? `${ctx.what[0]!.toUpperCase()}${ctx.what.slice(1)} of ${where(ctx)} failed: HTTP ${status}${said}.`
    : `Failed to fetch ${base}`;
  return new StowageError(code, text, hint);
}

/**
 * A connection-level failure (refused, reset, DNS, TLS), with the cause kept. Through a `proxy`,
 * failing to connect concerns the proxy, and its answer to CONNECT is the proxy's own.
 */
export function networkError(
  url: URL,
  cause: unknown,
  ctx: RequestContext,
  proxy?: URL,
  /** `url` is where the registry at this URL redirected the request (its storage, a CDN). */
  redirectedFrom?: URL,
): StowageError {
  const c = cause as { code?: string; message?: string };
  const about = redirectedFrom
    ? `${ctx.what} of ${where(ctx)}, where ${redirectedFrom.host} redirected it`
    : `${ctx.what} of ${where(ctx)}`;
  const detail = c?.code ?? c?.message ?? String(cause);
  const tls = spokeTls(cause);
  if (proxy && !tls) {
    const failed = proxyFailure(url, cause, ctx, proxy);
    if (failed) return failed;
  }
  if (tls && proxy?.protocol === 'https:') {
    // Either end may have the certificate in question: the proxy's or the registry's.
    return new StowageError(
      'TLS',
      `TLS error on the way to ${url.host} through the proxy ${displayProxy(proxy)} for ${about}: ${c?.message ?? detail}.`,
      `If the proxy's certificate is the one (a private CA), trust its CA (stowage.certificateAuthorityFiles / --ca-file, or the system's CA bundle) or turn off http.proxyStrictSSL; if it is the registry's, trust its CA the same way.`,
      { cause },
    );
  }
  if (url.protocol === 'https:' && answeredPlainHttp(cause)) {
    return new StowageError(
      'TLS',
      `${url.host} answered in plain HTTP, not HTTPS, for ${about}.`,
      `If it is a plain-HTTP registry on a network you trust, add ${url.host} to stowage.insecureRegistries (--insecure-registry ${url.host}); else check the address and port.`,
      { cause },
    );
  }
  if (tls) {
    return new StowageError(
      'TLS',
      `TLS error talking to ${url.host} for ${about}: ${c?.message ?? detail}.`,
      `If ${url.host} uses a private CA, add it (stowage.certificateAuthorityFiles / --ca-file, or the system's CA bundle); if it is a plain-HTTP or self-signed registry you trust, add it to stowage.insecureRegistries (--insecure-registry).`,
      { cause },
    );
  }
  return new StowageError(
    'NETWORK',
    `Cannot reach ${url.protocol}//${url.host} for ${about}: ${describeReason(detail)}.`,
    redirectedFrom
      ? `The registry answered, but the host it sends downloads to (its storage or a CDN) could not be reached: check your network, proxy and firewall for ${url.host}, or ask the registry's operators.`
      : 'Check the registry address, your network and proxy settings.',
    { cause },
  );
}

/** OpenSSL read an HTTP answer as a TLS record: the server speaks plain HTTP. */
export function answeredPlainHttp(cause: unknown): boolean {
  const c = cause as { code?: string; message?: string } | undefined;
  return /WRONG_VERSION_NUMBER|wrong version number/i.test(`${c?.code} ${c?.message}`);
}

/** What the usual socket error codes mean, for people. */
const NETWORK_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there)',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be looked up for now',
  EHOSTUNREACH: 'no route to the host',
  ENETUNREACH: 'the network is unreachable',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed',
  ETIMEDOUT: 'the connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'no connection (or TLS handshake) in time',
  UND_ERR_HEADERS_TIMEOUT: 'it took the connection but sent no answer in time',
  UND_ERR_SOCKET: 'the connection broke',
  UND_ERR_CLOSED: 'the connection was closed',
};

/** A retry's or a failure's reason for people: an error code in words (with the code), or as is. */
export function describeReason(reason: string): string {
  const words = NETWORK_WORDS[reason];
  return words ? `${words} (${reason})` : reason;
}

/** Errors of opening a connection: through a proxy, only the proxy's connection is ours to open. */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function proxyFailure(url: URL, cause: unknown, ctx: RequestContext, proxy: URL): StowageError | undefined {
  const c = cause as { code?: string; message?: string };
  const shown = displayProxy(proxy);
  const about = `${ctx.what} of ${where(ctx)}`;
  // undici: "Proxy response (407) !== 200 when HTTP Tunneling".
  const status = Number(/Proxy response \((\d{3})\)/.exec(c?.message ?? '')?.[1]);
  // 407 is the proxy's own "credentials, please"; some (tinyproxy) answer CONNECT with a 401.
  if (status === 407 || status === 401) {
    return new StowageError(
      'PROXY',
      `The proxy ${shown} wants credentials (HTTP ${status}) to reach ${url.host} for ${about}.`,
      'Put them in the proxy URL (http://user:password@proxy:port, in HTTPS_PROXY or http.proxy), or set http.proxyAuthorization in VS Code.',
      { cause },
    );
  }
  if (status) {
    return new StowageError(
      'PROXY',
      `The proxy ${shown} would not connect to ${url.host} (HTTP ${status}) for ${about}.`,
      `Check that the proxy may reach ${url.host}${status === 403 ? ' (many allow CONNECT to port 443 only)' : ''}; if the registry is reached without it, add it to NO_PROXY (http.noProxy in VS Code).`,
      { cause },
    );
  }
  if (CONNECT_FAILURES.has(c?.code ?? '')) {
    return new StowageError(
      'PROXY',
      `Cannot reach the proxy ${shown} (on the way to ${url.host} for ${about}): ${c.code}.`,
      'Check the proxy setting (HTTPS_PROXY / HTTP_PROXY, or http.proxy in VS Code) and that the proxy is running.',
      { cause },
    );
  }
  return undefined;
}

/**
 * True when the failure proves the server speaks TLS (its certificate was rejected), as opposed to
 * a plain-HTTP server answering a TLS hello (EPROTO "wrong version number").
 */
export function spokeTls(cause: unknown): boolean {
  const c = cause as { code?: string; message?: string };
  return (
    /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_(GET|VERIFY)/i.test(c?.code ?? '') ||
    /certificate/i.test(c?.message ?? '')
  );
}
