// Pulls through TLS + basic auth and Bearer token auth, Docker v2s2 lists, and blob redirects.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { clientFor, TestBed, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage, MEDIA } from '../support/fixtures';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

let bed: TestBed;
let image: BuiltImage;
const amd64 = [parsePlatform('linux/amd64')];

before(async () => {
  bed = await TestBed.create('stowage-pull-auth-');
  image = await buildImage(join(bed.work, 'layout'), {
    tag: 'v1',
    seed: 'auth',
    layers: 2,
    layerSize: 200_000,
  });
});

after(() => bed?.cleanup());

const registry = (options: Parameters<typeof bed.registry>[0]) => bed.registry(options);
const store = () => bed.store();

describe('TLS + basic auth', () => {
  let reg: RunningRegistry;
  before(async () => {
    reg = await registry({ tls: true, auth: 'basic' });
    await pushLayout(image.layoutDir, 'v1', reg, 'secure/app:v1');
  });

  test('pulls with credentials over verified TLS (our CA, not disabled verification)', async () => {
    const s = await store();
    const { client, requests } = clientFor(reg, { withCredentials: true });
    const r = await pull(s, client, `${reg.host}/secure/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    assert.ok(
      requests.every((q) => q.url.startsWith('https://')),
      'never plain HTTP once TLS answered',
    );
    assert.ok(await verifyAllBlobs(s));
    await client.close();
  });

  test('without the CA the TLS error says what to do', async () => {
    const { client } = clientFor(reg, { withCredentials: true, caCertificates: [] });
    await assert.rejects(
      pull(await store(), client, `${reg.host}/secure/app:v1`),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'TLS');
        assert.match(`${e.message} ${(e as { hint?: string }).hint}`, /insecureRegistries|CA/);
        return true;
      },
    );
    await client.close();
  });

  test('wrong credentials → UNAUTHORIZED with a sign-in hint, nothing committed, no secret in the message', async () => {
    const s = await store();
    const credentials = new StaticCredentials();
    credentials.set(reg.host, { username: reg.credentials!.username, password: 'wrong-secret-123' });
    const { client } = clientFor(reg, { credentials });
    await assert.rejects(
      pull(s, client, `${reg.host}/secure/app:v1`),
      (e: Error & { code?: string; hint?: string }) => {
        assert.equal(e.code, 'UNAUTHORIZED');
        assert.match(e.hint ?? '', /Sign in|login/i);
        assert.ok(!`${e.message}${e.hint}`.includes('wrong-secret-123'));
        return true;
      },
    );
    assert.equal((await s.listReferences()).length, 0);
    await client.close();
  });
});

describe('Bearer token auth', () => {
  let reg: RunningRegistry;
  before(async () => {
    reg = await registry({ auth: 'token' });
    await pushLayout(image.layoutDir, 'v1', reg, 'tok/app:v1');
  });

  test('anonymous pull gets a token once and reuses it', async () => {
    const s = await store();
    const { client } = clientFor(reg);
    const before = reg.tokenServer!.requests.length;
    const r = await pull(s, client, `${reg.host}/tok/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    const tokenRequests = reg.tokenServer!.requests.slice(before);
    assert.equal(tokenRequests.length, 1, 'one token for the whole pull');
    assert.deepEqual(tokenRequests[0]!.scopes, ['repository:tok/app:pull']);
    assert.equal(tokenRequests[0]!.authorization, 'none');
    await client.close();
  });

  test('with credentials the token request authenticates (token realm marked insecure: plain HTTP)', async () => {
    const s = await store();
    const realmHost = new URL(reg.tokenServer!.realm).host;
    const { client } = clientFor(reg, { withCredentials: true, insecureRegistries: [realmHost] });
    const before = reg.tokenServer!.requests.length;
    await pull(s, client, `${reg.host}/tok/app:v1`, { platforms: amd64 });
    const sent = reg.tokenServer!.requests.slice(before);
    assert.ok(sent.length >= 1 && sent.every((q) => q.authorization === 'basic'));
    await client.close();
  });

  test('credentials are not sent to a plain-HTTP token realm that is not marked insecure', async () => {
    const { client } = clientFor(reg, { withCredentials: true });
    await assert.rejects(pull(await store(), client, `${reg.host}/tok/app:v1`), { code: 'INSECURE_REFUSED' });
    await client.close();
  });
});

describe('Docker media types and redirects', () => {
  test('a Docker v2s2 manifest list is pulled and recorded with its media type', async () => {
    const reg = await registry({});
    const digest = await pushLayout(image.layoutDir, 'v1', reg, 'docker/app:v1', { format: 'v2s2' });
    const s = await store();
    const { client } = clientFor(reg);
    const r = await pull(s, client, `${reg.host}/docker/app:v1`, {
      platforms: [parsePlatform('linux/arm64')],
    });
    assert.equal(r.digest, digest);
    assert.equal(r.mediaType, MEDIA.dockerManifestList);
    assert.deepEqual(r.platforms, ['linux/arm64']);
    assert.ok(await verifyAllBlobs(s));
    await client.close();
  });

  test('blob redirects to another host are followed without the Authorization header', async () => {
    const seen: IncomingHttpHeaders[] = [];
    let storageDir = '';
    const cdn = createServer(async (req, res) => {
      seen.push(req.headers);
      const file = join(storageDir, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      try {
        const st = await stat(file);
        res.writeHead(200, { 'content-length': st.size });
        createReadStream(file).pipe(res);
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => cdn.listen(0, '127.0.0.1', r));
    bed.defer(() => new Promise<void>((r) => cdn.close(() => r())));
    const cdnUrl = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}/`;
    const reg = await registry({ tls: true, auth: 'basic', redirectBaseUrl: cdnUrl });
    storageDir = reg.storageDir;
    await pushLayout(image.layoutDir, 'v1', reg, 'redir/app:v1');
    const s = await store();
    const { client, requests } = clientFor(reg, { withCredentials: true });
    await pull(s, client, `${reg.host}/redir/app:v1`, { platforms: amd64 });
    assert.ok(seen.length >= 3, `the CDN served the blobs (${seen.length} requests)`);
    assert.ok(
      seen.every((h) => h.authorization === undefined),
      'no Authorization reached the CDN',
    );
    assert.ok(requests.some((q) => q.status === 307));
    assert.ok(await verifyAllBlobs(s));
    await client.close();
  });
});
