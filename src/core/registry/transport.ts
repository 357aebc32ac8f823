import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';
import { isLoopback } from './host';

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
  const env = options.env ?? process.env;
  const ca = options.caCertificates?.length ? [...rootCertificates, ...options.caCertificates] : undefined;
  const tls = { ...(ca ? { ca } : {}), rejectUnauthorized: verify };
  const timeouts = { headersTimeout: options.stallTimeoutMs, bodyTimeout: options.stallTimeoutMs };
  const base = { connect: tls, connections: options.connections ?? 8, ...timeouts };
  const explicit = options.proxy?.http ?? options.proxy?.https;
  const httpProxy = explicit ? options.proxy?.http : (env.HTTP_PROXY ?? env.http_proxy);
  const httpsProxy = explicit
    ? (options.proxy?.https ?? options.proxy?.http)
    : (env.HTTPS_PROXY ?? env.https_proxy);
  if (!httpProxy && !httpsProxy) return new Agent(base);
  // A proxy from the environment never applies to loopback; one the caller configured follows its own noProxy.
  const noProxy = explicit
    ? options.proxy?.noProxy
    : [env.NO_PROXY ?? env.no_proxy, LOOPBACK_NO_PROXY].filter(Boolean).join(',');
  return new EnvHttpProxyAgent({
    ...base,
    requestTls: tls,
    httpProxy,
    httpsProxy,
    ...(noProxy ? { noProxy } : {}),
  });
}

/**
 * Whether a plain-HTTP request to `url` might go through a proxy (conservative: a proxy from the
 * caller counts for every host, one from the environment for all but loopback).
 */
export function mayUseHttpProxy(options: TransportOptions, url: URL): boolean {
  const env = options.env ?? process.env;
  const explicit = options.proxy?.http ?? options.proxy?.https;
  if (explicit) return !!options.proxy?.http;
  if (!(env.HTTP_PROXY ?? env.http_proxy)) return false;
  return !isLoopback(url.host);
}
