// DirectPool's per-origin limit under adversity: a wake-up whose waiter is cancelled in the same
// turn is passed on (a review found it lost: the next waiter hung), and 200 GETs of churn (closes,
// resets, stalls, aborts while waiting, broken-off bodies) leave the counts exact.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { DirectPool, directGet } from '../../src/core/registry/direct';
import { serveKeepAlive } from '../support/keep-alive-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opts = { stallTimeoutMs: 5_000 };
const ok = (s: Socket, body: Buffer | string = 'abc', extra = '') =>
  s.write(
    Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n`),
      Buffer.from(body),
    ]),
  );
async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}
/** The client's sockets to `port` (Node's list of live handles: the pool does not expose them). */
function clientSockets(port: number): Socket[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h): h is Socket => h instanceof Object && (h as Socket).remotePort === port);
}
const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    sleep(ms).then(() => {
      throw new Error(`hang: ${what}`);
    }),
  ]);

describe('per-origin limit: wake-ups', () => {
  test('a waiter woken by a close and aborted in the same turn passes the wake on (perOrigin 1)', async () => {
    const pool = new DirectPool(1);
    let n = 0;
    const { url } = await serveKeepAlive((s) => {
      if (n++ === 0) return; // the first request is never answered
      ok(s);
    });
    // R holds the only connection; it gets a head only when... never: we destroy it.
    const rc = new AbortController();
    const r = directGet(url, {}, { ...opts, pool, signal: rc.signal }).catch((e) => e);
    await sleep(50);
    const c1 = new AbortController();
    const w1 = directGet(url, {}, { ...opts, pool, signal: c1.signal }).catch((e) => e);
    const w2 = directGet(url, {}, { ...opts, pool });
    await sleep(20);
    // R's socket: its close wakes W1; W1's cancel comes in the same turn (after the pool's listener).
    assert.equal(pool.counts().idle, 0);
    const sockets = clientSockets(Number(url.port));
    assert.equal(sockets.length, 1);
    sockets[0]!.once('close', () => c1.abort(new Error('w1 cancelled')));
    rc.abort(new Error('r cancelled'));
    await r;
    assert.equal(((await w1) as Error).message, 'w1 cancelled');
    await sleep(100);
    const res = await within(w2, 3000, `W2 never woken (${JSON.stringify(pool.counts())})`);
    assert.equal((await collect(res.body)).toString(), 'abc');
    pool.close();
  });

  test('a waiter woken by give() and aborted in the same turn passes the wake on: the next one does not wait for the idle timeout', async () => {
    const pool = new DirectPool(1);
    const { url } = await serveKeepAlive((s) => ok(s));
    const first = await directGet(url, {}, { ...opts, pool });
    const it = first.body[Symbol.asyncIterator]();
    await it.next();
    const c1 = new AbortController();
    const w1 = directGet(url, {}, { ...opts, pool, signal: c1.signal }).catch((e) => e);
    const w2 = directGet(url, {}, { ...opts, pool });
    await sleep(20);
    const began = Date.now();
    const done = it.next(); // release → give → wakes W1
    c1.abort(new Error('w1 cancelled'));
    await done;
    await w1;
    const res = await within(w2, 2000, 'W2 waited for the idle timeout');
    assert.equal((await collect(res.body)).toString(), 'abc');
    assert.ok(Date.now() - began < 1000);
    pool.close();
  });
});

describe('per-origin limit: churn', () => {
  test('random server closes, aborts while waiting, broken-off bodies: every GET settles, counts return to the idle set', async () => {
    let seed = Number(process.env.SEED ?? 12345);
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pool = new DirectPool(3);
    const big = Buffer.alloc(200_000, 7);
    const { url } = await serveKeepAlive((s) => {
      const r = rand();
      if (r < 0.1) s.destroy();
      else if (r < 0.2) s.end(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc`);
      else if (r < 0.3) setTimeout(() => ok(s, big), 30);
      else if (r < 0.35)
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab'); // never finishes; client aborts/stalls
      else if (r < 0.45) setTimeout(() => s.resetAndDestroy(), 5);
      else ok(s, r < 0.7 ? 'abc' : big);
    });
    const one = async (i: number) => {
      const c = new AbortController();
      if (process.env.WARM && rand() < 0.15) pool.warm(url, opts, 3);
      const r = rand();
      const t = setTimeout(() => c.abort(new Error('cancel')), r < 0.3 ? Math.floor(rand() * 60) : 400);
      try {
        const res = await directGet(url, {}, { stallTimeoutMs: 300, pool, signal: c.signal });
        const how = rand();
        if (how < 0.2) {
          for await (const _ of res.body) break;
        } else if (how < 0.3) await res.body.dump();
        else await collect(res.body);
      } catch {
        // any error is fine; hangs are not
      } finally {
        clearTimeout(t);
      }
      return i;
    };
    const queue = Array.from({ length: 200 }, (_, i) => i);
    const workers = Array.from({ length: 12 }, async () => {
      while (queue.length) await one(queue.shift()!);
    });
    await within(Promise.all(workers), 60_000, 'churn');
    await sleep(200);
    const counts = pool.counts();
    assert.equal(counts.waiting, 0, 'no waiters left');
    assert.ok(counts.open >= 0 && counts.open <= 3, JSON.stringify(counts));
    assert.equal(
      counts.open,
      counts.idle,
      `every connection still counted is idle: ${JSON.stringify(counts)}`,
    );
    pool.close();
    await sleep(100);
    assert.equal(pool.counts().open, 0, `after close: ${JSON.stringify(pool.counts())}`);
  });
});
