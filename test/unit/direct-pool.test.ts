// The direct reader's keep-alive pool (src/core/registry/direct.ts) against adversarial servers
// and consumers: stray bytes between responses, closes at every moment, aborts, timeouts, load,
// randomised behaviour, TLS records, idle lifetime and process liveness. From a review that found
// the stray-bytes, timeout and aborted-request cases (fixed); the rest held.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { DirectPool, directGet } from '../../src/core/registry/direct';
import { spokeTls } from '../../src/core/registry/errors';
import { makeSelfSignedCert, type TestCert } from '../support/certs';
import { serveKeepAlive } from '../support/keep-alive-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = { stallTimeoutMs: 5_000 };
const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** Collects, checking each chunk is unchanged after the consumer yields to the loop a few times. */
async function collectChecked(body: AsyncIterable<Uint8Array>, hold = 2): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) {
    const copy = Buffer.from(chunk);
    for (let i = 0; i < hold; i++) await new Promise((r) => setImmediate(r));
    assert.ok(Buffer.from(chunk).equals(copy), 'a chunk changed while the consumer held it');
    parts.push(copy);
  }
  return Buffer.concat(parts);
}

const response = (body: Buffer | string, extra = '') =>
  Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`),
    Buffer.from(body),
  ]);

describe('keep-alive pool: stray bytes and reuse', () => {
  test('bytes sent after a complete response, while the consumer holds the last chunk, never become the next request’s response', async () => {
    const pool = new DirectPool();
    const { url } = await serveKeepAlive((s, _r, n) => {
      if (n === 0) {
        s.write(response('abc'));
        // A second response nobody asked for (a buggy server, a desynchronised proxy).
        setTimeout(() => s.write(response('BAD')), 20);
      } else s.write(response('abc'));
    });
    const res = await directGet(url, {}, { ...opts, pool });
    const it = res.body[Symbol.asyncIterator]();
    assert.equal(Buffer.from((await it.next()).value!).toString(), 'abc');
    // The consumer works on the last chunk (hashing, a disk write); reading is paused meanwhile.
    await sleep(100);
    assert.equal((await it.next()).done, true);
    // The very next GET, in the same turn of the loop (as the pull loop or a redirect does).
    const second = await directGet(url, {}, { ...opts, pool });
    assert.equal((await collect(second.body)).toString(), 'abc', 'the stray bytes were taken as the answer');
    pool.close();
  });

  test('nor through dump() of a body that arrived whole with its head (a redirect, a 401)', async () => {
    const pool = new DirectPool();
    let first = true;
    const { url } = await serveKeepAlive((s) => {
      if (first) {
        first = false;
        s.write('HTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nContent-Length: 5\r\n\r\nmoved');
        setTimeout(() => s.write(response('BAD')), 20);
      } else s.write(response('abc'));
    });
    const res = await directGet(url, {}, { ...opts, pool });
    await sleep(100);
    await res.body.dump();
    const second = await directGet(url, {}, { ...opts, pool });
    assert.equal((await collect(second.body)).toString(), 'abc', 'the stray bytes were taken as the answer');
    pool.close();
  });

  test('nor when the next GET is started from an I/O callback (the poll phase)', async () => {
    const pool = new DirectPool();
    let first = true;
    const { url } = await serveKeepAlive((s) => {
      s.write(response('abc'));
      if (first) setTimeout(() => s.write(response('BAD')), 20);
      first = false;
    });
    const res = await directGet(url, {}, { ...opts, pool });
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    await sleep(100);
    // Resumed from a file system completion, as after an ingest write: inside the poll phase.
    await stat(tmpdir());
    assert.equal((await it.next()).done, true);
    const second = await directGet(url, {}, { ...opts, pool });
    assert.equal((await collect(second.body)).toString(), 'abc', 'the stray bytes were taken as the answer');
    pool.close();
  });

  test('stray bytes that arrive once the connection is idle drop it', async () => {
    const pool = new DirectPool();
    const { url, connections } = await serveKeepAlive((s, _r, n) => {
      s.write(response('abc'));
      if (n === 0) setTimeout(() => s.write(response('BAD')), 20);
    });
    assert.equal((await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(), 'abc');
    await sleep(80);
    assert.equal(pool.size, 0);
    assert.equal((await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(), 'abc');
    assert.equal(connections(), 2);
    pool.close();
  });

  test('FIN right after the response, next GET in the same turn: retried as stale, not an error', async () => {
    const pool = new DirectPool();
    const { url, connections, requests } = await serveKeepAlive((s) => s.end(response('abc')));
    const res = await directGet(url, {}, { ...opts, pool });
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    await sleep(50);
    assert.equal((await it.next()).done, true);
    const second = await directGet(url, {}, { ...opts, pool });
    assert.equal((await collect(second.body)).toString(), 'abc');
    assert.equal(second.reused, false);
    assert.equal(connections(), 2);
    assert.ok(requests.length >= 2);
    pool.close();
  });

  test('the server closing the idle connection at every moment around the next request', async () => {
    for (const delay of [0, 1, 2, 3, 5, 8, 10, 12, 15, 20]) {
      const pool = new DirectPool();
      const { url } = await serveKeepAlive((s, _r, n) => {
        if (n === 0) {
          s.write(response('abc'));
          setTimeout(() => (delay % 2 ? s.resetAndDestroy() : s.end()), 10);
        } else s.write(response('abc'));
      });
      assert.equal((await collect((await directGet(url, {}, { ...opts, pool })).body)).toString(), 'abc');
      await sleep(delay);
      const res = await directGet(url, {}, { ...opts, pool });
      assert.equal((await collect(res.body)).toString(), 'abc', `delay ${delay}`);
      pool.close();
    }
  });

  test('breaking out of for-await, dump() mid-body, destroy() after done: never pooled, never touches a later request', async () => {
    const pool = new DirectPool();
    const { url, connections } = await serveKeepAlive((s) => s.write(response(payload)));
    const res = await directGet(url, {}, { ...opts, pool, readBufferSize: 64 * 1024 });
    for await (const _ of res.body) break;
    assert.equal(pool.size, 0);
    const res2 = await directGet(url, {}, { ...opts, pool, readBufferSize: 64 * 1024 });
    const it = res2.body[Symbol.asyncIterator]();
    await it.next();
    await res2.body.dump();
    assert.equal(pool.size, 0);
    await assert.rejects(it.next(), (e: { code?: string }) => e.code === 'UND_ERR_ABORTED');
    // Done, pooled, reused by another request; then the first consumer's late destroy().
    const a = await directGet(url, {}, { ...opts, pool });
    assert.deepEqual(await collect(a.body), payload);
    const b = await directGet(url, {}, { ...opts, pool });
    assert.equal(b.reused, true);
    a.body.destroy();
    await a.body.dump();
    assert.deepEqual(await collectChecked(b.body), payload);
    assert.equal(connections(), 3);
    pool.close();
  });
});

describe('keep-alive pool: integrity under load', () => {
  test('60 concurrent GETs with distinct bodies over a pool, slow consumers, plain TCP direct views', async () => {
    const pool = new DirectPool();
    const bodyFor = (path: string) => {
      const n = Number(path.split('/').pop());
      const b = Buffer.alloc(150_000 + n * 1_000);
      for (let i = 0; i + 4 <= b.length; i += 4) b.writeUInt32BE((i * 7 + n) >>> 0, i);
      return b;
    };
    const { url, connections } = await serveKeepAlive((s, request) => {
      const path = request.split(' ')[1]!;
      const body = bodyFor(path);
      // Head and body in pieces, at random moments.
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      let at = 0;
      const step = () => {
        if (at >= body.length || s.destroyed) return;
        const n = 1 + Math.floor(Math.random() * 100_000);
        s.write(body.subarray(at, at + n));
        at += n;
        if (Math.random() < 0.3) setTimeout(step, 1);
        else step();
      };
      step();
    });
    const one = async (i: number) => {
      const u = new URL(`/v2/a/blobs/${i}`, url);
      const res = await directGet(u, {}, { ...opts, pool, readBufferSize: 64 * 1024 });
      const got = await collectChecked(res.body, 1 + (i % 3));
      assert.ok(got.equals(bodyFor(u.pathname)), `body ${i}`);
    };
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => one(round * 20 + i)));
    }
    // At most 8 idle per origin are kept: 20, then 12 more per round.
    assert.ok(connections() <= 44, `connections ${connections()}`);
    pool.close();
  });
});

describe('keep-alive pool: randomised server and consumer behaviour', () => {
  test('300 GETs, 12 at a time: every body read whole is the one asked for', async () => {
    const bodyFor = (id: number) => {
      const b = Buffer.alloc(1 + ((id * 7919) % 400_000));
      for (let i = 0; i < b.length; i++) b[i] = (i * 31 + id) & 0xff;
      return b;
    };
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    // A connection the server will close answers nothing more (else a close meant for one response
    // would cut a later close-delimited one short, which no reader can tell from its end).
    const closing = new WeakSet<Socket>();
    const { url } = await serveKeepAlive((s, request) => {
      if (closing.has(s)) return;
      const id = Number(request.split(' ')[1]!.split('/').pop());
      const body = bodyFor(id);
      const kind = Math.floor(rnd() * 8);
      const head = (extra = '', version = '1.1') =>
        `HTTP/${version} 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n`;
      const pieces = (data: Buffer, then?: () => void) => {
        let at = 0;
        const step = () => {
          if (s.destroyed) return;
          if (at >= data.length) return then?.();
          const n = 1 + Math.floor(rnd() * 150_000);
          s.write(data.subarray(at, at + n));
          at += n;
          if (rnd() < 0.3) setTimeout(step, 1);
          else step();
        };
        step();
      };
      if (kind <= 4) closing.add(s);
      switch (kind) {
        case 0: // FIN soon after the response
          return pieces(Buffer.concat([Buffer.from(head()), body]), () =>
            setTimeout(() => s.end(), rnd() * 5),
          );
        case 1: // RST soon after the response
          return pieces(Buffer.concat([Buffer.from(head()), body]), () =>
            setTimeout(() => s.resetAndDestroy(), rnd() * 5),
          );
        case 2:
          return pieces(Buffer.concat([Buffer.from(head('Connection: close\r\n')), body]), () => s.end());
        case 3:
          return pieces(Buffer.concat([Buffer.from(head('', '1.0')), body]), () => s.end());
        case 4: // close-delimited
          return pieces(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), body]), () => s.end());
        case 5: // a stray response glued to the end of this one, in the same write
          return s.write(Buffer.concat([Buffer.from(head()), body, response('STRAY')]));
        default:
          return pieces(Buffer.concat([Buffer.from(head()), body]));
      }
    });
    const pool = new DirectPool();
    let whole = 0;
    let failed = 0;
    const headFailures: string[] = [];
    const one = async (id: number) => {
      const mode = id % 5;
      let res: Awaited<ReturnType<typeof directGet>>;
      try {
        res = await directGet(
          new URL(`/v2/a/blobs/${id}`, url),
          {},
          { ...opts, pool, readBufferSize: 64 * 1024 },
        );
      } catch (e) {
        failed++;
        headFailures.push((e as { code: string }).code);
        assert.ok(
          ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes((e as { code: string }).code),
          String(e),
        );
        return;
      }
      if (mode === 3) {
        for await (const _ of res.body) break;
        return;
      }
      if (mode === 4) {
        const it = res.body[Symbol.asyncIterator]();
        await it.next();
        await res.body.dump();
        return;
      }
      try {
        const got = await collectChecked(res.body, mode);
        assert.ok(
          got.equals(bodyFor(id)),
          `body ${id} differs: got ${got.length} bytes (${JSON.stringify(got.subarray(0, 8).toString('latin1'))}), want ${bodyFor(id).length}`,
        );
        whole++;
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        failed++;
        assert.ok(
          ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'].includes((e as { code: string }).code),
          String(e),
        );
      }
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        while (next < 300) await one(next++);
      }),
    );
    console.log(
      `randomised: ${whole} read whole, ${failed} failed with a socket error (before the head: ${headFailures})`,
    );
    assert.ok(whole > 150);
    pool.close();
  });
});

describe('keep-alive pool: aborts, timeouts, retries', () => {
  test('abort while a warmed TLS connection is still handshaking: the reason, no retry', async () => {
    // A TCP server that never answers the TLS ClientHello: the warmed connection stays unconnected.
    const { url, connections } = await serveKeepAlive(() => {});
    const https = new URL(url.href.replace('http:', 'https:'));
    const pool = new DirectPool();
    const o = { ...opts, pool, tls: { rejectUnauthorized: false } };
    pool.warm(https, o, 1);
    await sleep(30);
    const controller = new AbortController();
    const pending = directGet(https, {}, { ...o, signal: controller.signal });
    const reason = new Error('cancelled by test');
    setTimeout(() => controller.abort(reason), 30);
    await assert.rejects(pending, (e) => e === reason);
    await sleep(20);
    assert.equal(connections(), 1, 'no retry on a new connection');
    assert.equal(pool.size, 0);
    pool.close();
  });

  test('a headers timeout on a reused connection is reported, not sent again (one stall timeout, not two)', async () => {
    const pool = new DirectPool();
    const { url, requests } = await serveKeepAlive((s, _r, n) => {
      // The first request on each connection is answered, then the server hangs.
      if (n === 0 && requests.length === 1) s.write(response('abc'));
    });
    await collect((await directGet(url, {}, { ...opts, pool })).body);
    const began = Date.now();
    await assert.rejects(
      directGet(url, {}, { stallTimeoutMs: 300, pool }),
      (e: { code?: string }) => e.code === 'UND_ERR_HEADERS_TIMEOUT',
    );
    const took = Date.now() - began;
    console.log(`headers timeout on a reused connection took ${took} ms (stall 300 ms)`);
    assert.equal(
      requests.length,
      2,
      `the hung request was sent ${requests.length - 1} times, took ${took} ms`,
    );
    pool.close();
  });

  test('a warmed TLS connection whose handshake hangs: the connect timeout is paid once', async () => {
    const { url, connections } = await serveKeepAlive(() => {});
    const https = new URL(url.href.replace('http:', 'https:'));
    const pool = new DirectPool();
    const o = { stallTimeoutMs: 300, pool, tls: { rejectUnauthorized: false } };
    pool.warm(https, o, 1);
    const began = Date.now();
    await assert.rejects(
      directGet(https, {}, o),
      (e: { code?: string }) => e.code === 'UND_ERR_CONNECT_TIMEOUT',
    );
    const took = Date.now() - began;
    assert.equal(
      connections(),
      1,
      `a second connection was opened after the first timed out; took ${took} ms`,
    );
    pool.close();
  });

  test('an already-aborted request leaves the idle pooled connection alone', async () => {
    const pool = new DirectPool();
    const { url } = await serveKeepAlive((s) => s.write(response('abc')));
    await collect((await directGet(url, {}, { ...opts, pool })).body);
    assert.equal(pool.size, 1);
    await assert.rejects(directGet(url, {}, { ...opts, pool, signal: AbortSignal.abort() }));
    assert.equal(pool.size, 1, 'the idle connection was taken and destroyed');
    pool.close();
  });

  test('abort after the head of a reused connection, while the consumer holds a chunk', async () => {
    const pool = new DirectPool();
    const { url, sockets } = await serveKeepAlive((s, _r, n) => {
      if (n === 0) s.write(response('abc'));
      else s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n${'x'.repeat(10)}`);
    });
    await collect((await directGet(url, {}, { ...opts, pool })).body);
    const controller = new AbortController();
    const res = await directGet(url, {}, { ...opts, pool, signal: controller.signal });
    assert.equal(res.reused, true);
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    const reason = new Error('cancelled');
    controller.abort(reason);
    await assert.rejects(it.next(), (e) => e === reason);
    await sleep(30);
    assert.equal(sockets.size, 0);
    assert.equal(pool.size, 0);
  });

  test('pool.close() while a request is in flight: its connection is closed when done, not pooled', async () => {
    const pool = new DirectPool();
    const { url, sockets } = await serveKeepAlive((s) => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc`);
      setTimeout(() => s.write('def'), 50);
    });
    pool.warm(url, opts, 2);
    const res = await directGet(url, {}, { ...opts, pool });
    pool.close();
    assert.equal(pool.size, 0);
    assert.equal((await collect(res.body)).toString(), 'abcdef');
    await sleep(30);
    assert.equal(pool.size, 0);
    assert.equal(sockets.size, 0, 'every connection closed');
    pool.warm(url, opts, 2);
    assert.equal(pool.size, 0);
  });
});

describe('keep-alive pool: idle lifetime', () => {
  test('an idle connection is closed after 4 s, and not handed out after', async () => {
    const pool = new DirectPool();
    const { url, sockets, connections } = await serveKeepAlive((s) => s.write(response('abc')));
    await collect((await directGet(url, {}, { ...opts, pool })).body);
    await sleep(3_800);
    assert.equal(pool.size, 1);
    await sleep(400);
    assert.equal(pool.size, 0);
    await sleep(20);
    assert.equal(sockets.size, 0, 'the server saw it close');
    await collect((await directGet(url, {}, { ...opts, pool })).body);
    assert.equal(connections(), 2);
    pool.close();
  });
});

describe('keep-alive pool: process liveness', () => {
  const direct = JSON.stringify(join(__dirname, '../../src/core/registry/direct.ts'));
  const run = (body: string) =>
    spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { DirectPool, directGet } = require(${direct});\nconst net = require('node:net');\n${body}`,
      ],
      {
        encoding: 'utf8',
        timeout: 3_000,
      },
    );

  test('warmed connections (connected, and one still handshaking TLS) do not keep the process alive', () => {
    const r = run(`
      const server = net.createServer((s) => s.unref());
      server.listen(0, '127.0.0.1', async () => {
        const port = server.address().port;
        const pool = new DirectPool();
        pool.warm(new URL('http://127.0.0.1:' + port + '/x'), { stallTimeoutMs: 5000 }, 2);
        pool.warm(new URL('https://127.0.0.1:' + port + '/x'), { stallTimeoutMs: 5000, tls: { rejectUnauthorized: false } }, 1);
        server.unref();
        setTimeout(() => console.log('pooled ' + pool.size), 50);
      });`);
    assert.equal(r.stdout.trim(), 'pooled 3', r.stderr);
    assert.equal(r.status, 0, 'exited on its own');
  });

  test('a body read to its last chunk but never asked past does not keep the process alive', () => {
    const r = run(`
      const server = net.createServer((s) => s.unref().on('data', () => s.write('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')));
      server.listen(0, '127.0.0.1', async () => {
        const pool = new DirectPool();
        const res = await directGet(new URL('http://127.0.0.1:' + server.address().port + '/x'), {}, { stallTimeoutMs: 5000, pool });
        const it = res.body[Symbol.asyncIterator]();
        await it.next();
        server.unref();
        console.log('held');
      });`);
    assert.equal(r.stdout.trim(), 'held', r.stderr);
    assert.equal(r.status, 0);
  });
});

describe('keep-alive pool: TLS', () => {
  let dir: string;
  let cert: TestCert;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-direct-review-'));
    cert = await makeSelfSignedCert(dir, 'server', 'localhost', 'ec');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A keep-alive TLS server; each request answered by `script`. */
  const serveTlsKeepAlive = (script: (s: TLSSocket, request: string, n: number) => void) =>
    serveKeepAlive((s, request, n) => script(s as TLSSocket, request, n), {
      tls: { cert: cert.certPem, key: cert.keyPem },
    });

  test('tiny records, consumer holding chunks, sequential and concurrent reuse', async () => {
    const big = Buffer.alloc(600_000);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
    const { url, connections } = await serveTlsKeepAlive((s, request) => {
      const n = Number(request.split(' ')[1]!.split('/').pop()) || 0;
      const body = Buffer.from(big.map((b) => (b + n) & 0xff));
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
      for (let i = 0; i < body.length; i += 300) s.write(body.subarray(i, i + 300));
    });
    const pool = new DirectPool();
    const tls = { secureContext: createSecureContext({ ca: cert.certPem }), rejectUnauthorized: true };
    const one = async (n: number) => {
      const res = await directGet(new URL(`/v2/a/blobs/${n}`, url), {}, { ...opts, pool, tls });
      const got = await collectChecked(res.body, 1 + (n % 3));
      assert.ok(got.equals(Buffer.from(big.map((b) => (b + n) & 0xff))), `body ${n}`);
    };
    for (let n = 0; n < 3; n++) await one(n);
    assert.equal(connections(), 1);
    await Promise.all(Array.from({ length: 8 }, (_, i) => one(10 + i)));
    pool.close();
  });

  test('a connection verified with rejectUnauthorized:false is never used for a verifying request', async () => {
    const { url } = await serveTlsKeepAlive((s) => s.write(response('abc')));
    const pool = new DirectPool();
    await collect((await directGet(url, {}, { ...opts, pool, tls: { rejectUnauthorized: false } })).body);
    assert.equal(pool.size, 1);
    await assert.rejects(directGet(url, {}, { ...opts, pool, tls: { rejectUnauthorized: true } }), (e) =>
      spokeTls(e),
    );
    const a = createSecureContext({ ca: cert.certPem });
    const b = createSecureContext({ ca: cert.certPem });
    await collect(
      (await directGet(url, {}, { ...opts, pool, tls: { secureContext: a, rejectUnauthorized: true } })).body,
    );
    const viaA = await directGet(
      url,
      {},
      { ...opts, pool, tls: { secureContext: a, rejectUnauthorized: true } },
    );
    assert.equal(viaA.reused, true, 'the same trust reuses');
    await collect(viaA.body);
    const viaB = await directGet(
      url,
      {},
      { ...opts, pool, tls: { secureContext: b, rejectUnauthorized: true } },
    );
    assert.equal(viaB.reused, false, 'another trust, another connection');
    await collect(viaB.body);
    const unverified = await directGet(url, {}, { ...opts, pool, tls: { rejectUnauthorized: false } });
    assert.equal(unverified.reused, true, 'the first, unverified connection is still there for its kind');
    await collect(unverified.body);
    pool.close();
  });

  test('a TLS server closing an idle connection (close_notify, then FIN): dropped from the pool', async () => {
    const { url, connections } = await serveTlsKeepAlive((s) => {
      s.write(response('abc'));
      setTimeout(() => s.end(), 10);
    });
    const pool = new DirectPool();
    const tls = { secureContext: createSecureContext({ ca: cert.certPem }), rejectUnauthorized: true };
    await collect((await directGet(url, {}, { ...opts, pool, tls })).body);
    assert.equal(pool.size, 1);
    await sleep(60);
    assert.equal(pool.size, 0);
    assert.equal((await collect((await directGet(url, {}, { ...opts, pool, tls })).body)).toString(), 'abc');
    assert.equal(connections(), 2);
    pool.close();
  });

  test('a stray TLS record after the response never becomes the next GET’s answer', async () => {
    const { url } = await serveTlsKeepAlive((s, _r, n) => {
      s.write(response('abc'));
      if (n === 0) setTimeout(() => s.write(response('BAD')), 20);
    });
    const pool = new DirectPool();
    const tls = { secureContext: createSecureContext({ ca: cert.certPem }), rejectUnauthorized: true };
    const res = await directGet(url, {}, { ...opts, pool, tls });
    const it = res.body[Symbol.asyncIterator]();
    await it.next();
    await sleep(100);
    assert.equal((await it.next()).done, true);
    const second = await directGet(url, {}, { ...opts, pool, tls });
    assert.equal((await collect(second.body)).toString(), 'abc');
    pool.close();
  });
});
