import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { Agent, type Dispatcher } from 'undici';
import { isStowageError, type StowageError } from '../../src/core/errors';
import {
  fetchToken,
  type Token,
  TokenCache,
  type TokenRequest,
  TokenServiceError,
  tokenCacheKey,
} from '../../src/core/registry/token';

// A tiny loopback token endpoint: each test gives the handler; every request is recorded.
interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}
type Handler = (req: Seen, res: ServerResponse) => void;

const servers: { close(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function endpoint(handler: Handler): Promise<{ realm: URL; base: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const s: Seen = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      handler(s, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { realm: new URL(`${base}/token`), base, seen };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const NOW = 1_700_000_000_000;
const now = () => NOW;

async function rejects(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<StowageError> {
  let err: unknown;
  await assert.rejects(p, (e) => {
    err = e;
    return true;
  });
  assert.ok(isStowageError(err), `expected a StowageError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  for (const re of patterns) assert.match(`${err.message} ${err.hint ?? ''}`, re);
  return err;
}

describe('fetchToken', () => {
  test('anonymous GET: service and one scope parameter per scope, no Authorization', async () => {
    const { realm, seen } = await endpoint((_req, res) =>
      json(res, 200, { token: 'anon-tok', expires_in: 300 }),
    );
    const t = await fetchToken({
      realm,
      service: 'registry.test',
      scopes: ['repository:a/b:pull', 'repository:c:pull,push'],
      now,
    });
    assert.deepEqual(t, { token: 'anon-tok', expiresAt: NOW + 300_000 - 10_000 });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.method, 'GET');
    assert.equal(seen[0]!.headers.authorization, undefined);
    assert.equal(seen[0]!.query.get('service'), 'registry.test');
    assert.deepEqual(seen[0]!.query.getAll('scope'), ['repository:a/b:pull', 'repository:c:pull,push']);
    assert.equal(seen[0]!.query.get('offline_token'), null);
  });

  test('keeps query parameters the realm already has', async () => {
    const { base, seen } = await endpoint((_req, res) => json(res, 200, { token: 't' }));
    await fetchToken({ realm: new URL(`${base}/auth?account=x`), scopes: ['repository:a:pull'] });
    assert.equal(seen[0]!.path, '/auth');
    assert.equal(seen[0]!.query.get('account'), 'x');
    assert.equal(seen[0]!.query.get('scope'), 'repository:a:pull');
  });

  test('user name and password: GET with Basic auth, offline_token and client_id', async () => {
    const { realm, seen } = await endpoint((req, res) =>
      req.headers.authorization === basic('alice', 'pa:ss')
        ? json(res, 200, { token: 'basic-tok', expires_in: 120, refresh_token: 'r1' })
        : json(res, 401, { errors: [{ code: 'UNAUTHORIZED' }] }),
    );
    const t = await fetchToken({
      realm,
      service: 's',
      scopes: ['repository:a:pull'],
      credential: { username: 'alice', password: 'pa:ss' },
      now,
    });
    assert.deepEqual(t, { token: 'basic-tok', expiresAt: NOW + 120_000 - 10_000, refreshToken: 'r1' });
    assert.equal(seen[0]!.method, 'GET');
    assert.equal(seen[0]!.query.get('offline_token'), 'true');
    assert.equal(seen[0]!.query.get('client_id'), 'stowage');
  });

  test('wrong password: UNAUTHORIZED naming the realm host, no secret and no body echoed', async () => {
    const { realm } = await endpoint((_req, res) =>
      json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad password hunter2-echo' }] }),
    );
    const e = await rejects(
      fetchToken({
        realm,
        scopes: [],
        credential: { username: 'alice', password: 'hunter2' },
        registry: 'reg.test',
      }),
      'UNAUTHORIZED',
      new RegExp(realm.host.replace('.', '\\.')),
      /reg\.test/,
      /rejected the credentials/,
      /HTTP 401, UNAUTHORIZED/,
    );
    assert.ok(e instanceof TokenServiceError);
    assert.equal(e.status, 401);
    assert.doesNotMatch(`${e.message} ${e.hint}`, /hunter2/);
  });

  test('identity token: OAuth2 POST with grant_type=refresh_token, space-separated scopes, client_id', async () => {
    const { realm, seen } = await endpoint((req, res) => {
      const form = new URLSearchParams(req.body);
      if (req.method === 'POST' && form.get('refresh_token') === 'refresh-1') {
        json(res, 200, { access_token: 'oauth-tok', expires_in: 900, scope: form.get('scope') });
      } else json(res, 401, {});
    });
    const t = await fetchToken({
      realm,
      service: 'svc',
      scopes: ['repository:a:pull', 'repository:b:pull'],
      credential: { identityToken: 'refresh-1' },
      clientId: 'stowage-test',
      now,
    });
    assert.deepEqual(t, { token: 'oauth-tok', expiresAt: NOW + 900_000 - 10_000 });
    assert.equal(seen.length, 1);
    assert.match(String(seen[0]!.headers['content-type']), /^application\/x-www-form-urlencoded/);
    assert.equal(seen[0]!.headers.authorization, undefined);
    const form = new URLSearchParams(seen[0]!.body);
    assert.equal(form.get('grant_type'), 'refresh_token');
    assert.equal(form.get('service'), 'svc');
    assert.equal(form.get('scope'), 'repository:a:pull repository:b:pull');
    assert.equal(form.get('client_id'), 'stowage-test');
  });

  for (const status of [404, 405, 400, 401]) {
    test(`identity token: POST answering ${status} falls back to GET with Basic auth`, async () => {
      const { realm, seen } = await endpoint((req, res) => {
        if (req.method === 'POST') return json(res, status, {});
        if (req.headers.authorization === basic('<token>', 'refresh-2'))
          return json(res, 200, { token: 'get-tok' });
        json(res, 401, {});
      });
      const t = await fetchToken({
        realm,
        scopes: ['repository:a:pull'],
        credential: { username: '<token>', identityToken: 'refresh-2' },
        now,
      });
      assert.deepEqual(t, { token: 'get-tok', expiresAt: NOW + 60_000 - 6_000 });
      assert.deepEqual(
        seen.map((s) => s.method),
        ['POST', 'GET'],
      );
      assert.deepEqual(seen[1]!.query.getAll('scope'), ['repository:a:pull']);
    });
  }

  test('identity token: a POST failing with 500 is reported, not retried as GET', async () => {
    const { realm, seen } = await endpoint((_req, res) => json(res, 500, 'oops'));
    const e = await rejects(
      fetchToken({ realm, scopes: [], credential: { identityToken: 'x' } }),
      'REGISTRY_ERROR',
      /HTTP 500/,
    );
    assert.equal((e as TokenServiceError).status, 500);
    assert.equal(seen.length, 1);
  });

  test('user name and password: GET answering 405 falls back to POST grant_type=password', async () => {
    const { realm, seen } = await endpoint((req, res) => {
      if (req.method === 'GET') return json(res, 405, {});
      const form = new URLSearchParams(req.body);
      if (
        form.get('grant_type') === 'password' &&
        form.get('username') === 'bob' &&
        form.get('password') === 'pw'
      ) {
        return json(res, 200, { access_token: 'pw-tok' });
      }
      json(res, 401, {});
    });
    const t = await fetchToken({
      realm,
      scopes: ['repository:a:pull'],
      credential: { username: 'bob', password: 'pw' },
    });
    assert.equal(t.token, 'pw-tok');
    assert.deepEqual(
      seen.map((s) => s.method),
      ['GET', 'POST'],
    );
  });

  test('a registry token is used as is, without asking the token service', async () => {
    const { realm, seen } = await endpoint((_req, res) => json(res, 500, {}));
    const t = await fetchToken({ realm, scopes: [], credential: { registryToken: 'as-is', username: 'u' } });
    assert.deepEqual(t, { token: 'as-is', expiresAt: Number.POSITIVE_INFINITY });
    assert.equal(seen.length, 0);
  });

  test('a response without token or access_token: error naming the realm host, body not echoed', async () => {
    const { realm } = await endpoint((_req, res) =>
      json(res, 200, { detail: 'secret-in-body', expires_in: 60 }),
    );
    const e = await rejects(fetchToken({ realm, scopes: [] }), 'REGISTRY_ERROR', /without a token/);
    assert.ok(e.message.includes(realm.host));
    assert.doesNotMatch(e.message, /secret-in-body/);
  });

  const badBodies: [string, string, RegExp][] = [
    ['not JSON', 'token=abc secret', /not a JSON object/],
    ['a JSON array', '["t"]', /not a JSON object/],
    ['an empty token', '{"token":""}', /without a token/],
    ['a token with a newline', '{"token":"a\\r\\nX-Evil: 1"}', /characters a header cannot carry/],
  ];
  for (const [name, body, why] of badBodies) {
    test(`a response with ${name} is refused`, async () => {
      const { realm } = await endpoint((_req, res) => json(res, 200, body));
      const e = await rejects(fetchToken({ realm, scopes: [] }), 'REGISTRY_ERROR', why);
      assert.doesNotMatch(e.message, /secret|X-Evil/);
    });
  }

  test('expires_in: default 60 s, nonsense ignored, leeway subtracted', async () => {
    for (const [expires, lifetime] of [
      [undefined, 60_000],
      [-5, 60_000],
      ['abc', 60_000],
      [3600, 3_600_000],
      [30, 30_000],
    ] as const) {
      const { realm } = await endpoint((_req, res) => json(res, 200, { token: 't', expires_in: expires }));
      const t = await fetchToken({ realm, scopes: [], now });
      assert.equal(t.expiresAt, NOW + lifetime - Math.min(10_000, lifetime / 10), `expires_in ${expires}`);
    }
  });

  test('a token response over 1 MiB is refused (declared or streamed)', async () => {
    const big = JSON.stringify({ token: 't', pad: 'x'.repeat(1024 * 1024) });
    const declared = await endpoint((_req, res) => json(res, 200, big));
    await rejects(fetchToken({ realm: declared.realm, scopes: [] }), 'TOO_LARGE', /over 1 MiB/);
    const streamed = await endpoint((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no content-length
      res.write(big.slice(0, 600_000));
      res.end(big.slice(600_000));
    });
    await rejects(fetchToken({ realm: streamed.realm, scopes: [] }), 'TOO_LARGE');
  });

  test('429: TOO_MANY_REQUESTS with Retry-After; 403: DENIED', async () => {
    const limited = await endpoint((_req, res) =>
      json(res, 429, { errors: [{ code: 'TOOMANYREQUESTS' }] }, { 'retry-after': '30' }),
    );
    const e = await rejects(
      fetchToken({ realm: limited.realm, scopes: [] }),
      'TOO_MANY_REQUESTS',
      /retry after 30/,
    );
    assert.equal((e as TokenServiceError).retryAfter, '30');
    const denied = await endpoint((_req, res) => json(res, 403, { error: 'access_denied' }));
    await rejects(fetchToken({ realm: denied.realm, scopes: [] }), 'DENIED', /HTTP 403, access_denied/);
  });

  test('redirects: same origin followed with credentials; another host refused and never contacted', async () => {
    const other = await endpoint((_req, res) => json(res, 200, { token: 'elsewhere' }));
    const { realm, base, seen } = await endpoint((req, res) => {
      if (req.path === '/token') return void res.writeHead(307, { location: '/token2?x=1' }).end();
      if (req.path === '/token2' && req.headers.authorization === basic('u', 'p'))
        return json(res, 200, { token: 'same' });
      if (req.path === '/away') return void res.writeHead(302, { location: `${other.base}/token` }).end();
      json(res, 401, {});
    });
    const t = await fetchToken({
      realm,
      scopes: ['repository:a:pull'],
      credential: { username: 'u', password: 'p' },
    });
    assert.equal(t.token, 'same');
    assert.equal(seen[1]!.path, '/token2');
    await rejects(
      fetchToken({
        realm: new URL(`${base}/away`),
        scopes: [],
        credential: { username: 'u', password: 'p' },
      }),
      'REGISTRY_ERROR',
      /redirected to another host/,
    );
    assert.equal(other.seen.length, 0, 'the other host never saw a request');
    // Anonymous: nothing to leak, so the redirect is followed.
    const anon = await fetchToken({ realm: new URL(`${base}/away`), scopes: [] });
    assert.equal(anon.token, 'elsewhere');
    assert.equal(other.seen[0]!.headers.authorization, undefined);
  });

  test('a redirect loop ends with an error', async () => {
    const { realm } = await endpoint((_req, res) => void res.writeHead(302, { location: '/token' }).end());
    await rejects(fetchToken({ realm, scopes: [] }), 'REGISTRY_ERROR', /too many times/);
  });

  test('connection refused: NETWORK naming the realm', async () => {
    const { realm } = await endpoint(() => {});
    await servers.pop()!.close();
    await rejects(
      fetchToken({ realm, scopes: [], registry: 'reg.test' }),
      'NETWORK',
      /token service/,
      /reg\.test/,
    );
  });

  test('abort: ABORTED', async () => {
    const ac = new AbortController();
    const { realm } = await endpoint(() => ac.abort()); // never answers; aborts once asked
    await rejects(fetchToken({ realm, scopes: [], signal: ac.signal }), 'ABORTED');
  });

  test('uses the dispatcher it is given', async () => {
    let dispatched = 0;
    class Counting extends Agent {
      override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
        dispatched++;
        return super.dispatch(options, handler);
      }
    }
    const dispatcher = new Counting();
    const { realm } = await endpoint((_req, res) => json(res, 200, { token: 't' }));
    await fetchToken({ realm, scopes: [], dispatcher, userAgent: 'stowage/test' });
    assert.equal(dispatched, 1);
    await dispatcher.close();
  });
});

describe('TokenCache', () => {
  test('tokenCacheKey: registry plus sorted, de-duplicated scopes', () => {
    assert.equal(
      tokenCacheKey('ghcr.io', ['repository:b:pull', 'repository:a:pull', 'repository:b:pull']),
      'ghcr.io repository:a:pull repository:b:pull',
    );
    assert.equal(tokenCacheKey('r', []), 'r ');
  });

  test('honours expires_in from the token service', async () => {
    let clock = NOW;
    const tick = () => clock;
    const cache = new TokenCache({ now: tick });
    const { realm } = await endpoint((_req, res) => json(res, 200, { token: 'cached', expires_in: 120 }));
    const key = tokenCacheKey('reg', ['repository:a:pull']);
    cache.set(key, await fetchToken({ realm, scopes: ['repository:a:pull'], now: tick }));
    clock = NOW + 100_000;
    assert.equal(cache.get(key)?.token, 'cached');
    clock = NOW + 110_000; // 120 s minus the 10 s leeway
    assert.equal(cache.get(key), undefined);
    assert.equal(cache.size, 0);
  });

  test('getOrFetch: one request for concurrent callers, then served from the cache', async () => {
    const cache = new TokenCache();
    const { realm, seen } = await endpoint((_req, res) =>
      setTimeout(() => json(res, 200, { token: 'shared' }), 20),
    );
    const req: TokenRequest = { realm, scopes: ['repository:a:pull'] };
    const key = tokenCacheKey('reg', req.scopes);
    const tokens = await Promise.all([1, 2, 3].map(() => cache.getOrFetch(key, () => fetchToken(req))));
    assert.deepEqual(
      tokens.map((t) => t.token),
      ['shared', 'shared', 'shared'],
    );
    assert.equal((await cache.getOrFetch(key, () => fetchToken(req))).token, 'shared');
    assert.equal(seen.length, 1);
  });

  test('getOrFetch: a failed fetch is not cached', async () => {
    const cache = new TokenCache();
    let n = 0;
    const fetch = async (): Promise<Token> => {
      n++;
      if (n === 1) throw new Error('first fails');
      return { token: 'second', expiresAt: Date.now() + 60_000 };
    };
    await assert.rejects(cache.getOrFetch('k', fetch), /first fails/);
    assert.equal((await cache.getOrFetch('k', fetch)).token, 'second');
  });

  test('delete, clear by registry, clear all, bounded size', () => {
    const cache = new TokenCache({ maxEntries: 3 });
    const t = (token: string): Token => ({ token, expiresAt: Number.POSITIVE_INFINITY });
    cache.set('a.io s1', t('1'));
    cache.set('a.io s2', t('2'));
    cache.set('b.io s1', t('3'));
    cache.delete('a.io s2');
    assert.equal(cache.get('a.io s2'), undefined);
    cache.set('a.io s2', t('2'));
    cache.clear('a.io');
    assert.equal(cache.get('a.io s1'), undefined);
    assert.equal(cache.get('b.io s1')?.token, '3');
    for (const k of ['c1', 'c2', 'c3', 'c4']) cache.set(k, t(k));
    assert.equal(cache.size, 3);
    assert.equal(cache.get('b.io s1'), undefined, 'the oldest entry was evicted');
    assert.equal(cache.get('c4')?.token, 'c4');
    cache.clear();
    assert.equal(cache.size, 0);
  });
});
