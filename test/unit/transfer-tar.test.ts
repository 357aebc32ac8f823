// The tar writer/reader used by export/import, checked against GNU tar (the reference peer).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isStowageError } from '../../src/core/errors';
import { tarBytes } from '../../src/core/transfer/compression';
import { END_OF_ARCHIVE, entryHeader, padding, readTar } from '../../src/core/transfer/tar';

const dir = mkdtempSync(join(tmpdir(), 'stowage-tar-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function* chunks(buf: Buffer, size = 7): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

function archive(files: [string, Buffer][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of files) parts.push(entryHeader(name, data.length), data, padding(data.length));
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

async function entries(buf: Buffer, chunkSize?: number) {
  const out: { name: string; type: string; data: Buffer }[] = [];
  for await (const e of readTar(chunks(buf, chunkSize))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    out.push({ name: e.name, type: e.type, data: Buffer.concat(parts) });
  }
  return out;
}

function gnuTar(args: string[], input?: Buffer) {
  return spawnSync('tar', args, { input, cwd: dir, encoding: 'buffer' });
}

describe('tar writer', () => {
  test('GNU tar extracts what we write, byte for byte, including a 141-character pax path', () => {
    const long = `blobs/sha512/${'a'.repeat(128)}`;
    const files: [string, Buffer][] = [
      ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
      [long, Buffer.from('long name body')],
      ['blobs/sha256/empty', Buffer.alloc(0)],
      ['exact-block', Buffer.alloc(512, 1)],
    ];
    const out = join(dir, 'x');
    mkdirSync(out);
    const r = gnuTar(['-x', '-C', out, '-f', '-'], archive(files));
    assert.equal(r.status, 0, r.stderr.toString());
    for (const [name, data] of files) {
      const got = spawnSync('cat', [join(out, name)]).stdout;
      assert.deepEqual(got, data, name);
    }
  });

  test('sizes over 8 GiB go into a pax size record that GNU tar and our reader both honour', async () => {
    const size = 10 * 2 ** 30 + 3;
    const header = entryHeader('blobs/sha256/huge', size);
    assert.equal(header.length, 3 * 512, 'pax header + pax data block + ustar header');
    const listing = gnuTar(['-tv', '-f', '-'], header);
    assert.match(listing.stdout.toString(), new RegExp(`\\b${size}\\b.*blobs/sha256/huge`));
    for await (const e of readTar(chunks(header, 512))) {
      assert.equal(e.name, 'blobs/sha256/huge');
      assert.equal(e.size, size);
      break;
    }
  });
});

describe('tar reader', () => {
  test('reads every entry whatever the chunking, and skips bodies left unread', async () => {
    const files: [string, Buffer][] = [
      ['a', Buffer.from('first')],
      ['b', Buffer.alloc(3000, 7)],
      ['c', Buffer.from('third')],
    ];
    const buf = archive(files);
    for (const size of [1, 7, 512, 100_000]) {
      const got = await entries(buf, size);
      assert.deepEqual(
        got.map((e) => [e.name, e.data.length]),
        files.map(([n, d]) => [n, d.length]),
      );
    }
    const names: string[] = [];
    for await (const e of readTar(chunks(buf, 100))) {
      names.push(e.name);
      for await (const _ of e.body) break; // read one chunk, abandon the rest
    }
    assert.deepEqual(names, ['a', 'b', 'c']);
  });

  test('reads GNU long names, base-256 sizes, ./ prefixes and directories from GNU tar', async () => {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'blobs', 'sha256'), { recursive: true });
    const long = `${'d'.repeat(120)}.bin`;
    writeFileSync(join(src, 'blobs', 'sha256', long), 'gnu long name');
    writeFileSync(join(src, 'index.json'), '{}');
    const gnu = gnuTar(['--format=gnu', '-c', '-f', '-', '-C', src, '.']);
    assert.equal(gnu.status, 0);
    const got = await entries(gnu.stdout as Buffer);
    const file = got.find((e) => e.name.endsWith('.bin'))!;
    assert.equal(file.name, `blobs/sha256/${long}`);
    assert.equal(file.data.toString(), 'gnu long name');
    assert.ok(got.some((e) => e.name === 'index.json' && e.data.toString() === '{}'));
    assert.ok(got.some((e) => e.type === '5'));

    // A base-256 size (what GNU tar writes past the octal limit), on a small entry.
    const h = entryHeader('b256', 5);
    h.fill(0, 124, 136);
    h[124] = 0x80;
    h[135] = 5;
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0`, 148, 'binary');
    const buf = Buffer.concat([h, Buffer.from('12345'), padding(5), END_OF_ARCHIVE]);
    assert.deepEqual(await entries(buf), [{ name: 'b256', type: '0', data: Buffer.from('12345') }]);
  });

  test('damage is reported as an invalid archive, never as a silent short read', async () => {
    const buf = archive([['a', Buffer.alloc(2000, 1)]]);
    const reject = async (b: Buffer, re: RegExp) =>
      assert.rejects(entries(b), (e: unknown) => isStowageError(e, 'MANIFEST_INVALID') && re.test(e.message));
    await reject(buf.subarray(0, 1000), /ends in the middle/);
    await reject(buf.subarray(0, 512 * 5), /end-of-archive/);
    const bad = Buffer.from(buf);
    bad[10] = 'z'.charCodeAt(0);
    await reject(bad, /checksum/);
  });
});

describe('compressed archives', () => {
  const tar = archive([
    ['index.json', Buffer.from('{}')],
    ['blob', Buffer.alloc(100_000, 7)],
  ]);
  const read = async (source: AsyncIterable<Uint8Array>) => {
    const out: { name: string; data: Buffer }[] = [];
    for await (const e of readTar(tarBytes(source))) {
      const parts: Buffer[] = [];
      for await (const c of e.body) parts.push(c);
      out.push({ name: e.name, data: Buffer.concat(parts) });
    }
    return out;
  };

  test('gzip (as GNU tar -z writes it) is read in any chunking; a plain tar passes through', async () => {
    const gz = gnuTar(['-czf', '-', '-C', dir, '.']).stdout as Buffer;
    assert.ok(gz[0] === 0x1f && gz[1] === 0x8b);
    assert.ok((await read(chunks(gz, 3))).length > 0);
    for (const source of [chunks(gzipSync(tar), 1), chunks(tar, 5)]) {
      const got = await read(source);
      assert.deepEqual(
        got.map((e) => [e.name, e.data.length]),
        [
          ['index.json', 2],
          ['blob', 100_000],
        ],
      );
    }
  });

  test('gzip cut short is damage, typed; a failing source keeps its own error', async () => {
    const gz = gzipSync(tar);
    await assert.rejects(
      read(chunks(gz.subarray(0, gz.length - 20), 64)),
      (e: unknown) => isStowageError(e, 'MANIFEST_INVALID') && /gzip-compressed.*cut short/.test(e.message),
    );
    async function* failing() {
      yield gz.subarray(0, 100);
      throw Object.assign(new Error('disk read failed'), { code: 'EIO' });
    }
    await assert.rejects(read(failing()), { code: 'EIO' });
  });

  test('zstd, xz and bzip2 are named with the command that decompresses them', async () => {
    for (const [magic, name] of [
      [[0x28, 0xb5, 0x2f, 0xfd], 'zstd'],
      [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'xz'],
      [[0x42, 0x5a, 0x68, 0x39], 'bzip2'],
    ] as const) {
      await assert.rejects(
        read(chunks(Buffer.concat([Buffer.from(magic), Buffer.alloc(600)]), 2)),
        (e: unknown) =>
          isStowageError(e, 'MANIFEST_INVALID') &&
          e.message.includes(`${name}-compressed`) &&
          e.detail.includes(`${name} -d`),
      );
    }
  });
});
