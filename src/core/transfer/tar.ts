import { StowageError } from '../errors';

/**
 * Just enough tar for OCI layout archives, streamed both ways: ustar headers, with a pax extended
 * header (`path`, `size`) when a name is over 100 bytes or a size over the 8 GiB ustar limit. The
 * reader also takes GNU long names and base-256 sizes (what other tools write for big files).
 */

export const BLOCK = 512;
/** Largest size the 11 octal digits of a ustar header hold: 8 GiB − 1. */
const USTAR_MAX_SIZE = 0o77777777777;
/** Fixed mtime for reproducible archives (2000-01-01, as skopeo's oci-archive is not time-sensitive). */
const MTIME = 946_684_800;

export interface TarEntryHeader {
  name: string;
  size: number;
  /** '0' regular file, '5' directory, others as the archive says. */
  type: string;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0');
}

function rawHeader(name: string, size: number, type: string, mode: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(MTIME, 12), 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257, 'binary');
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${octal(sum, 7)}\0`, 148, 'binary');
  return h;
}

/** One pax record: `"<len> key=value\n"`, where len counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len++;
  return `${len}${body}`;
}

/** Header block(s) for a file or directory: a pax header first when ustar cannot hold it. */
export function entryHeader(name: string, size: number, type: '0' | '5' = '0'): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid tar entry size ${size}`);
  const records: string[] = [];
  if (Buffer.byteLength(name) > 100) records.push(paxRecord('path', name));
  if (size > USTAR_MAX_SIZE) records.push(paxRecord('size', String(size)));
  const mode = type === '5' ? 0o755 : 0o644;
  const main = rawHeader(
    Buffer.byteLength(name) > 100 ? name.slice(-90) : name,
    size > USTAR_MAX_SIZE ? 0 : size,
    type,
    mode,
  );
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(''));
  return Buffer.concat([
    rawHeader('PaxHeaders/entry', pax.length, 'x', 0o644),
    pax,
    padding(pax.length),
    main,
  ]);
}

/** Zero bytes that pad `size` up to a whole block. */
export function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

// ---- reading ----

function corrupt(why: string): StowageError {
  return new StowageError('MANIFEST_INVALID', `The archive is not a valid tar file: ${why}.`);
}

function cstring(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end < 0 ? b.length : end).toString('utf8');
}

/** A numeric header field: octal text, or GNU base-256 (high bit of the first byte set). */
function numberField(b: Buffer, what: string): number {
  if (b[0]! & 0x80) {
    if (b[0] === 0xff) throw corrupt(`negative ${what}`);
    let n = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) {
      n = n * 256 + b[i]!;
      if (!Number.isSafeInteger(n)) throw corrupt(`${what} too large`);
    }
    return n;
  }
  const text = cstring(b).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw corrupt(`bad ${what} field "${text.slice(0, 20)}"`);
  return Number.parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = numberField(h.subarray(148, 156), 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

function parsePax(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const sp = rest.indexOf(' ');
    const len = Number(rest.slice(0, sp));
    if (sp <= 0 || !Number.isSafeInteger(len) || len <= sp) throw corrupt('bad pax header');
    // len counts bytes; pax values here are ASCII (paths we care about are digests).
    const record = Buffer.from(rest).subarray(0, len).toString('utf8');
    const kv = record.slice(sp + 1, -1);
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
    rest = Buffer.from(rest).subarray(len).toString('utf8');
  }
  return out;
}

/** Reads exact byte counts from an async stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private held = 0;
  private done = false;
  private readonly it: AsyncIterator<Uint8Array>;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    if (b.length > 0) {
      this.chunks.push(b);
      this.held += b.length;
    }
    return true;
  }

  /** Exactly n bytes, or undefined at a clean end of input (nothing held). */
  async exact(n: number): Promise<Buffer | undefined> {
    while (this.held < n) {
      if (!(await this.fill())) {
        if (this.held === 0) return undefined;
        throw corrupt('it ends in the middle of an entry');
      }
    }
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.held = rest.length;
    return out;
  }

  /** Streams the next n bytes in chunks as they arrive. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.held === 0 && !(await this.fill())) throw corrupt('it ends in the middle of an entry');
      while (this.chunks.length > 0 && left > 0) {
        const c = this.chunks[0]!;
        if (c.length <= left) {
          this.chunks.shift();
          this.held -= c.length;
          left -= c.length;
          yield c;
        } else {
          this.chunks[0] = c.subarray(left);
          this.held -= left;
          const part = c.subarray(0, left);
          left = 0;
          yield part;
        }
      }
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) {
      // discard
    }
  }
}

export interface TarEntry extends TarEntryHeader {
  /** The entry's data; must be consumed (or skipped with `for await`) before the next entry. */
  body: AsyncIterable<Buffer>;
}

/**
 * Iterates the entries of a tar stream. Each entry's body must be read to its end (or abandoned by
 * breaking out of the outer loop) before asking for the next entry.
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source);
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  for (;;) {
    const h = await reader.exact(BLOCK);
    if (!h) throw corrupt('it ends without the end-of-archive blocks');
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) throw corrupt('a header checksum is wrong (damaged or not a tar file)');
    const type = String.fromCharCode(h[156]!) === '\0' ? '0' : String.fromCharCode(h[156]!);
    let size = numberField(h.subarray(124, 136), 'size');
    const magic = h.subarray(257, 263).toString('binary');
    const prefix = magic.startsWith('ustar') ? cstring(h.subarray(345, 500)) : '';
    let name = cstring(h.subarray(0, 100));
    if (prefix) name = `${prefix}/${name}`;

    if (type === 'x' || type === 'g' || type === 'L') {
      if (size > 1024 * 1024) throw corrupt('an extended header is too large');
      const data = size > 0 ? ((await reader.exact(size)) ?? Buffer.alloc(0)) : Buffer.alloc(0);
      await reader.skip(padding(size).length);
      if (type === 'x') pax = { ...pax, ...parsePax(data.toString('utf8')) };
      else if (type === 'L') longName = cstring(data);
      continue; // 'g' (global) carries nothing we use
    }
    if (longName !== undefined) name = longName;
    if (pax.path !== undefined) name = pax.path;
    if (pax.size !== undefined) {
      if (!/^\d+$/.test(pax.size) || !Number.isSafeInteger(Number(pax.size))) throw corrupt('bad pax size');
      size = Number(pax.size);
    }
    pax = {};
    longName = undefined;
    // Directories and links carry no data whatever their size field says.
    const dataSize =
      type === '0' || type === '7' ? size : type === '5' || type === '1' || type === '2' ? 0 : size;
    let taken = 0;
    const body = (async function* () {
      for await (const chunk of reader.stream(dataSize - taken)) {
        taken += chunk.length;
        yield chunk;
      }
    })();
    yield { name: name.replace(/^(\.\/)+/, ''), size: dataSize, type, body };
    // Whatever the consumer left unread (it may have stopped early).
    await reader.skip(dataSize - taken);
    await reader.skip(padding(dataSize).length);
  }
}
