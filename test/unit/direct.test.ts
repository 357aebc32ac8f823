// The direct plain-HTTP reader against scripted loopback servers: the framings and failures a
// CNCF Distribution registry does not produce (chunked or close-delimited bodies, malformed heads,
// a peer that stops or hangs mid-body). The real registry path is in test/integration/direct.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import { bodyLength, DirectPool, directGet, parseHead, Unhandled } from '../../src/core/registry/direct';
import { spokeTls } from '../../src/core/registry/errors';
import { proxyFor, proxyRoutes } from '../../src/core/registry/proxy';
import { createDispatcher } from '../../src/core/registry/transport';
import { tlsOptions } from '../../src/core/registry/trust';
import { makeSelfSignedCert, type TestCert } from '../support/certs';
import { serveKeepAlive } from '../support/keep-alive-server';

const closers: (() => void)[] = [];
after(() => {
  for (const c of closers) c();
});

/** A TCP server that answers each connection with `script` once the request head has arrived. */
async function serve(script: (socket: Socket, request: string) => void) {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    socket.on('data', (d) => {
      if (head.includes('\r\n\r\n')) return;
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        requests.push(head);
        script(socket, head);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/a/blobs/x`);
  return { url, requests, sockets };
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  // Copies: the reader reuses its buffer for the next chunk.
  for await (const chunk of body) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
const opts = { stallTimeoutMs: 5_000 };

describe('direct reader: framing', () => {
  test('a Content-Length body sent in many pieces arrives whole, request carries our headers', async () => {
    const { url, requests } = await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\nX-Two: a\r\nx-two: b\r\n\r\n`);
      for (let i = 0; i < payload.length; i += 7_000) s.write(payload.subarray(i, i + 7_000));
    });
    const res = await directGet(url, { 'user-agent': 'stowage-test', range: 'bytes=0-' }, opts);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.headers['x-two'], ['a', 'b']);
    assert.deepEqual(await collect(res.body), payload);
    assert.match(requests[0]!, /^GET \/v2\/a\/blobs\/x HTTP\/1\.1\r\n/);
    assert.match(requests[0]!, /\r\nhost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(requests[0]!, /\r\nconnection: close\r\n/);
    assert.match(requests[0]!, /\r\nrange: bytes=0-\r\n/);
  });

  test('head and the whole body in one write; bytes past Content-Length are ignored', async () => {
    const { url } = await serve((s) => {
      s.end(
        Buffer.concat([
          Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n'),
          Buffer.from('helloEXTRA'),
        ]),
      );
    });
    const res = await directGet(url, {}, opts);
    assert.equal((await collect(res.body)).toString(), 'hello');
  });

  test('no Content-Length and no Transfer-Encoding: the close ends the body', async () => {
    const { url } = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\n\r\n');
      s.end(payload);
    });
    const res = await directGet(url, {}, opts);
    assert.deepEqual(await collect(res.body), payload);
  });

  test('a 206 carries its Content-Range through', async () => {
    const { url } = await serve((s) =>
      s.end('HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 2-4/5\r\nContent-Length: 3\r\n\r\nllo'),
    );
    const res = await directGet(url, { range: 'bytes=2-' }, opts);
    assert.equal(res.statusCode, 206);
    assert.equal(res.headers['content-range'], 'bytes 2-4/5');
    assert.equal((await collect(res.body)).toString(), 'llo');
  });

  test('an error status comes back with its body, for the message', async () => {
    const json = '{"errors":[{"code":"BLOB_UNKNOWN"}]}';
    const { url } = await serve((s) =>
      s.end(`HTTP/1.1 404 Not Found\r\nContent-Length: ${json.length}\r\n\r\n${json}`),
    );
    const res = await directGet(url, {}, opts);
    assert.equal(res.statusCode, 404);
    assert.equal((await collect(res.body)).toString(), json);
  });

  test('a chunked 2xx, an interim 1xx, a malformed head are left to the general path', async () => {
    for (const head of [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nbad header line\r\n\r\n',
      'HTTP/2 200\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
    ]) {
      const { url } = await serve((s) => s.end(head));
      await assert.rejects(directGet(url, {}, opts), Unhandled, head);
    }
  });

  test('a response head over 16 KiB is refused, also when its end arrives in a later read', async () => {
    const overflow = (e: { code?: string }) => e.code === 'UND_ERR_HEADERS_OVERFLOW';
    const endless = await serve((s) => {
      s.write('HTTP/1.1 200 OK\r\n');
      for (let i = 0; i < 100; i++) s.write(`x-pad-${i}: ${'a'.repeat(1000)}\r\n`);
    });
    await assert.rejects(directGet(endless.url, {}, opts), overflow);
    const late = await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\n${'a: b\r\n'.repeat(2_000)}`);
      setTimeout(() => s.end(`${'a: b\r\n'.repeat(20_000)}\r\n`), 50);
    });
    await assert.rejects(directGet(late.url, {}, opts), overflow);
  });

  test('bytes that are not HTTP, then a close: left to the general path (which names the error)', async () => {
    const { url } = await serve((s) => s.end(Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x50])));
    await assert.rejects(directGet(url, {}, opts), Unhandled);
  });

  test('header values that could split the request are never sent', async () => {
    const { url, requests } = await serve((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    await assert.rejects(directGet(url, { authorization: 'Bearer x\r\nX-Evil: 1' }, opts), Unhandled);
    await assert.rejects(directGet(url, { 'bad name': 'x' }, opts), Unhandled);
    await assert.rejects(directGet(url, { host: 'elsewhere' }, opts), Unhandled);
    assert.equal(requests.length, 0);
  });

  test('parseHead and bodyLength follow RFC 9112', () => {
    const h = parseHead('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag:  "x" ');
    assert.equal(h.statusCode, 200);
    assert.equal(h.headers.etag, '"x"');
    assert.equal(bodyLength(200, h.headers), 10);
    assert.equal(bodyLength(204, {}), 0);
    assert.equal(bodyLength(304, { 'content-length': '10' }), 0);
    assert.equal(bodyLength(200, {}), Number.POSITIVE_INFINITY);
    assert.equal(bodyLength(200, { 'content-length': ['7', '7'] }), 7);
    assert.throws(() => bodyLength(500, { 'transfer-encoding': 'chunked' }), Unhandled);
    assert.throws(() => bodyLength(200, { 'content-length': '-1' }), Unhandled);
    assert.throws(() => bodyLength(200, { 'content-length': '1e3' }), Unhandled);
  });
});

describe('direct reader: failures', () => {
  test('a peer that closes before Content-Length is reached: UND_ERR_SOCKET (retryable, like undici)', async () => {
    const { url } = await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      s.end(payload.subarray(0, 100_000));
    });
    const res = await directGet(url, {}, opts);
    let got = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of res.body) got += chunk.length;
      })(),
      (e: { code?: string }) => e.code === 'UND_ERR_SOCKET',
    );
    assert.equal(got, 100_000);
  });

  test('a peer that closes before the head: UND_ERR_SOCKET; one that refuses: ECONNREFUSED', async () => {
    const { url } = await serve((s) => s.destroy());
    await assert.rejects(directGet(url, {}, opts), (e: { code?: string }) => e.code === 'UND_ERR_SOCKET');
    const closed = await serve(() => {});
    closers.pop()!();
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(
      directGet(closed.url, {}, opts),
      (e: { code?: string }) => e.code === 'ECONNREFUSED',
    );
  });

  test('no bytes for the stall timeout: a headers or body timeout', async () => {
    const quiet = await serve(() => {});
    await assert.rejects(
      directGet(quiet.url, {}, { stallTimeoutMs: 200 }),
      (e: { code?: string }) => e.code === 'UND_ERR_HEADERS_TIMEOUT',
    );
    const stalls = await serve((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const res = await directGet(stalls.url, {}, { stallTimeoutMs: 200 });
    await assert.rejects(collect(res.body), (e: { code?: string }) => e.code === 'UND_ERR_BODY_TIMEOUT');
  });

  test('an abort mid-body rejects the waiting read with the reason and closes the connection', async () => {
    const { url, sockets } = await serve((s) =>
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\nab`),
    );
    const controller = new AbortController();
    const res = await directGet(url, {}, { ...opts, signal: controller.signal });
    const it = res.body[Symbol.asyncIterator]();
    assert.equal(Buffer.from((await it.next()).value!).toString(), 'ab');
    const waiting = it.next();
    const reason = new Error('cancelled by test');
    controller.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sockets.size, 0, 'the server saw the connection close');
  });

  test('an aborted signal never connects; destroy() fails the body as aborted, never as a short one', async () => {
    const { url, requests } = await serve((s) =>
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`),
    );
    await assert.rejects(directGet(url, {}, { ...opts, signal: AbortSignal.abort() }));
    assert.equal(requests.length, 0);
    const aborted = (e: { code?: string }) => e.code === 'UND_ERR_ABORTED';
    const res = await directGet(url, {}, opts);
    const it = res.body[Symbol.asyncIterator]();
    const waiting = it.next();
    res.body.destroy();
    await assert.rejects(waiting, aborted);
    await assert.rejects(it.next(), aborted);
  });

  test('a second read while one waits is refused instead of left hanging', async () => {
    const { url } = await serve((s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n`));
    const res = await directGet(url, {}, opts);
    const it = res.body[Symbol.asyncIterator]();
    const first = it.next();
    await assert.rejects(it.next(), /already being read/);
    res.body.destroy();
    await assert.rejects(first);
  });

  test('a consumer slower than the stall timeout is not a stall: the timer runs only while waiting for data', async () => {
    const { url } = await serve((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      s.end(payload);
    });
    const res = await directGet(url, {}, { stallTimeoutMs: 400, readBufferSize: 128 * 1024 });
    const parts: Buffer[] = [];
    for await (const chunk of res.body) {
      parts.push(Buffer.from(chunk));
      await new Promise((r) => setTimeout(r, 600));
    }
    assert.deepEqual(Buffer.concat(parts), payload);
  });
});

/**
 * A TCP server that reads any number of requests per connection and answers each with
 * `script(socket, request, n)` (n: the request's number on its connection, from 0).
 */

const ok = (s: Socket, body: Buffer | string = payload, extra = '') =>
  s.write(
    Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n`),
      Buffer.from(body),
    ]),
  );

describe('direct reader: keep-alive', () => {
  test('with a pool, the next GET to the origin reuses the connection; a dumped redirect too', async () => {
    const pool = new DirectPool();
    const { url, requests, connections } = await serveKeepAlive((s, request) => {
      if (request.startsWith('GET /redirect ')) {
        s.write(
          'HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2/a/blobs/x\r\nContent-Length: 5\r\n\r\nmoved',
        );
      } else ok(s);
    });
    for (let i = 0; i < 3; i++) {
      const res = await directGet(url, {}, { ...opts, pool });
      assert.deepEqual(await collect(res.body), payload);
    }
    const redirect = await directGet(new URL('/redirect', url), {}, { ...opts, pool });
    assert.equal(redirect.statusCode, 307);
    await redirect.body.dump();
    const after = await directGet(url, {}, { ...opts, pool });
    assert.deepEqual(await collect(after.body), payload);
    assert.equal(requests.length, 5);
    assert.equal(connections(), 1, 'one connection carried every request');
    assert.ok(!requests.some((r) => /\r\nconnection:/i.test(r)), 'keep-alive is HTTP/1.1 default');
    assert.equal(pool.size, 1);
    pool.close();
    assert.equal(pool.size, 0);
  });

  test('a HEAD: no body whatever Content-Length says, and the GET after it takes its connection', async () => {
    const pool = new DirectPool();
    const { url, requests, connections } = await serveKeepAlive((s, request) => {
      if (request.startsWith('HEAD '))
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n`);
      else ok(s);
    });
    const head = await directGet(url, {}, { ...opts, pool, method: 'HEAD' });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], String(payload.length));
    assert.deepEqual(await collect(head.body), Buffer.alloc(0));
    const get = await directGet(url, {}, { ...opts, pool });
    assert.equal(get.reused, true);
    assert.deepEqual(await collect(get.body), payload);
    assert.deepEqual(
      requests.map((r) => r.split(' ')[0]),
      ['HEAD', 'GET'],
    );
    assert.equal(connections(), 1);
    pool.close();
  });

  test('the connection goes back only when the consumer asks past the last chunk', async () => {
    const pool = new DirectPool();
    const { url } = await serveKeepAlive((s) => ok(s, 'abc'));
    const res = await directGet(url, {}, { ...opts, pool });
    const it = res.body[Symbol.asyncIterator]();
    const last = await it.next();
    assert.equal(Buffer.from(last.value!).toString(), 'abc');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.size, 0, 'not reusable while the last chunk may be a view of its buffer');
    assert.equal((await it.next()).done, true);
    assert.equal(pool.size, 1);
    pool.close();
  });

  test('not kept: Connection: close, bytes past Content-Length, an HTTP/1.0 answer, a close-delimited body, a broken body', async () => {
    const cases: [string, (s: Socket) => void][] = [
      ['connection: close', (s) => ok(s, 'abc', 'Connection: keep-alive, close\r\n')],
      ['extra bytes', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA')],
      ['HTTP/1.0', (s) => s.write('HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc')],
      ['close-delimited', (s) => s.end('HTTP/1.1 200 OK\r\n\r\nabc')],
    ];
    for (const [name, script] of cases) {
      const pool = new DirectPool();
      const { url, sockets } = await serveKeepAlive(script);
      const res = await directGet(url, {}, { ...opts, pool });
      assert.equal((await collect(res.body)).toString(), 'abc', name);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(pool.size, 0, name);
      assert.equal(sockets.size, 0, `${name}: the connection was closed`);
    }
    const pool = new DirectPool();
    const broken = await serveKeepAlive((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const res = await directGet(broken.url, {}, { ...opts, pool });
    await assert.rejects(collect(res.body), (e: { code?: string }) => e.code === 'UND_ERR_SOCKET');
    assert.equal(pool.size, 0);
  });

  test('a server that closes an idle connection: dropped from the pool, the next GET connects anew', async () => {
    const pool = new DirectPool();
    const { url, connections } = await serveKeepAlive((s) => {
      ok(s, 'abc');
      setTimeout(() => s.end(), 10);
    });
    assert.equal((await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(), 'abc');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(pool.size, 0);
    assert.equal((await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(), 'abc');
    assert.equal(connections(), 2);
    pool.close();
  });

  test('a reused connection the server drops as the request arrives: sent again on a new one', async () => {
    const pool = new DirectPool();
    const { url, connections, requests } = await serveKeepAlive((s, _request, n) => {
      if (n === 0) ok(s, 'abc');
      else s.destroy();
    });
    assert.equal((await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(), 'abc');
    const again = await directGet(url, {}, { ...opts, pool });
    assert.equal((await collect(again.body)).toString(), 'abc');
    assert.equal(connections(), 2);
    assert.equal(requests.length, 3, 'the dropped request, then the same on a new connection');
    pool.close();
  });

  test('an abort while a reused connection waits for the head is an abort, not a retry', async () => {
    const pool = new DirectPool();
    const { url, connections } = await serveKeepAlive((s, _request, n) => {
      if (n === 0) ok(s, 'abc');
    });
    await collect((await directGet(url, {}, { ...opts, pool })).body);
    const controller = new AbortController();
    const pending = directGet(url, {}, { ...opts, pool, signal: controller.signal });
    const reason = new Error('cancelled by test');
    setTimeout(() => controller.abort(reason), 20);
    await assert.rejects(pending, (e) => e === reason);
    assert.equal(connections(), 1);
    assert.equal(pool.size, 0);
    pool.close();
  });

  test('warm opens connections ahead; the GETs then use them, and a failed one is reported by the GET itself', async () => {
    const pool = new DirectPool();
    const { url, connections, requests } = await serveKeepAlive((s) => ok(s, 'abc'));
    pool.warm(url, opts, 3);
    pool.warm(url, opts, 3);
    assert.equal(pool.size, 3, 'topped up to the count, not beyond');
    const bodies = await Promise.all(
      [0, 1, 2].map(async () =>
        (await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(),
      ),
    );
    assert.deepEqual(bodies, ['abc', 'abc', 'abc']);
    assert.equal(connections(), 3);
    assert.equal(requests.length, 3);
    pool.close();

    const refused = await serve(() => {});
    closers.pop()!();
    await new Promise((r) => setTimeout(r, 50));
    const cold = new DirectPool();
    cold.warm(refused.url, opts, 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(cold.size, 0, 'failed connections leave the pool quietly');
    await assert.rejects(
      directGet(refused.url, {}, { ...opts, pool: cold }),
      (e: { code?: string }) => e.code === 'ECONNREFUSED',
    );
  });

  test('at most perOrigin connections to an origin: further GETs wait for one, an abort while waiting is clean', async () => {
    const pool = new DirectPool(2);
    const held: Socket[] = [];
    const { url, connections, requests } = await serveKeepAlive((s) => {
      // The first two requests are answered only when the test says so.
      if (held.length < 2 && requests.length <= 2) held.push(s);
      else ok(s, 'abc');
    });
    const gets = [0, 1, 2, 3].map(() =>
      directGet(url, {}, { ...opts, pool }).then(async (r) => (await collect(r.body)).toString()),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(connections(), 2, 'two connections, not four');
    assert.equal(requests.length, 2, 'the other two wait for a connection');
    const controller = new AbortController();
    const waiting = directGet(url, {}, { ...opts, pool, signal: controller.signal });
    const reason = new Error('cancelled while waiting');
    controller.abort(reason);
    await assert.rejects(waiting, (e) => e === reason);
    for (const s of held) ok(s, 'abc');
    assert.deepEqual(await Promise.all(gets), ['abc', 'abc', 'abc', 'abc']);
    assert.equal(connections(), 2, 'the waiting GETs went out on the same two connections');
    assert.equal(requests.length, 4, 'the aborted one was never sent');
    pool.warm(url, opts, 5);
    assert.equal(pool.size, 2, 'warm stays within the limit too');
    pool.close();
  });

  test('a connection that closes frees its place for a waiting GET', async () => {
    const pool = new DirectPool(1);
    let answered = 0;
    const { url, connections } = await serveKeepAlive((s) => {
      if (answered++ === 0) setTimeout(() => s.destroy(), 50);
      else ok(s, 'abc');
    });
    const first = directGet(url, {}, { ...opts, pool });
    const second = directGet(url, {}, { ...opts, pool });
    await assert.rejects(first, (e: { code?: string }) => e.code === 'UND_ERR_SOCKET');
    assert.equal((await collect((await second).body)).toString(), 'abc');
    assert.equal(connections(), 2);
    pool.close();
  });

  test('an idle pooled connection does not keep the process alive', async () => {
    const script = `
      const { DirectPool, directGet } = require(${JSON.stringify(join(__dirname, '../../src/core/registry/direct.ts'))});
      const net = require('node:net');
      // The server's side of the connection must not hold the process either.
      const server = net.createServer((s) => s.unref().on('data', () => s.write('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')));
      server.listen(0, '127.0.0.1', async () => {
        const pool = new DirectPool();
        const res = await directGet(new URL('http://127.0.0.1:' + server.address().port + '/x'), {}, { stallTimeoutMs: 5000, pool });
        for await (const _ of res.body);
        server.unref();
        console.log('pooled ' + pool.size);
      });`;
    const { spawnSync } = await import('node:child_process');
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      encoding: 'utf8',
      timeout: 3_000,
    });
    assert.equal(run.stdout.trim(), 'pooled 1', run.stderr);
    assert.equal(run.status, 0, 'exited on its own, well before the 4 s idle timeout');
  });
});

describe('direct reader: proxies', () => {
  const base = { stallTimeoutMs: 5_000 };

  test('createDispatcher agrees: a caller proxy setting is never mixed with process.env', async () => {
    let proxied = 0;
    const proxy = createServer((s) => {
      proxied++;
      s.destroy();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    closers.push(() => proxy.close());
    const target = await serve((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const saved = process.env.HTTP_PROXY;
    process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const options = { ...base, env: {}, proxy: { https: 'http://127.0.0.1:9' } };
      const dispatcher = createDispatcher(options, proxyRoutes(options.proxy, options.env), true);
      const res = await dispatcher.request({ origin: target.url.origin, path: '/', method: 'GET' });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await dispatcher.close();
      assert.equal(proxied, 0);
      assert.equal(proxyFor(proxyRoutes(options.proxy, options.env), target.url), undefined);
    } finally {
      if (saved === undefined) delete process.env.HTTP_PROXY;
      else process.env.HTTP_PROXY = saved;
    }
  });
});

describe('direct reader: TLS', () => {
  let dir: string;
  let cert: TestCert;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-direct-tls-'));
    cert = await makeSelfSignedCert(dir, 'server', 'localhost', 'ec');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A TLS server that answers like `serve`, sending the body in 1 KiB writes (1 KiB records). */
  async function serveTls(body: Buffer = payload, serverCert: TestCert = cert) {
    const server = createTlsServer({ cert: serverCert.certPem, key: serverCert.keyPem }, (socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
        for (let i = 0; i < body.length; i += 1024) socket.write(body.subarray(i, i + 1024));
        socket.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => server.close());
    return new URL(`https://localhost:${(server.address() as AddressInfo).port}/v2/a/blobs/x`);
  }

  test('verified against the configured CA; small records are handed over gathered', async () => {
    const url = await serveTls();
    const secureContext = createSecureContext({ ca: cert.certPem });
    const res = await directGet(url, {}, { ...opts, tls: { secureContext, rejectUnauthorized: true } });
    const parts: Buffer[] = [];
    for await (const chunk of res.body) parts.push(Buffer.from(chunk));
    assert.deepEqual(Buffer.concat(parts), payload);
    // A TLS record holds at most 16 KiB: a bigger chunk was gathered from several reads.
    assert.ok(
      Math.max(...parts.map((p) => p.length)) > 16 * 1024,
      `chunk sizes ${parts.map((p) => p.length)}`,
    );
  });

  test('an untrusted certificate is refused as TLS (never retried in plaintext); insecure skips verification', async () => {
    const url = await serveTls();
    await assert.rejects(directGet(url, {}, { ...opts, tls: { rejectUnauthorized: true } }), (e) =>
      spokeTls(e),
    );
    const res = await directGet(url, {}, { ...opts, tls: { rejectUnauthorized: false } });
    assert.deepEqual(await collect(res.body), payload);
  });

  test('records TLS hands over after the reader asked it to stop never overwrite a chunk in use', async () => {
    // 4 MiB in 1 KiB records, as fast as the server can; the consumer yields to the loop on every
    // chunk and checks each chunk is still intact when it comes back.
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    const url = await serveTls(big);
    const secureContext = createSecureContext({ ca: cert.certPem });
    const res = await directGet(url, {}, { ...opts, tls: { secureContext, rejectUnauthorized: true } });
    const parts: Buffer[] = [];
    for await (const chunk of res.body) {
      const copy = Buffer.from(chunk);
      await new Promise((r) => setImmediate(r));
      assert.ok(Buffer.from(chunk).equals(copy), 'a chunk changed while the consumer held it');
      parts.push(copy);
    }
    assert.ok(Buffer.concat(parts).equals(big), 'the body arrived intact and in order');
  });

  test('configured CAs add to the trust NODE_EXTRA_CA_CERTS gives, never replace it', async () => {
    const fromEnvironment = await makeSelfSignedCert(dir, 'environment', 'localhost', 'ec');
    const unrelated = await makeSelfSignedCert(dir, 'unrelated', 'localhost', 'ec');
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = fromEnvironment.certFile;
    try {
      const tls = tlsOptions({ caCertificates: [cert.certPem], stallTimeoutMs: 5000 }, true);
      const get = async (server: TestCert) =>
        collect((await directGet(await serveTls(payload, server), {}, { ...opts, tls })).body);
      assert.deepEqual(await get(cert), payload, 'the configured CA is trusted');
      assert.deepEqual(await get(fromEnvironment), payload, "the environment's CA is still trusted");
      await assert.rejects(get(unrelated), (e) => spokeTls(e), 'anything else is refused');
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
    }
  });

  test('a warmed connection that fails verification: the GET reports the TLS error, never a retry loop', async () => {
    const url = await serveTls();
    const pool = new DirectPool();
    const untrusted = { ...opts, pool, tls: { rejectUnauthorized: true } };
    pool.warm(url, untrusted, 1);
    await assert.rejects(directGet(url, {}, untrusted), (e) => spokeTls(e));
    const trusted = {
      ...opts,
      pool,
      tls: { secureContext: createSecureContext({ ca: cert.certPem }), rejectUnauthorized: true },
    };
    pool.warm(url, trusted, 1);
    assert.deepEqual(await collect((await directGet(url, {}, trusted)).body), payload);
    pool.close();
  });

  test('https without TLS options is left to the general path', async () => {
    await assert.rejects(directGet(new URL('https://localhost:1/x'), {}, opts), Unhandled);
  });
});
