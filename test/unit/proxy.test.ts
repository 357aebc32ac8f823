// Which requests go through which proxy: one decision (proxyFor) for undici's dispatchers, the
// direct reader and the messages; NO_PROXY read as curl and Go read it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { networkError } from '../../src/core/registry/errors';
import { displayProxy, proxyFor, proxyRoutes } from '../../src/core/registry/proxy';

const via = (routes: ReturnType<typeof proxyRoutes>, url: string) => proxyFor(routes, new URL(url))?.href;

describe('proxyFor', () => {
  test('the environment: HTTPS_PROXY for https, HTTP_PROXY for http, either case', () => {
    const routes = proxyRoutes(undefined, { HTTPS_PROXY: 'http://secure:3128', http_proxy: 'plain:8080' });
    assert.equal(via(routes, 'https://registry.lan/v2/'), 'http://secure:3128/');
    assert.equal(via(routes, 'http://registry.lan/v2/'), 'http://plain:8080/', 'a bare host:port is http://');
    assert.equal(via(proxyRoutes(undefined, {}), 'https://registry.lan/'), undefined);
    assert.equal(
      via(proxyRoutes(undefined, { HTTP_PROXY: 'http://p:1' }), 'https://registry.lan/'),
      undefined,
    );
  });

  test('an environment proxy never takes loopback (as Go, so skopeo); a caller proxy does', () => {
    const env = proxyRoutes(undefined, { HTTP_PROXY: 'http://proxy:3128', HTTPS_PROXY: 'http://proxy:3128' });
    for (const url of [
      'http://127.0.0.1:5000/',
      'http://127.0.0.2:5000/',
      'https://localhost:5000/',
      'http://[::1]:5000/',
      'http://registry.localhost/',
    ]) {
      assert.equal(via(env, url), undefined, url);
    }
    assert.equal(via(env, 'http://10.0.0.1:5000/'), 'http://proxy:3128/');
    const explicit = proxyRoutes({ http: 'http://proxy:3128', https: 'http://proxy:3128' }, {});
    assert.equal(via(explicit, 'http://127.0.0.1:5000/'), 'http://proxy:3128/');
  });

  test("the caller's setting replaces the environment's, also where it names no http proxy", () => {
    const routes = proxyRoutes({ https: 'http://proxy:3128' }, { HTTP_PROXY: 'http://env:1' });
    assert.equal(via(routes, 'https://registry.lan/'), 'http://proxy:3128/');
    assert.equal(via(routes, 'http://registry.lan/'), undefined);
    const both = proxyRoutes({ http: 'http://proxy:3128' }, {});
    assert.equal(via(both, 'https://registry.lan/'), 'http://proxy:3128/', 'http.proxy serves https too');
  });

  test('NO_PROXY: names, subdomains, ports, addresses, CIDR ranges, *', () => {
    const routes = proxyRoutes(undefined, {
      HTTPS_PROXY: 'http://proxy:3128',
      NO_PROXY: 'corp.example, .internal *.svc registry.lan:5000 10.0.0.0/8,192.168.1.7 [fd00::1] fd01::/16',
    });
    const direct = [
      'https://corp.example/',
      'https://REGISTRY.corp.example/',
      'https://a.internal/',
      'https://internal/',
      'https://x.svc/',
      'https://registry.lan:5000/',
      'https://10.1.2.3/',
      'https://192.168.1.7/',
      'https://[fd00::1]/',
      'https://[fd01::7]:5000/',
    ];
    for (const url of direct) assert.equal(via(routes, url), undefined, url);
    const proxied = [
      'https://notcorp.example/',
      'https://registry.lan/',
      'https://registry.lan:5001/',
      'https://11.0.0.1/',
      'https://192.168.1.8/',
      'https://[fd00::2]/',
    ];
    for (const url of proxied) assert.equal(via(routes, url), 'http://proxy:3128/', url);
    const all = proxyRoutes({ https: 'http://proxy:3128', noProxy: '*' }, {});
    assert.equal(via(all, 'https://anything.example/'), undefined);
  });

  test('a proxy setting that is not a URL fails the request clearly and never goes direct', () => {
    const routes = proxyRoutes(undefined, { HTTPS_PROXY: 'http://user:hunter2@bad host:3128' });
    assert.throws(
      () => proxyFor(routes, new URL('https://registry.lan/')),
      (e: unknown) =>
        isStowageError(e, 'PROXY') &&
        /HTTPS_PROXY/.test(e.message) &&
        /registry\.lan/.test(e.message) &&
        !e.message.includes('hunter2'),
    );
    // Only requests that would take it fail.
    assert.equal(proxyFor(routes, new URL('https://127.0.0.1:5000/')), undefined);
  });

  test('displayProxy never shows credentials', () => {
    assert.equal(displayProxy(new URL('http://alice:s3cret@proxy.corp:3128/')), 'http://proxy.corp:3128');
  });
});

describe('proxy failures are the proxy’s, not the registry’s', () => {
  const url = new URL('https://registry.lan/v2/app/manifests/v1');
  const ctx = { registry: 'registry.lan', repository: 'app', what: 'manifest v1' };
  const proxy = new URL('http://alice:s3cret@proxy.corp:3128');

  test('407 asks for proxy credentials, naming the proxy without its password', () => {
    const cause = Object.assign(new Error('Proxy response (407) !== 200 when HTTP Tunneling'), {
      code: 'UND_ERR_ABORTED',
    });
    const e = networkError(url, cause, ctx, proxy);
    assert.equal(e.code, 'PROXY');
    assert.match(e.message, /proxy http:\/\/proxy\.corp:3128 wants credentials \(HTTP 407\)/);
    assert.match(e.hint ?? '', /http\.proxyAuthorization/);
    assert.ok(!e.detail.includes('s3cret') && !e.detail.includes('alice'));
  });

  test('another CONNECT answer says the proxy would not connect to the registry', () => {
    const cause = Object.assign(new Error('Proxy response (403) !== 200 when HTTP Tunneling'), {
      code: 'UND_ERR_ABORTED',
    });
    const e = networkError(url, cause, ctx, proxy);
    assert.equal(e.code, 'PROXY');
    assert.match(e.message, /would not connect to registry\.lan \(HTTP 403\)/);
    assert.match(e.hint ?? '', /NO_PROXY/);
  });

  test('a refused connection through a proxy is about the proxy', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 10.0.0.9:3128'), { code: 'ECONNREFUSED' });
    const e = networkError(url, cause, ctx, proxy);
    assert.equal(e.code, 'PROXY');
    assert.match(e.message, /Cannot reach the proxy http:\/\/proxy\.corp:3128 \(on the way to registry\.lan/);
    // Without a proxy it is the registry that cannot be reached.
    const direct = networkError(url, cause, ctx);
    assert.equal(direct.code, 'NETWORK');
    assert.match(
      direct.message,
      /Cannot reach https:\/\/registry\.lan .*: connection refused \(nothing listens there\) \(ECONNREFUSED\)/,
    );
  });

  test('a registry answering plain HTTP to our TLS hello: said so, with how to allow it', () => {
    const cause = Object.assign(new Error('SSL routines:ssl3_get_record:wrong version number'), {
      code: 'ERR_SSL_WRONG_VERSION_NUMBER',
    });
    const e = networkError(url, cause, ctx);
    assert.equal(e.code, 'TLS');
    assert.match(e.message, /registry\.lan answered in plain HTTP, not HTTPS/);
    assert.match(e.hint ?? '', /--insecure-registry registry\.lan/);
  });
});
