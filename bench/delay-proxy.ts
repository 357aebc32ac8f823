// A TCP relay on loopback that makes a local registry behave like a distant one: every connection
// waits a round trip before it is established, and every byte arrives `oneWayMs` after it was sent,
// in order (one queue per direction). TLS passes through untouched, so handshakes pay their real
// round trips. Bandwidth is not limited: this is latency only.
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  port: number;
  close(): Promise<void>;
}

export async function startDelayProxy(targetPort: number, oneWayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    client.pause();
    sockets.add(client);
    client.on('error', () => {});
    setTimeout(() => {
      const upstream = connect(targetPort, '127.0.0.1', () => client.resume());
      sockets.add(upstream);
      upstream.on('error', () => {});
      relay(client, upstream, oneWayMs);
      relay(upstream, client, oneWayMs);
      // A close travels like data: what is still queued is delivered first.
      client.on('close', () => setTimeout(() => upstream.destroy(), oneWayMs + 5));
      upstream.on('close', () => setTimeout(() => client.destroy(), oneWayMs + 5));
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

/** Forwards `from` → `to`, each piece `delay` ms late, strictly in order. */
function relay(from: Socket, to: Socket, delay: number): void {
  const queue: { at: number; data?: Buffer }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { data } = queue.shift()!;
      if (data) to.write(data);
      else to.end();
    }
    if (queue.length > 0) timer = setTimeout(drain, queue[0]!.at - now);
  };
  const push = (data?: Buffer) => {
    queue.push({ at: Date.now() + delay, ...(data ? { data } : {}) });
    if (timer === undefined) timer = setTimeout(drain, delay);
  };
  from.on('data', (data: Buffer) => push(data));
  from.on('end', () => push());
}
