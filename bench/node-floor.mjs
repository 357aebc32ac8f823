// The floor for any Node.js puller on this machine: GET the blobs (all at once) with undici, as our
// client does, or with node:http (`--http`), sha256 them, write them to files in 1 MiB writes and
// fsync, with nothing else (no store, locks, manifests, retries). Plain JS so that it starts like
// our bundled CLI does, without tsx.
// usage: node bench/node-floor.mjs [--http] OUTDIR URL...
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { request as undiciRequest } from 'undici';

const args = process.argv.slice(2);
const useHttp = args[0] === '--http';
const [dir, ...urls] = useHttp ? args.slice(1) : args;
const MiB = 1024 * 1024;

/** node:http parses in C++ and hands out slices of the socket's buffers; undici copies through wasm. */
const request = useHttp
  ? (url) =>
      new Promise((resolve, reject) => {
        http.get(url, (res) => resolve({ statusCode: res.statusCode, body: res })).on('error', reject);
      })
  : undiciRequest;

async function fetchTo(url, file) {
  const hash = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    const res = await request(url);
    if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
    const buffer = Buffer.allocUnsafe(MiB);
    let held = 0;
    for await (const chunk of res.body) {
      hash.update(chunk);
      for (let from = 0; from < chunk.length; ) {
        const n = Math.min(MiB - held, chunk.length - from);
        chunk.copy(buffer, held, from, from + n);
        held += n;
        from += n;
        if (held === MiB) {
          await fh.write(buffer, 0, held);
          held = 0;
        }
      }
    }
    if (held) await fh.write(buffer, 0, held);
    await fh.sync();
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

await Promise.all(urls.map((u, i) => fetchTo(u, join(dir, `blob${i}`))));
