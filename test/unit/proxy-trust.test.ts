// Proxy routing (proxy.ts) against curl's and Go's readings, the ProxyRouter (transport.ts) against
// a recording proxy, proxy errors (errors.ts) without secrets, and the TLS trust (system bundle,
// configured CAs): edge cases from an adversarial review.
import assert from 'node:assert/strict';
import fs, { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { syncBuiltinESMExports } from 'node:module';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { isStowageError, type StowageError } from '../../src/core/errors';
import { RegistryClient } from '../../src/core/registry/client';
import { networkError } from '../../src/core/registry/errors';
import { proxyFor, proxyRoutes } from '../../src/core/registry/proxy';
import { createDispatcher } from '../../src/core/registry/transport';
import { makeSelfSignedCert, type TestCert } from '../support/certs';

const P = { HTTPS_PROXY: 'http://proxy.corp:3128', HTTP_PROXY: 'http://proxy.corp:3128' };
const via = (env: NodeJS.ProcessEnv, url: string) => proxyFor(proxyRoutes(undefined, env), new URL(url));

function thrown(f: () => unknown): StowageError {
  try {
    f();
  } catch (e) {
    assert.ok(isStowageError(e), String(e));
    return e as StowageError;
  }
  assert.fail('did not throw');
}

describe('proxy routing', () => {
  test('a proxy setting that is not a URL never shows a password containing "/"', () => {
    // '/' in an unencoded password makes the URL invalid (the port becomes "pa"), and the
    // redaction regex ([^@/]*@) cannot cross the '/': the whole password is printed.
    const e = thrown(() => via({ HTTPS_PROXY: 'http://user:pa/ss3cret@proxy:3128' }, 'https://r.example/'));
    assert.equal(e.code, 'PROXY');
    assert.ok(!e.detail.includes('ss3cret'), e.detail);
  });

  test('a proxy setting that is not a URL never shows the part of a password after an "@"', () => {
    // The redaction stops at the first '@': "http://user:ab@cdsecret@bad host" → "http://…@cdsecret@bad host".
    const e = thrown(() =>
      via({ HTTPS_PROXY: 'http://user:ab@cdsecret@bad host:3128' }, 'https://r.example/'),
    );
    assert.equal(e.code, 'PROXY');
    assert.ok(!e.detail.includes('cdsecret'), e.detail);
  });

  test('a proxy setting that is not a URL, credentials hidden', () => {
    for (const v of [
      'user:s3cret@proxy:notaport',
      'http://user:s3cret@[::1:3128',
      'http://u:s3cret@pro xy/a@b',
    ]) {
      const e = thrown(() => via({ HTTPS_PROXY: v }, 'https://r.example/'));
      assert.ok(!e.detail.includes('s3cret'), e.detail);
    }
  });

  test('NO_PROXY: a non-canonical IPv6 address with a port matches its host (Go compares IPs)', () => {
    assert.equal(via({ ...P, NO_PROXY: '[2001:db8::1]:5000' }, 'https://[2001:db8::1]:5000/'), undefined);
    // Without a port it is compared as an address (BlockList) and matches; with one, as a string.
    assert.equal(via({ ...P, NO_PROXY: '[2001:db8::0001]' }, 'https://[2001:db8::1]:5000/'), undefined);
    assert.equal(via({ ...P, NO_PROXY: '[2001:db8::0001]:5000' }, 'https://[2001:db8::1]:5000/'), undefined);
  });

  test('an environment proxy never takes loopback: IPv4-mapped ::ffff:127.0.0.1 too (Go: IsLoopback)', () => {
    assert.equal(via(P, 'https://127.0.0.2/'), undefined);
    assert.equal(via(P, 'https://[0:0:0:0:0:0:0:1]/'), undefined);
    assert.equal(via(P, 'https://[::ffff:127.0.0.1]:5000/'), undefined);
  });

  test('an empty HTTPS_PROXY does not hide https_proxy (Go takes the first non-empty one)', () => {
    assert.equal(
      String(via({ HTTPS_PROXY: '', https_proxy: 'http://lower:3128' }, 'https://r.example/')),
      'http://lower:3128/',
    );
  });

  test('NO_PROXY edge cases that hold (case, ports, CIDR with host bits, "*", whitespace, empty entries)', () => {
    assert.equal(via({ ...P, NO_PROXY: 'REGISTRY.Example:443' }, 'https://registry.example/'), undefined);
    assert.ok(via({ ...P, NO_PROXY: 'registry.example:5000' }, 'https://registry.example/'));
    assert.equal(via({ ...P, NO_PROXY: '10.1.2.3/8' }, 'https://10.200.0.1/'), undefined);
    assert.equal(via({ ...P, NO_PROXY: ' , ,\t*  ' }, 'https://a.example/'), undefined);
    assert.equal(via({ ...P, NO_PROXY: ',,a.example,, b.example' }, 'https://x.b.example/'), undefined);
    assert.ok(via({ ...P, NO_PROXY: 'example' }, 'https://notexample/'));
    assert.ok(via({ ...P, NO_PROXY: '.' }, 'https://a.example/'));
    assert.ok(via({ ...P, NO_PROXY: ':5000' }, 'https://a.example:5000/'));
    assert.equal(via({ ...P, no_proxy: '10.0.0.0/8' }, 'https://[::ffff:10.0.0.1]/'), undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// A CONNECT proxy (plain or TLS) that records what it was sent and tunnels to 127.0.0.1.

interface Seen {
  line: string;
  headers: Record<string, string>;
}
interface FakeProxy {
  url: string;
  port: number;
  seen: Seen[];
  server: Server;
}

function proxyHandler(seen: Seen[], mode: { status?: number }) {
  return (sock: Socket) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const [line, ...rest] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const h of rest) {
        const i = h.indexOf(':');
        headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      seen.push({ line: line!, headers });
      if (mode.status) {
        sock.end(
          `HTTP/1.1 ${mode.status} No\r\nProxy-Authenticate: Basic realm="p"\r\nContent-Length: 0\r\n\r\n`,
        );
        return;
      }
      const target = line!.split(' ')[1]!;
      const port = Number(target.slice(target.lastIndexOf(':') + 1));
      const up = connect(port, '127.0.0.1', () => {
        sock.write('HTTP/1.1 200 Connection established\r\n\r\n');
        const more = buf.subarray(end + 4);
        if (more.length) up.write(more);
        sock.pipe(up).pipe(sock);
      });
      up.on('error', () => sock.destroy());
    };
    sock.on('data', onData);
  };
}

async function startProxy(mode: { status?: number } = {}, tls?: TestCert): Promise<FakeProxy> {
  const seen: Seen[] = [];
  const server = tls
    ? createTlsServer({ cert: tls.certPem, key: tls.keyPem }, proxyHandler(seen, mode))
    : createServer(proxyHandler(seen, mode));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, port, seen, server };
}

let dir: string;
let cert: TestCert;
let other: TestCert;
let registry: import('node:https').Server;
let regPort: number;
const servers: Server[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stowage-review-'));
  cert = await makeSelfSignedCert(dir, 'reg', 'localhost', 'ec');
  other = await makeSelfSignedCert(dir, 'other', 'localhost', 'ec');
  registry = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => {
    res.setHeader('docker-distribution-api-version', 'registry/2.0');
    res.end('{}');
  });
  await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
  regPort = (registry.address() as { port: number }).port;
});

after(() => {
  registry?.closeAllConnections();
  registry?.close();
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

function client(options: ConstructorParameters<typeof RegistryClient>[0], log: string[] = []) {
  return new RegistryClient({
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    stallTimeoutMs: 5000,
    ...options,
    onRequest: (r) => log.push(JSON.stringify(r)),
  } as ConstructorParameters<typeof RegistryClient>[0]);
}

async function pingError(c: RegistryClient, registry: string): Promise<StowageError | undefined> {
  try {
    await c.ping(registry);
    return undefined;
  } catch (e) {
    assert.ok(isStowageError(e), String(e));
    return e as StowageError;
  } finally {
    await c.close();
  }
}

describe('ProxyRouter against a recording proxy', () => {
  test('a proxy URL with a path (curl and Go ignore it) tunnels, not "invalid url" from undici', async () => {
    // ProxyAgent hands the whole URL to new Pool(), whose parseOrigin rejects any path/search/hash:
    // the request fails as NETWORK "Cannot reach <registry>: UND_ERR_INVALID_ARG".
    const p = await startProxy();
    servers.push(p.server);
    const url = `http://127.0.0.1:${p.port}/some/path`;
    const e = await pingError(
      client({ proxy: { http: url, https: url }, caCertificates: [cert.certPem] }),
      `localhost:${regPort}`,
    );
    assert.equal(e, undefined, e?.detail);
    assert.equal(p.seen[0]?.line, `CONNECT localhost:${regPort} HTTP/1.1`);
  });

  test('percent-encoded credentials: tunnels, the header is decoded', async () => {
    const p = await startProxy();
    servers.push(p.server);
    const url = `http://al%40ice:p%40ss%2Fw0rd@127.0.0.1:${p.port}/`;
    const e = await pingError(
      client({ proxy: { http: url, https: url }, caCertificates: [cert.certPem] }),
      `localhost:${regPort}`,
    );
    assert.equal(e, undefined, e?.detail);
    assert.equal(p.seen[0]?.line, `CONNECT localhost:${regPort} HTTP/1.1`);
    assert.equal(
      p.seen[0]?.headers['proxy-authorization'],
      `Basic ${Buffer.from('al@ice:p@ss/w0rd').toString('base64')}`,
    );
  });

  test('http.proxyAuthorization with credentials in the URL too: the URL wins', async () => {
    const p = await startProxy();
    servers.push(p.server);
    const url = `http://u:pw@127.0.0.1:${p.port}`;
    const e = await pingError(
      client({
        proxy: { http: url, https: url, authorization: 'Bearer tok' },
        caCertificates: [cert.certPem],
      }),
      `localhost:${regPort}`,
    );
    assert.equal(e, undefined, e?.detail);
    assert.equal(
      p.seen[0]?.headers['proxy-authorization'],
      `Basic ${Buffer.from('u:pw').toString('base64')}`,
    );
  });

  test('a proxy URL with a user name only sends it as Go does ("Basic base64(user:)")', async () => {
    // undici sends nothing when the password is empty: the user goes as a token of our own.
    const p = await startProxy();
    servers.push(p.server);
    const url = `http://tok3n@127.0.0.1:${p.port}`;
    const e = await pingError(
      client({
        proxy: { http: url, https: url, authorization: 'Bearer fallback' },
        caCertificates: [cert.certPem],
      }),
      `localhost:${regPort}`,
    );
    assert.equal(e, undefined, e?.detail);
    assert.equal(
      p.seen[0]?.headers['proxy-authorization'],
      `Basic ${Buffer.from('tok3n:').toString('base64')}`,
      `sent: ${JSON.stringify(p.seen[0]?.headers)}`,
    );
  });

  test('407 with a percent-encoded password: PROXY "wants credentials", nothing secret in messages or log', async () => {
    const p = await startProxy({ status: 407 });
    servers.push(p.server);
    const log: string[] = [];
    const url = `http://bob:s3cr%40et@127.0.0.1:${p.port}`;
    const e = await pingError(
      client({ proxy: { http: url, https: url, authorization: 'Basic QUJD' } }, log),
      'reg.test',
    );
    assert.equal(e?.code, 'PROXY');
    assert.match(e!.detail, /wants credentials/);
    const all = `${e!.detail} ${log.join(' ')}`;
    for (const secret of ['s3cr', 'QUJD', 'bob', 'Basic']) assert.ok(!all.includes(secret), all);
  });

  test('an environment proxy: a non-loopback registry tunnels through it, NO_PROXY with a port skips it', async () => {
    const p = await startProxy({ status: 403 });
    servers.push(p.server);
    const env = { HTTPS_PROXY: `127.0.0.1:${p.port}` };
    const e = await pingError(client({ env }), 'reg.test');
    assert.equal(e?.code, 'PROXY');
    assert.match(e!.detail, /would not connect/);
    assert.equal(p.seen.length, 1);
    const e2 = await pingError(client({ env: { ...env, NO_PROXY: 'reg.test:443' } }), 'reg.test');
    assert.notEqual(e2?.code, 'PROXY');
    assert.equal(p.seen.length, 1);
  });

  test('an invalid proxy setting fails undici requests with PROXY, never direct', async () => {
    const e = await pingError(client({ env: { HTTPS_PROXY: 'http://u:s3cret@bad host' } }), 'reg.test');
    assert.equal(e?.code, 'PROXY');
    assert.ok(!e!.detail.includes('s3cret'));
  });

  test('socks5h:// (not supported by undici) fails as a PROXY error, not as a registry error', async () => {
    const p = await startProxy({ status: 400 });
    servers.push(p.server);
    const e = await pingError(client({ env: { HTTPS_PROXY: `socks5h://127.0.0.1:${p.port}` } }), 'reg.test');
    assert.equal(e?.code, 'PROXY', `${e?.code}: ${e?.detail}`);
  });

  test('an https:// proxy with an untrusted certificate: the error is about the proxy, not the registry', async () => {
    const p = await startProxy({}, other);
    servers.push(p.server);
    const e = await pingError(
      client({ proxy: { http: p.url, https: p.url }, caCertificates: [cert.certPem] }),
      `localhost:${regPort}`,
    );
    assert.ok(e, 'must fail: the proxy certificate is not trusted');
    assert.ok(e!.detail.includes(`127.0.0.1:${p.port}`), `names the proxy: ${e!.code} ${e!.detail}`);
    assert.doesNotMatch(e!.detail, /insecureRegistries/);
  });

  test('an https:// proxy, http.proxyStrictSSL false: tunnels, the registry still verified', async () => {
    const p = await startProxy({}, other);
    servers.push(p.server);
    const ok = await pingError(
      client({ proxy: { http: p.url, https: p.url, strictSSL: false }, caCertificates: [cert.certPem] }),
      `localhost:${regPort}`,
    );
    assert.equal(ok, undefined, ok?.detail);
    const bad = await pingError(
      client({ proxy: { http: p.url, https: p.url, strictSSL: false }, caCertificates: [other.certPem] }),
      `localhost:${regPort}`,
    );
    assert.equal(bad?.code, 'TLS');
  });

  test('networkError: ECONNREFUSED of a proxy with credentials names it without them', () => {
    const e = networkError(
      new URL('https://r.example/v2/'),
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      { registry: 'r.example', what: 'API check' },
      new URL('http://u:s3cret@proxy:3128/'),
    );
    assert.equal(e.code, 'PROXY');
    assert.ok(!e.detail.includes('s3cret') && !e.detail.includes('u:'), e.detail);
  });
});

// ---------------------------------------------------------------------------------------------

describe('TLS trust', () => {
  const pem = () => cert.certPem;
  const reg = () => `localhost:${regPort}`;

  test('SSL_CERT_FILE with CRLF line endings and a TRUSTED CERTIFICATE block: the CA is trusted', async () => {
    const file = join(dir, 'crlf.pem');
    const trusted = other.certPem.replace(/CERTIFICATE/g, 'TRUSTED CERTIFICATE');
    writeFileSync(file, `${trusted}\n${pem()}`.replace(/\r?\n/g, '\r\n'));
    assert.equal(await pingError(client({ env: { SSL_CERT_FILE: file } }), reg()), undefined);
  });

  test('SSL_CERT_FILE a directory, missing, or with a corrupt block: no crash, configured CAs still work', async () => {
    const sub = join(dir, 'adir');
    mkdirSync(sub, { recursive: true });
    const corrupt = join(dir, 'corrupt.pem');
    writeFileSync(
      corrupt,
      `-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n${other.certPem}`,
    );
    for (const f of [sub, join(dir, 'missing.pem'), corrupt]) {
      assert.equal(
        await pingError(client({ env: { SSL_CERT_FILE: f }, caCertificates: [pem()] }), reg()),
        undefined,
        f,
      );
      const e = await pingError(client({ env: { SSL_CERT_FILE: f } }), reg());
      assert.equal(e?.code, 'TLS', f);
    }
  });

  test('a corrupt block before the CA in the bundle does not hide the CA', async () => {
    const file = join(dir, 'corrupt-first.pem');
    writeFileSync(file, `-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n${pem()}`);
    assert.equal(await pingError(client({ env: { SSL_CERT_FILE: file } }), reg()), undefined);
  });

  test('env changing between clients: each client trusts its own SSL_CERT_FILE', async () => {
    const a = join(dir, 'a.pem');
    const b = join(dir, 'b.pem');
    writeFileSync(a, other.certPem);
    writeFileSync(b, pem());
    assert.equal((await pingError(client({ env: { SSL_CERT_FILE: a } }), reg()))?.code, 'TLS');
    assert.equal(await pingError(client({ env: { SSL_CERT_FILE: b } }), reg()), undefined);
    assert.equal((await pingError(client({ env: { SSL_CERT_FILE: a } }), reg()))?.code, 'TLS');
  });

  test('a CA installed into the bundle while the process runs is trusted by the next client', async () => {
    // The cache is keyed by the bundle's path only: a long-lived VS Code extension host never sees
    // update-ca-certificates until it restarts (skopeo, a new process each time, does).
    const file = join(dir, 'live.pem');
    writeFileSync(file, other.certPem);
    assert.equal((await pingError(client({ env: { SSL_CERT_FILE: file } }), reg()))?.code, 'TLS');
    writeFileSync(file, `${other.certPem}${pem()}`);
    assert.equal(await pingError(client({ env: { SSL_CERT_FILE: file } }), reg()), undefined);
  });

  test('the trust is lazy: creating a dispatcher reads no certificates', () => {
    const file = join(dir, 'lazy.pem');
    writeFileSync(file, other.certPem);
    const reads: string[] = [];
    const original = fs.readFileSync;
    (fs as { readFileSync: unknown }).readFileSync = ((p: unknown, ...rest: unknown[]) => {
      reads.push(String(p));
      return (original as (...a: unknown[]) => unknown)(p, ...rest);
    }) as typeof fs.readFileSync;
    syncBuiltinESMExports();
    try {
      const d = createDispatcher(
        { stallTimeoutMs: 1000, env: { SSL_CERT_FILE: file }, caCertificates: [`${pem()}\n`] },
        proxyRoutes({ https: 'http://127.0.0.1:9', http: 'http://127.0.0.1:9' }, {}),
        true,
      );
      void d.close();
    } finally {
      (fs as { readFileSync: unknown }).readFileSync = original;
      syncBuiltinESMExports();
    }
    assert.deepEqual(
      reads.filter((r) => r === file),
      [],
      'undici spreads `connect` (and requestTls/proxyTls) at construction',
    );
  });

  test('many connections do not rebuild the context', async () => {
    const c = client({ caCertificates: [pem()], connections: 8 } as never);
    const t = Date.now();
    await Promise.all(Array.from({ length: 40 }, () => c.ping(reg())));
    await c.close();
    assert.ok(Date.now() - t < 3000, `${Date.now() - t} ms`);
  });
});
