import { existsSync, readFileSync, statSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import type { ProxyConfig } from './proxy';
import { tls } from './tls';

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
 * What a TLS connection trusts: Node's CAs, NODE_EXTRA_CA_CERTS, the system's bundle (as Go, so
 * skopeo and docker, read it: a CA installed with update-ca-certificates counts) and the
 * configured ones; verify or not.
 */
export function tlsOptions(
  options: TransportOptions,
  verify: boolean,
): { secureContext?: SecureContext; rejectUnauthorized: boolean } {
  const tls: { secureContext?: SecureContext; rejectUnauthorized: boolean } = { rejectUnauthorized: verify };
  // Built when read: by the lazy connector at the first connection, by the direct reader at its
  // first TLS request, by a ProxyAgent when made (at the first request through its proxy).
  Object.defineProperty(tls, 'secureContext', { enumerable: true, get: () => trustContext(options) });
  return tls;
}

const NONE: readonly (string | Buffer)[] = [];
/** Per configured list, per system bundle and its version: the context, or null for Node's default one. */
const contexts = new WeakMap<readonly (string | Buffer)[], Map<string, SecureContext | null>>();

/** The native half of a SecureContext: `addCACert` is what tls.createSecureContext({ ca }) calls. */
interface NativeContext {
  context?: { addCACert?: (pem: string | Buffer) => void };
}

/** The trust for a client's connections, chosen once per client (see sharedTrustContext). */
function trustContext(options: TransportOptions): SecureContext | undefined {
  // Once per client: the getter is read for every direct request, and the choice stats a file.
  let context = chosen.get(options);
  if (context === undefined) {
    context = sharedTrustContext(options);
    chosen.set(options, context);
  }
  return context ?? undefined;
}

/** What trustContext chose for each client's options (null: Node's default context). */
const chosen = new WeakMap<TransportOptions, SecureContext | null>();

/**
 * Node's default trust plus what it lacks: the system bundle's CAs and the configured ones, built
 * once per list and bundle (null: the default context has it all). Adding to a default
 * context copies Node's bundled roots (parsed once per process, not again per context), where
 * `ca: [...]` would parse them all again. That copy leaves out NODE_EXTRA_CA_CERTS (Node keeps
 * those only in its shared store), and so did `ca: [...]`: they are added back, so that more
 * trust never takes away trust the environment gave.
 */
function sharedTrustContext(options: TransportOptions): SecureContext | null {
  const configured = options.caCertificates?.length ? options.caCertificates : NONE;
  const bundle = systemBundle(options.env ?? process.env) ?? '';
  // The bundle's version too: update-ca-certificates while the editor runs counts for new clients.
  const stat = bundle ? statSync(bundle, { throwIfNoEntry: false }) : undefined;
  const version = `${bundle} ${stat?.mtimeMs ?? ''} ${stat?.size ?? ''}`;
  let byBundle = contexts.get(configured);
  if (!byBundle) {
    byBundle = new Map();
    contexts.set(configured, byBundle);
  }
  let context = byBundle.get(version);
  if (context === undefined) {
    const environment = certificatesOf(process.env.NODE_EXTRA_CA_CERTS);
    const known = new Set([...bundledRoots(), ...environment.map(certificateBody)]);
    const system = certificatesOf(bundle).filter((c) => !known.has(certificateBody(c)));
    context =
      system.length === 0 && configured === NONE
        ? null
        : buildContext([...environment, ...system, ...configured]);
    byBundle.set(version, context);
  }
  return context;
}

function buildContext(cas: readonly (string | Buffer)[]): SecureContext {
  const { createSecureContext, rootCertificates } = tls();
  const context = createSecureContext();
  const native = (context as unknown as NativeContext).context;
  if (typeof native?.addCACert !== 'function')
    return createSecureContext({ ca: [...rootCertificates, ...cas] });
  for (const pem of cas) native.addCACert(pem);
  return context;
}

/** Where the system keeps its CA bundle: SSL_CERT_FILE, else the first of Go's list that exists. */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Gentoo
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL 6
  '/etc/ssl/ca-bundle.pem', // OpenSUSE
  '/etc/pki/tls/cacert.pem', // OpenELEC
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem', // CentOS, RHEL 7
  '/etc/ssl/cert.pem', // Alpine, macOS
];

function systemBundle(env: NodeJS.ProcessEnv): string | undefined {
  if (env.SSL_CERT_FILE) return env.SSL_CERT_FILE;
  if (process.platform === 'win32') return undefined;
  return SYSTEM_BUNDLES.find((file) => existsSync(file));
}

let bundled: Set<string> | undefined;
function bundledRoots(): Set<string> {
  bundled ??= new Set(tls().rootCertificates.map(certificateBody));
  return bundled;
}

const certificateBody = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, '');

/** The PEM certificates of a file (none when it is missing or unreadable). */
function certificatesOf(file: string | undefined): string[] {
  if (!file) return [];
  try {
    return (
      readFileSync(file, 'latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ??
      []
    );
  } catch {
    // Node has already warned about a bad NODE_EXTRA_CA_CERTS; a missing bundle adds nothing.
    return [];
  }
}
