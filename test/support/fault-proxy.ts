// A fault-injecting loopback proxy in front of a real registry. Per request (a `plan` callback) or
// at random from a seed, it can: reset the connection mid-body, answer 500/502/503 in bursts,
// answer 429 with Retry-After, truncate a body, lie in Content-Length, trickle bytes, stall
// longer than the client's stall timeout, ignore Range (200 instead of 206), or tamper with a
// body. It also counts requests and can throttle every body (to make pulls last long enough to
// be interrupted). Everything stays on 127.0.0.1.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';

export const FAULT_KINDS = [
  'reset',
  'burst5xx',
  'rate429',
  'truncate',
  'lyingLength',
  'trickle',
  'stall',
  'ignoreRange',
  'tamper',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRecord {
  method: string;
  path: string;
  /** Status sent to the client (599: the proxy failed to reach upstream). */
  status: number;
  fault?: FaultKind;
  range?: string;
  authorization: boolean;
  /** Body bytes written to the client. */
  bytes: number;
}

export interface FaultRequest {
  method: string;
  path: string;
  /** 0-based count of requests seen so far. */
  n: number;
  headers: IncomingMessage['headers'];
}

export interface FaultProxyOptions {
  /** Seed of the PRNG that picks faults and their parameters (default 1). */
  seed?: number;
  /** Probability that a request gets a random fault (default 0: none). */
  rate?: number;
  /** Faults the random choice picks from (default all). */
  kinds?: readonly FaultKind[];
  /** Deterministic choice per request; its answer wins over the random one (undefined → random). */
  plan?: (req: FaultRequest) => FaultKind | 'none' | undefined;
  /** Which requests may get random faults (default: every request to /v2/ except the ping). */
  eligible?: (req: FaultRequest) => boolean;
  /** How long a `stall` pauses before it gives up on the connection (default 2000 ms). */
  stallMs?: number;
  /** Throttle every body to about this rate (default: no throttle). */
  bytesPerSecond?: number;
}

export interface FaultProxy {
  url: string;
  host: string;
  requests: FaultRecord[];
  /** Faults injected so far, per kind. */
  injected: Record<FaultKind, number>;
  /** Restarts the PRNG (and clears bursts) so each run of a suite is reproducible from its seed. */
  reseed(seed: number): void;
  /** Changes options at run time (rate, kinds, plan, throttle). */
  configure(options: Partial<FaultProxyOptions>): void;
  stop(): Promise<void>;
}

/** mulberry32: a tiny seeded PRNG, good enough to pick faults reproducibly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'upgrade']);
const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startFaultProxy(
  upstream: string,
  initial: FaultProxyOptions = {},
): Promise<FaultProxy> {
  let options: FaultProxyOptions = { ...initial };
  let random = seededRandom(options.seed ?? 1);
  /** Paths in a 5xx burst: the status and how many more requests get it. */
  let bursts = new Map<string, { status: number; left: number }>();
  const requests: FaultRecord[] = [];
  const injected = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const agent = new Agent({ connections: 32 });
  const sockets = new Set<Socket>();
  let n = 0;

  const pick = (req: FaultRequest): FaultKind | undefined => {
    const planned = options.plan?.(req);
    if (planned === 'none') return undefined;
    if (planned) return planned;
    const eligible =
      options.eligible ?? ((r: FaultRequest) => r.path.startsWith('/v2/') && r.path !== '/v2/');
    if (!eligible(req) || !options.rate || random() >= options.rate) return undefined;
    const kinds = options.kinds?.length ? options.kinds : FAULT_KINDS;
    return kinds[Math.floor(random() * kinds.length)];
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const method = req.method ?? 'GET';
    const info: FaultRequest = { method, path, n: n++, headers: req.headers };
    const rec: FaultRecord = {
      method,
      path,
      status: 0,
      authorization: !!req.headers.authorization,
      bytes: 0,
      ...(req.headers.range ? { range: String(req.headers.range) } : {}),
    };
    requests.push(rec);

    const burst = bursts.get(`${method} ${path}`);
    let fault = burst ? 'burst5xx' : pick(info);
    if (fault) {
      rec.fault = fault;
      injected[fault]++;
    }
    if (fault === 'burst5xx') {
      const b = burst ?? {
        status: [500, 502, 503][Math.floor(random() * 3)]!,
        left: 1 + Math.floor(random() * 3),
      };
      b.left--;
      if (b.left <= 0) bursts.delete(`${method} ${path}`);
      else bursts.set(`${method} ${path}`, b);
      rec.status = b.status;
      res.writeHead(b.status, { 'content-type': 'text/plain' }).end('injected failure\n');
      return;
    }
    if (fault === 'rate429') {
      rec.status = 429;
      res.writeHead(429, { 'retry-after': random() < 0.7 ? '0' : '1' }).end('slow down\n');
      return;
    }

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(k) && typeof v === 'string') headers[k] = v;
    }
    if (fault === 'ignoreRange') {
      if (headers.range) delete headers.range;
      else fault = rec.fault = undefined; // nothing to ignore: an ordinary request
    }
    const up = await request(`${upstream}${path}`, {
      method: method as 'GET',
      headers,
      dispatcher: agent,
      body: method === 'GET' || method === 'HEAD' ? undefined : req,
    });
    res.on('close', () => up.body.destroy());
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
    }
    rec.status = up.statusCode;
    const hasBody = method !== 'HEAD' && up.statusCode !== 204 && up.statusCode !== 304;
    if (!hasBody || (fault !== undefined && up.statusCode >= 300)) {
      // Nothing to damage (HEAD, redirects, errors): pass through as is.
      res.writeHead(up.statusCode, out);
      if (hasBody) for await (const c of up.body) res.write(c);
      else await up.body.dump();
      res.end();
      return;
    }

    if (fault === 'tamper' || fault === 'lyingLength' || fault === 'truncate') {
      let body = Buffer.from(await up.body.arrayBuffer());
      if (body.length === 0) {
        res.writeHead(up.statusCode, out).end();
        return;
      }
      if (fault === 'tamper') {
        body = Buffer.from(body);
        const at = Math.floor(random() * body.length);
        body[at] = body[at]! ^ (1 + Math.floor(random() * 255));
        out['content-length'] = String(body.length);
        res.writeHead(up.statusCode, out);
        rec.bytes = body.length;
        res.end(body);
        return;
      }
      const cut = Math.floor(random() * body.length);
      if (fault === 'truncate') {
        // A clean, chunked end after a prefix: the client sees a complete but short response.
        delete out['content-length'];
        res.writeHead(up.statusCode, out);
        rec.bytes = cut;
        res.end(body.subarray(0, cut));
        return;
      }
      // lyingLength: claim more than is sent (then close), or less (the client reads only that).
      const more = random() < 0.5;
      out['content-length'] = String(more ? body.length + 1 + Math.floor(random() * 1000) : cut);
      res.writeHead(up.statusCode, out);
      const sent = more ? body : body.subarray(0, cut);
      rec.bytes = sent.length;
      res.write(sent);
      // Never reuse a connection whose framing we broke.
      res.socket?.destroySoon();
      if (!more) res.end();
      return;
    }

    res.writeHead(up.statusCode, out);
    const resetAt = fault === 'reset' ? Math.floor(random() * Number(out['content-length'] ?? 65536)) : -1;
    const stallAt = fault === 'stall' ? Math.floor(random() * Number(out['content-length'] ?? 65536)) : -1;
    const rate = options.bytesPerSecond;
    for await (const chunk of up.body) {
      let data = chunk as Buffer;
      while (data.length > 0) {
        if (res.destroyed) return;
        const size =
          fault === 'trickle'
            ? 1 + Math.floor(random() * 4096)
            : rate
              ? Math.min(65536, data.length)
              : data.length;
        const part = data.subarray(0, size);
        data = data.subarray(size);
        if (resetAt >= 0 && rec.bytes + part.length > resetAt) {
          res.write(part.subarray(0, resetAt - rec.bytes));
          rec.bytes = resetAt;
          await wait(5);
          const socket = res.socket as (Socket & { resetAndDestroy?: () => void }) | null;
          if (socket?.resetAndDestroy) socket.resetAndDestroy();
          else socket?.destroy();
          return;
        }
        if (stallAt >= 0 && rec.bytes + part.length > stallAt) {
          res.write(part.subarray(0, stallAt - rec.bytes));
          rec.bytes = stallAt;
          await wait(options.stallMs ?? 2000);
          res.destroy();
          return;
        }
        if (!res.write(part)) await new Promise((r) => res.once('drain', r));
        rec.bytes += part.length;
        if (fault === 'trickle') await wait(random() < 0.9 ? 0 : 2);
        else if (rate) await wait((part.length / rate) * 1000);
      }
    }
    res.end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(599);
      res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    injected,
    reseed(seed) {
      random = seededRandom(seed);
      bursts = new Map();
    },
    configure(more) {
      options = { ...options, ...more };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          agent.close().then(
            () => resolve(),
            () => resolve(),
          );
        });
      }),
  };
}
