import { BlockList, isIP } from 'node:net';

/** Splits `host[:port]` (with IPv6 in brackets) into hostname and port. */
export function splitHost(host: string): { hostname: string; port?: string } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (m) return { hostname: m[1]!, ...(m[2] ? { port: m[2] } : {}) };
  const i = host.lastIndexOf(':');
  if (i > 0 && host.indexOf(':') === i) return { hostname: host.slice(0, i), port: host.slice(i + 1) };
  return { hostname: host };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** Loopback hosts may be reached over plain HTTP without configuration, as docker allows. */
export function isLoopback(host: string): boolean {
  const { hostname } = splitHost(host);
  const h = hostname.toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  const family = isIP(h);
  // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is checked as the IPv4 one it maps.
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/** `host:port` of a URL, the way registries are named (default ports omitted). */
export function urlHost(url: URL): string {
  return url.host;
}

/** True when `host` matches an entry of an insecure-registries list (`host[:port]`, or a bare hostname for any port). */
export function matchesHostList(host: string, list: readonly string[]): boolean {
  const { hostname } = splitHost(host);
  return list.some((entry) => {
    const e = entry
      .trim()
      .replace(/^[a-z]+:\/\//i, '')
      .replace(/\/.*$/, '')
      .toLowerCase();
    return (
      e === host.toLowerCase() || (!splitHost(e).port && splitHost(e).hostname === hostname.toLowerCase())
    );
  });
}
