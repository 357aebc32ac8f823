import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import type { Dispatcher } from 'undici';
import { Agent, EnvHttpProxyAgent } from './undici';

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
  const tls = tlsOptions(options, verify);
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

/** What a TLS connection trusts: the system's CAs plus the configured ones; verify or not. */
export function tlsOptions(
  options: TransportOptions,
  verify: boolean,
): { secureContext?: SecureContext; rejectUnauthorized: boolean } {
  const tls: { secureContext?: SecureContext; rejectUnauthorized: boolean } = { rejectUnauthorized: verify };
  if (options.caCertificates?.length) {
    // Read when a connection is made (undici copies these options then): a run that makes none,
    // a warm pull, does not parse the certificates.
    Object.defineProperty(tls, 'secureContext', { enumerable: true, get: () => trustContext(options) });
  }
  return tls;
}

const contexts = new WeakMap<readonly (string | Buffer)[], SecureContext>();

/** The native half of a SecureContext: `addCACert` is what tls.createSecureContext({ ca }) calls. */
interface NativeContext {
  context?: { addCACert?: (pem: string | Buffer) => void };
}

/**
 * Node's default trust plus the configured CAs, built once per list. Adding to a default context
 * copies Node's bundled roots (parsed once per process, not again per context), where `ca: [...]`
 * would parse them all again. That copy leaves out NODE_EXTRA_CA_CERTS (Node keeps those only in
 * its shared store), and so did `ca: [...]`: they are added back, so that configuring a CA never
 * takes away trust the environment gave.
 */
function trustContext(options: TransportOptions): SecureContext | undefined {
  const extra = options.caCertificates;
  if (!extra?.length) return undefined;
  let context = contexts.get(extra);
  if (!context) {
    context = createSecureContext();
    const native = (context as unknown as NativeContext).context;
    const cas = [...(environmentCas() ?? []), ...extra];
    if (typeof native?.addCACert === 'function') {
      for (const pem of cas) native.addCACert(pem);
    } else context = createSecureContext({ ca: [...rootCertificates, ...cas] });
    contexts.set(extra, context);
  }
  return context;
}

/** The certificates of NODE_EXTRA_CA_CERTS (read by Node from the process's own environment). */
function environmentCas(): Buffer[] | undefined {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return undefined;
  try {
    return [readFileSync(file)];
  } catch {
    // Node has already warned about it at startup.
    return undefined;
  }
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
 * Whether a request to `url` may go through a proxy: then only undici carries it. Conservative:
 * a host counts as unproxied only where the dispatcher above certainly goes direct (no proxy for
 * the scheme at all, or an environment proxy and one of the loopback names it exempts).
 */
export function mayUseProxy(options: TransportOptions, url: URL): boolean {
  const proxy = proxySettings(options);
  if (!(url.protocol === 'https:' ? proxy.httpsProxy : proxy.httpProxy)) return false;
  if (proxy.explicit) return true;
  return !LOOPBACK_NO_PROXY.split(',').includes(url.hostname);
}
