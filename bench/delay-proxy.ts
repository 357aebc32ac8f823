// A TCP relay on loopback that makes a local registry behave like a distant one: every connection
// waits a round trip before it is established, and every byte arrives `oneWayMs` after it was sent,
// in order (one queue per direction). TLS passes through untouched, so handshakes pay their real
// round trips. With `bytesPerSecond`, each connection (each direction) is also limited to that
// rate, as a long path or a CDN limits each flow: more connections get more of the link.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  port: number;
  close(): Promise<void>;
}

export async function startDelayProxy(
  targetPort: number,
  oneWayMs: number,
  options: { bytesPerSecond?: number } = {},
): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.pause();
    sockets.add(client);
    client.on('error', () => {});
    setTimeout(() => {
      const upstream = connect(targetPort, '127.0.0.1', () => client.resume());
      sockets.add(upstream);
      upstream.on('error', () => {});
      relay(client, upstream, oneWayMs, options.bytesPerSecond);
      relay(upstream, client, oneWayMs, options.bytesPerSecond);
      for (const s of [client, upstream]) s.on('close', () => sockets.delete(s));
    }, 2 * oneWayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Bytes in flight per direction before the sender is paused (a TCP window's worth). */
const WINDOW = 4 * 1024 * 1024;

/**
 * Forwards `from` → `to`, each piece `delay` ms late, strictly in order, and no faster than
 * `rate` bytes per second when given.
 */
function relay(from: Socket, to: Socket, delay: number, rate?: number): void {
  const queue: { at: number; data?: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let queued = 0;
  /** When the link is free again (the last piece has been clocked out). */
  let free = 0;
  const drain = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { data } = queue.shift()!;
      if (data) {
        to.write(data);
        queued -= data.length;
      } else to.end(() => to.destroy());
    }
    if (queued < WINDOW / 2 && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - now);
  };
  const push = (data?: Buffer) => {
    const now = Date.now();
    let at = now + delay;
    if (rate && data) {
      free = Math.max(free, now) + (data.length / rate) * 1000;
      at = Math.max(at, free + delay);
    }
    queue.push({ at, ...(data ? { data } : {}) });
    if (data) queued += data.length;
    if (queued > WINDOW) from.pause();
    if (timer === undefined) timer = setTimeout(drain, Math.max(0, at - now));
  };
  from.on('data', (data: Buffer) => push(data));
  // A close travels like data: what is still queued is delivered first.
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    push();
  };
  from.on('end', end);
  from.on('close', end);
}
