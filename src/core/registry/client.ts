import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { type Digest, isDigest, parseDigest } from '../digest';
import { abortable, type ErrorCode, StowageError, throwIfAborted } from '../errors';
import { isRepositoryPath, isTag, manifestIdentifier, type Reference, registryHost } from '../reference';
import { type ManifestDocument, parseManifest } from '../store/manifest';
import { MANIFEST_ACCEPT as ACCEPTED } from '../store/media-types';
import { Authenticator } from './auth';
import type { CredentialSource } from './credentials';
import { type DirectOptions, DirectPool, directGet, type ResponseBody, Unhandled } from './direct';
import { answeredPlainHttp, httpError, networkError, type RequestContext, spokeTls } from './errors';
import { isLoopback, matchesHostList } from './host';
import { mirrorBaseUrl } from './mirrors';
import { type ProxyConfig, type ProxyRoutes, proxyFor, proxyRoutes } from './proxy';
import { headerValue, readCapped } from './response';
import {
  backoffDelay,
  DEFAULT_RETRY,
  isRetryableStatus,
  isTimeout,
  isTransientNetworkError,
  parseRetryAfter,
  type RetryPolicy,
  sleep,
} from './retry';
import { TokenServiceError } from './token';
import { type TransportOptions, tlsOptions } from './trust';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 5;
/** Always sent: without Accept, Distribution converts v2s2 to schema1 and 404s OCI content. */
const MANIFEST_ACCEPT = ACCEPTED.join(', ');

export interface RequestLog {
  method: string;
  /** Origin and path; never headers, never credentials. */
  url: string;
  status?: number;
  bytes?: number;
  ms: number;
  error?: string;
  /** Read by the direct reader (blob and manifest GETs) rather than undici. */
  direct?: true;
  /** The direct reader sent it on a connection from its pool: kept alive, or opened ahead (DirectPool.warm). */
  reused?: true;
}

/** A request is about to be tried again (after a broken connection, a timeout, a 429 or a 5xx). */
export interface RetryNotice {
  /** Origin and path; never headers, never credentials. */
  url: string;
  /** The attempt about to start (2 for the first retry), and the most there will be. */
  attempt: number;
  attempts: number;
  /** What went wrong: an error code (ECONNRESET, UND_ERR_HEADERS_TIMEOUT) or `HTTP 503`. */
  reason: string;
  delayMs: number;
}

export interface ClientOptions {
  credentials?: CredentialSource;
  /** Hosts (`host[:port]`) that may use plain HTTP or unverified TLS, and may get credentials over HTTP. */
  insecureRegistries?: readonly string[];
  /** Mirror base URLs per registry name (`docker.io` → [`https://mirror.example`]), tried in order first. */
  mirrors?: Readonly<Record<string, readonly string[]>>;
  caCertificates?: readonly (string | Buffer)[];
  proxy?: ProxyConfig;
  /** false: do not verify TLS anywhere. */
  strictSSL?: boolean;
  retry?: Partial<RetryPolicy>;
  /** No bytes for this long is an error. Default 30 s. */
  stallTimeoutMs?: number;
  maxManifestBytes?: number;
  userAgent?: string;
  /** Refuse every network request (offline mode). */
  offline?: boolean;
  onRequest?: (log: RequestLog) => void;
  /** Told before each retry, so that a long wait is not a silent one. */
  onRetry?: (notice: RetryNotice) => void;
  env?: NodeJS.ProcessEnv;
  /** false: blobs go through undici too, not the direct reader (benchmarks, tests). */
  direct?: boolean;
}

export interface ManifestDescriptor {
  mediaType: string;
  digest: Digest;
  size: number;
}

export interface FetchedManifest extends ManifestDescriptor {
  bytes: Buffer;
  /** The validated document. */
  document: ManifestDocument;
}

export interface BlobStream {
  /**
   * Bytes from the requested offset on (a server that ignored Range has had its prefix skipped).
   * A chunk may be a view of a reused buffer: use (or copy) it before asking for the next.
   */
  body: AsyncIterable<Uint8Array>;
  /** Total size from the response, when it said. */
  total?: number;
  /** True when the server honoured Range with a matching 206. */
  resumed: boolean;
  /** The server takes Range requests (it answered one, or said `Accept-Ranges: bytes`). */
  ranges: boolean;
  /** Closes the connection early (cancel). */
  destroy(): void;
}

interface Endpoint {
  mirror: boolean;
  host: string;
  /** Candidate bases (origin + path prefix) in order: https first, http where allowed. */
  bases: URL[];
}

/** A request as the endpoint loop runs it: a RegistryRequest whose repository and what are its context. */
type Call = Omit<RegistryRequest, 'repository' | 'what'> & {
  ctx: RequestContext;
  /** A blob or manifest GET: may use the direct reader (see direct.ts). */
  direct?: DirectKind;
  /** Open this many direct connections to the origin alongside (see DirectPool.warm). */
  warm?: number;
  /** One attempt, no retries: the caller has a better use for a failure than waiting. */
  once?: boolean;
};

/** What a direct GET fetches: an origin whose answers the reader cannot take is left to undici per kind. */
type DirectKind = 'blob' | 'manifest';

export type RequestMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A request to a registry itself (never a mirror), e.g. the writes of a push. */
export interface RegistryRequest {
  registry: string;
  repository?: string;
  /** What is asked for, for messages ("upload of blob sha256:…"). */
  what: string;
  /** Token scope(s), space-separated, e.g. `repository:team/app:pull,push`. */
  scope: string;
  method: RequestMethod;
  /** Path and query on the registry (`/v2/…`). */
  path: string;
  headers?: Record<string, string>;
  /** A factory: a retry, a redirect or a re-try after an auth challenge sends the body again. */
  body?: () => Dispatcher.DispatchOptions['body'];
  signal?: AbortSignal;
}

export interface RegistryResponse {
  /** Where the answer came from (after redirects). */
  url: URL;
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

interface Response {
  url: URL;
  /** The URL first requested, before any redirect. */
  asked: URL;
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ResponseBody;
}

export type RateLimit = { limit?: string; remaining?: string };

/**
 * A client for the OCI distribution API over undici: endpoints and mirrors in order (Docker's
 * pull loop), auth, bounded retries, manual redirects that never carry Authorization to another
 * host, digest-verified manifests and streamed blobs.
 */
export class RegistryClient {
  /** undici's dispatchers, made at the first request the direct reader does not take. */
  private dispatchers?: { verified: Dispatcher; unverified: Dispatcher };
  private readonly auth: Authenticator;
  private readonly transport: TransportOptions;
  /** Which requests go through which proxy (undici's dispatchers, the direct reader, messages). */
  private readonly routes: ProxyRoutes;
  private readonly retry: RetryPolicy;
  /** Hosts that answered over TLS once: never tried over plain HTTP again. */
  private readonly tlsHosts = new Set<string>();
  /** Hosts that answered over plain HTTP (allowed for them): tried over HTTP first. */
  private readonly plainHosts = new Set<string>();
  /** `origin kind` pairs whose answers the direct reader could not take (chunked, odd heads): undici only. */
  private readonly noDirect = new Set<string>();
  /** Keep-alive connections of the direct reader. */
  private readonly pool = new DirectPool();
  private readonly rateLimits = new Map<string, RateLimit>();
  readonly maxManifestBytes: number;

  constructor(private readonly options: ClientOptions = {}) {
    const transport: TransportOptions = {
      caCertificates: options.caCertificates,
      proxy: options.proxy,
      stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
      env: options.env,
    };
    this.transport = transport;
    this.routes = proxyRoutes(options.proxy, options.env);
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.maxManifestBytes = options.maxManifestBytes ?? MAX_MANIFEST_BYTES;
    this.auth = new Authenticator(
      options.credentials,
      (url) => url.protocol === 'https:' || this.isInsecure(url.host),
      (url) => this.dispatcherFor(url),
      options.onRequest,
    );
  }

  async close(): Promise<void> {
    this.pool.close();
    const { verified, unverified } = this.dispatchers ?? {};
    await Promise.all([verified?.close(), unverified?.close()]);
  }

  /** RateLimit-Limit / RateLimit-Remaining last seen from a registry (Docker Hub sends them). */
  rateLimit(registry: string): RateLimit | undefined {
    return this.rateLimits.get(registry);
  }

  isInsecure(host: string): boolean {
    return matchesHostList(host, this.options.insecureRegistries ?? []);
  }

  /** Whether plain HTTP may be used with `host` at all: configured insecure, or loopback (docker's rule). */
  private allowsPlainHttp(host: string): boolean {
    return this.isInsecure(host) || isLoopback(host);
  }

  /** Resolves a tag (or digest) to its descriptor with a HEAD (spares Docker Hub pull quota). */
  async head(
    ref: Reference,
    signal?: AbortSignal,
    /** Direct connections to open alongside, for the manifest and blob GETs that follow. */
    warm?: number,
  ): Promise<ManifestDescriptor | undefined> {
    const found = await this.lookup(ref, signal, warm);
    return found === 'not-found' ? undefined : found;
  }

  /**
   * What a manifest HEAD says of a tag (or digest): its descriptor; 'not-found' when the registry
   * answered 404 (no such tag or repository); undefined when the HEAD told nothing usable (a
   * registry that does not answer HEAD on manifests, no digest header): a GET would tell.
   */
  async lookup(
    ref: Reference,
    signal?: AbortSignal,
    warm?: number,
  ): Promise<ManifestDescriptor | 'not-found' | undefined> {
    const ident = manifestIdentifier(ref);
    try {
      const res = await this.call(
        {
          ctx: { registry: ref.registry, repository: ref.repository, what: `manifest ${ident}` },
          registry: ref.registry,
          scope: `repository:${ref.repository}:pull`,
          method: 'HEAD',
          path: `/v2/${ref.repository}/manifests/${ident}`,
          headers: { accept: MANIFEST_ACCEPT },
          signal,
          // On a connection of the direct reader's: the manifest GET that follows takes it at once.
          direct: 'manifest',
          ...(warm ? { warm } : {}),
        },
        true,
      );
      await res.body.dump();
      const digest = headerValue(res.headers, 'docker-content-digest');
      const size = Number(headerValue(res.headers, 'content-length'));
      const mediaType = headerValue(res.headers, 'content-type')?.split(';')[0]?.trim();
      if (!digest || !isDigest(digest) || !Number.isSafeInteger(size) || !mediaType) return undefined;
      if (ref.digest && digest !== ref.digest) return undefined;
      return { digest, size, mediaType };
    } catch (e) {
      // Some registries do not answer HEAD on manifests (405, 501); the caller falls back to GET.
      // A 404 too: a HEAD's answer has no body, and the GET's says whether the repository or the
      // tag is unknown. A server error that outlasted the retries would only be retried again by
      // that GET; a token service's failure would only fail again.
      const status = (e as { status?: number }).status ?? 0;
      if (e instanceof StowageError && !(e instanceof TokenServiceError)) {
        if (e.code === 'NOT_FOUND') return 'not-found';
        if (e.code === 'REGISTRY_ERROR' && (status < 500 || status === 501)) return undefined;
      }
      throw e;
    }
  }

  /** Fetches a manifest or index, verifies it against the digest, and checks its type. */
  async manifest(
    ref: Reference,
    signal?: AbortSignal,
    digest?: Digest,
    /** Direct connections to open alongside, for the blob GETs that follow. */
    warm?: number,
  ): Promise<FetchedManifest> {
    const ident = digest ?? manifestIdentifier(ref);
    const ctx = { registry: ref.registry, repository: ref.repository, what: `manifest ${ident}` };
    const get = () =>
      this.call(
        {
          ctx,
          registry: ref.registry,
          scope: `repository:${ref.repository}:pull`,
          method: 'GET',
          path: `/v2/${ref.repository}/manifests/${ident}`,
          headers: { accept: MANIFEST_ACCEPT },
          signal,
          direct: 'manifest',
          ...(warm ? { warm } : {}),
        },
        true,
      );
    let res = await get();
    let bytes: Buffer;
    // A connection that breaks while the body arrives is retried like one that breaks before.
    for (let attempt = 1; ; attempt++) {
      try {
        bytes = await readBody(res, this.maxManifestBytes, ctx);
        break;
      } catch (e) {
        if (signal?.aborted) throw abortFrom(signal);
        if (!(e instanceof BodyBroken) || attempt >= this.retry.attempts) throw e;
        await sleep(backoffDelay(attempt, this.retry), signal).catch(() => {
          throw abortFrom(signal);
        });
        res = await get();
      }
    }
    if (!/^\s*[{[]/.test(bytes.subarray(0, 64).toString('latin1'))) notAWebPage(res, ctx);
    const expected = (digest ?? ref.digest) as Digest | undefined;
    const served = headerValue(res.headers, 'docker-content-digest');
    const algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
    const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest;
    if (expected && actual !== expected) {
      throw new StowageError(
        'DIGEST_MISMATCH',
        `The manifest ${ref.repository}@${expected} served by ${res.url.host} hashes to ${actual}.`,
        'The registry or a proxy in between served other content; nothing was stored.',
      );
    }
    if (!expected && served && isDigest(served) && served.startsWith('sha256:') && served !== actual) {
      throw new StowageError(
        'DIGEST_MISMATCH',
        `The manifest ${ref.repository}:${ident} from ${res.url.host} hashes to ${actual}, but the registry said ${served}.`,
        'The content was altered on the way; nothing was stored.',
      );
    }
    const document = parseManifest(
      bytes,
      headerValue(res.headers, 'content-type')?.split(';')[0]?.trim(),
      `The manifest ${ref.registry}/${ref.repository}@${actual}`,
    );
    return { bytes, document, mediaType: document.mediaType, digest: actual, size: bytes.length };
  }

  /**
   * Opens a blob for streaming from `offset` on. Uses Range when resuming: a 206 whose
   * Content-Range matches is used as is; a 200 has the bytes already held skipped.
   */
  async blob(
    ref: Pick<Reference, 'registry' | 'repository'>,
    digest: Digest,
    offset = 0,
    signal?: AbortSignal,
  ): Promise<BlobStream> {
    const res = await this.blobGet(ref, digest, offset > 0 ? `bytes=${offset}-` : undefined, signal);
    const length = Number(headerValue(res.headers, 'content-length'));
    if (res.statusCode === 206) {
      const range = contentRange(res);
      if (range?.start === offset) {
        return {
          body: res.body,
          resumed: true,
          ranges: true,
          ...(range.total !== undefined ? { total: range.total } : {}),
          destroy: () => res.body.destroy(),
        };
      }
      res.body.destroy();
      // A range we did not ask for: start over without Range (asked without, it is an error).
      if (offset === 0) {
        throw new StowageError(
          'REGISTRY_ERROR',
          `${ref.registry} answered the download of blob ${digest} (${ref.repository}) with a part of it (${headerValue(res.headers, 'content-range') ?? 'no Content-Range'}) that was not asked for.`,
        );
      }
      return this.blob(ref, digest, 0, signal).then((s) => skipPrefix(s, offset));
    }
    const stream: BlobStream = {
      body: res.body,
      resumed: false,
      ranges: /\bbytes\b/i.test(headerValue(res.headers, 'accept-ranges') ?? ''),
      ...(Number.isSafeInteger(length) ? { total: length } : {}),
      destroy: () => res.body.destroy(),
    };
    return offset > 0 ? skipPrefix(stream, offset) : stream;
  }

  /**
   * Bytes [start, end) of a blob, for one of several connections sharing a download; undefined
   * when the registry does not answer with exactly that range.
   */
  async blobRange(
    ref: Pick<Reference, 'registry' | 'repository'>,
    digest: Digest,
    start: number,
    end: number,
    signal?: AbortSignal,
  ): Promise<BlobStream | undefined> {
    // One attempt: a part that fails goes back to the connection before it, which is better than a wait.
    const res = await this.blobGet(ref, digest, `bytes=${start}-${end - 1}`, signal, true);
    const range = res.statusCode === 206 ? contentRange(res) : undefined;
    if (range?.start !== start || range.end !== end) {
      res.body.destroy();
      return undefined;
    }
    return { body: res.body, resumed: true, ranges: true, destroy: () => res.body.destroy() };
  }

  private blobGet(
    ref: Pick<Reference, 'registry' | 'repository'>,
    digest: Digest,
    range: string | undefined,
    signal: AbortSignal | undefined,
    once = false,
  ): Promise<Response> {
    parseDigest(digest);
    return this.call(
      {
        ctx: { registry: ref.registry, repository: ref.repository, what: `blob ${digest}` },
        registry: ref.registry,
        scope: `repository:${ref.repository}:pull`,
        method: 'GET',
        path: `/v2/${ref.repository}/blobs/${digest}`,
        headers: range ? { range } : {},
        signal,
        direct: 'blob',
        once,
      },
      true,
    );
  }

  /** Lists tags lazily, one page at a time (`n` per page, following `Link: rel="next"`). */
  async *tags(
    ref: Pick<Reference, 'registry' | 'repository'>,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<string[]> {
    const ctx = { registry: ref.registry, repository: ref.repository, what: 'tags' };
    const scope = `repository:${ref.repository}:pull`;
    const n = options.pageSize ? `?n=${options.pageSize}` : '';
    yield* this.pages(
      ctx,
      ref.registry,
      scope,
      `/v2/${ref.repository}/tags/list${n}`,
      'tags',
      isTag,
      options.signal,
    );
  }

  /** Lists repositories (the catalog) lazily, where the registry allows it. */
  async *catalog(
    registry: string,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<string[]> {
    const ctx = { registry, what: 'catalog' };
    const n = options.pageSize ? `?n=${options.pageSize}` : '';
    yield* this.pages(
      ctx,
      registry,
      'registry:catalog:*',
      `/v2/_catalog${n}`,
      'repositories',
      isRepositoryPath,
      options.signal,
    );
  }

  /**
   * A request to the registry itself (mirrors are for pulls) with this client's auth, retries and
   * redirect rules; answers 2xx, anything else is thrown as a typed error. For writes (push).
   */
  async request(r: RegistryRequest): Promise<RegistryResponse> {
    return this.call(
      {
        ctx: { registry: r.registry, repository: r.repository, what: r.what, write: true },
        registry: r.registry,
        scope: r.scope,
        method: r.method,
        path: r.path,
        headers: r.headers,
        body: r.body,
        signal: r.signal,
      },
      false,
    );
  }

  /** `GET /v2/`: checks the registry answers and that we may talk to it. */
  async ping(registry: string, signal?: AbortSignal): Promise<void> {
    const ctx = { registry, what: 'API check' };
    const res = await this.call({ ctx, registry, scope: '', method: 'GET', path: '/v2/', signal }, false);
    await res.body.dump();
    notAWebPage(res, ctx);
  }

  private async *pages(
    ctx: RequestContext,
    registry: string,
    scope: string,
    firstPath: string,
    field: string,
    /**
     * Which names of the list to keep: those a reference can hold. Others could not be pulled, and
     * are not for a terminal (control characters) nor a Dockerfile (Use in FROM writes the tag).
     */
    valid: (name: unknown) => name is string,
    signal?: AbortSignal,
  ): AsyncGenerator<string[]> {
    let path: string | undefined = firstPath;
    let pinned: URL | undefined;
    const seen = new Set<string>();
    while (path) {
      if (seen.has(path))
        throw new StowageError('REGISTRY_ERROR', `${ctx.registry} returned a pagination loop.`);
      seen.add(path);
      const res: Response = pinned
        ? await this.send(pinned, { ctx, registry, scope, method: 'GET', path, signal })
        : await this.call({ ctx, registry, scope, method: 'GET', path, signal }, false);
      // Later pages go to the registry origin that answered (never a host it redirected to: that
      // one would be treated as the registry, challenges and credentials included).
      pinned ??= new URL(res.asked.origin);
      const bytes = await readBody(res, this.maxManifestBytes, ctx);
      let list: unknown;
      try {
        list = (JSON.parse(bytes.toString('utf8')) as Record<string, unknown>)[field];
      } catch {
        throw new StowageError('REGISTRY_ERROR', `${ctx.registry} returned an invalid ${ctx.what} list.`);
      }
      yield Array.isArray(list) ? list.filter(valid) : [];
      path = nextLink(headerValue(res.headers, 'link'), res.url, ctx);
    }
  }

  /** Runs a call over the registry's endpoints (mirrors first when allowed) and returns a 2xx. */
  private async call(call: Call, useMirrors: boolean): Promise<Response> {
    if (this.options.offline) {
      const of = call.ctx.repository ? `${call.registry}/${call.ctx.repository}` : call.registry;
      const off = 'Turn off offline mode (the stowage.offline setting, or drop --offline)';
      // Only a pull's manifests and blobs could come from elsewhere (the cache, an import).
      throw useMirrors
        ? new StowageError(
            'OFFLINE',
            `Offline mode is on: cannot fetch the ${call.ctx.what} of ${of} (not in the cache).`,
            `${off}, or bring the image in with stowage import.`,
          )
        : new StowageError(
            'OFFLINE',
            call.ctx.write
              ? `Offline mode is on: pushing to ${of} needs the registry.`
              : `Offline mode is on: cannot fetch the ${call.ctx.what} of ${of}; that needs the registry.`,
            `${off}.`,
          );
    }
    const errors: EndpointError[] = [];
    for (const endpoint of this.endpoints(call.registry, useMirrors)) {
      for (const base of this.orderBases(endpoint)) {
        throwIfAborted(call.signal);
        try {
          // A mirror signs in with its own credentials, never the registry's.
          return await this.send(base, endpoint.mirror ? { ...call, registry: endpoint.host } : call);
        } catch (e) {
          if (!(e instanceof StowageError) || e.code === 'ABORTED') throw e;
          // A host that answered over plain HTTP (allowed for it) refusing TLS says nothing
          // about what went wrong: its plain-HTTP error is the one to report.
          // So is one answering our TLS hello in plain HTTP when its plain-HTTP try is still to come or came.
          const moot =
            base.protocol === 'https:' &&
            (this.plainHosts.has(endpoint.host) ||
              (answeredPlainHttp(e.cause) && endpoint.bases.some((b) => b.protocol === 'http:')));
          errors.push({ error: e, mirror: endpoint.mirror ? endpoint.host : undefined, moot });
          if (!fallsThrough(e, endpoint.mirror)) throw e;
          // A TLS host never gets its plain-HTTP candidate.
          if (this.tlsHosts.has(endpoint.host)) break;
        }
      }
    }
    throw mostUseful(errors);
  }

  private endpoints(registry: string, useMirrors: boolean): Endpoint[] {
    const list: Endpoint[] = [];
    const mirrors = useMirrors ? mirrorsFor(this.options.mirrors, registry) : [];
    for (const m of mirrors) {
      const url = mirrorBaseUrl(m, registry);
      list.push({ mirror: true, host: url.host, bases: [url] });
    }
    const host = registryHost(registry);
    const bases = [new URL(`https://${host}`)];
    if (this.allowsPlainHttp(host)) bases.push(new URL(`http://${host}`));
    list.push({ mirror: false, host, bases });
    return list;
  }

  private orderBases(endpoint: Endpoint): URL[] {
    if (this.tlsHosts.has(endpoint.host)) return endpoint.bases.filter((b) => b.protocol === 'https:');
    if (this.plainHosts.has(endpoint.host)) {
      return [...endpoint.bases].sort(
        (a, b) => Number(a.protocol === 'https:') - Number(b.protocol === 'https:'),
      );
    }
    return endpoint.bases;
  }

  private dispatcherFor(url: URL): Dispatcher {
    if (!this.dispatchers) {
      // Required here, not imported: a run the direct reader serves never loads undici (transport.ts).
      const { createDispatcher } = require('./transport') as typeof import('./transport');
      this.dispatchers = {
        verified: createDispatcher(this.transport, this.routes, this.options.strictSSL !== false),
        unverified: createDispatcher(this.transport, this.routes, false),
      };
    }
    return this.isInsecure(url.host) ? this.dispatchers.unverified : this.dispatchers.verified;
  }

  /** One request to one base: auth (one re-try after a challenge), retries, redirects. */
  private async send(base: URL, call: Call): Promise<Response> {
    const target = new URL(base.href);
    const [pathname, search] = call.path.split('?');
    target.pathname = `${base.pathname.replace(/\/$/, '')}${pathname}`;
    target.search = search ? `?${search}` : '';
    let authorization = call.scope ? await this.auth.header(base, call.registry, call.scope) : undefined;
    for (let round = 0; ; round++) {
      const res = await this.withRetries(target, call, authorization);
      // Only the origin asked may challenge: a redirect target (a CDN) that answers 401 would
      // otherwise pick the realm the registry's credentials go to.
      if (res.statusCode === 401 && round === 0 && res.url.origin === target.origin) {
        const challenge = res.headers['www-authenticate'];
        await res.body.dump();
        if (authorization) this.auth.invalidate(base, call.scope, authorization);
        authorization = await this.auth.authorize(base, call.registry, call.scope, challenge, call.signal);
        if (authorization) continue;
        throw this.auth.problem(call.registry) ?? httpError(401, call.ctx);
      }
      // Refused: a credential lookup that failed, or credentials withheld, is the likelier cause.
      const problem =
        res.statusCode === 401 || res.statusCode === 403 ? this.auth.problem(call.registry) : undefined;
      if (problem && res.url.origin === target.origin) {
        await res.body.dump();
        throw problem;
      }
      if (res.statusCode >= 200 && res.statusCode < 300) return res;
      const text = (await readBody(res, MAX_ERROR_BODY, call.ctx).catch(() => Buffer.alloc(0))).toString(
        'utf8',
      );
      const withCredentials = authorization?.startsWith('Basic ') === true;
      const error = httpError(
        res.statusCode,
        call.ctx,
        text,
        headerValue(res.headers, 'retry-after'),
        withCredentials,
      );
      if (res.url.origin !== target.origin) {
        // The registry sent us elsewhere (blob storage, a CDN): that host's answer is not the
        // registry's, and a sign-in would not change it.
        throw Object.assign(
          new StowageError(
            error.code === 'NOT_FOUND' ? 'NOT_FOUND' : 'REGISTRY_ERROR',
            `${call.registry} redirected the ${call.ctx.what} of ${call.ctx.repository ?? call.registry} to ${res.url.host}, which answered HTTP ${res.statusCode}.`,
            'The storage the registry uses failed or refused its own link (an expired signed URL?); try again, or ask the registry operators.',
          ),
          { status: res.statusCode },
        );
      }
      throw Object.assign(error, { status: res.statusCode });
    }
  }

  private async withRetries(url: URL, call: Call, authorization: string | undefined): Promise<Response> {
    // HTTPS to a host that may speak plain HTTP, not yet known to speak TLS, is a probe: one try,
    // then plain HTTP (as containerd falls back), not four tries with backoff first.
    const probe = url.protocol === 'https:' && !this.schemeSettled(url);
    const attempts = call.once || probe ? 1 : this.retry.attempts;
    let timeouts = 0;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await this.follow(url, call, authorization);
      } catch (e) {
        if (call.signal?.aborted) throw abortFrom(call.signal);
        if (e instanceof StowageError) throw e;
        // Where it failed: the registry, or the host it redirected to (its storage, a CDN).
        const redirected = e instanceof RedirectFailed ? e : undefined;
        const cause = redirected ? redirected.cause : e;
        const failed = redirected?.url ?? url;
        // A host that let a whole timeout pass gets one more: four would keep a user waiting minutes.
        if (isTimeout(cause)) timeouts++;
        if (isTransientNetworkError(cause) && attempt < attempts && timeouts < 2) {
          const delayMs = backoffDelay(attempt, this.retry);
          // After a timeout, this retry is the last.
          const most = timeouts ? attempt + 1 : attempts;
          this.noteRetry(failed, attempt, most, (cause as { code: string }).code, delayMs);
          await sleep(delayMs, call.signal).catch(() => {
            throw abortFrom(call.signal);
          });
          continue;
        }
        // A rejected certificate still proves the host speaks TLS: never try it in plaintext.
        if (spokeTls(cause)) this.tlsHosts.add(failed.host);
        throw networkError(failed, cause, call.ctx, this.proxyFor(failed) ?? undefined, redirected && url);
      }
      if (isRetryableStatus(res.statusCode) && attempt < attempts) {
        const wait =
          parseRetryAfter(headerValue(res.headers, 'retry-after')) ?? backoffDelay(attempt, this.retry);
        this.noteRetry(url, attempt, attempts, `HTTP ${res.statusCode}`, wait);
        await res.body.dump();
        await sleep(wait, call.signal).catch(() => {
          throw abortFrom(call.signal);
        });
        continue;
      }
      return res;
    }
  }

  private noteRetry(url: URL, attempt: number, attempts: number, reason: string, delayMs: number): void {
    this.options.onRetry?.({
      url: `${url.origin}${url.pathname}`,
      attempt: attempt + 1,
      attempts,
      reason,
      delayMs,
    });
  }

  /** Follows redirects by hand: Authorization only to the origin it was meant for, http(s) only. */
  private async follow(start: URL, call: Call, authorization: string | undefined): Promise<Response> {
    let url = start;
    const visited = new Set<string>();
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = {
        'user-agent': this.options.userAgent ?? 'stowage',
        ...call.headers,
      };
      if (authorization && url.origin === start.origin) headers.authorization = authorization;
      const began = Date.now();
      let res: Pick<Dispatcher.ResponseData, 'statusCode' | 'headers'> & { body: ResponseBody };
      const direct = this.direct(url, call);
      let viaDirect = false;
      let reused = false;
      // The handshakes of the connections the next requests will want overlap this one.
      if (call.warm && this.schemeSettled(url) && this.directAllowed(url, 'blob')) {
        this.pool.warm(url, this.directOptions(url), call.warm);
      }
      try {
        const answer = direct
          ? await this.directGet(url, call.method as 'GET' | 'HEAD', headers, call.signal, call.direct!)
          : undefined;
        viaDirect = answer !== undefined;
        reused = answer?.reused === true;
        res =
          answer ??
          (await abortable(
            this.dispatcherFor(url).request({
              origin: url.origin,
              path: `${url.pathname}${url.search}`,
              method: call.method,
              headers,
              body: call.body?.(),
              signal: call.signal,
            }),
            call.signal,
            (late) => late.body.destroy(),
          ));
      } catch (e) {
        this.options.onRequest?.({
          method: call.method,
          url: `${url.origin}${url.pathname}`,
          ms: Date.now() - began,
          error: (e as { code?: string }).code ?? (e as Error).message,
          ...(direct ? { direct: true as const } : {}),
        });
        throw hop > 0 && !(e instanceof StowageError) ? new RedirectFailed(url, e) : e;
      }
      this.options.onRequest?.({
        method: call.method,
        url: `${url.origin}${url.pathname}`,
        status: res.statusCode,
        bytes: Number(headerValue(res.headers, 'content-length')) || 0,
        ms: Date.now() - began,
        ...(viaDirect ? { direct: true as const } : {}),
        ...(reused ? { reused: true as const } : {}),
      });
      this.remember(url, call.registry, res);
      const location = headerValue(res.headers, 'location');
      if (res.statusCode >= 300 && res.statusCode < 400 && location && res.statusCode !== 304) {
        await res.body.dump();
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw refusedRedirect(
            'REGISTRY_ERROR',
            `${url.host} redirected ${call.ctx.what} to an invalid URL.`,
            'redirected to an invalid URL',
          );
        }
        if (next.protocol !== 'https:' && next.protocol !== 'http:') {
          throw refusedRedirect(
            'REGISTRY_ERROR',
            `${url.host} redirected ${call.ctx.what} to a ${next.protocol} URL; only http(s) redirects are followed.`,
            `redirected to a ${next.protocol} URL (refused)`,
          );
        }
        if (next.protocol === 'http:' && this.tlsHosts.has(next.host) && !this.isInsecure(next.host)) {
          throw refusedRedirect(
            'INSECURE_REFUSED',
            `${url.host} redirected ${call.ctx.what} to plain HTTP on ${next.host}, which speaks TLS; refusing.`,
            `redirected to plain HTTP on ${next.host} (refused)`,
          );
        }
        // What was asked over TLS goes on over plain HTTP only where plain HTTP is allowed (the
        // endpoints' rule): a tag's manifest or list there could be swapped on the way.
        if (url.protocol === 'https:' && next.protocol === 'http:' && !this.allowsPlainHttp(next.host)) {
          throw refusedRedirect(
            'INSECURE_REFUSED',
            `${url.host} redirected ${call.ctx.what} from HTTPS to plain HTTP on ${next.host}; refusing.`,
            `redirected from HTTPS to plain HTTP on ${next.host} (refused)`,
            `If ${next.host} is on a network you trust, add it to stowage.insecureRegistries (--insecure-registry ${next.host}).`,
          );
        }
        visited.add(url.href);
        if (visited.has(next.href) || hop + 1 > MAX_REDIRECTS) {
          throw refusedRedirect(
            'REGISTRY_ERROR',
            `Too many redirects fetching ${call.ctx.what} from ${start.host}.`,
            'redirected too many times',
          );
        }
        url = next;
        continue;
      }
      return { url, asked: start, statusCode: res.statusCode, headers: res.headers, body: res.body };
    }
  }

  /** Blob and manifest GETs (and the manifest HEAD) without a proxy take the direct reader (see direct.ts). */
  private direct(url: URL, call: Call): boolean {
    return (
      call.direct !== undefined &&
      (call.method === 'GET' || call.method === 'HEAD') &&
      !call.body &&
      this.directAllowed(url, call.direct)
    );
  }

  /** Whether the host speaks `url`'s scheme for sure (not a candidate the endpoint loop may drop). */
  private schemeSettled(url: URL): boolean {
    if (url.protocol === 'http:') return this.plainHosts.has(url.host);
    return this.tlsHosts.has(url.host) || !this.allowsPlainHttp(url.host);
  }

  private directAllowed(url: URL, kind: DirectKind): boolean {
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      this.options.direct !== false &&
      !this.noDirect.has(`${url.origin} ${kind}`) &&
      this.proxyFor(url) === null
    );
  }

  /**
   * The proxy a request to `url` takes, null for none; undefined when the proxy setting for it is
   * not a URL (undici's path reports that: the request must not go direct).
   */
  private proxyFor(url: URL): URL | null | undefined {
    try {
      return proxyFor(this.routes, url) ?? null;
    } catch {
      return undefined;
    }
  }

  private directOptions(url: URL, signal?: AbortSignal): DirectOptions {
    return {
      signal,
      stallTimeoutMs: this.transport.stallTimeoutMs,
      pool: this.pool,
      // The same trust as the undici dispatcher for this host.
      tls: tlsOptions(this.transport, !this.isInsecure(url.host) && this.options.strictSSL !== false),
    };
  }

  /** The direct reader's answer, or undefined when the request needs undici's general path. */
  private async directGet(
    url: URL,
    method: 'GET' | 'HEAD',
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    kind: DirectKind,
  ) {
    try {
      return await directGet(url, headers, { ...this.directOptions(url, signal), method });
    } catch (e) {
      // Undici repeats this request; later ones of this kind to this origin go to it straight away.
      if (e instanceof Unhandled) {
        this.noDirect.add(`${url.origin} ${kind}`);
        return undefined;
      }
      throw e;
    }
  }

  private remember(url: URL, registry: string, res: Pick<Dispatcher.ResponseData, 'headers'>): void {
    if (url.protocol === 'https:') {
      this.tlsHosts.add(url.host);
      this.plainHosts.delete(url.host);
    } else if (!this.tlsHosts.has(url.host)) this.plainHosts.add(url.host);
    const limit = headerValue(res.headers, 'ratelimit-limit');
    const remaining = headerValue(res.headers, 'ratelimit-remaining');
    if (limit || remaining) this.rateLimits.set(registry, { limit, remaining });
  }
}

function abortFrom(signal: AbortSignal | undefined): StowageError {
  const r = signal?.reason;
  return r instanceof StowageError ? r : new StowageError('ABORTED', 'The operation was cancelled.');
}

/** Mirrors configured for a registry; docker.io's also answer to its other names. */
function mirrorsFor(mirrors: ClientOptions['mirrors'], registry: string): readonly string[] {
  if (!mirrors) return [];
  const names =
    registry === 'docker.io'
      ? ['docker.io', 'registry-1.docker.io', 'index.docker.io']
      : [registry.toLowerCase()];
  for (const n of names) if (mirrors[n]?.length) return mirrors[n]!;
  return [];
}

/** Whether an endpoint's failure lets the loop try the next one (Docker's rules). */
function fallsThrough(e: StowageError, mirror: boolean): boolean {
  // A proxy that cannot reach one endpoint (or will not) may reach the next.
  if (e.code === 'NETWORK' || e.code === 'TLS' || e.code === 'PROXY') return true;
  const status = (e as { status?: number }).status;
  if (status !== undefined && status >= 500) return true;
  if (mirror && (e.code === 'NOT_FOUND' || e.code === 'TOO_MANY_REQUESTS')) return true;
  // A mirror's redirect we will not follow (to plain HTTP, say) is a broken mirror: the registry
  // serves the same content. The registry's own stays the error.
  if (mirror && redirectNote(e)) return true;
  return false;
}

/**
 * A redirect this client does not follow; `note` says so in a few words, for the note on a mirror
 * that answered with it (see mostUseful).
 */
function refusedRedirect(code: ErrorCode, message: string, note: string, hint?: string): StowageError {
  return Object.assign(new StowageError(code, message, hint), { refusedRedirect: note });
}

function redirectNote(e: StowageError): string | undefined {
  return (e as { refusedRedirect?: string }).refusedRedirect;
}

const RANK: Record<string, number> = {
  NETWORK: 0,
  TLS: 1,
  PROXY: 2,
  REGISTRY_ERROR: 3,
  TOO_MANY_REQUESTS: 4,
};

/** A failure of one endpoint; `mirror` is the mirror's host (undefined: the registry itself). */
interface EndpointError {
  error: StowageError;
  mirror?: string;
  /** Says nothing about what went wrong (see call): reported only when nothing else failed. */
  moot?: boolean;
}

/**
 * After the last endpoint: the registry's own answer (of its https and http tries, the most
 * telling), with what the mirrors said as a note. A mirror's "not found" is only that mirror
 * lacking the image: reported alone it would read as the image not existing.
 */
function mostUseful(all: EndpointError[]): StowageError {
  const telling = all.filter((e) => !e.moot);
  const errors = telling.length ? telling : all;
  const own = errors.filter((e) => !e.mirror);
  const pool = own.length ? own : errors;
  let best = pool[pool.length - 1]!.error;
  for (const { error } of pool) {
    if ((RANK[error.code] ?? 9) > (RANK[best.code] ?? 9)) best = error;
  }
  const mirrors = [...new Map(errors.flatMap((e) => (e.mirror ? [[e.mirror, e.error]] : []))).entries()];
  if (own.length && mirrors.length) {
    const said = mirrors.map(([host, e]) => `${host} ${mirrorOutcome(e)}`).join('; ');
    best.message = `${best.message} (Tried first: the mirror ${said}.)`;
  }
  return best;
}

function mirrorOutcome(e: StowageError): string {
  const redirect = redirectNote(e);
  if (redirect) return redirect;
  switch (e.code) {
    case 'NOT_FOUND':
      return 'does not have it';
    case 'TOO_MANY_REQUESTS':
      return 'refused: too many requests';
    case 'NETWORK':
    case 'TLS':
    case 'PROXY':
      return 'could not be reached';
    default:
      return 'failed';
  }
}

/**
 * A registry answers its API in JSON; a 200 with a web page is a web server, a login portal or a
 * proxy's page at that address. Said so, rather than "invalid manifest" (or a login that passed).
 */
function notAWebPage(res: Response, ctx: RequestContext): void {
  if (!/^text\/html\b/i.test(headerValue(res.headers, 'content-type') ?? '')) return;
  throw new StowageError(
    'REGISTRY_ERROR',
    `${res.url.host} answered the ${ctx.what}${ctx.repository ? ` of ${ctx.repository}` : ''} with a web page, not the registry API.`,
    `Check that ${ctx.registry} is a container registry (the address may reach a web site, a sign-in portal or a proxy's page).`,
  );
}

/** A capped body (TOO_LARGE over `cap`); a connection that breaks meanwhile is a typed error. */
async function readBody(res: Response, cap: number, ctx: RequestContext): Promise<Buffer> {
  const tooLarge = () =>
    new StowageError(
      'TOO_LARGE',
      `The ${ctx.what} of ${ctx.repository ?? ctx.registry} from ${res.url.host} is larger than ${cap} bytes; refusing it.`,
    );
  try {
    return await readCapped(res, cap, tooLarge);
  } catch (e) {
    if (e instanceof StowageError) throw e;
    // Raw socket errors (ECONNRESET, body timeout) must not escape untyped.
    throw new BodyBroken(res.url, e, ctx);
  }
}

/** A connection to the host a redirect led to failed (not to the registry): which host, and why. */
class RedirectFailed extends Error {
  constructor(
    readonly url: URL,
    override readonly cause: unknown,
  ) {
    super(`${url.host}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** The connection broke (or stalled) while a response body was read: typed, and retryable. */
class BodyBroken extends StowageError {
  constructor(url: URL, cause: unknown, ctx: RequestContext) {
    const stalled = (cause as { code?: string })?.code === 'UND_ERR_BODY_TIMEOUT';
    const base = networkError(url, cause, ctx);
    super(
      stalled ? 'STALLED' : 'NETWORK',
      stalled ? `${ctx.what} from ${url.host} stalled: no data arrived for too long.` : base.message,
      base.hint,
      { cause },
    );
  }
}

/** `Content-Range: bytes a-b/n` → [a, b+1) and n when known. */
function contentRange(res: Response): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(res.headers, 'content-range') ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]) + 1, ...(m[3] !== '*' ? { total: Number(m[3]) } : {}) };
}

/** Wraps a stream so its first `skip` bytes are dropped (a server that ignored Range). */
function skipPrefix(stream: BlobStream, skip: number): BlobStream {
  const source = stream.body;
  async function* body() {
    let left = skip;
    for await (const chunk of source) {
      if (left >= chunk.length) {
        left -= chunk.length;
        continue;
      }
      yield left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
    }
  }
  return { ...stream, body: body(), resumed: false, ranges: false };
}

/** The next page from a `Link: <…>; rel="next"` header; only on the same origin. */
function nextLink(link: string | undefined, current: URL, ctx: RequestContext): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m || !/rel\s*=\s*"?next"?/i.test(m[2]!)) continue;
    let next: URL;
    try {
      next = new URL(m[1]!, current);
    } catch {
      throw new StowageError('REGISTRY_ERROR', `${ctx.registry} sent an invalid pagination link.`);
    }
    if (next.origin !== current.origin) {
      throw new StowageError(
        'REGISTRY_ERROR',
        `${ctx.registry} sent a pagination link to another host (${next.host}); refusing to follow it.`,
      );
    }
    return `${next.pathname}${next.search}`;
  }
  return undefined;
}
