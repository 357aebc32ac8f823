// Hostile and malformed registries: every case ends in a typed StowageError with a clear code,
// nothing is committed (no reference, no blob that does not verify), and nothing hangs. A real
// registry serves what it can; a rule-based proxy in front of it, or a small fake server, the rest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ErrorCode, StowageError } from '../../src/core/errors';
import { type Platform, parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { parseReference } from '../../src/core/reference';
import { RegistryClient, type RequestLog } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { runCli } from '../support/cli';
import { blobNames, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage, MEDIA } from '../support/fixtures';
import { type RuleResult, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const GUARD_MS = 20_000;
const amd64 = [parsePlatform('linux/amd64')];
let work: string;
let reg: RunningRegistry;
let image: BuiltImage;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-hostile-'));
  image = await buildImage(join(work, 'img'), {
    tag: 'v1',
    seed: 'hostile',
    platforms: ['linux/amd64'],
    index: false,
    layers: 2,
    layerSize: 120_000,
  });
  reg = await startRegistry();
  await pushLayout(image.layoutDir, 'v1', reg, 'h/app:v1');
});

after(async () => {
  for (const s of stops.reverse()) await s();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const sha = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A fake server on 127.0.0.1; records every request. */
async function fake(handler: (req: IncomingMessage, res: ServerResponse, base: string) => void) {
  const seen: { path: string; authorization?: string }[] = [];
  let base = '';
  const server = createServer((req, res) => {
    seen.push({
      path: req.url ?? '/',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    handler(req, res, base);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  base = `http://${host}`;
  stops.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { host, url: base, seen };
}

/** The real registry, with manifests (by tag or digest) answered by `serve` where it returns a body. */
async function manifestsFrom(serve: (ident: string) => { body: string | Buffer; type?: string } | undefined) {
  const proxy = await startProxy(reg.url, (req): RuleResult => {
    const m = /\/manifests\/([^/?]+)$/.exec(req.url ?? '');
    const answer = m ? serve(decodeURIComponent(m[1]!)) : undefined;
    if (!answer) return undefined;
    return {
      respond: {
        status: 200,
        headers: { 'content-type': answer.type ?? MEDIA.ociManifest },
        body: answer.body,
      },
    };
  });
  stops.push(proxy.stop);
  return proxy;
}

interface Outcome {
  error: StowageError;
  store: Store;
  logs: RequestLog[];
}

/** Pulls `ref` and expects a typed error (of `code` when given), nothing recorded, no bad blob. */
async function expectClearFailure(
  ref: string,
  code?: ErrorCode | ErrorCode[],
  options: { client?: RegistryClient; noBlobs?: boolean; platforms?: Platform[] } = {},
): Promise<Outcome> {
  const store = await Store.open(await mkdtemp(join(work, 'cache-')));
  const logs: RequestLog[] = [];
  const client =
    options.client ??
    new RegistryClient({
      retry: { attempts: 2, baseDelayMs: 5 },
      stallTimeoutMs: 5_000,
      onRequest: (r) => logs.push(r),
    });
  let error: unknown;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pull(store, client, ref, { platforms: options.platforms ?? amd64, blobAttempts: 2 }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`pull of ${ref} hung`)), GUARD_MS);
      }),
    ]);
  } catch (e) {
    error = e;
  } finally {
    clearTimeout(timer);
    if (!options.client) await client.close();
  }
  assert.ok(
    error instanceof StowageError,
    `a typed error, got: ${(error as Error)?.stack ?? error ?? 'success'}`,
  );
  const codes = code === undefined ? undefined : Array.isArray(code) ? code : [code];
  if (codes)
    assert.ok(codes.includes(error.code), `code ${error.code} (${error.message}) is one of ${codes}`);
  assert.ok(error.message.length > 20, 'the message says something');
  assert.equal((await store.listReferences()).length, 0, 'no reference recorded');
  await verifyAllBlobs(store);
  if (options.noBlobs !== false) assert.equal((await blobNames(store)).size, 0, 'no blob committed');
  return { error, store, logs };
}

const manifestJson = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: image.platforms[0]!.config,
    layers: image.platforms[0]!.layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
    })),
    ...over,
  });

describe('hostile manifests', () => {
  test('deeply nested or invalid JSON → MANIFEST_INVALID', async () => {
    const bodies = [
      `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
      `{"schemaVersion":2,"mediaType":"${MEDIA.ociManifest}","annotations":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
      '{"schemaVersion": 2,',
      '\u0000\u0001 not json',
      '',
      'null',
      '"a string"',
    ];
    for (const body of bodies) {
      const p = await manifestsFrom(() => ({ body }));
      await expectClearFailure(`${p.host}/h/app:v1`, 'MANIFEST_INVALID');
    }
  });

  test('unknown media types and schema1 → UNSUPPORTED_MEDIA_TYPE', async () => {
    const cases = [
      { body: manifestJson({ mediaType: 'application/x-evil' }), type: 'application/x-evil' },
      { body: '{"schemaVersion":2,"foo":1}', type: 'text/html' },
      {
        body: JSON.stringify({ schemaVersion: 1, name: 'h/app', tag: 'v1', fsLayers: [], history: [] }),
        type: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
      },
      { body: JSON.stringify({ schemaVersion: 1, name: 'h/app', fsLayers: [] }), type: 'application/json' },
    ];
    for (const c of cases) {
      const p = await manifestsFrom(() => c);
      await expectClearFailure(`${p.host}/h/app:v1`, ['UNSUPPORTED_MEDIA_TYPE', 'MANIFEST_INVALID']);
    }
  });

  test('an index whose entry points back at itself → DIGEST_MISMATCH, no loop', async () => {
    const entryDigest = sha('pretend');
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [
        {
          mediaType: MEDIA.ociIndex,
          digest: entryDigest,
          size: 300,
          platform: { os: 'linux', architecture: 'amd64' },
        },
      ],
    });
    // Every manifest request, by tag or by the entry's digest, gets the same index back.
    const p = await manifestsFrom(() => ({ body: index, type: MEDIA.ociIndex }));
    await expectClearFailure(`${p.host}/h/app:v1`, ['DIGEST_MISMATCH', 'SIZE_MISMATCH']);
  });

  test('indexes nested deeper than the limit → MANIFEST_INVALID', async () => {
    const docs = new Map<string, string>();
    let child: { mediaType: string; digest: string; size: number } = {
      mediaType: MEDIA.ociManifest,
      digest: image.digest,
      size: image.size,
    };
    let top = '';
    for (let level = 0; level < 8; level++) {
      top = JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [{ ...child, platform: { os: 'linux', architecture: 'amd64' } }],
      });
      const digest = sha(top);
      docs.set(digest, top);
      child = { mediaType: MEDIA.ociIndex, digest, size: Buffer.byteLength(top) };
    }
    const p = await manifestsFrom((ident) =>
      ident === 'v1'
        ? { body: top, type: MEDIA.ociIndex }
        : docs.has(ident)
          ? { body: docs.get(ident)!, type: MEDIA.ociIndex }
          : undefined,
    );
    const { error } = await expectClearFailure(`${p.host}/h/app:v1`, 'MANIFEST_INVALID');
    assert.match(error.message, /nest/);
  });

  test('no match in an index of indexes: the error lists what the nested indexes offer', async () => {
    const amd = image.platforms.find((p) => p.platform === 'linux/amd64')!;
    const inner = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [{ ...amd.manifest, platform: { os: 'linux', architecture: 'amd64' } }],
    });
    const top = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [{ mediaType: MEDIA.ociIndex, digest: sha(inner), size: Buffer.byteLength(inner) }],
    });
    const p = await manifestsFrom((ident) =>
      ident === 'v1'
        ? { body: top, type: MEDIA.ociIndex }
        : ident === sha(inner)
          ? { body: inner, type: MEDIA.ociIndex }
          : undefined,
    );
    const { error } = await expectClearFailure(`${p.host}/h/app:v1`, 'NO_MATCHING_PLATFORM', {
      platforms: [parsePlatform('linux/s390x')],
    });
    assert.match(error.message, /has no image for linux\/s390x; it offers linux\/amd64\./);
  });

  test('descriptors with negative, huge or fractional sizes → MANIFEST_INVALID', async () => {
    for (const size of [-1, 1.5, 1e300, 2 ** 53, '12', null]) {
      const config = { ...image.platforms[0]!.config, size };
      const p = await manifestsFrom(() => ({ body: manifestJson({ config }) }));
      await expectClearFailure(`${p.host}/h/app:v1`, 'MANIFEST_INVALID');
    }
  });

  test('digests with ../, wrong lengths, unknown algorithms or upper case → MANIFEST_INVALID, no path touched', async () => {
    const hex = image.platforms[0]!.layers[0]!.digest.slice(7);
    const bad = [
      'sha256:../../../../etc/passwd',
      `sha256:${hex}/../../x`,
      `sha256:${hex.slice(1)}`,
      `sha256:${hex}0`,
      `md5:${hex.slice(0, 32)}`,
      `sha1:${hex.slice(0, 40)}`,
      `sha256:${hex.toUpperCase()}`,
      `SHA256:${hex}`,
      hex,
      '',
    ];
    for (const digest of bad) {
      const layers = [{ mediaType: MEDIA.ociLayerGzip, digest, size: 10 }];
      let p = await manifestsFrom(() => ({ body: manifestJson({ layers }) }));
      await expectClearFailure(`${p.host}/h/app:v1`, 'MANIFEST_INVALID');
      const index = JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA.ociIndex,
        manifests: [
          {
            mediaType: MEDIA.ociManifest,
            digest,
            size: 10,
            platform: { os: 'linux', architecture: 'amd64' },
          },
        ],
      });
      p = await manifestsFrom(() => ({ body: index, type: MEDIA.ociIndex }));
      await expectClearFailure(`${p.host}/h/app:v1`, 'MANIFEST_INVALID');
    }
  });

  test('a blob larger than its descriptor says → SIZE_MISMATCH, the blob is not committed', async () => {
    const [l0, l1] = image.platforms[0]!.layers;
    // The descriptor understates the size…
    const layers = [
      { mediaType: l0!.mediaType, digest: l0!.digest, size: l0!.size - 10 },
      { mediaType: l1!.mediaType, digest: l1!.digest, size: l1!.size },
    ];
    let p = await manifestsFrom(() => ({ body: manifestJson({ layers }) }));
    let out = await expectClearFailure(`${p.host}/h/app:v1`, 'SIZE_MISMATCH', { noBlobs: false });
    assert.ok(!(await blobNames(out.store)).has(l0!.digest));
    // …or the server appends bytes to a correctly described blob.
    const proxy = await startProxy(reg.url, (req) =>
      req.url?.endsWith(`/blobs/${l1!.digest}`)
        ? { rewriteBody: (b) => Buffer.concat([b, Buffer.from('trailing garbage')]) }
        : undefined,
    );
    stops.push(proxy.stop);
    out = await expectClearFailure(`${proxy.host}/h/app:v1`, 'SIZE_MISMATCH', { noBlobs: false });
    assert.ok(!(await blobNames(out.store)).has(l1!.digest));
    // …or claims a size far larger than what it serves: bounded attempts, then a typed error.
    const huge = [{ mediaType: l0!.mediaType, digest: l0!.digest, size: 2 ** 40 }];
    p = await manifestsFrom(() => ({ body: manifestJson({ layers: huge }) }));
    out = await expectClearFailure(`${p.host}/h/app:v1`, undefined, { noBlobs: false });
    assert.ok(!(await blobNames(out.store)).has(l0!.digest));
  });
});

describe('not a registry', () => {
  test('a web server at the address: the pull and a login say so; nothing is saved', async () => {
    const site = await fake((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<html><body>Welcome</body></html>');
    });
    const out = await expectClearFailure(`${site.host}/h/app:v1`, 'REGISTRY_ERROR');
    assert.match(
      out.error.message,
      /answered the manifest v1 of h\/app with a web page, not the registry API/,
    );
    const config = await mkdtemp(join(work, 'docker-'));
    const login = await runCli(
      ['login', site.host, '-u', 'someone', '--password-stdin', '--insecure-registry', site.host],
      30_000,
      { DOCKER_CONFIG: config },
      'secret\n',
    );
    assert.equal(login.code, 1, login.stdout + login.stderr);
    assert.match(login.stderr, /Login to .* failed: .*web page/);
    assert.deepEqual(await readdir(config), [], 'no credentials saved');
  });
});

describe('foreign layers', () => {
  test('a non-distributable layer the registry does not serve: NOT_FOUND naming it and where it lives', async () => {
    const foreign = {
      mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
      digest: `sha256:${'f'.repeat(64)}`,
      size: 1234,
      urls: ['https://publisher.example/layers/base.tar.gz'],
    };
    const p = await manifestsFrom(() => ({ body: manifestJson({ layers: [foreign] }) }));
    const out = await expectClearFailure(`${p.host}/h/app:v1`, 'NOT_FOUND', { noBlobs: false });
    assert.match(out.error.message, /non-distributable.*https:\/\/publisher\.example\/layers\/base\.tar\.gz/);
    assert.ok(!out.logs.some((l) => l.url.includes('publisher.example')), 'nothing was asked of the URL');
  });
});

describe('hostile auth', () => {
  /** A registry that answers every /v2/ request 401 with `challenge`; `/token` answers `token`. */
  async function challenging(
    challenge: (base: string) => string | string[],
    token?: (res: ServerResponse) => void,
  ) {
    return fake((req, res, base) => {
      if (req.url?.startsWith('/token')) {
        if (token) token(res);
        else res.writeHead(404).end();
        return;
      }
      res.writeHead(401, { 'www-authenticate': challenge(base), 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    });
  }

  test('a token service answering 503, then 429 with Retry-After, is asked again, as a registry would be', async () => {
    let asked = 0;
    const server = await challenging(
      (base) => `Bearer realm="${base}/token",service="fake"`,
      (res) => {
        asked++;
        if (asked === 1) res.writeHead(503).end();
        else if (asked === 2) res.writeHead(429, { 'retry-after': '0' }).end();
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t0k3n"}');
      },
    );
    // The token comes on the third try; this fake registry then refuses it (401 for everything).
    await expectClearFailure(`${server.host}/h/app:v1`, 'UNAUTHORIZED');
    assert.ok(asked >= 3, `the token service was asked ${asked} times`);
  });

  test('malformed WWW-Authenticate headers → UNAUTHORIZED or REGISTRY_ERROR, no token request', async () => {
    const headers = [
      'Bearer realm="http://127.0.0.1:1/unterminated',
      '@@ garbage,,,==="',
      'Bearer',
      'Bearer service="x",scope="repository:h/app:pull"',
      '=realm="x"',
      `Bearer realm="${'a'.repeat(10_000)}"`,
      'Basic realm="x"', // basic, but we have no credentials
      'Negotiate abc==',
      ['', ' , '],
    ];
    for (const h of headers) {
      const server = await challenging(() => h);
      await expectClearFailure(`${server.host}/h/app:v1`, ['UNAUTHORIZED', 'REGISTRY_ERROR']);
      assert.ok(!server.seen.some((s) => s.path.startsWith('/token')), 'no token was requested');
    }
    // Headers beyond what the HTTP client accepts at all: a typed network error, not a crash.
    const server = await challenging(() => `Bearer realm="${'a'.repeat(100_000)}"`);
    await expectClearFailure(`${server.host}/h/app:v1`, 'NETWORK');
  });

  test('a realm with a non-http(s) URL or embedded credentials → REGISTRY_ERROR, credentials not sent', async () => {
    const credentials = new StaticCredentials();
    for (const realm of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'ftp://127.0.0.1/token',
      'data:text/plain,x',
      '/relative/token',
      'http://user:pw@127.0.0.1:1/token',
    ]) {
      const server = await challenging(() => `Bearer realm="${realm}",service="svc"`);
      credentials.set(server.host, { username: 'u', password: 'hostile-secret-1' });
      const client = new RegistryClient({
        credentials,
        insecureRegistries: [server.host],
        retry: { attempts: 1 },
      });
      const { error } = await expectClearFailure(`${server.host}/h/app:v1`, 'REGISTRY_ERROR', { client });
      assert.ok(!error.message.includes('hostile-secret-1'));
      assert.ok(
        server.seen.every((s) => !s.authorization),
        'no credentials sent anywhere',
      );
      await client.close();
    }
  });

  test('token responses without a usable token → a typed error', async () => {
    const answers: ((res: ServerResponse) => void)[] = [
      (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
      (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":""}'),
      (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":42}'),
      (res) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"a b\\r\\nX-Injected: 1"}'),
      (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('not json'),
      (res) =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`{"token":"${'x'.repeat(2_000_000)}"}`),
      (res) => res.writeHead(500).end(),
    ];
    for (const answer of answers) {
      const server = await challenging((base) => `Bearer realm="${base}/token",service="svc"`, answer);
      const { error } = await expectClearFailure(`${server.host}/h/app:v1`);
      assert.ok(!/X-Injected/.test(error.message), 'the token body is not echoed');
      assert.ok(
        server.seen.filter((s) => s.path.startsWith('/v2/h/')).every((s) => !s.authorization),
        'no bad token was sent',
      );
    }
  });
});

describe('hostile redirects and links', () => {
  test('redirect loops, endless chains and redirects to file:/other schemes → REGISTRY_ERROR', async () => {
    const server = await fake((req, res, base) => {
      const u = new URL(req.url!, base);
      if (u.pathname === '/v2/') return res.writeHead(200).end('{}');
      if (u.pathname.includes('/loop/')) return res.writeHead(307, { location: req.url! }).end();
      if (u.pathname.includes('/pingpong/')) {
        const other = u.pathname.replace('/pingpong/', '/pongping/');
        return res.writeHead(302, { location: other }).end();
      }
      if (u.pathname.includes('/pongping/'))
        return res.writeHead(302, { location: u.pathname.replace('/pongping/', '/pingpong/') }).end();
      if (u.pathname.includes('/chain/')) {
        const n = Number(u.searchParams.get('n') ?? 0);
        return res.writeHead(301, { location: `${u.pathname}?n=${n + 1}` }).end();
      }
      const scheme = /\/(file|ftp|data|gopher)\//.exec(u.pathname)?.[1];
      if (scheme) {
        const target = scheme === 'data' ? 'data:application/json,{}' : `${scheme}:///etc/passwd`;
        return res.writeHead(302, { location: target }).end();
      }
      res.writeHead(404).end();
    });
    for (const repo of ['loop', 'pingpong', 'chain', 'file', 'ftp', 'data', 'gopher']) {
      const { error } = await expectClearFailure(`${server.host}/${repo}/app:v1`, 'REGISTRY_ERROR');
      assert.match(error.message, /redirect/i);
    }
    assert.ok(server.seen.length < 200, `bounded number of requests (${server.seen.length})`);
  });

  test('a Link header to another host is refused for tags and the catalog; that host sees nothing', async () => {
    const elsewhere = await fake((_req, res) =>
      res.writeHead(200).end('{"tags":["stolen"],"repositories":["stolen"]}'),
    );
    const server = await fake((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.search.includes('last=')) return res.writeHead(200).end('{"tags":[],"repositories":[]}');
      res.writeHead(200, {
        'content-type': 'application/json',
        link: `<http://${elsewhere.host}${u.pathname}?last=a&n=1>; rel="next"`,
      });
      res.end('{"name":"h/app","tags":["a"],"repositories":["a"]}');
    });
    const credentials = new StaticCredentials();
    credentials.set(server.host, { username: 'u', password: 'link-secret' });
    const client = new RegistryClient({ credentials });
    const tags = client.tags(parseReference(`${server.host}/h/app`), { pageSize: 1 });
    assert.deepEqual((await tags.next()).value, ['a']);
    await assert.rejects(tags.next(), (e) => e instanceof StowageError && /another host/.test(e.message));
    const catalog = client.catalog(server.host, { pageSize: 1 });
    assert.deepEqual((await catalog.next()).value, ['a']);
    await assert.rejects(catalog.next(), (e) => e instanceof StowageError && /another host/.test(e.message));
    assert.equal(elsewhere.seen.length, 0, 'the other host got no request');
    await client.close();
  });

  test('later pages go to the registry, not to a host it redirected the first page to', async () => {
    // The registry redirects its tag list to another host, whose relative Link then must not make
    // that host the one later pages (and a challenge with the registry's credentials) go to.
    const elsewhere = await fake((req, res) => {
      if (req.url?.includes('last='))
        return res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
      res.writeHead(200, {
        'content-type': 'application/json',
        link: '</v2/h/app/tags/list?last=a&n=1>; rel="next"',
      });
      res.end('{"name":"h/app","tags":["a"]}');
    });
    const server = await fake((req, res) => {
      if (req.url?.includes('last=')) return res.writeHead(200).end('{"name":"h/app","tags":["b"]}');
      res.writeHead(302, { location: `${elsewhere.url}${req.url}` }).end();
    });
    const credentials = new StaticCredentials();
    credentials.set(server.host, { username: 'u', password: 'page-secret' });
    // Both hosts may get credentials over plain HTTP: only the origin rule keeps them from elsewhere.
    const client = new RegistryClient({ credentials, insecureRegistries: [server.host, elsewhere.host] });
    const pages: string[][] = [];
    for await (const page of client.tags(parseReference(`${server.host}/h/app`), { pageSize: 1 }))
      pages.push(page);
    await client.close();
    assert.deepEqual(pages, [['a'], ['b']]);
    assert.equal(elsewhere.seen.length, 1, 'only the redirected first page went to the other host');
    assert.ok(
      elsewhere.seen.every((r) => !r.authorization),
      'no Authorization reached the other host',
    );
  });
});
