// Child process for the store concurrency tests (spawned with `node --import tsx`).
// usage: store-child.ts ingest DIR FILE [--wait] [--partial N] | refs DIR PREFIX N | hold DIR
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Store } from '../../src/core/store';
import { sha256 } from './store-fixture';

const [mode, dir, ...rest] = process.argv.slice(2);
const say = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};
const lines = createInterface({ input: process.stdin });
const nextLine = () => new Promise<string>((resolve) => lines.once('line', resolve));

async function main(): Promise<void> {
  const store = await Store.open(dir!);
  if (mode === 'ingest') {
    const content = readFileSync(rest[0]!);
    const wait = rest.includes('--wait');
    const p = rest.indexOf('--partial');
    const partial = p >= 0 ? Number(rest[p + 1]) : undefined;
    say({ event: 'started' });
    const ing = await store.ingest(sha256(content), content.length);
    if (ing.present) return say({ event: 'result', result: 'present' });
    say({ event: 'acquired', offset: ing.offset });
    if (wait) await nextLine();
    const end = partial ?? content.length;
    for (let at = ing.offset; at < end; at += 65536)
      await ing.write(content.subarray(at, Math.min(end, at + 65536)));
    if (partial !== undefined) {
      say({ event: 'wrote', bytes: end });
      if (rest.includes('--hang')) await new Promise(() => {});
      await ing.close();
      return say({ event: 'result', result: 'closed' });
    }
    await ing.commit();
    return say({ event: 'result', result: 'committed' });
  }
  if (mode === 'refs') {
    const [prefix, n] = rest;
    for (let i = 0; i < Number(n); i++) {
      await store.setReference(`${prefix}:${i}`, {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: sha256(`${prefix}${i}`),
        size: i,
      });
    }
    return say({ event: 'result', result: 'done' });
  }
  if (mode === 'hold') {
    await store.withLock(async () => {
      say({ event: 'locked' });
      await new Promise(() => {});
    });
  }
}

main().then(
  () => {
    lines.close();
  },
  (e) => {
    say({ event: 'error', code: e?.code, message: String(e?.message ?? e) });
    process.exit(1);
  },
);
