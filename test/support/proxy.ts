// A loopback HTTP proxy in front of a real registry, for cases the registry cannot produce by
// itself: tampered bodies, oversized manifests, request counting. Rules decide per request.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
      for (const [k, v] of Object.entries(req.headers)) {
        if (k !== 'host' && k !== 'connection' && typeof v === 'string') headers[k] = v;
      }
      const up = await request(`${upstream}${req.url}`, {
        method: req.method as 'GET',
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      });
      const outHeaders: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) {
        if (v !== undefined && k !== 'connection' && k !== 'transfer-encoding' && k !== 'keep-alive')
          outHeaders[k] = v;
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
