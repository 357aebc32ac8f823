// A loopback HTTP proxy in front of a real registry, for cases the registry cannot produce by
// itself: tampered bodies, oversized manifests, request counting. Rules decide per request.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';

export interface SeenRequest {
  method: string;
  path: string;
  status: number;
  authorization: boolean;
  range?: string;
}

/** What a rule can do with a request: answer itself, or rewrite the upstream body. */
export type RuleResult =
  | { respond: { status: number; headers?: Record<string, string>; body?: Buffer | string } }
  | { rewriteBody: (body: Buffer) => Buffer }
  /** Forward the headers and the first `bytes` of the body, then hang until the client gives up. */
  | { passBytes: number }
  /** Forward the first `bytes` of the request body upstream, then break both connections. */
  | { cutRequestAfter: number }
  /** Forward without these request headers (lower case): e.g. `range`, as a server ignoring it. */
  | { dropRequestHeaders: string[] }
  | undefined;

export interface Proxy {
  url: string;
  host: string;
  requests: SeenRequest[];
  stop(): Promise<void>;
}

/** Forwards to `upstream` (http://host:port); `rule` may override any request. */
export async function startProxy(
  upstream: string,
  rule: (req: IncomingMessage) => RuleResult | Promise<RuleResult> = () => undefined,
): Promise<Proxy> {
  const requests: SeenRequest[] = [];
  let self = '';
  const server: Server = createServer(async (req, res) => {
    const record = (status: number) =>
      requests.push({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        status,
        authorization: !!req.headers.authorization,
        ...(req.headers.range ? { range: String(req.headers.range) } : {}),
      });
    try {
      const action = await rule(req);
      if (action && 'respond' in action) {
        const { status, headers = {}, body } = action.respond;
        record(status);
        res.writeHead(status, headers);
        res.end(body);
        return;
      }
      const headers: Record<string, string> = {};
      const dropped = action && 'dropRequestHeaders' in action ? action.dropRequestHeaders : [];
      for (const [k, v] of Object.entries(req.headers)) {
        if (k !== 'host' && k !== 'connection' && typeof v === 'string' && !dropped.includes(k))
          headers[k] = v;
      }
      const up = await request(`${upstream}${req.url}`, {
        method: req.method as 'GET',
        headers,
        body:
          req.method === 'GET' || req.method === 'HEAD'
            ? undefined
            : action && 'cutRequestAfter' in action
              ? Readable.from(cutAfter(req, action.cutRequestAfter))
              : req,
      });
      const outHeaders: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) {
        if (v !== undefined && k !== 'connection' && k !== 'transfer-encoding' && k !== 'keep-alive')
          outHeaders[k] = v;
      }
      // A reverse proxy: the registry's absolute Locations (upload URLs) point back through it.
      if (typeof outHeaders.location === 'string' && outHeaders.location.startsWith(upstream)) {
        outHeaders.location = `${self}${outHeaders.location.slice(upstream.length)}`;
      }
      record(up.statusCode);
      if (action && 'rewriteBody' in action) {
        const body = action.rewriteBody(Buffer.from(await up.body.arrayBuffer()));
        outHeaders['content-length'] = String(body.length);
        res.writeHead(up.statusCode, outHeaders);
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      res.writeHead(up.statusCode, outHeaders);
      let left = action && 'passBytes' in action ? action.passBytes : Number.POSITIVE_INFINITY;
      for await (const chunk of up.body) {
        if (left <= 0) break;
        const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
        left -= part.length;
        res.write(part);
      }
      if (left <= 0 && action && 'passBytes' in action) {
        up.body.destroy();
        return; // hang: the client's cancel (or proxy.stop) ends it
      }
      res.end();
    } catch (e) {
      record(599);
      res.destroy(e as Error);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  self = `http://127.0.0.1:${port}`;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The first `bytes` of a request body, then an error: the upstream sees the body break off. */
async function* cutAfter(body: AsyncIterable<Buffer>, bytes: number): AsyncGenerator<Buffer> {
  let left = bytes;
  for await (const chunk of body) {
    if (chunk.length >= left) {
      if (left > 0) yield chunk.subarray(0, left);
      // Give the upstream a moment to take what was sent before the break.
      await new Promise((r) => setTimeout(r, 50));
      throw new Error('request body cut by the test proxy');
    }
    left -= chunk.length;
    yield chunk;
  }
}
