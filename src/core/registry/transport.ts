import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';

export interface TransportOptions {
  /** Extra CA certificates (PEM) trusted in addition to the system's. */
  caCertificates?: readonly (string | Buffer)[];
  /** Explicit proxies (VS Code's http.proxy); the environment's HTTP(S)_PROXY/NO_PROXY otherwise. */
  proxy?: { http?: string; https?: string; noProxy?: string };
  /** Connections per origin. */
  connections?: number;
  /** No bytes for this long is an error (headers or body). */
  stallTimeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** Proxies are never useful for the loopback addresses tests and local registries use. */
const LOOPBACK_NO_PROXY = 'localhost,127.0.0.1,::1';

/**
 * Builds the undici dispatcher: system CAs plus the configured ones, proxies from the caller or
 * the environment, and `verify: false` only for hosts the user marked insecure.
 */
export function createDispatcher(options: TransportOptions, verify: boolean): Dispatcher {
  const ca = options.caCertificates?.length ? [...rootCertificates, ...options.caCertificates] : undefined;
  const tls = { ...(ca ? { ca } : {}), rejectUnauthorized: verify };
  const timeouts = { headersTimeout: options.stallTimeoutMs, bodyTimeout: options.stallTimeoutMs };
  const base = { connect: tls, connections: options.connections ?? 8, ...timeouts };
  const proxy = proxySettings(options);
  if (!proxy.httpProxy && !proxy.httpsProxy) return new Agent(base);
  // Empty strings, not undefined: undici would otherwise fall back to process.env for them.
  return new EnvHttpProxyAgent({
    ...base,
    requestTls: tls,
    httpProxy: proxy.httpProxy ?? '',
    httpsProxy: proxy.httpsProxy ?? '',
    noProxy: proxy.noProxy ?? '',
  });
}

interface ProxySettings {
  httpProxy?: string;
  httpsProxy?: string;
  noProxy?: string;
  explicit: boolean;
}

/** The proxies in force: the caller's (VS Code's http.proxy) if any, else the environment's. */
function proxySettings(options: TransportOptions): ProxySettings {
  const env = options.env ?? process.env;
  if (options.proxy?.http || options.proxy?.https) {
    return {
      httpProxy: options.proxy.http,
      httpsProxy: options.proxy.https ?? options.proxy.http,
      noProxy: options.proxy.noProxy,
      explicit: true,
    };
  }
  // A proxy from the environment never applies to loopback.
  return {
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy,
    noProxy: [env.NO_PROXY ?? env.no_proxy, LOOPBACK_NO_PROXY].filter(Boolean).join(','),
    explicit: false,
  };
}

/**
 * Whether a plain-HTTP request to `url` may go through a proxy: then only undici carries it.
 * Conservative: a host counts as unproxied only where the dispatcher above certainly goes direct
 * (no HTTP proxy at all, or an environment proxy and one of the loopback names it exempts).
 */
export function mayUseHttpProxy(options: TransportOptions, url: URL): boolean {
  const proxy = proxySettings(options);
  if (!proxy.httpProxy) return false;
  if (proxy.explicit) return true;
  return !LOOPBACK_NO_PROXY.split(',').includes(url.hostname);
}
