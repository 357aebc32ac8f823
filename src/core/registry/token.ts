/**
 * Bearer tokens from a registry's token service (the distribution token spec, as containerd and
 * docker use it), and a cache of them per registry and scope set.
 *
 * - An identity (refresh) token → OAuth2 POST `grant_type=refresh_token`; if the service answers
 *   400/401/404/405 (registries without POST support), GET with Basic auth instead.
 * - A user name and password → GET with Basic auth; if that answers 404/405, OAuth2 POST
 *   `grant_type=password`.
 * - Nothing → anonymous GET.
 *
 * Credentials go to the realm host only: a redirect to another origin is refused when credentials
 * are attached, and a redirect from https to http always. Whether the realm itself may receive
 * credentials (plain http) is the caller's policy and must be checked before calling. No error
 * message contains a credential, a token or a response body.
 */
import type { Dispatcher } from 'undici';
import { abortable, abortError, type ErrorCode, StowageError } from '../errors';
import type { RequestLog } from './client';
import type { Credential } from './credentials';
import { signIn } from './errors';
import { headerValue, readCapped } from './response';

export interface TokenRequest {
  /** From bearerRealm(): an absolute http(s) URL. */
  realm: URL;
  service?: string;
  scopes: string[];
  credential?: Credential;
  /** The caller's dispatcher, so its TLS CA and proxy settings apply. */
  dispatcher?: Dispatcher;
  signal?: AbortSignal;
  /** Sent as `client_id`. Default 'stowage'. */
  clientId?: string;
  userAgent?: string;
  /** The registry name the token is for, for messages. Default: the realm's host. */
  registry?: string;
  /** Told of each request to the token service (origin and path only: never a secret). */
  onRequest?: (log: RequestLog) => void;
  /** Clock, for tests. Default Date.now. */
  now?: () => number;
}

export interface Token {
  token: string;
  /** Epoch ms after which the token should not be used (a leeway is already subtracted). */
  expiresAt: number;
  /** Present when the service issued one (`offline_token=true` or a refresh_token grant). */
  refreshToken?: string;
}

/** A failure answer from a token service, with its HTTP status for the caller's retry policy. */
export class TokenServiceError extends StowageError {
  constructor(
    code: ErrorCode,
    message: string,
    hint: string | undefined,
    readonly status: number,
    readonly retryAfter?: string,
  ) {
    super(code, message, hint);
  }
}

const MAX_TOKEN_BODY = 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 5;
const DEFAULT_EXPIRES_IN_S = 60;
const MAX_LEEWAY_MS = 10_000;
/** Statuses after which the other method is worth a try (containerd's list for POST → GET). */
const POST_FALLBACK = new Set([400, 401, 404, 405]);
const GET_FALLBACK = new Set([404, 405]);
/** What may go into an Authorization header: visible ASCII, no spaces. */
const TOKEN_SHAPE = /^[\x21-\x7e]+$/;
const SAFE_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

export async function fetchToken(req: TokenRequest): Promise<Token> {
  const cred = req.credential;
  if (cred?.registryToken) {
    // A bearer token to send as is: its lifetime is unknown, so it lives until the registry refuses it.
    return { token: cred.registryToken, expiresAt: Number.POSITIVE_INFINITY };
  }
  if (cred?.identityToken) {
    try {
      return await post(req, { grant_type: 'refresh_token', refresh_token: cred.identityToken });
    } catch (e) {
      if (!(e instanceof TokenServiceError && POST_FALLBACK.has(e.status))) throw e;
      return await get(req, basic(cred.username ?? '', cred.identityToken));
    }
  }
  if (cred?.username || cred?.password) {
    const username = cred.username ?? '';
    const password = cred.password ?? '';
    try {
      return await get(req, basic(username, password));
    } catch (e) {
      if (!(e instanceof TokenServiceError && GET_FALLBACK.has(e.status))) throw e;
      return await post(req, { grant_type: 'password', username, password });
    }
  }
  return get(req, undefined);
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

function get(req: TokenRequest, authorization: string | undefined): Promise<Token> {
  const url = new URL(req.realm.href);
  if (req.service) url.searchParams.set('service', req.service);
  for (const s of req.scopes) url.searchParams.append('scope', s);
  if (authorization) {
    // Ask for a refresh token too, as docker does; registries that do not know these ignore them.
    url.searchParams.set('offline_token', 'true');
    url.searchParams.set('client_id', req.clientId ?? 'stowage');
  }
  return exchange(req, 'GET', url, authorization, undefined);
}

function post(req: TokenRequest, grant: Record<string, string>): Promise<Token> {
  const form = new URLSearchParams(grant);
  if (req.service) form.set('service', req.service);
  if (req.scopes.length) form.set('scope', req.scopes.join(' '));
  form.set('client_id', req.clientId ?? 'stowage');
  return exchange(req, 'POST', new URL(req.realm.href), undefined, form.toString());
}

async function exchange(
  req: TokenRequest,
  method: 'GET' | 'POST',
  first: URL,
  authorization: string | undefined,
  body: string | undefined,
): Promise<Token> {
  const registry = req.registry ?? req.realm.host;
  const now = req.now ?? Date.now;
  const started = now();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (req.userAgent) headers['user-agent'] = req.userAgent;
  if (authorization) headers.authorization = authorization;
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded; charset=utf-8';
  const hasSecret = authorization !== undefined || body !== undefined;

  let url = first;
  for (let hop = 0; ; hop++) {
    let res: Dispatcher.ResponseData;
    const began = Date.now();
    const log = (r: { status?: number; error?: string }) =>
      req.onRequest?.({ method, url: `${url.origin}${url.pathname}`, ms: Date.now() - began, ...r });
    try {
      res = await abortable(
        (req.dispatcher ?? defaultDispatcher()).request({
          origin: url.origin,
          path: `${url.pathname}${url.search}`,
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          ...(req.signal ? { signal: req.signal } : {}),
        }),
        req.signal,
        (late) => late.body.destroy(),
      );
    } catch (e) {
      log({ error: (e as { code?: string }).code ?? (e as Error).message });
      if (req.signal?.aborted) throw abortError(req.signal);
      throw connectionError(url, registry, e);
    }
    const status = res.statusCode;
    log({ status });
    if (status >= 300 && status < 400 && res.headers.location !== undefined) {
      res.body.resume(); // discard
      const next = redirectTarget(url, res.headers.location, registry);
      if (method === 'POST') {
        // A form with a secret is never re-sent elsewhere; treat as unsupported so GET is tried.
        throw new TokenServiceError(
          'REGISTRY_ERROR',
          `${whose(url, registry)} redirected a POST.`,
          undefined,
          405,
        );
      }
      if (next.protocol === 'http:' && url.protocol === 'https:') {
        throw new StowageError(
          'INSECURE_REFUSED',
          `${whose(url, registry)} redirected from https to plain http (${next.host}); refusing to follow.`,
        );
      }
      if (next.origin !== url.origin && hasSecret) {
        throw new StowageError(
          'REGISTRY_ERROR',
          `${whose(url, registry)} redirected to another host (${next.host}); credentials are not sent there.`,
          'The registry is misconfigured (its auth realm); contact its operator.',
        );
      }
      if (hop >= MAX_REDIRECTS) {
        throw new StowageError('REGISTRY_ERROR', `${whose(url, registry)} redirected too many times.`);
      }
      url = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      const text = await readCapped(res, MAX_ERROR_BODY, () => new Error('too large')).then(
        (b) => b.toString('utf8'),
        () => '',
      );
      throw statusError(status, url, registry, hasSecret, text, headerValue(res.headers, 'retry-after'));
    }
    const bytes = await readCapped(res, MAX_TOKEN_BODY, () => {
      return new StowageError('TOO_LARGE', `${whose(url, registry)} sent a token response over 1 MiB.`);
    });
    return parseTokenResponse(bytes.toString('utf8'), url, registry, started);
  }
}

function redirectTarget(from: URL, location: string | string[], registry: string): URL {
  const loc = Array.isArray(location) ? location[0] : location;
  try {
    const next = new URL(loc ?? '', from);
    if (next.protocol === 'https:' || next.protocol === 'http:') return next;
  } catch {
    // fall through
  }
  throw new StowageError('REGISTRY_ERROR', `${whose(from, registry)} redirected to an invalid location.`);
}

function whose(url: URL, registry: string): string {
  return url.host === registry
    ? `The token service at ${url.host}`
    : `The token service at ${url.host} (for ${registry})`;
}

/** A short error code from a token service's error body (`errors[].code` or OAuth's `error`). */
function errorCodeOf(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { errors?: { code?: unknown }[]; error?: unknown };
    const code = Array.isArray(body?.errors) ? body.errors[0]?.code : body?.error;
    return typeof code === 'string' && SAFE_CODE.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

function statusError(
  status: number,
  url: URL,
  registry: string,
  withCredentials: boolean,
  text: string,
  retryAfter: string | undefined,
): TokenServiceError {
  const said = errorCodeOf(text);
  const http = `HTTP ${status}${said ? `, ${said}` : ''}`;
  const who = whose(url, registry);
  if (status === 401) {
    return new TokenServiceError(
      'UNAUTHORIZED',
      `${who} rejected ${withCredentials ? 'the credentials' : 'anonymous access'} (${http}).`,
      withCredentials
        ? `Check the user name and password or token for ${registry} (${signIn(registry)}).`
        : `Sign in to ${registry} (${signIn(registry)}).`,
      status,
    );
  }
  if (status === 403) {
    return new TokenServiceError(
      'DENIED',
      `${who} denied access (${http}).`,
      `Your account has no access to what was asked for on ${registry}; check the name and your permissions.`,
      status,
    );
  }
  if (status === 429) {
    return new TokenServiceError(
      'TOO_MANY_REQUESTS',
      `${who} is rate-limiting requests (${http}).`,
      `Wait${retryAfter ? ` (retry after ${retryAfter})` : ''}, sign in, or use a mirror.`,
      status,
      retryAfter,
    );
  }
  return new TokenServiceError(
    'REGISTRY_ERROR',
    `${who} failed to issue a token (${http}).`,
    undefined,
    status,
  );
}

function connectionError(url: URL, registry: string, cause: unknown): StowageError {
  const c = cause as { code?: string; message?: string };
  const detail = c?.code ?? c?.message ?? String(cause);
  if (/CERT|SSL|TLS|EPROTO|self[- ]signed|certificate/i.test(`${c?.code} ${c?.message}`)) {
    return new StowageError(
      'TLS',
      `TLS error talking to the token service at ${url.host} (for ${registry}): ${c?.message ?? detail}.`,
      `If ${url.host} uses a private CA, add it to Stowage's CA certificates (stowage.certificateAuthorityFiles / --ca-file) or the system's CA bundle.`,
      { cause },
    );
  }
  return new StowageError(
    'NETWORK',
    `Cannot reach the token service at ${url.protocol}//${url.host} (for ${registry}): ${detail}.`,
    'Check your network and proxy settings.',
    { cause },
  );
}

function parseTokenResponse(text: string, url: URL, registry: string, started: number): Token {
  const who = whose(url, registry);
  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    body = parsed as Record<string, unknown>;
  } catch {
    throw new StowageError('REGISTRY_ERROR', `${who} sent a token response that is not a JSON object.`);
  }
  const token =
    typeof body.token === 'string' && body.token
      ? body.token
      : typeof body.access_token === 'string' && body.access_token
        ? body.access_token
        : undefined;
  if (!token) throw new StowageError('REGISTRY_ERROR', `${who} sent a response without a token.`);
  if (!TOKEN_SHAPE.test(token)) {
    throw new StowageError('REGISTRY_ERROR', `${who} sent a token with characters a header cannot carry.`);
  }
  const expiresIn = Number(body.expires_in);
  const lifetimeMs = (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : DEFAULT_EXPIRES_IN_S) * 1000;
  // Lifetimes count from when we asked (our clock), not `issued_at` (the server's, maybe skewed).
  const expiresAt = started + lifetimeMs - Math.min(MAX_LEEWAY_MS, lifetimeMs / 10);
  const refresh =
    typeof body.refresh_token === 'string' && body.refresh_token ? body.refresh_token : undefined;
  return { token, expiresAt, ...(refresh ? { refreshToken: refresh } : {}) };
}

// ---------------------------------------------------------------------------------------------

/** The cache key for a registry and scope set: `registry + ' ' + sorted, de-duplicated scopes`. */
export function tokenCacheKey(registry: string, scopes: readonly string[]): string {
  return `${registry} ${[...new Set(scopes)].sort().join(' ')}`;
}

/**
 * Tokens by key until they expire. Concurrent fetches for one key share one request
 * (getOrFetch), so parallel downloads that all meet a 401 cause one token request.
 */
export class TokenCache {
  readonly #tokens = new Map<string, Token>();
  readonly #inflight = new Map<string, Promise<Token>>();
  readonly #now: () => number;
  readonly #max: number;

  constructor(options: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#max = options.maxEntries ?? 1000;
  }

  get(key: string): Token | undefined {
    const t = this.#tokens.get(key);
    if (t && t.expiresAt <= this.#now()) {
      this.#tokens.delete(key);
      return undefined;
    }
    return t;
  }

  set(key: string, t: Token): void {
    this.#tokens.delete(key);
    this.#tokens.set(key, t);
    // Oldest first: Map iteration order is insertion order.
    for (const k of this.#tokens.keys()) {
      if (this.#tokens.size <= this.#max) break;
      this.#tokens.delete(k);
    }
  }

  delete(key: string): void {
    this.#tokens.delete(key);
  }

  /** Forgets every token of a registry (after its credentials changed), or all. */
  clear(registry?: string): void {
    for (const k of [...this.#tokens.keys()]) {
      if (registry === undefined || k.startsWith(`${registry} `)) this.#tokens.delete(k);
    }
  }

  get size(): number {
    return this.#tokens.size;
  }

  /** The cached token, else the one `fetch` yields (shared by concurrent callers), cached. */
  getOrFetch(key: string, fetch: () => Promise<Token>): Promise<Token> {
    const cached = this.get(key);
    if (cached) return Promise.resolve(cached);
    let p = this.#inflight.get(key);
    if (!p) {
      p = fetch()
        .then((t) => {
          this.set(key, t);
          return t;
        })
        .finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }
}

/** undici's own dispatcher, for callers that bring none; required when needed (see transport.ts). */
function defaultDispatcher(): Dispatcher {
  return (require('./undici') as typeof import('./undici')).defaultDispatcher();
}
