// Puts a single-layer image with one very large uncompressed layer (a one-file ustar of random
// bytes) into a registry by streaming it straight into a blob upload: no copy on local disk, one
// pass over the data, a few seconds per GiB.
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';

const LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const CHUNK = 1024 * 1024;

function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const octal = (v: number, w: number) => v.toString(8).padStart(w - 1, '0');
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(1704067200, 12), 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257, 'binary');
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${octal(sum, 7)}\0 `, 148, 'binary');
  return h;
}

/** The tar as a stream of ~1 MiB chunks; `hash` sees every byte. */
function tarStream(fileSize: number, hash: ReturnType<typeof createHash>): Readable {
  const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 9));
  const zeros = Buffer.alloc(CHUNK);
  const pad = (512 - (fileSize % 512)) % 512;
  async function* gen() {
    const header = tarHeader('data/big.bin', fileSize);
    hash.update(header);
    yield header;
    for (let left = fileSize; left > 0; left -= CHUNK) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(CHUNK, left)));
      hash.update(chunk);
      yield chunk;
    }
    const tail = Buffer.alloc(pad + 1024);
    hash.update(tail);
    yield tail;
  }
  return Readable.from(gen(), { objectMode: false });
}

async function upload(base: string, repo: string, body: Buffer | (() => Readable), digest: () => string) {
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  if (start.statusCode !== 202) throw new Error(`upload start: HTTP ${start.statusCode}`);
  let location = new URL(String(start.headers.location), base);
  const patch = await request(location, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream' },
    body: Buffer.isBuffer(body) ? body : body(),
  });
  await patch.body.dump();
  if (patch.statusCode !== 202) throw new Error(`upload PATCH: HTTP ${patch.statusCode}`);
  location = new URL(String(patch.headers.location), base);
  location.searchParams.set('digest', digest());
  const put = await request(location, { method: 'PUT', headers: { 'content-length': '0' } });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`upload PUT: HTTP ${put.statusCode}`);
}

/**
 * Pushes `repo:tag` (linux/amd64, one uncompressed layer of about `fileSize` bytes) to the
 * plain-HTTP registry at `base`. Returns the layer's size.
 */
export async function pushBigLayerImage(base: string, repo: string, tag: string, fileSize: number) {
  const hash = createHash('sha256');
  const layerSize = 512 + fileSize + ((512 - (fileSize % 512)) % 512) + 1024;
  let layerDigest = '';
  await upload(
    base,
    repo,
    () => tarStream(fileSize, hash),
    () => (layerDigest = `sha256:${hash.digest('hex')}`),
  );
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    }),
  );
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  await upload(base, repo, config, () => configDigest);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
    layers: [{ mediaType: LAYER_TAR, digest: layerDigest, size: layerSize }],
  });
  const put = await request(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: manifest,
  });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`manifest PUT: HTTP ${put.statusCode}`);
  return { layerSize, layerDigest };
}
