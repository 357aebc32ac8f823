// Pulls through a real forwarding proxy (tinyproxy: CONNECT tunnels, basic auth, port rules) from
// real registries (TLS + basic auth, Bearer tokens), and what a user is told when the proxy is the
// problem: credentials it wants, a port it will not tunnel to, a proxy that is down.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { clientFor, TestBed, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';
import { type RunningTinyproxy, startTinyproxy } from '../support/tinyproxy';

const amd64 = [parsePlatform('linux/amd64')];
const PASSWORD = 'pr0xy-s3cret';
let bed: TestBed;
let image: BuiltImage;
let reg: RunningRegistry;
let proxy: RunningTinyproxy;

before(async () => {
  bed = await TestBed.create('stowage-proxy-');
  image = await buildImage(join(bed.work, 'layout'), {
    tag: 'v1',
    seed: 'proxy',
    layers: 3,
    layerSize: 300_000,
  });
  reg = await bed.registry({ tls: true, auth: 'basic' });
  await pushLayout(image.layoutDir, 'v1', reg, 'team/app:v1');
  proxy = await startTinyproxy({ user: 'alice', password: PASSWORD });
  bed.defer(() => proxy.stop());
});

after(() => bed?.cleanup());

const through = (url: string, extra: Record<string, string> = {}) =>
  clientFor(reg, { withCredentials: true, proxy: { http: url, https: url, ...extra } });

/** The message and hint a user would read, which must never carry the proxy password. */
function shown(e: unknown): string {
  const text = isStowageError(e) ? e.detail : String(e);
  assert.ok(!text.includes(PASSWORD), `no proxy password in: ${text}`);
  return text;
}

describe('through an authenticating proxy', () => {
  test('credentials in the proxy URL: the pull tunnels through it (TLS to the registry, basic auth)', async () => {
    const before = proxy.connects().length;
    const store = await bed.store();
    const { client } = through(proxy.authUrl);
    const r = await pull(store, client, `${reg.host}/team/app:v1`, { platforms: amd64 });
    await client.close();
    assert.equal(r.digest, image.digest);
    assert.ok(
      (await verifyAllBlobs(store)) >= 1 + 3 + 1,
      'config, layers and manifest, each hashing to its name',
    );
    const tunnels = proxy.connects().slice(before);
    assert.ok(tunnels.length > 0 && tunnels.every((t) => t === reg.host), tunnels.join(', '));
  });

  test('http.proxyAuthorization: the header is sent to the proxy instead', async () => {
    const before = proxy.connects().length;
    const token = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}`;
    const { client } = through(proxy.url, { authorization: token });
    const r = await pull(await bed.store(), client, `${reg.host}/team/app:v1`, { platforms: amd64 });
    await client.close();
    assert.equal(r.digest, image.digest);
    assert.ok(proxy.connects().length > before);
  });

  test('no credentials, or wrong ones: the proxy wants credentials, said so, nothing cached', async () => {
    for (const url of [proxy.url, proxy.authUrl.replace(PASSWORD, 'wrong')]) {
      const store = await bed.store();
      const { client } = through(url);
      await assert.rejects(pull(store, client, `${reg.host}/team/app:v1`, { platforms: amd64 }), (e) => {
        const text = shown(e);
        assert.ok(isStowageError(e, 'PROXY'), text);
        assert.match(
          text,
          new RegExp(`proxy http://127\\.0\\.0\\.1:${proxy.port} wants credentials \\(HTTP 40[17]\\)`),
        );
        assert.match(text, /http\.proxyAuthorization/);
        assert.ok(!text.includes('wrong'), 'no password of the URL either');
        return true;
      });
      await client.close();
      assert.deepEqual(await store.listReferences(), []);
    }
  });

  test('NO_PROXY (http.noProxy) naming the registry: straight there, the proxy sees nothing', async () => {
    const before = proxy.connects().length;
    const { client } = through(proxy.url, { noProxy: `example.invalid, ${reg.host}` });
    const r = await pull(await bed.store(), client, `${reg.host}/team/app:v1`, { platforms: amd64 });
    await client.close();
    assert.equal(r.digest, image.digest);
    assert.equal(proxy.connects().length, before);
  });
});

describe('Bearer tokens through a proxy', () => {
  test('the token service is reached through the proxy too (an anonymous pull token)', async () => {
    const tokenReg = await bed.registry({ tls: true, auth: 'token' });
    await pushLayout(image.layoutDir, 'v1', tokenReg, 'team/app:v1');
    const before = proxy.connects().length;
    const { client } = clientFor(tokenReg, {
      proxy: { http: proxy.authUrl, https: proxy.authUrl },
    });
    const r = await pull(await bed.store(), client, `${tokenReg.host}/team/app:v1`, { platforms: amd64 });
    await client.close();
    assert.equal(r.digest, image.digest);
    const tunnels = proxy.connects().slice(before);
    const realm = new URL(tokenReg.tokenServer!.url).host;
    assert.ok(tunnels.includes(tokenReg.host) && tunnels.includes(realm), tunnels.join(', '));
  });
});

describe('proxies that will not help', () => {
  test('a proxy that tunnels to port 443 only: said so, with what to do', async () => {
    const strict = await startTinyproxy({ connectPorts: [443] });
    bed.defer(() => strict.stop());
    const { client } = through(strict.url);
    await assert.rejects(pull(await bed.store(), client, `${reg.host}/team/app:v1`), (e) => {
      const text = shown(e);
      assert.ok(isStowageError(e, 'PROXY'), text);
      assert.match(text, new RegExp(`would not connect to ${reg.host.replace(/\./g, '\\.')} \\(HTTP 403\\)`));
      assert.match(text, /port 443 only/);
      assert.match(text, /NO_PROXY/);
      return true;
    });
    await client.close();
  });

  test('a proxy that is down: the proxy cannot be reached (not the registry)', async () => {
    const gone = await startTinyproxy();
    await gone.stop();
    const { client } = through(gone.url);
    await assert.rejects(pull(await bed.store(), client, `${reg.host}/team/app:v1`), (e) => {
      const text = shown(e);
      assert.ok(isStowageError(e, 'PROXY'), text);
      assert.match(
        text,
        new RegExp(`Cannot reach the proxy http://127\\.0\\.0\\.1:${gone.port} \\(on the way to`),
      );
      assert.match(text, /ECONNREFUSED/);
      return true;
    });
    await client.close();
  });
});
