// The floor for any Node.js puller on this machine: GET the blobs with undici (all at once), sha256
// them, write them to files in 1 MiB writes and fsync, with nothing else (no store, locks,
// manifests, retries). Plain JS so that it starts like our bundled CLI does, without tsx.
// usage: node bench/node-floor.mjs OUTDIR URL...
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { request } from 'undici';

const [dir, ...urls] = process.argv.slice(2);
const MiB = 1024 * 1024;

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
