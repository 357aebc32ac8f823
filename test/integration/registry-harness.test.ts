// Smoke tests of the real-registry harness: each configuration (plain, TLS + basic, token) answers
// /v2/ as a client expects, takes a skopeo push of a fixture, and serves it back with the right digest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGunzip } from 'node:zlib';
import { Agent, request } from 'undici';
import { type BuiltImage, buildImage, MEDIA, readLayoutBlob } from '../support/fixtures';
import { run } from '../support/proc';
import { getManifest, MANIFEST_ACCEPT, pushLayout, skopeoInspectRaw, tagMany } from '../support/push';
import { type RunningRegistry, startRegistry, withRegistry } from '../support/registry';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

/** Parses `Bearer realm="…",service="…",scope="…"` into its parameters. */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^(\w+)\s+(.*)$/.exec(header);
  assert.ok(m, `challenge "${header}" has a scheme and parameters`);
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!] = p[2]!;
  return { scheme: m[1]!, params };
}

let workDir: string;
let image: BuiltImage;
const registries: RunningRegistry[] = [];

before(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'stowage-harness-test-'));
  image = await buildImage(join(workDir, 'layout'), {
    tag: 'v1',
    seed: 'harness',
    layers: 2,
    layerSize: 200_000,
  });
});

after(async () => {
  await Promise.all(registries.map((r) => r.stop()));
  await rm(workDir, { recursive: true, force: true });
});

async function start(options: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const r = await startRegistry(options);
  registries.push(r);
  return r;
}

/** Pushes the fixture, then GETs it by tag from Node with `authorization`; checks all three digests agree. */
async function pushAndVerify(registry: RunningRegistry, repo: string, authorization?: string): Promise<void> {
  const pushed = await pushLayout(image.layoutDir, 'v1', registry, `${repo}:v1`);
  assert.equal(pushed, image.digest);
  const headers: Record<string, string> = { accept: MANIFEST_ACCEPT };
  if (authorization) headers.authorization = authorization;
  const res = await request(`${registry.url}/v2/${repo}/manifests/v1`, {
    headers,
    dispatcher: registry.dispatcher,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], MEDIA.ociIndex);
  assert.equal(res.headers['docker-content-digest'], sha256(body));
  assert.equal(sha256(body), image.digest);
  assert.equal(body.toString('utf8'), image.body);
}

describe('fixtures', () => {
  test('a seed reproduces the bytes; layers, diff_ids and the index are consistent', async () => {
    const again = await buildImage(join(workDir, 'again'), {
      tag: 'v1',
      seed: 'harness',
      layers: 2,
      layerSize: 200_000,
    });
    assert.equal(again.digest, image.digest);
    const other = await buildImage(join(workDir, 'other'), { seed: 'other', layers: 1, layerSize: 1000 });
    assert.notEqual(other.digest, image.digest);

    const index = JSON.parse(image.body);
    assert.deepEqual(
      index.manifests.map((m: { platform: { os: string; architecture: string; variant?: string } }) =>
        [m.platform.os, m.platform.architecture, m.platform.variant].filter(Boolean).join('/'),
      ),
      ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
    );
    for (const p of image.platforms) {
      const config = JSON.parse((await readLayoutBlob(image.layoutDir, p.config.digest)).toString('utf8'));
      assert.deepEqual(
        config.rootfs.diff_ids,
        p.layers.map((l) => l.diffId),
      );
      for (const l of p.layers) {
        const blob = await readLayoutBlob(image.layoutDir, l.digest);
        assert.equal(sha256(blob), l.digest);
        assert.equal(blob.length, l.size);
        const tar = createHash('sha256');
        for await (const chunk of createReadStream(
          join(image.layoutDir, 'blobs/sha256', l.digest.slice(7)),
        ).pipe(createGunzip()))
          tar.update(chunk as Buffer);
        assert.equal(`sha256:${tar.digest('hex')}`, l.diffId);
      }
    }
  });

  test('a single-platform image has no index', async () => {
    const single = await buildImage(join(workDir, 'single'), {
      platforms: ['linux/arm64'],
      index: false,
      layers: 1,
      layerSize: 1024,
    });
    assert.equal(single.mediaType, MEDIA.ociManifest);
    assert.equal(single.index, undefined);
    assert.equal(single.digest, single.platforms[0]!.manifest.digest);
    // umoci reads the layout and checks it (digests, diff_ids) while unpacking.
    const bundle = join(workDir, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${single.layoutDir}:latest`, bundle]);
    const file = await stat(join(bundle, 'rootfs', single.platforms[0]!.layers[0]!.fileName));
    assert.equal(file.size, 1024);
  });
});

describe('plain HTTP, no auth', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await start({});
  });

  test('GET /v2/ answers 200 without credentials', async () => {
    assert.equal(registry.url, `http://${registry.host}`);
    const res = await request(`${registry.url}/v2/`, { dispatcher: registry.dispatcher });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  });

  test('a pushed multi-platform fixture comes back with the same digest', async () => {
    await pushAndVerify(registry, 'library/alpine');
  });

  test('a v2s2 push serves a Docker manifest list', async () => {
    const digest = await pushLayout(image.layoutDir, 'v1', registry, 'docker/app:v1', { format: 'v2s2' });
    const got = await getManifest(registry, 'docker/app', 'v1');
    assert.equal(got.status, 200);
    assert.equal(got.mediaType, MEDIA.dockerManifestList);
    assert.equal(got.digest, digest);
    assert.equal(sha256(got.body), digest);
    const list = JSON.parse(got.body.toString('utf8'));
    const child = await getManifest(registry, 'docker/app', list.manifests[0].digest);
    assert.equal(child.mediaType, MEDIA.dockerManifest);
    assert.equal(sha256(child.body), list.manifests[0].digest);
  });

  test('tagMany gives one manifest many tags', async () => {
    const tags = Array.from({ length: 40 }, (_, i) => `t${i}`);
    await tagMany(registry, 'library/alpine', 'v1', tags);
    const res = await request(`${registry.url}/v2/library/alpine/tags/list`, {
      dispatcher: registry.dispatcher,
    });
    const list = (await res.body.json()) as { tags: string[] };
    assert.deepEqual(list.tags.sort(), ['v1', ...tags].sort());
    const last = await getManifest(registry, 'library/alpine', 't39', { method: 'HEAD' });
    assert.equal(last.digest, image.digest);
  });

  test('the redirect middleware sends blob GETs elsewhere', async () => {
    const redirecting = await start({ redirectBaseUrl: 'http://127.0.0.1:9/' });
    await pushLayout(image.layoutDir, 'v1', redirecting, 'r/app:v1');
    const layer = image.platforms[0]!.layers[0]!;
    const res = await request(`${redirecting.url}/v2/r/app/blobs/${layer.digest}`, {
      dispatcher: redirecting.dispatcher,
    });
    await res.body.dump();
    assert.equal(res.statusCode, 307);
    assert.equal(
      res.headers.location,
      `http://127.0.0.1:9/docker/registry/v2/blobs/sha256/${layer.digest.slice(7, 9)}/${layer.digest.slice(7)}/data`,
    );
  });

  test('a pull-through cache serves what its upstream has', async () => {
    const proxy = await start({ proxyRemoteUrl: registry.url });
    const got = await getManifest(proxy, 'library/alpine', 'v1');
    assert.equal(got.status, 200);
    assert.equal(got.digest, image.digest);
  });

  test('withRegistry stops the process and removes its files afterwards', async () => {
    let seen: RunningRegistry | undefined;
    const status = await withRegistry({}, async (r) => {
      seen = r;
      const res = await request(`${r.url}/v2/`, { dispatcher: r.dispatcher });
      await res.body.dump();
      return res.statusCode;
    });
    assert.equal(status, 200);
    assert.throws(() => process.kill(seen!.pid, 0), { code: 'ESRCH' });
    await assert.rejects(stat(seen!.workDir), { code: 'ENOENT' });
  });

  test('a registry that cannot start rejects with its log', async () => {
    await assert.rejects(
      startRegistry({ redirectBaseUrl: '%%bad' }),
      /exited .*before listening[\s\S]*redirect/,
    );
  });
});

describe('TLS + htpasswd basic auth', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await start({ tls: true, auth: 'basic' });
  });

  test('the certificate verifies with its CA, and only with it', async () => {
    assert.equal(registry.url, `https://${registry.host}`);
    assert.ok(registry.caPem?.includes('BEGIN CERTIFICATE'));
    const strict = new Agent();
    try {
      await assert.rejects(
        request(`${registry.url}/v2/`, { dispatcher: strict }),
        (err: Error & { code?: string }) =>
          /self[- ]signed|SELF_SIGNED|unable to verify/i.test(`${err.code} ${err.message}`),
      );
    } finally {
      await strict.close();
    }
    // The SAN also names localhost.
    const res = await request(`https://localhost:${registry.port}/v2/`, { dispatcher: registry.dispatcher });
    await res.body.dump();
    assert.equal(res.statusCode, 401);
  });

  test('GET /v2/ is 401 with a Basic challenge, 200 with credentials, 401 with wrong ones', async () => {
    const anon = await request(`${registry.url}/v2/`, { dispatcher: registry.dispatcher });
    await anon.body.dump();
    assert.equal(anon.statusCode, 401);
    const challenge = parseChallenge(anon.headers['www-authenticate'] as string);
    assert.equal(challenge.scheme, 'Basic');
    assert.equal(challenge.params.realm, 'stowage-test-realm');

    const { username, password } = registry.credentials!;
    const ok = await request(`${registry.url}/v2/`, {
      headers: { authorization: basic(username, password) },
      dispatcher: registry.dispatcher,
    });
    await ok.body.dump();
    assert.equal(ok.statusCode, 200);

    const wrong = await request(`${registry.url}/v2/`, {
      headers: { authorization: basic(username, `${password}x`) },
      dispatcher: registry.dispatcher,
    });
    await wrong.body.dump();
    assert.equal(wrong.statusCode, 401);
  });

  test('a pushed multi-platform fixture comes back with the same digest', async () => {
    const { username, password } = registry.credentials!;
    await pushAndVerify(registry, 'team/app', basic(username, password));
    const raw = await skopeoInspectRaw(registry, 'team/app:v1');
    assert.equal(sha256(raw), image.digest);
  });

  test('a user added later can log in', async () => {
    await registry.addUser({ username: 'late', password: 'late-password' });
    const ok = await request(`${registry.url}/v2/`, {
      headers: { authorization: basic('late', 'late-password') },
      dispatcher: registry.dispatcher,
    });
    await ok.body.dump();
    assert.equal(ok.statusCode, 200);
  });
});

describe('Bearer token auth', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await start({ auth: 'token' });
  });

  /** The client side of the token flow: GET the realm with service and scope, Basic creds optional. */
  async function fetchToken(
    params: Record<string, string>,
    scopes: string[],
    credentials?: { username: string; password: string },
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const url = new URL(params.realm!);
    url.searchParams.set('service', params.service!);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (credentials) headers.authorization = basic(credentials.username, credentials.password);
    const res = await request(url, { headers });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  }

  test('GET /v2/ is 401 with a Bearer challenge, 200 with a token from the realm', async () => {
    const anon = await request(`${registry.url}/v2/`, { dispatcher: registry.dispatcher });
    await anon.body.dump();
    assert.equal(anon.statusCode, 401);
    const challenge = parseChallenge(anon.headers['www-authenticate'] as string);
    assert.equal(challenge.scheme, 'Bearer');
    assert.equal(challenge.params.realm, registry.tokenServer!.realm);
    assert.equal(challenge.params.service, registry.tokenServer!.service);

    const before = registry.tokenServer!.requests.length;
    const { status, json } = await fetchToken(challenge.params, [], registry.credentials);
    assert.equal(status, 200);
    assert.equal(typeof json.token, 'string');
    assert.equal(json.access_token, json.token);
    assert.equal(json.expires_in, 300);
    const [header] = String(json.token).split('.');
    assert.ok(JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')).x5c.length === 1);
    const seen = registry.tokenServer!.requests.slice(before);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.authorization, 'basic');
    assert.equal(seen[0]!.username, registry.credentials!.username);
    assert.ok(!JSON.stringify(seen).includes(registry.credentials!.password), 'no secret is recorded');

    const ok = await request(`${registry.url}/v2/`, {
      headers: { authorization: `Bearer ${json.token}` },
      dispatcher: registry.dispatcher,
    });
    await ok.body.dump();
    assert.equal(ok.statusCode, 200);

    const wrong = await fetchToken(challenge.params, [], { username: 'stowage', password: 'nope' });
    assert.equal(wrong.status, 401);
  });

  test('a pushed fixture comes back through the full challenge → token → retry flow', async () => {
    const pushed = await pushLayout(image.layoutDir, 'v1', registry, 'hub/app:v1');
    assert.equal(pushed, image.digest);
    const url = `${registry.url}/v2/hub/app/manifests/v1`;
    const first = await request(url, {
      headers: { accept: MANIFEST_ACCEPT },
      dispatcher: registry.dispatcher,
    });
    await first.body.dump();
    assert.equal(first.statusCode, 401);
    const challenge = parseChallenge(first.headers['www-authenticate'] as string);
    assert.equal(challenge.params.scope, 'repository:hub/app:pull');

    // Anonymous pull is allowed by default: no credentials needed for a pull token.
    const { json } = await fetchToken(challenge.params, [challenge.params.scope!]);
    const res = await request(url, {
      headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${json.token}` },
      dispatcher: registry.dispatcher,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['docker-content-digest'], sha256(body));
    assert.equal(sha256(body), image.digest);

    // That anonymous token does not allow a push.
    const put = await request(url, {
      method: 'PUT',
      headers: { 'content-type': MEDIA.ociIndex, authorization: `Bearer ${json.token}` },
      body,
      dispatcher: registry.dispatcher,
    });
    await put.body.dump();
    assert.equal(put.statusCode, 401);
    assert.match(put.headers['www-authenticate'] as string, /error="insufficient_scope"/);
  });

  test('the OAuth2 POST grants: password with a refresh token, then refresh_token', async () => {
    const { username, password } = registry.credentials!;
    const post = async (form: Record<string, string>) => {
      const res = await request(registry.tokenServer!.realm, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
      return { status: res.statusCode, json: (await res.body.json()) as Record<string, string> };
    };
    const scope = 'repository:hub/app:pull';
    const common = { service: registry.tokenServer!.service, scope, client_id: 'stowage-tests' };
    const first = await post({
      ...common,
      grant_type: 'password',
      username,
      password,
      access_type: 'offline',
    });
    assert.equal(first.status, 200);
    assert.ok(first.json.refresh_token);
    const second = await post({
      ...common,
      grant_type: 'refresh_token',
      refresh_token: first.json.refresh_token!,
    });
    assert.equal(second.status, 200);
    const res = await request(`${registry.url}/v2/hub/app/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${second.json.access_token}` },
      dispatcher: registry.dispatcher,
    });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['docker-content-digest'], image.digest);

    const bad = await post({ ...common, grant_type: 'password', username, password: 'wrong' });
    assert.equal(bad.status, 401);
  });

  test('without anonymous pull, an anonymous token grants nothing', async () => {
    const closed = await start({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    await pushLayout(image.layoutDir, 'v1', closed, 'private/app:v1');
    const url = `${closed.url}/v2/private/app/manifests/v1`;
    const first = await request(url, { headers: { accept: MANIFEST_ACCEPT }, dispatcher: closed.dispatcher });
    await first.body.dump();
    const challenge = parseChallenge(first.headers['www-authenticate'] as string);
    const anon = await fetchToken(challenge.params, [challenge.params.scope!]);
    assert.equal(anon.status, 200);
    const claims = JSON.parse(
      Buffer.from(String(anon.json.token).split('.')[1]!, 'base64url').toString('utf8'),
    );
    assert.deepEqual(claims.access, []);
    const denied = await request(url, {
      headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${anon.json.token}` },
      dispatcher: closed.dispatcher,
    });
    await denied.body.dump();
    assert.equal(denied.statusCode, 401);
    const user = await fetchToken(challenge.params, [challenge.params.scope!], closed.credentials);
    assert.equal(user.status, 200);
    const allowed = await request(url, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT, authorization: `Bearer ${user.json.token}` },
      dispatcher: closed.dispatcher,
    });
    await allowed.body.dump();
    assert.equal(allowed.statusCode, 200);
    assert.equal(allowed.headers['docker-content-digest'], image.digest);
  });

  test('a v2s2 push with token auth serves a Docker manifest list', async () => {
    const digest = await pushLayout(image.layoutDir, 'v1', registry, 'hub/legacy:v1', { format: 'v2s2' });
    const got = await getManifest(registry, 'hub/legacy', 'v1');
    assert.equal(got.status, 200);
    assert.equal(got.mediaType, MEDIA.dockerManifestList);
    assert.equal(sha256(got.body), digest);
  });
});
