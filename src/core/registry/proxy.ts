import { BlockList, isIP } from 'node:net';
import { StowageError } from '../errors';
import { isLoopback } from './host';

/** Proxies a caller gives (VS Code's http.proxy, http.noProxy, http.proxyAuthorization). */
export interface ProxyConfig {
  http?: string;
  https?: string;
  /** Hosts reached directly: `host`, `.domain`, `*.domain`, `host:port`, `10.0.0.0/8`, `*`; comma or space separated. */
  noProxy?: string;
  /** Sent as Proxy-Authorization to the proxy (instead of credentials in its URL). */
  authorization?: string;
  /** false: do not verify an https:// proxy's certificate (http.proxyStrictSSL). */
  strictSSL?: boolean;
}

/** Which proxy a request takes: one decision, used by every path that opens a connection. */
export interface ProxyRoutes {
  readonly http?: Route;
  readonly https?: Route;
  readonly authorization?: string;
  readonly strictSSL?: boolean;
  /** Taken from HTTP(S)_PROXY: then loopback never goes through it (as Go, so skopeo, decides). */
  readonly fromEnvironment: boolean;
  readonly noProxy: NoProxy;
}

/** A proxy, or the setting that was meant to name one and is not a URL (an error, not a bypass). */
type Route = { url: URL } | { invalid: string; setting: string };

interface NoProxy {
  all: boolean;
  names: { hostname: string; port: number }[];
  addresses: BlockList;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** The caller's proxies if any, else the environment's (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, either case). */
export function proxyRoutes(
  config: ProxyConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ProxyRoutes {
  if (config?.http || config?.https) {
    return {
      // An https proxy alone is not one for http (as curl's and Go's HTTPS_PROXY).
      ...optional('http', route(config.http, 'http.proxy')),
      ...optional('https', route(config.https || config.http, 'http.proxy')),
      ...optional('authorization', config.authorization),
      ...optional('strictSSL', config.strictSSL),
      fromEnvironment: false,
      noProxy: parseNoProxy(config.noProxy ?? ''),
    };
  }
  return {
    // The first that is set and not empty, as Go reads them.
    ...optional('http', route(env.HTTP_PROXY || env.http_proxy, 'HTTP_PROXY')),
    ...optional('https', route(env.HTTPS_PROXY || env.https_proxy, 'HTTPS_PROXY')),
    fromEnvironment: true,
    noProxy: parseNoProxy(env.NO_PROXY || env.no_proxy || ''),
  };
}

/** The proxy a request to `url` goes through, or undefined for a direct connection. */
export function proxyFor(routes: ProxyRoutes, url: URL): URL | undefined {
  const proxy = url.protocol === 'https:' ? routes.https : url.protocol === 'http:' ? routes.http : undefined;
  if (!proxy) return undefined;
  const hostname = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (routes.fromEnvironment && isLoopback(hostname.includes(':') ? `[${hostname}]` : hostname))
    return undefined;
  if (bypasses(routes.noProxy, hostname, Number(url.port) || DEFAULT_PORTS[url.protocol]!)) return undefined;
  if ('url' in proxy) return proxy.url;
  throw new StowageError(
    'PROXY',
    `The proxy ${proxy.setting} names for ${url.host} is not a proxy URL Stowage can use: "${proxy.invalid}".`,
    `Set ${proxy.setting} to a URL such as http://proxy.example:3128 (credentials as http://user:password@…; http, https and socks5 proxies).`,
  );
}

/** A proxy URL as it may be shown: scheme, host and port, never the credentials in it. */
export function displayProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

function bypasses(noProxy: NoProxy, hostname: string, port: number): boolean {
  if (noProxy.all) return true;
  const family = isIP(hostname);
  if (family && noProxy.addresses.check(hostname, family === 4 ? 'ipv4' : 'ipv6')) return true;
  return noProxy.names.some(
    (e) => (!e.port || e.port === port) && (hostname === e.hostname || hostname.endsWith(`.${e.hostname}`)),
  );
}

/** NO_PROXY as curl, Go and undici read it, CIDR ranges included (Go and curl accept them). */
export function parseNoProxy(value: string): NoProxy {
  const noProxy: NoProxy = { all: false, names: [], addresses: new BlockList() };
  for (const raw of value.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') {
      noProxy.all = true;
      continue;
    }
    const cidr = /^([0-9a-f.:]+)\/(\d{1,3})$/.exec(entry);
    if (cidr && isIP(cidr[1]!)) {
      const type = isIP(cidr[1]!) === 4 ? 'ipv4' : 'ipv6';
      const prefix = Number(cidr[2]);
      if (prefix <= (type === 'ipv4' ? 32 : 128)) noProxy.addresses.addSubnet(cidr[1]!, prefix, type);
      continue;
    }
    const bare = entry.replace(/^\[|\]$/g, '');
    if (isIP(bare)) {
      noProxy.addresses.addAddress(bare, isIP(bare) === 4 ? 'ipv4' : 'ipv6');
      continue;
    }
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) continue;
    noProxy.names.push({
      // An address in brackets is compared in its canonical form, as the request's host is.
      hostname: canonicalHost(m[1]!).replace(/^\*?\./, ''),
      port: m[2] ? Number(m[2]) : 0,
    });
  }
  return noProxy;
}

/** What our undici can speak to a proxy. */
const PROXY_SCHEMES = new Set(['http:', 'https:', 'socks:', 'socks5:']);

/**
 * `proxy:3128` means `http://proxy:3128`, as curl and Go read it; a path is ignored, as they do.
 * Anything else is an invalid route, reported when a request would take it.
 */
function route(value: string | undefined, setting: string): Route | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`);
    if (PROXY_SCHEMES.has(url.protocol) && url.hostname) {
      url.pathname = '/';
      url.search = '';
      url.hash = '';
      return { url };
    }
  } catch {
    // Not a URL: reported below.
  }
  // Everything up to the last "@" may be credentials: it stays out of messages.
  return { invalid: v.replace(/^([a-z][a-z0-9+.-]*:\/\/)?\S*@/i, '$1…@'), setting };
}

/** A hostname as URL parsing writes it (IPv6 compressed and in brackets dropped), lower case. */
function canonicalHost(name: string): string {
  if (!name.startsWith('[')) return name;
  try {
    return new URL(`http://${name}/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return name.replace(/^\[|\]$/g, '');
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
