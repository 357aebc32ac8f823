// A Docker-distribution-style token server of our own (node:http on loopback), signing RS256 JWTs
// with an x5c header, so a real registry can run in `auth: token` mode (the Docker Hub flow).
import { createSign, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSelfSignedCert, sharedSigningCert, type TestCert } from './certs';

export interface Credentials {
  username: string;
  password: string;
}

export interface TokenServerOptions {
  /** `service` the registry names in its challenge and the token's `aud`. */
  service?: string;
  /** `iss` of issued tokens; the registry must be configured with the same issuer. */
  issuer?: string;
  users?: Credentials[];
  /** Anonymous requests get `pull` (true, default) or no access at all (false). */
  anonymousPull?: boolean;
  /** Actions an authenticated user gets on any repository (default pull, push). */
  userActions?: string[];
  /** Seconds a token lives (default 300). Changeable later through `TokenServer.expiresIn`. */
  expiresIn?: number;
  /** Make a new signing key instead of the process-wide shared one (e.g. to test a foreign signer). */
  freshCert?: boolean;
}

/** One request the token server saw. Never holds a secret: only whether credentials came. */
export interface TokenRequestRecord {
  method: string;
  /** Path and query as received (the query holds no secrets in the GET flow). */
  url: string;
  /** What kind of Authorization header was present. */
  authorization: 'none' | 'basic' | 'bearer' | 'other';
  /** POST only: the OAuth2 grant type. */
  grantType?: string;
  /** Authenticated user name, if any credentials were valid. */
  username?: string;
  service?: string;
  scopes: string[];
  status: number;
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `http://127.0.0.1:PORT/token`: the realm to configure in the registry. */
  realm: string;
  service: string;
  issuer: string;
  /** The signing certificate (the registry's rootcertbundle). */
  cert: TestCert;
  /** Every request received, in order. */
  requests: TokenRequestRecord[];
  /** Number of tokens issued so far. */
  readonly issued: number;
  /** Token lifetime in seconds for tokens issued from now on. */
  expiresIn: number;
  anonymousPull: boolean;
  users: Credentials[];
  addUser(user: Credentials): void;
  /** Issues a token directly (no HTTP), e.g. to PUT manifests from a test. */
  issueToken(username: string | undefined, scopes: string[]): string;
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** Parses `type:name:actions`; the name itself may contain a colon (a host:port) so split from both ends. */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = options.freshCert ? await mkdtemp(join(tmpdir(), 'stowage-token-')) : undefined;
  const cert = dir
    ? await makeSelfSignedCert(dir, 'token-signer', 'stowage-test-token-signer')
    : await sharedSigningCert();
  const service = options.service ?? 'stowage-test-registry';
  const issuer = options.issuer ?? 'stowage-test-issuer';
  const userActions = options.userActions ?? ['pull', 'push'];
  const refreshTokens = new Map<string, string>(); // refresh token → username
  let issued = 0;

  const grant = (username: string | undefined, scopes: string[]): Access[] => {
    const out: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a) continue;
      let allowed: string[] = [];
      if (a.type === 'repository') {
        allowed = username ? userActions : server.anonymousPull ? ['pull'] : [];
      } else if (a.type === 'registry' && a.name === 'catalog' && username) {
        allowed = ['*'];
      }
      const actions = a.actions.filter((x) => allowed.includes(x) || allowed.includes('*'));
      if (actions.length > 0) out.push({ type: a.type, name: a.name, actions });
    }
    return out;
  };

  const sign = (username: string | undefined, scopes: string[]): string => {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [cert.derBase64] };
    const claims = {
      iss: issuer,
      sub: username ?? '',
      aud: service,
      exp: now + server.expiresIn,
      nbf: now - 1,
      iat: now,
      jti: randomUUID(),
      access: grant(username, scopes),
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(cert.keyPem);
    issued++;
    return `${input}.${b64url(signature)}`;
  };

  const checkUser = (username: string, password: string): boolean =>
    server.users.some((u) => u.username === username && u.password === password);

  const respond = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, record: TokenRequestRecord) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const auth = req.headers.authorization ?? '';
    record.authorization = !auth
      ? 'none'
      : /^basic /i.test(auth)
        ? 'basic'
        : /^bearer /i.test(auth)
          ? 'bearer'
          : 'other';
    const unauthorized = () => {
      record.status = 401;
      respond(
        res,
        401,
        { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] },
        { 'www-authenticate': 'Basic realm="stowage-test-token"' },
      );
    };
    if (url.pathname !== '/token') {
      record.status = 404;
      return respond(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
    }
    const issue = (username: string | undefined, scopes: string[], withRefresh: boolean) => {
      record.username = username;
      const token = sign(username, scopes);
      const body: Record<string, unknown> = {
        token,
        access_token: token,
        expires_in: server.expiresIn,
        issued_at: new Date().toISOString(),
        scope: scopes.join(' '),
      };
      if (withRefresh && username) {
        const refresh = randomBytes(24).toString('base64url');
        refreshTokens.set(refresh, username);
        body.refresh_token = refresh;
      }
      record.status = 200;
      respond(res, 200, body);
    };

    if (req.method === 'GET') {
      record.service = url.searchParams.get('service') ?? undefined;
      record.scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      let username: string | undefined;
      if (record.authorization === 'basic') {
        const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const user = decoded.slice(0, colon);
        if (colon < 0 || !checkUser(user, decoded.slice(colon + 1))) return unauthorized();
        username = user;
      } else if (record.authorization !== 'none') {
        return unauthorized();
      }
      return issue(username, record.scopes, url.searchParams.get('offline_token') === 'true');
    }
    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      record.grantType = form.get('grant_type') ?? undefined;
      record.service = form.get('service') ?? undefined;
      record.scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const offline = form.get('access_type') === 'offline';
      if (record.grantType === 'password') {
        const user = form.get('username') ?? '';
        if (!checkUser(user, form.get('password') ?? '')) return unauthorized();
        return issue(user, record.scopes, true);
      }
      if (record.grantType === 'refresh_token') {
        const user = refreshTokens.get(form.get('refresh_token') ?? '');
        if (!user) return unauthorized();
        return issue(user, record.scopes, offline);
      }
      record.status = 400;
      return respond(res, 400, { error: 'unsupported_grant_type' });
    }
    record.status = 405;
    respond(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
  };

  const http: Server = createServer((req, res) => {
    const record: TokenRequestRecord = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: 'none',
      scopes: [],
      status: 0,
    };
    server.requests.push(record);
    handle(req, res, record).catch((err) => {
      record.status = 500;
      if (!res.headersSent) respond(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  const server: TokenServer = {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    cert,
    requests: [],
    get issued() {
      return issued;
    },
    expiresIn: options.expiresIn ?? 300,
    anonymousPull: options.anonymousPull ?? true,
    users: [...(options.users ?? [])],
    addUser(user) {
      server.users.push(user);
    },
    issueToken: (username, scopes) => sign(username, scopes),
    async stop() {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
  return server;
}
