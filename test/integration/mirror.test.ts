// Registry mirrors against real Distribution instances: a pull-through cache (`proxy: remoteurl`)
// in front of an upstream registry, with a counting proxy between them to see what the upstream
// is asked. Loopback HTTP proxies stand in for what a real server cannot do (tamper, die mid-pull,
// serve under a path prefix).
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import type { ClientOptions, RequestLog } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { runCli } from '../support/cli';
import { clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { type Proxy as LoopbackProxy, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
let work: string;
let image: BuiltImage;
/** The upstream registry, and the counting proxy every mirror reaches it through. */
let upstream: RunningRegistry;
let toUpstream: LoopbackProxy;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-mirror-'));
  image = await buildImage(join(work, 'layout'), {
    tag: 'v1',
    seed: 'mirror',
    layers: 3,
    layerSize: 300_000,
  });
  upstream = await startRegistry();
  stops.push(upstream.stop);
  await pushLayout(image.layoutDir, 'v1', upstream, 'team/app:v1');
  await pushLayout(image.layoutDir, 'v1', upstream, 'library/app:v1');
  toUpstream = await startProxy(upstream.url);
  stops.push(toUpstream.stop);
});

after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  await rm(work, { recursive: true, force: true });
});

async function freshStore(): Promise<Store> {
  return Store.open(await mkdtemp(join(work, 'cache-')));
}

async function mirrorOf(remote: string, extra: Parameters<typeof startRegistry>[0] = {}) {
  const m = await startRegistry({ proxyRemoteUrl: remote, ...extra });
  stops.push(m.stop);
  return m;
}

const amd = () => image.platforms.find((p) => p.platform === 'linux/amd64')!;
const wantedBlobs = () => [amd().config.digest, ...amd().layers.map((l) => l.digest)];
const hostOf = (r: RequestLog) => new URL(r.url).host;
/** True when the pull-through cache has stored the blob in its own storage. */
const mirrorHas = (m: RunningRegistry, digest: string) =>
  stat(
    join(m.storageDir, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data'),
  ).then(
    () => true,
    () => false,
  );

async function waitFor(check: () => Promise<boolean>, what = 'the mirror to store the blobs'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * A pull through `mirror` from a registry nothing answers for (a loopback port nothing listens
 * on): the registry's NETWORK error, with what the mirror did (`note`) as a note.
 */
async function pullFromDeadRegistry(mirror: string, note: string, options: ClientOptions = {}) {
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  const port = (gone.address() as AddressInfo).port;
  await new Promise<void>((r) => gone.close(() => r()));
  const { client } = clientFor(upstream, { mirrors: { [`127.0.0.1:${port}`]: [mirror] }, ...options });
  try {
    await assert.rejects(
      pull(await freshStore(), client, `127.0.0.1:${port}/team/app:v1`, { platforms: amd64 }),
      (e: Error) => {
        assert.ok(isStowageError(e, 'NETWORK'), `${e}`);
        assert.match(
          e.message,
          new RegExp(`Cannot reach https?://127\\.0\\.0\\.1:${port} .*connection refused`),
        );
        assert.ok(e.message.includes(`(Tried first: the mirror ${note}.)`), e.message);
        return true;
      },
    );
  } finally {
    await client.close();
  }
}

const blobGets = (p: LoopbackProxy, digest: string) =>
  p.requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/blobs/${digest}`)).length;

describe('pull-through cache (Distribution proxy mode)', () => {
  test('the mirror is filled from the upstream once per blob; a second client with a fresh cache is served by the mirror alone', async () => {
    const mirror = await mirrorOf(toUpstream.url);
    const ref = `${upstream.host}/team/app:v1`;
    const mirrors = { [upstream.host]: [mirror.url] };

    const first = clientFor(upstream, { mirrors });
    const a = await pull(await freshStore(), first.client, ref, { platforms: amd64 });
    assert.equal(a.digest, image.digest);
    assert.deepEqual([...new Set(first.requests.map(hostOf))], [mirror.host], 'only the mirror was asked');
    // Distribution 2.8 fetches a missed blob upstream twice: one stream to the client and one
    // background copy into its storage (proxyblobstore's copyContent + storeLocal). Wait for the
    // copies to land; from then on the upstream is never asked for these blobs again.
    await waitFor(async () =>
      (await Promise.all(wantedBlobs().map((d) => mirrorHas(mirror, d)))).every(Boolean),
    );
    const fills = wantedBlobs().map((d) => blobGets(toUpstream, d));
    for (const n of fills) assert.ok(n >= 1 && n <= 2, `one fill of the mirror per blob (${fills})`);

    const second = clientFor(upstream, { mirrors });
    const storeB = await freshStore();
    const b = await pull(storeB, second.client, ref, { platforms: amd64 });
    assert.equal(b.digest, image.digest);
    assert.equal(b.blobsDownloaded, wantedBlobs().length);
    assert.deepEqual([...new Set(second.requests.map(hostOf))], [mirror.host]);
    assert.deepEqual(
      wantedBlobs().map((d) => blobGets(toUpstream, d)),
      fills,
      'the second client caused no upstream blob request',
    );
    assert.equal(await verifyAllBlobs(storeB), wantedBlobs().length + 2);

    // With the upstream unreachable the mirror still serves what it holds (by digest).
    await toUpstream.stop();
    const third = clientFor(upstream, { mirrors });
    const c = await pull(await freshStore(), third.client, `${upstream.host}/team/app@${image.digest}`, {
      platforms: amd64,
    });
    assert.equal(c.digest, image.digest);
    assert.deepEqual([...new Set(third.requests.map(hostOf))], [mirror.host]);
    toUpstream = await startProxy(upstream.url);
    stops.push(toUpstream.stop);
    for (const x of [first, second, third]) await x.client.close();
  });

  test('a mirror stopped in the middle of a pull: the blobs come from the registry instead', async () => {
    const mirror = await mirrorOf(upstream.url);
    let stopped = false;
    // The client reaches the mirror through this pass-through; the mirror process is stopped when
    // the first blob is asked for (manifests were already served by it).
    const front = await startProxy(mirror.url, async (req) => {
      if (!stopped && req.url?.includes('/blobs/')) {
        stopped = true;
        await mirror.stop();
      }
      return undefined;
    });
    stops.push(front.stop);
    const { client, requests } = clientFor(upstream, { mirrors: { [upstream.host]: [front.url] } });
    const store = await freshStore();
    const r = await pull(store, client, `${upstream.host}/team/app:v1`, { platforms: amd64 });
    assert.ok(stopped);
    assert.equal(r.digest, image.digest);
    assert.ok(
      requests.some((q) => hostOf(q) === front.host && q.url.includes('/manifests/') && q.status === 200),
    );
    for (const d of wantedBlobs()) {
      assert.ok(
        requests.some((q) => hostOf(q) === upstream.host && q.url.endsWith(d) && q.status === 200),
        `${d} came from the registry`,
      );
    }
    assert.equal(await verifyAllBlobs(store), wantedBlobs().length + 2);

    // Later pulls of the same session go straight on after the dead mirror fails to connect.
    const again = await pull(await freshStore(), client, `${upstream.host}/team/app:v1`, {
      platforms: amd64,
      alwaysPull: true,
    });
    assert.equal(again.digest, image.digest);
    await client.close();
  });

  test('a mirror that does not have the repository (404) falls through to the registry', async () => {
    const empty = await startRegistry();
    stops.push(empty.stop);
    const { client, requests } = clientFor(upstream, { mirrors: { [upstream.host]: [empty.url] } });
    const r = await pull(await freshStore(), client, `${upstream.host}/team/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    const fromMirror = requests.filter((q) => hostOf(q) === empty.host);
    assert.ok(fromMirror.length > 0 && fromMirror.every((q) => q.status === 404));
    assert.ok(requests.some((q) => hostOf(q) === upstream.host && q.status === 200));
    await client.close();
  });

  test('a mirror without the image and a registry that cannot be reached: the registry is the error, the mirror a note', async () => {
    const empty = await startRegistry();
    stops.push(empty.stop);
    await pullFromDeadRegistry(empty.url, `${empty.host} does not have it`);
  });

  test('the upstream requires token auth; the mirror signs in to it, clients pull anonymously', async () => {
    const secured = await startRegistry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    stops.push(secured.stop);
    await pushLayout(image.layoutDir, 'v1', secured, 'team/app:v1');
    const mirror = await mirrorOf(secured.url, {
      proxyUsername: secured.credentials!.username,
      proxyPassword: secured.credentials!.password,
    });
    const ref = `${secured.host}/team/app:v1`;

    const direct = clientFor(secured);
    await assert.rejects(pull(await freshStore(), direct.client, ref, { platforms: amd64 }), (e: unknown) =>
      isStowageError(e, 'UNAUTHORIZED'),
    );
    await direct.client.close();

    const tokenRequestsBefore = secured.tokenServer!.requests.length;
    const { client, requests } = clientFor(secured, { mirrors: { [secured.host]: [mirror.url] } });
    const store = await freshStore();
    const r = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    assert.deepEqual([...new Set(requests.map(hostOf))], [mirror.host]);
    assert.ok(
      requests.every((q) => q.status === 200),
      'no challenge: the mirror is anonymous',
    );
    const mirrorTokens = secured.tokenServer!.requests.slice(tokenRequestsBefore);
    assert.ok(mirrorTokens.length > 0, 'the mirror fetched tokens upstream');
    assert.ok(mirrorTokens.every((t) => t.username === secured.credentials!.username));
    assert.equal(await verifyAllBlobs(store), wantedBlobs().length + 2);
    await client.close();
  });
});

describe('what a mirror may not do', () => {
  test('a blob with other bytes is an error, not a silent fall-through', async () => {
    const mirror = await mirrorOf(upstream.url);
    const layer = amd().layers[1]!;
    const evil = await startProxy(mirror.url, (req) =>
      req.url?.endsWith(layer.digest)
        ? {
            rewriteBody: (b: Buffer) =>
              Buffer.concat([b.subarray(0, b.length - 1), Buffer.from([b.at(-1)! ^ 1])]),
          }
        : undefined,
    );
    stops.push(evil.stop);
    const { client, requests } = clientFor(upstream, { mirrors: { [upstream.host]: [evil.url] } });
    const store = await freshStore();
    await assert.rejects(
      pull(store, client, `${upstream.host}/team/app:v1`, { platforms: amd64 }),
      (e: unknown) => isStowageError(e, 'DIGEST_MISMATCH'),
    );
    assert.equal(requests.filter((q) => hostOf(q) === upstream.host).length, 0, 'the registry was not asked');
    assert.equal((await store.listReferences()).length, 0);
    assert.equal(await store.has(layer.digest as never), false);
    await client.close();
  });

  test('a manifest fetched by digest is verified whichever endpoint served it', async () => {
    const mirror = await mirrorOf(upstream.url);
    const target = amd().manifest.digest;
    const evil = await startProxy(mirror.url, (req) =>
      req.method === 'GET' && req.url?.endsWith(`/manifests/${target}`)
        ? {
            rewriteBody: (b: Buffer) =>
              Buffer.from(b.toString('utf8').replace('"schemaVersion":2', '"schemaVersion": 2')),
          }
        : undefined,
    );
    stops.push(evil.stop);
    const { client, requests } = clientFor(upstream, { mirrors: { [upstream.host]: [evil.url] } });
    await assert.rejects(
      pull(await freshStore(), client, `${upstream.host}/team/app:v1`, { platforms: amd64 }),
      (e: unknown) => isStowageError(e, 'DIGEST_MISMATCH') && e.message.includes(target),
    );
    assert.equal(requests.filter((q) => hostOf(q) === upstream.host).length, 0);
    await client.close();
  });

  test('an auth error from a mirror does not fall through; registry credentials never go to the mirror', async () => {
    const locked = await startRegistry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    stops.push(locked.stop);
    const credentials = new StaticCredentials();
    credentials.set(upstream.host, { username: 'upstream-user', password: 'upstream-secret' });
    const { client, requests } = clientFor(upstream, {
      mirrors: { [upstream.host]: [locked.url] },
      credentials,
    });
    await assert.rejects(
      pull(await freshStore(), client, `${upstream.host}/team/app:v1`, { platforms: amd64 }),
      (e: unknown) => isStowageError(e, 'UNAUTHORIZED'),
    );
    assert.equal(requests.filter((q) => hostOf(q) === upstream.host).length, 0, 'no silent fall-through');
    const sent = locked.tokenServer!.requests;
    assert.ok(sent.length > 0);
    assert.ok(
      sent.every((t) => t.authorization === 'none'),
      'the upstream registry credentials were not offered to the mirror',
    );
    await client.close();
  });

  test('a TLS mirror is never retried in plaintext (with or without https:// in its URL)', async () => {
    const tls = await startRegistry({ tls: true });
    stops.push(tls.stop);
    for (const written of [`https://${tls.host}`, tls.host]) {
      // No CA for it: the certificate is rejected, which falls through to the registry.
      const { client, requests } = clientFor(upstream, { mirrors: { [upstream.host]: [written] } });
      const r = await pull(await freshStore(), client, `${upstream.host}/team/app:v1`, { platforms: amd64 });
      assert.equal(r.digest, image.digest);
      const toMirror = requests.filter((q) => hostOf(q) === tls.host);
      assert.ok(toMirror.length > 0, 'the mirror was tried');
      assert.ok(
        toMirror.every((q) => q.url.startsWith('https://') && q.error),
        `only TLS attempts: ${JSON.stringify(toMirror)}`,
      );
      await client.close();
    }
  });
});

describe('a mirror that redirects where Stowage will not follow', () => {
  // .invalid never resolves: a request sent there would show as a NETWORK error, not a refusal.
  const cdn = 'stowage-cdn.invalid';
  /** An HTTPS mirror holding team/app:v1 whose blob GETs answer 307 to plain HTTP on `cdn`. */
  async function redirectingMirror(): Promise<RunningRegistry> {
    const m = await startRegistry({ tls: true, redirectBaseUrl: `http://${cdn}/` });
    stops.push(m.stop);
    await pushLayout(image.layoutDir, 'v1', m, 'team/app:v1');
    return m;
  }

  test('a blob redirect from HTTPS to plain HTTP (INSECURE_REFUSED) falls back to the registry, as a broken mirror does', async () => {
    const mirror = await redirectingMirror();
    const { client, requests } = clientFor(upstream, {
      mirrors: { [upstream.host]: [mirror.url] },
      caCertificates: [mirror.caPem!],
    });
    const store = await freshStore();
    const r = await pull(store, client, `${upstream.host}/team/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    assert.equal(await verifyAllBlobs(store), wantedBlobs().length + 2);
    assert.ok(
      requests.some((q) => hostOf(q) === mirror.host && q.status === 307),
      'the mirror was asked and redirected',
    );
    assert.equal(requests.filter((q) => hostOf(q) === cdn).length, 0, 'nothing went over plain HTTP');
    assert.ok(requests.some((q) => hostOf(q) === upstream.host && q.status === 200));
    await client.close();
  });

  test('the registry failing too: its error, with the mirror refusal as a note', async () => {
    const mirror = await redirectingMirror();
    await pullFromDeadRegistry(
      mirror.url,
      `${mirror.host} redirected from HTTPS to plain HTTP on ${cdn} (refused)`,
      { caCertificates: [mirror.caPem!] },
    );
  });
});

describe('mirror URLs as users write them', () => {
  test('a mirror under a path prefix, written with a trailing /v2/', async () => {
    const mirror = await mirrorOf(upstream.url);
    const prefix = '/api/docker/hub-remote';
    const server = createServer(async (req, res) => {
      if (!req.url?.startsWith(`${prefix}/`)) {
        res.writeHead(404).end();
        return;
      }
      const up = await request(`${mirror.url}${req.url.slice(prefix.length)}`, {
        method: req.method as 'GET',
        headers: { accept: String(req.headers.accept ?? '*/*') },
      });
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(up.headers))
        if (typeof v === 'string' && k !== 'connection') headers[k] = v;
      res.writeHead(up.statusCode, headers);
      for await (const c of up.body) res.write(c);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise<void>((r) => server.close(() => r())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}/v2/`;
    const { client, requests } = clientFor(upstream, { mirrors: { [upstream.host]: [base] } });
    const r = await pull(await freshStore(), client, `${upstream.host}/team/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    assert.ok(requests.length > 0);
    assert.ok(requests.every((q) => new URL(q.url).pathname.startsWith(`${prefix}/v2/team/app/`)));
    await client.close();
  });

  test("CLI: --daemon-config with docker's registry-mirrors serves docker.io images from the mirror", async () => {
    const mirror = await mirrorOf(upstream.url);
    const daemon = join(work, 'daemon.json');
    await writeFile(
      daemon,
      JSON.stringify({ 'registry-mirrors': [`${mirror.url}/`], 'insecure-registries': [] }),
    );
    const cache = await mkdtemp(join(work, 'cli-'));
    const r = await runCli(
      [
        'pull',
        'app:v1',
        '--platform',
        'linux/amd64',
        '--daemon-config',
        daemon,
        '--cache',
        cache,
        '--json',
        '-v',
      ],
      60_000,
      { DOCKER_CONFIG: join(work, 'no-docker-config') },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.reference, 'docker.io/library/app:v1');
    assert.equal(out.digest, image.digest);
    assert.ok(!r.stderr.includes('docker.io/v2'), 'Docker Hub itself was not contacted');
    assert.match(r.stderr, new RegExp(`${mirror.host}/v2/library/app/manifests/v1`));

    const bad = join(work, 'bad-daemon.json');
    await writeFile(bad, JSON.stringify({ 'registry-mirrors': ['mirror.example:5000'] }));
    const usage = await runCli(['pull', 'app:v1', '--daemon-config', bad, '--cache', cache]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /must start with https:\/\/ or http:\/\//);
  });
});
