// Builds OCI image layouts on disk with Node alone: random layer data (reproducible from a seed) in
// one-file ustar tars, gzip level 1, configs, manifests and (for multi-platform images) an index.
// Layers are streamed, so a ~200 MB fixture stays light on memory.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface LayerInfo extends Descriptor {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: string;
  /** Size of the uncompressed tar. */
  tarSize: number;
  /** The one file inside the tar, and its size. */
  fileName: string;
  fileSize: number;
}

export interface PlatformImage {
  /** `os/arch[/variant]` as requested, e.g. linux/arm/v7. */
  platform: string;
  os: string;
  architecture: string;
  variant?: string;
  manifest: Descriptor;
  /** The manifest's exact bytes as written (its sha256 is `manifest.digest`). */
  manifestBody: string;
  config: Descriptor;
  configBody: string;
  layers: LayerInfo[];
}

export interface BuiltImage {
  layoutDir: string;
  tag: string;
  /** The top-level descriptor: the index for multi-platform images, else the manifest. */
  digest: string;
  mediaType: string;
  size: number;
  /** Exact bytes of the top-level index or manifest. */
  body: string;
  /** Present when an index was written. */
  index?: Descriptor & { body: string };
  platforms: PlatformImage[];
  /** Sum of compressed layer sizes over all platforms. */
  totalLayerBytes: number;
}

export interface BuildImageOptions {
  /** Tag recorded as `org.opencontainers.image.ref.name` in index.json (default `latest`). */
  tag?: string;
  /** Platforms to build (default linux/amd64, linux/arm64, linux/arm/v7). */
  platforms?: string[];
  /** Write an OCI index over the platforms (default true). false needs exactly one platform. */
  index?: boolean;
  /** Layers per platform (default 2). */
  layers?: number;
  /** Bytes of random file data per layer (default 64 KiB); an array gives each layer its own size. */
  layerSize?: number | number[];
  /** Same seed ⇒ same bytes ⇒ same digests. Without a seed the data is fresh random. */
  seed?: string | number;
  labels?: Record<string, string>;
  env?: string[];
  entrypoint?: string[];
  cmd?: string[];
  exposedPorts?: string[];
  /** Annotations on the top-level index/manifest. */
  annotations?: Record<string, string>;
  /** ISO date for `created` (default fixed 2024-01-01T00:00:00Z so seeded builds reproduce). */
  created?: string;
  /** Add a buildx-style attestation manifest (unknown/unknown, an in-toto layer) per platform. */
  attestations?: boolean;
  /** Index entries without `platform` (some tools write them so). */
  unlabelled?: boolean;
}

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** A deterministic fast byte stream: AES-128-CTR keystream keyed from the seed (GB/s, no JS loop). */
function randomStream(key: Buffer, total: number): Readable {
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(1024 * 1024);
  let left = total;
  return new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0');
}

/** A ustar header for one regular file. */
function tarHeader(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(mtime, 12), 136);
  h.write('        ', 148); // checksum placeholder: eight spaces
  h.write('0', 156);
  h.write('ustar\0', 257, 'binary');
  h.write('00', 263);
  h.write('root', 265);
  h.write('root', 297);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${octal(sum, 7)}\0 `, 148, 'binary');
  return h;
}

/** The whole tar as a stream: header, file data, padding to 512, two zero blocks. */
function tarStream(name: string, key: Buffer, size: number, mtime: number): Readable {
  const pad = (512 - (size % 512)) % 512;
  async function* gen() {
    yield tarHeader(name, size, mtime);
    for await (const chunk of randomStream(key, size)) yield chunk as Buffer;
    yield Buffer.alloc(pad + 1024);
  }
  return Readable.from(gen(), { objectMode: false });
}

function hashing(hash: ReturnType<typeof createHash>, counter: { n: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      counter.n += chunk.length;
      cb(null, chunk);
    },
  });
}

/** What buildx attaches to each image: a manifest of in-toto statements, and its index entry. */
async function writeAttestation(layoutDir: string, subject: string): Promise<object> {
  const statement = await writeBlob(
    layoutDir,
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subject: [{ name: 'image', digest: { sha256: subject.slice('sha256:'.length) } }],
      predicate: {},
    }),
  );
  const config = await writeBlob(
    layoutDir,
    JSON.stringify({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [statement.digest] },
    }),
  );
  const manifest = await writeBlob(
    layoutDir,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: MEDIA.ociConfig, digest: config.digest, size: config.size },
      layers: [
        {
          mediaType: 'application/vnd.in-toto+json',
          digest: statement.digest,
          size: statement.size,
          annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' },
        },
      ],
    }),
  );
  return {
    mediaType: MEDIA.ociManifest,
    digest: manifest.digest,
    size: manifest.size,
    annotations: {
      'vnd.docker.reference.digest': subject,
      'vnd.docker.reference.type': 'attestation-manifest',
    },
    platform: { architecture: 'unknown', os: 'unknown' },
  };
}

async function writeBlob(layoutDir: string, body: string | Buffer): Promise<Descriptor & { body: string }> {
  const buf = Buffer.from(body);
  const digest = sha256(buf);
  await writeFile(blobPath(layoutDir, digest), buf);
  return { mediaType: '', digest, size: buf.length, body: buf.toString('utf8') };
}

async function buildLayer(
  layoutDir: string,
  key: Buffer,
  fileName: string,
  fileSize: number,
  mtime: number,
): Promise<LayerInfo> {
  const tmp = join(layoutDir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const tarCount = { n: 0 };
  const gzCount = { n: 0 };
  await pipeline(
    tarStream(fileName, key, fileSize, mtime),
    hashing(tarHash, tarCount),
    createGzip({ level: 1, chunkSize: 256 * 1024, strategy: constants.Z_DEFAULT_STRATEGY }),
    hashing(gzHash, gzCount),
    createWriteStream(tmp),
  );
  const digest = `sha256:${gzHash.digest('hex')}`;
  await rename(tmp, blobPath(layoutDir, digest));
  return {
    mediaType: MEDIA.ociLayerGzip,
    digest,
    size: gzCount.n,
    diffId: `sha256:${tarHash.digest('hex')}`,
    tarSize: tarCount.n,
    fileName,
    fileSize,
  };
}

function splitPlatform(p: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = p.split('/');
  if (!os || !architecture) throw new Error(`fixture platform "${p}" is not os/arch[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Adds (or replaces, by tag) an entry in the layout's index.json; writes oci-layout. */
async function updateLayoutIndex(layoutDir: string, tag: string, top: Descriptor): Promise<void> {
  const indexFile = join(layoutDir, 'index.json');
  let index: { schemaVersion: 2; mediaType?: string; manifests: Record<string, unknown>[] } = {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: [],
  };
  try {
    index = JSON.parse(await readFile(indexFile, 'utf8'));
  } catch {
    // fresh layout
  }
  index.manifests = index.manifests.filter(
    (m) =>
      (m.annotations as Record<string, string> | undefined)?.['org.opencontainers.image.ref.name'] !== tag,
  );
  index.manifests.push({
    mediaType: top.mediaType,
    digest: top.digest,
    size: top.size,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  await writeFile(join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(indexFile, JSON.stringify(index));
}

/**
 * Writes an image into the OCI layout at `dir` (created if missing; an existing layout gains a tag).
 * Layers of all platforms are built concurrently (zlib runs on the libuv pool).
 */
export async function buildImage(dir: string, options: BuildImageOptions = {}): Promise<BuiltImage> {
  const tag = options.tag ?? 'latest';
  const platforms = options.platforms ?? ['linux/amd64', 'linux/arm64', 'linux/arm/v7'];
  const useIndex = options.index ?? true;
  if (!useIndex && platforms.length !== 1)
    throw new Error('buildImage: index: false needs exactly one platform');
  if (platforms.length === 0) throw new Error('buildImage: no platforms');
  const layerCount = options.layers ?? 2;
  const sizeOf = (i: number) =>
    Array.isArray(options.layerSize) ? (options.layerSize[i] ?? 65536) : (options.layerSize ?? 65536);
  const seed = options.seed !== undefined ? String(options.seed) : randomBytes(16).toString('hex');
  const created = options.created ?? '2024-01-01T00:00:00Z';
  const mtime = Math.floor(Date.parse(created) / 1000);
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });

  const images = await Promise.all(
    platforms.map(async (platform): Promise<PlatformImage> => {
      const p = splitPlatform(platform);
      const layers = await Promise.all(
        Array.from({ length: layerCount }, (_, i) => {
          const key = createHash('sha256').update(`${seed}\0${platform}\0${i}`).digest();
          const fileName = `data/${platform.replaceAll('/', '-')}-layer${i}.bin`;
          return buildLayer(dir, key, fileName, sizeOf(i), mtime);
        }),
      );
      const config = {
        created,
        architecture: p.architecture,
        os: p.os,
        ...(p.variant ? { variant: p.variant } : {}),
        config: {
          Env: options.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          Entrypoint: options.entrypoint ?? ['/bin/sh', '-c'],
          Cmd: options.cmd ?? ['echo hello'],
          ExposedPorts: Object.fromEntries((options.exposedPorts ?? ['8080/tcp']).map((x) => [x, {}])),
          Labels: { 'org.opencontainers.image.title': 'stowage-fixture', ...options.labels },
          WorkingDir: '/',
        },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((l) => ({ created, created_by: `fixture: add ${l.fileName}` })),
      };
      const cfg = await writeBlob(dir, JSON.stringify(config));
      const manifest = {
        schemaVersion: 2,
        mediaType: MEDIA.ociManifest,
        config: { mediaType: MEDIA.ociConfig, digest: cfg.digest, size: cfg.size },
        layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
        ...(!useIndex && options.annotations ? { annotations: options.annotations } : {}),
      };
      const man = await writeBlob(dir, JSON.stringify(manifest));
      return {
        platform,
        ...p,
        manifest: { mediaType: MEDIA.ociManifest, digest: man.digest, size: man.size },
        manifestBody: man.body,
        config: { mediaType: MEDIA.ociConfig, digest: cfg.digest, size: cfg.size },
        configBody: cfg.body,
        layers,
      };
    }),
  );

  let top: Descriptor & { body: string };
  let index: (Descriptor & { body: string }) | undefined;
  if (useIndex) {
    const entries: object[] = images.map((img) => ({
      ...img.manifest,
      ...(options.unlabelled
        ? {}
        : {
            platform: {
              architecture: img.architecture,
              os: img.os,
              ...(img.variant ? { variant: img.variant } : {}),
            },
          }),
    }));
    if (options.attestations) {
      for (const img of images) entries.push(await writeAttestation(dir, img.manifest.digest));
    }
    const body = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: entries,
      ...(options.annotations ? { annotations: options.annotations } : {}),
    };
    const written = await writeBlob(dir, JSON.stringify(body));
    index = { ...written, mediaType: MEDIA.ociIndex };
    top = index;
  } else {
    const img = images[0]!;
    top = { ...img.manifest, body: img.manifestBody };
  }
  await updateLayoutIndex(dir, tag, top);
  return {
    layoutDir: dir,
    tag,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    body: top.body,
    index,
    platforms: images,
    totalLayerBytes: images.reduce((s, img) => s + img.layers.reduce((t, l) => t + l.size, 0), 0),
  };
}

/** Reads a blob of a layout back (e.g. to compare with what a pull wrote). */
export async function readLayoutBlob(layoutDir: string, digest: string): Promise<Buffer> {
  return readFile(blobPath(layoutDir, digest));
}

/** True when the layout holds the blob. */
export async function hasLayoutBlob(layoutDir: string, digest: string): Promise<boolean> {
  return stat(blobPath(layoutDir, digest)).then(
    () => true,
    () => false,
  );
}
