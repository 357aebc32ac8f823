// Self-signed certificates made with the openssl CLI at test time (for registry TLS and token signing).
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './proc';

export interface TestCert {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** Base64 DER of the certificate, as a JWT `x5c` entry wants it. */
  derBase64: string;
}

/**
 * Writes `<name>.crt` and `<name>.key` into `dir`: CN=`cn`, SAN DNS:localhost,IP:127.0.0.1, so it
 * verifies for both spellings of the loopback host. EC P-256 keys take milliseconds to make; RSA 2048
 * (needed for RS256 token signing) about 0.2 s.
 */
export async function makeSelfSignedCert(
  dir: string,
  name = 'server',
  cn = 'localhost',
  keyType: 'rsa' | 'ec' = 'rsa',
): Promise<TestCert> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const key = keyType === 'ec' ? ['ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['rsa:2048'];
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    ...key,
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '3650',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  const derBase64 = new X509Certificate(certPem).raw.toString('base64');
  return { certFile, keyFile, certPem, keyPem, derBase64 };
}

let sharedSigner: Promise<TestCert> | undefined;

/**
 * One RSA token-signing certificate per test process (RSA keys are slow to make), in a temp dir
 * removed when the process exits. Callers must not delete its files.
 */
export function sharedSigningCert(): Promise<TestCert> {
  sharedSigner ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-signer-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    return makeSelfSignedCert(dir, 'token-signer', 'stowage-test-token-signer', 'rsa');
  })();
  return sharedSigner;
}
