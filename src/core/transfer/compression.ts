import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { StowageError } from '../errors';

/** Formats an archive may come in that Stowage does not decompress: how to, for the hint. */
const OTHERS: { name: string; magic: number[]; tool: string }[] = [
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], tool: 'zstd -d' },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], tool: 'xz -d' },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], tool: 'bzip2 -d' },
];

const startsWith = (b: Buffer, magic: number[]) => magic.every((x, i) => b[i] === x);

/**
 * The archive's tar bytes: a gzip-compressed archive (`docker save | gzip`, which docker load and
 * skopeo take) is decompressed as it streams; zstd, xz and bzip2 are named with the command that
 * decompresses them. Anything else is passed on as it is (the tar reader judges it).
 */
export async function* tarBytes(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 6 && !done) {
    const r = await it.next();
    if (r.done) done = true;
    else head = Buffer.concat([head, Buffer.from(r.value)]);
  }
  async function* all(): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield Buffer.from(r.value);
  }
  if (startsWith(head, [0x1f, 0x8b])) {
    const gunzip = createGunzip();
    // The source's own failures (a read error, a cancel) reach the loop below through gunzip.
    pipeline(Readable.from(all()), gunzip).catch(() => {});
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (e) {
      if (!/^Z_/.test(String((e as NodeJS.ErrnoException).code))) throw e;
      throw new StowageError(
        'MANIFEST_INVALID',
        `The archive is gzip-compressed, and its compressed data is damaged or cut short (${(e as Error).message}).`,
        'Copy or download it again; nothing was imported.',
      );
    } finally {
      gunzip.destroy();
    }
    return;
  }
  const other = OTHERS.find((o) => startsWith(head, o.magic));
  if (other) {
    throw new StowageError(
      'MANIFEST_INVALID',
      `The archive is ${other.name}-compressed; Stowage reads tar archives, plain or gzip-compressed.`,
      `Decompress it first (${other.tool} FILE, or ${other.tool}c FILE | stowage import -); nothing was imported.`,
    );
  }
  yield* all();
}
