// The undici side of the client (auth, tokens, proxies, what the direct reader does not take).
// client.ts loads it at its first undici request: a pull that needs none (the plain case, a warm
// pull, `stowage ls`) never initialises undici nor the node:http/http2/tls modules it requires.
import { StowageError } from '../errors';
import { displayProxy, type ProxyRoutes, proxyFor } from './proxy';
import { type TransportOptions, tlsOptions } from './trust';
import { Agent, buildConnector, Dispatcher, ProxyAgent } from './undici';

export type { TransportOptions } from './trust';

/**
 * Builds the undici dispatcher: system CAs plus the configured ones, `verify: false` only for
 * hosts the user marked insecure, and each request through the proxy `routes` choose for it.
 */
export function createDispatcher(
  options: TransportOptions,
  routes: ProxyRoutes,
  verify: boolean,
): Dispatcher {
  const timeouts = { headersTimeout: options.stallTimeoutMs, bodyTimeout: options.stallTimeoutMs };
  const base = { connections: options.connections ?? 8, ...timeouts };
  const direct = { ...base, connect: lazyConnector(options, verify) };
  if (!routes.http && !routes.https) return new Agent(direct);
  return new ProxyRouter(direct, routes, (proxy) => {
    try {
      return new ProxyAgent({
        ...base,
        uri: proxy.href,
        requestTls: tlsOptions(options, verify),
        // An https:// proxy is verified like a registry, unless http.proxyStrictSSL is off.
        proxyTls: tlsOptions(options, routes.strictSSL !== false),
        ...proxyAuthorization(proxy, routes.authorization),
      });
    } catch (e) {
      throw new StowageError(
        'PROXY',
        `The proxy ${displayProxy(proxy)} cannot be used: ${(e as Error).message}.`,
        'Check the proxy setting (HTTPS_PROXY / HTTP_PROXY, or http.proxy in VS Code).',
        { cause: e },
      );
    }
  });
}

/**
 * Credentials in the proxy URL win over http.proxyAuthorization. undici sends them only with a
 * password: a user name alone (a token as user) is sent as `user:`, as Go and curl do.
 */
function proxyAuthorization(proxy: URL, authorization: string | undefined): { token?: string } {
  if (proxy.username && !proxy.password) {
    return { token: `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:`).toString('base64')}` };
  }
  return authorization && !proxy.username ? { token: authorization } : {};
}

/**
 * The direct connections' connector, built when the first connection is made: a run that makes
 * none (a warm pull) reads no certificates. undici would copy TLS options given as an object
 * when the dispatcher is made.
 */
function lazyConnector(options: TransportOptions, verify: boolean): buildConnector.connector {
  let connector: buildConnector.connector | undefined;
  return (opts, callback) => {
    connector ??= buildConnector({ ...tlsOptions(options, verify) });
    return connector(opts, callback);
  };
}

/**
 * Sends each request directly or through its proxy, as {@link proxyFor} decides: the same
 * decision the direct reader and the error messages use (undici's EnvHttpProxyAgent has its own).
 */
class ProxyRouter extends Dispatcher {
  private readonly direct: Agent;
  private readonly agents = new Map<string, Dispatcher>();

  constructor(
    direct: Agent.Options,
    private readonly routes: ProxyRoutes,
    private readonly viaProxy: (proxy: URL) => Dispatcher,
  ) {
    super();
    this.direct = new Agent(direct);
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
