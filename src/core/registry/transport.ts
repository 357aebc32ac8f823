import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { type ProxyConfig, type ProxyRoutes, proxyFor } from './proxy';
import { Agent, Dispatcher, ProxyAgent } from './undici';

export interface TransportOptions {
  /** Extra CA certificates (PEM) trusted in addition to the system's. */
  caCertificates?: readonly (string | Buffer)[];
  /** Explicit proxies (VS Code's http.proxy); the environment's HTTP(S)_PROXY/NO_PROXY otherwise. */
  proxy?: ProxyConfig;
  /** Connections per origin. */
  connections?: number;
  /** No bytes for this long is an error (headers or body). */
  stallTimeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Builds the undici dispatcher: system CAs plus the configured ones, `verify: false` only for
 * hosts the user marked insecure, and each request through the proxy `routes` choose for it.
 */
export function createDispatcher(
  options: TransportOptions,
  routes: ProxyRoutes,
  verify: boolean,
): Dispatcher {
  const tls = tlsOptions(options, verify);
  const timeouts = { headersTimeout: options.stallTimeoutMs, bodyTimeout: options.stallTimeoutMs };
  const base = { connect: tls, connections: options.connections ?? 8, ...timeouts };
  if (!routes.http && !routes.https) return new Agent(base);
  return new ProxyRouter(base, routes, (proxy) => {
    const credentials = proxy.username !== '' || proxy.password !== '';
    return new ProxyAgent({
      ...base,
      uri: proxy.href,
      requestTls: tls,
      // An https:// proxy is verified like a registry, unless http.proxyStrictSSL is off.
      proxyTls: tlsOptions(options, routes.strictSSL !== false),
      ...(routes.authorization && !credentials ? { token: routes.authorization } : {}),
    });
  });
}

/**
 * Sends each request directly or through its proxy, as {@link proxyFor} decides: the same
 * decision the direct reader and the error messages use (undici's EnvHttpProxyAgent has its own).
 */
class ProxyRouter extends Dispatcher {
  private readonly direct: Agent;
  private readonly agents = new Map<string, Dispatcher>();

  constructor(
    base: Agent.Options,
    private readonly routes: ProxyRoutes,
    private readonly viaProxy: (proxy: URL) => Dispatcher,
  ) {
    super();
    this.direct = new Agent(base);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // A setting that is not a URL throws here: the request fails with that, never goes direct.
    const proxy = proxyFor(this.routes, new URL(String(options.origin)));
    if (!proxy) return this.direct.dispatch(options, handler);
    let agent = this.agents.get(proxy.href);
    if (!agent) {
      agent = this.viaProxy(proxy);
      this.agents.set(proxy.href, agent);
    }
    return agent.dispatch(options, handler);
  }

  override async close(): Promise<void> {
    await Promise.all([this.direct, ...this.agents.values()].map((d) => d.close()));
  }

  override async destroy(): Promise<void> {
    await Promise.all([this.direct, ...this.agents.values()].map((d) => d.destroy()));
  }
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

/**
 * The certificates of NODE_EXTRA_CA_CERTS (read by Node from the process's own environment) that
 * Node's bundled roots lack: a system bundle there repeats most of them, and parsing each again
 * cost a CLI run over TLS ~13 ms of its start.
 */
function environmentCas(): string[] | undefined {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'latin1');
  } catch {
    // Node has already warned about it at startup.
    return undefined;
  }
  const body = (cert: string) => cert.replace(/-----[^-]+-----|\s/g, '');
  const bundled = new Set(rootCertificates.map(body));
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).filter(
    (cert) => !bundled.has(body(cert)),
  );
}
