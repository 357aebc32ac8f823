// Hand-built images for the store tests: real gzip'd tar layers, configs, manifests and indexes.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Digest } from '../../src/core/digest';
import { type Descriptor, MediaType, type Store } from '../../src/core/store';

export function sha256(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A one-file ustar archive. */
export function tar(name: string, content: string | Buffer): Buffer {
  const data = Buffer.from(content);
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([h, data, pad, Buffer.alloc(1024)]);
}

export interface BuiltBlob {
  bytes: Buffer;
  descriptor: Descriptor;
}

export function blob(mediaType: string, bytes: Buffer, extra: Partial<Descriptor> = {}): BuiltBlob {
  return { bytes, descriptor: { mediaType, digest: sha256(bytes), size: bytes.length, ...extra } };
}

export interface BuiltImage {
  config: BuiltBlob;
  layers: BuiltBlob[];
  manifest: BuiltBlob;
  all: BuiltBlob[];
}

/** A single-platform OCI image with `layerCount` gzip'd tar layers. */
export function buildImage(
  tag: string,
  options: { arch?: string; variant?: string; layerCount?: number } = {},
): BuiltImage {
  const arch = options.arch ?? 'amd64';
  const tars = Array.from({ length: options.layerCount ?? 2 }, (_, i) =>
    tar(`file${i}.txt`, `${tag} ${arch} layer ${i}\n`),
  );
  const layers = tars.map((t) => blob(MediaType.OCI_LAYER_GZIP, gzipSync(t)));
  const config = blob(
    MediaType.OCI_CONFIG,
    Buffer.from(
      JSON.stringify({
        created: '2024-05-01T12:00:00Z',
        architecture: arch,
        ...(options.variant ? { variant: options.variant } : {}),
        os: 'linux',
        config: {
          Entrypoint: ['/bin/app'],
          Cmd: ['--serve'],
          Env: ['PATH=/usr/bin'],
          ExposedPorts: { '8080/tcp': {} },
          Labels: { 'org.example.tag': tag },
        },
        rootfs: { type: 'layers', diff_ids: tars.map((t) => sha256(t)) },
      }),
    ),
  );
  const manifest = blob(
    MediaType.OCI_MANIFEST,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: config.descriptor,
        layers: layers.map((l) => l.descriptor),
      }),
    ),
  );
  return { config, layers, manifest, all: [config, ...layers, manifest] };
}

/** An OCI index over the given images, each entry with its platform. */
export function buildIndex(images: { image: BuiltImage; arch: string; variant?: string }[]): BuiltBlob {
  return blob(
    MediaType.OCI_INDEX,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_INDEX,
        manifests: images.map(({ image, arch, variant }) => ({
          ...image.manifest.descriptor,
          platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
        })),
      }),
    ),
  );
}

export async function putAll(store: Store, blobs: BuiltBlob[]): Promise<void> {
  for (const b of blobs) await store.putBlob(b.bytes, b.descriptor.digest);
}

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-store-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
