import type { Dispatcher } from 'undici';
import { abortable, StowageError } from '../errors';
import { bearerRealm, type Challenge, parseChallenges } from './challenge';
import type { RequestLog } from './client';
import type { Credential, CredentialSource } from './credentials';
import { backoffDelay, DEFAULT_RETRY, isRetryableStatus, parseRetryAfter, sleep } from './retry';
import { fetchToken, type Token, TokenCache, TokenServiceError } from './token';

/** Decides whether credentials may travel to a URL (TLS, or a host the user marked insecure). */
export type CredentialPolicy = (url: URL) => boolean;

/**
 * Per-origin authorization state: remembers each origin's challenge, caches bearer tokens per
 * scope, and produces the Authorization header for a request. Credentials are looked up lazily,
 * only after a registry asked for them (a broken credential helper never fails anonymous pulls).
 */
export class Authenticator {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new TokenCache();
  private readonly credentialErrors = new Map<string, StowageError>();

  constructor(
    private readonly credentials: CredentialSource | undefined,
    private readonly mayCarryCredentials: CredentialPolicy,
    private readonly dispatcherFor: (url: URL) => Dispatcher,
    private readonly onRequest?: (log: RequestLog) => void,
  ) {}

  /** The header to send up front, from what is already known (no network). */
  async header(origin: URL, registry: string, scope: string): Promise<string | undefined> {
    const challenge = this.challenges.get(origin.origin);
    if (!challenge) return undefined;
    if (challenge.scheme === 'bearer') {
      const t = this.tokens.get(tokenKey(origin, scope));
      return t ? `Bearer ${t.token}` : undefined;
    }
    if (challenge.scheme === 'basic') return this.basic(origin, registry, false);
    return undefined;
  }

  /**
   * Answers a 401: parses the challenge and obtains what it asks for. Returns the header to retry
   * with, or undefined when there is nothing we could send.
   */
  async authorize(
    origin: URL,
    registry: string,
    scope: string,
    wwwAuthenticate: string | string[] | undefined,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const challenges = parseChallenges(wwwAuthenticate);
    const challenge =
      challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (!challenge) return undefined;
    this.challenges.set(origin.origin, challenge);
    if (challenge.scheme === 'basic') return this.basic(origin, registry, true);

    const realm = bearerRealm(challenge, registry);
    const scopes = [...scope.split(' '), ...(challenge.params.scope?.split(' ') ?? [])].filter(
      (s, i, all) => s && all.indexOf(s) === i,
    );
    const credential = await this.lookup(registry);
    const sendable = credential && this.mayCarryCredentials(realm) ? credential : undefined;
    if (credential && !sendable) {
      // Anonymously then (a public image still pulls); said if the registry refuses that.
      this.credentialErrors.set(
        registry,
        new StowageError(
          'INSECURE_REFUSED',
          `The credentials for ${registry} were not sent: its token service ${realm.host} is plain HTTP.`,
          `Use HTTPS for the token service, or add ${realm.host} to stowage.insecureRegistries (--insecure-registry) if you trust the network.`,
        ),
      );
    }
    let token: Token;
    try {
      // One request for all the transfers that met this challenge at once; each waits under its
      // own signal (one cancelled must not fail the others' shared request).
      const shared = this.tokens.getOrFetch(tokenKey(origin, scope), () =>
        withTokenRetries(() =>
          fetchToken({
            realm,
            service: challenge.params.service,
            scopes,
            credential: sendable,
            dispatcher: this.dispatcherFor(realm),
            clientId: 'stowage',
            registry,
            onRequest: this.onRequest,
          }),
        ),
      );
      token = await abortable(shared, signal);
    } catch (e) {
      // A credential helper that failed earlier is the likelier cause; say so.
      throw this.credentialErrors.get(registry) ?? e;
    }
    return `Bearer ${token.token}`;
  }

  /** Forgets a rejected token (unless another transfer already got a newer one) so the next authorize() fetches one. */
  invalidate(origin: URL, scope: string, rejected: string): void {
    const key = tokenKey(origin, scope);
    if (`Bearer ${this.tokens.get(key)?.token}` === rejected) this.tokens.delete(key);
  }

  /**
   * Why this registry may have refused us: its credentials could not be looked up (a broken
   * helper), or were not sent (a plain-HTTP token service). Reported instead of a bare 401.
   */
  problem(registry: string): StowageError | undefined {
    return this.credentialErrors.get(registry);
  }

  private async basic(origin: URL, registry: string, required: boolean): Promise<string | undefined> {
    const c = await this.lookup(registry);
    if (!c?.username || c.password === undefined) {
      if (required && this.credentialErrors.has(registry)) throw this.credentialErrors.get(registry);
      return undefined;
    }
    if (!this.mayCarryCredentials(origin)) {
      throw new StowageError(
        'INSECURE_REFUSED',
        `Refusing to send credentials for ${registry} over plain HTTP to ${origin.host}.`,
        `Serve the registry over HTTPS, or add ${origin.host} to stowage.insecureRegistries (--insecure-registry) if you trust the network.`,
      );
    }
    return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
  }

  private async lookup(registry: string): Promise<Credential | undefined> {
    if (!this.credentials) return undefined;
    try {
      return await this.credentials.get(registry);
    } catch (e) {
      // Go on anonymously; report this error if the registry then refuses us.
      if (e instanceof StowageError) this.credentialErrors.set(registry, e);
      else
        this.credentialErrors.set(
          registry,
          new StowageError('UNAUTHORIZED', String((e as Error)?.message ?? e)),
        );
      return undefined;
    }
  }
}

function tokenKey(origin: URL, scope: string): string {
  return `${origin.origin} ${scope}`;
}

/** A token service that is busy (429) or failing (5xx) is asked again, as the registry would be. */
async function withTokenRetries(fetch: () => Promise<Token>): Promise<Token> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch();
    } catch (e) {
      const status = e instanceof TokenServiceError ? e.status : 0;
      if (attempt >= DEFAULT_RETRY.attempts || !isRetryableStatus(status)) throw e;
      const retryAfter = (e as TokenServiceError).retryAfter;
      await sleep(parseRetryAfter(retryAfter) ?? backoffDelay(attempt, DEFAULT_RETRY));
    }
  }
}
