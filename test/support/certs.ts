// Self-signed certificates made with the openssl CLI at test time (for registry TLS and token signing).
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
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
 * Writes `<name>.crt` and `<name>.key` into `dir`: RSA 2048, CN=localhost,
 * SAN DNS:localhost,IP:127.0.0.1, so it verifies for both spellings of the loopback host.
 */
export async function makeSelfSignedCert(dir: string, name = 'server', cn = 'localhost'): Promise<TestCert> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
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
