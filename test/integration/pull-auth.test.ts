// Pulls through TLS + basic auth and Bearer token auth, Docker v2s2 lists, and blob redirects.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rootCertificates } from 'node:tls';
import { StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { type CredentialSource, StaticCredentials } from '../../src/core/registry/credentials';
import { requireCli, runCli } from '../support/cli';
import { clientFor, TestBed, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage, MEDIA } from '../support/fixtures';
import { run } from '../support/proc';
import { startProxy } from '../support/proxy';
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
        // Credentials were sent and refused: the hint says so, and how to sign in again.
        assert.match(e.hint ?? '', /refused the stored user name and password/);
        assert.match(e.hint ?? '', new RegExp(`stowage login ${reg.host.replace(/\./g, '\\.')}`));
        assert.ok(!`${e.message}${e.hint}`.includes('wrong-secret-123'));
        return true;
      },
    );
    assert.equal((await s.listReferences()).length, 0);
    await client.close();
  });
});

describe('a CA in the system bundle (SSL_CERT_FILE, or the distribution bundle)', () => {
  let reg: RunningRegistry;
  let bundle: string;
  before(async () => {
    reg = await registry({ tls: true });
    await pushLayout(image.layoutDir, 'v1', reg, 'system/app:v1');
    // What update-ca-certificates makes: the public roots, and the local CA among them.
    bundle = join(bed.work, 'system-bundle.pem');
    await writeFile(bundle, `${rootCertificates.join('\n')}\n${reg.caPem}`);
  });

  test('is trusted like skopeo trusts it, with no CA configured; without it, TLS fails', async () => {
    const trusting = clientFor(reg, { caCertificates: [], env: { SSL_CERT_FILE: bundle } });
    const r = await pull(await store(), trusting.client, `${reg.host}/system/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    assert.ok(trusting.requests.every((q) => q.url.startsWith('https://')));
    await trusting.client.close();
    const other = join(bed.work, 'public-only.pem');
    await writeFile(other, rootCertificates.join('\n'));
    const strict = clientFor(reg, { caCertificates: [], env: { SSL_CERT_FILE: other } });
    await assert.rejects(
      pull(await store(), strict.client, `${reg.host}/system/app:v1`),
      (e: Error & { code?: string }) => e.code === 'TLS',
    );
    await strict.client.close();
  });

  test('the CLI and skopeo agree: both pull with SSL_CERT_FILE, the same digest', async () => {
    requireCli();
    const cache = join(bed.work, 'system-cli-cache');
    const env = { SSL_CERT_FILE: bundle, SSL_CERT_DIR: join(bed.work, 'no-such-dir') };
    const ours = await runCli(
      ['pull', `${reg.host}/system/app:v1`, '--cache', cache, '--platform', 'linux/amd64', '--json'],
      60_000,
      env,
    );
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal((JSON.parse(ours.stdout) as { digest: string }).digest, image.digest);
    const out = join(bed.work, 'system-skopeo');
    await run(
      'skopeo',
      ['copy', '--override-arch', 'amd64', `docker://${reg.host}/system/app:v1`, `oci:${out}:v1`],
      {
        env: { ...process.env, ...env },
      },
    );
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, image.platforms[0]!.manifest.digest);
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
    const { client, requests } = clientFor(reg);
    const before = reg.tokenServer!.requests.length;
    const r = await pull(s, client, `${reg.host}/tok/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    const tokenRequests = reg.tokenServer!.requests.slice(before);
    assert.equal(tokenRequests.length, 1, 'one token for the whole pull');
    // The request log (stowage -v, VS Code's output) shows it too, without its query.
    const realm = new URL(reg.tokenServer!.realm);
    const logged = requests.filter((q) => q.url === `${realm.origin}${realm.pathname}`);
    assert.deepEqual(
      logged.map((q) => [q.method, q.status]),
      [['GET', 200]],
    );
    assert.deepEqual(tokenRequests[0]!.scopes, ['repository:tok/app:pull']);
    assert.equal(tokenRequests[0]!.authorization, 'none');
    await client.close();
  });

  test('a credential helper that failed is the error when the registry then refuses the anonymous token', async () => {
    // Docker Hub's way, and Distribution's token server's: no credentials get a token with no access.
    const closed = await registry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    await pushLayout(image.layoutDir, 'v1', closed, 'tok/app:v1');
    const broken: CredentialSource = {
      get: async () => {
        throw new StowageError(
          'CREDENTIALS',
          'The credential helper docker-credential-locked failed: keychain is locked.',
        );
      },
    };
    const { client } = clientFor(closed, { credentials: broken });
    await assert.rejects(
      pull(await store(), client, `${closed.host}/tok/app:v1`),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'CREDENTIALS', `${e}`);
        assert.match(e.message, /docker-credential-locked failed: keychain is locked/);
        return true;
      },
    );
    await client.close();
  });

  test('a token service refusing the password: the message names the registry to sign in to, not the token service', async () => {
    const closed = await registry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    const realmHost = new URL(closed.tokenServer!.realm).host;
    const credentials = new StaticCredentials();
    credentials.set(closed.host, { username: closed.credentials!.username, password: 'not-the-password' });
    const { client } = clientFor(closed, { credentials, insecureRegistries: [realmHost] });
    await assert.rejects(pull(await store(), client, `${closed.host}/tok/app:v1`), (e: StowageError) => {
      assert.equal(e.code, 'UNAUTHORIZED', `${e}`);
      assert.match(e.hint ?? '', new RegExp(`stowage login ${closed.host.replace(/\./g, '\\.')}`));
      assert.doesNotMatch(e.hint ?? '', new RegExp(`login ${realmHost.replace(/\./g, '\\.')}`));
      return true;
    });
    await client.close();
  });

  test('blob requests refused at once share one new token, not one each', async () => {
    // Each blob's first GET reaches the registry without its token: it answers with a challenge,
    // as after a key rotation. The parallel transfers then need one token between them.
    // The refusals are held until all three blobs (config + 2 layers) have asked, so that all
    // three went out with the old token whatever the machine's load: a request sent after the new
    // token came and refused anyway would rightly fetch another.
    const blobs = 3;
    const challenged = new Set<string>();
    let allAsked: () => void = () => {};
    const asked = new Promise<void>((resolve) => {
      allAsked = resolve;
    });
    const proxy = await startProxy(reg.url, async (req) => {
      const blob = /\/blobs\/(sha256:[0-9a-f]+)$/.exec(req.url ?? '')?.[1];
      if (!blob || challenged.has(blob)) return undefined;
      challenged.add(blob);
      if (challenged.size === blobs) allAsked();
      await Promise.race([asked, new Promise((r) => setTimeout(r, 5000).unref())]);
      return { dropRequestHeaders: ['authorization'] };
    });
    const { client } = clientFor(reg);
    const s = await store();
    const ref = `${proxy.host}/tok/app:v1`;
    const before = reg.tokenServer!.requests.length;
    await pull(s, client, ref, { platforms: amd64 });
    await proxy.stop();
    assert.equal(challenged.size, blobs, 'every blob was challenged');
    // One token for the manifest, one for all the challenged blobs (four before).
    assert.equal(reg.tokenServer!.requests.length - before, 2);
    await verifyAllBlobs(s);
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

  test('credentials are not sent to a plain-HTTP token realm not marked insecure: anonymous, and said if refused', async () => {
    // This registry serves anonymous pulls: the public image comes, without the credentials.
    const { client } = clientFor(reg, { withCredentials: true });
    const before = reg.tokenServer!.requests.length;
    const r = await pull(await store(), client, `${reg.host}/tok/app:v1`, { platforms: amd64 });
    assert.equal(r.digest, image.digest);
    const sent = reg.tokenServer!.requests.slice(before);
    assert.ok(sent.length >= 1 && sent.every((q) => q.authorization === 'none'), 'no credentials went');
    await client.close();
    // One that refuses anonymous pulls: the error says why the credentials were not sent.
    const closed = await registry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    await pushLayout(image.layoutDir, 'v1', closed, 'tok/app:v1');
    const { client: c2 } = clientFor(closed, { withCredentials: true });
    const from = closed.tokenServer!.requests.length;
    await assert.rejects(
      pull(await store(), c2, `${closed.host}/tok/app:v1`),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'INSECURE_REFUSED', `${e}`);
        assert.match(e.message, /credentials for .* were not sent: its token service .* is plain HTTP/);
        return true;
      },
    );
    assert.ok(closed.tokenServer!.requests.slice(from).every((q) => q.authorization === 'none'));
    await c2.close();
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
