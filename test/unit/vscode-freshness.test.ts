// The newer-image check's memory and verdicts (src/vscode/editor/freshness-store.ts and
// verdicts.ts have no vscode import): a tag that moved, a tag the registry does not have.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FreshnessStore, tagVerdict } from '../../src/vscode/editor/freshness-store';
import { checkSummary, newerText, shortDigest, unknownTagText } from '../../src/vscode/editor/verdicts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const TAG = 'docker.io/library/alpine:3.99';

test('a tag that moved: newer than the cached or pinned digest; the same digest says nothing', () => {
  const moved = { checkedAt: 1, digest: B };
  assert.deepEqual(tagVerdict(TAG, moved, { digest: A, pinned: false }), {
    kind: 'newer',
    tag: TAG,
    current: B,
    known: A,
    pinned: false,
  });
  assert.equal(tagVerdict(TAG, moved, { digest: A, pinned: true })?.kind, 'newer');
  assert.equal(tagVerdict(TAG, moved, { digest: B, pinned: false }), undefined);
  assert.equal(tagVerdict(TAG, moved, undefined), undefined, 'nothing cached: nothing is newer');
  assert.equal(tagVerdict(TAG, undefined, { digest: A, pinned: false }), undefined, 'never checked');
});

test('a tag the registry answered 404 for: unknown, unless a digest is pinned or a copy is cached', () => {
  const missing = { checkedAt: 42, unknown: true as const };
  assert.deepEqual(tagVerdict(TAG, missing, undefined), { kind: 'unknown', tag: TAG, checkedAt: 42 });
  // A pin pulls by digest without the tag; a cached copy is used without asking (and a pull that
  // found the tag after the check put it there).
  assert.equal(tagVerdict(TAG, missing, { digest: A, pinned: true }), undefined);
  assert.equal(tagVerdict(TAG, missing, { digest: A, pinned: false }), undefined);
});

test('the store keeps both kinds of answer across reloads, and reads files written before "unknown"', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-freshness-'));
  try {
    const store = new FreshnessStore(dir);
    await store.set(TAG, { checkedAt: 5, unknown: true });
    await store.set('r.lan/app:1', { checkedAt: 6, digest: A });
    const again = new FreshnessStore(dir);
    assert.deepEqual(await again.get(TAG), { checkedAt: 5, unknown: true });
    assert.deepEqual(await again.get('r.lan/app:1'), { checkedAt: 6, digest: A });
    // An older version's file (digest only), with entries this version does not know how to read.
    await writeFile(
      store.path,
      JSON.stringify({ 'r.lan/old:1': { checkedAt: 7, digest: B }, bad: { checkedAt: 'x' }, worse: null }),
    );
    const old = new FreshnessStore(dir);
    assert.deepEqual(await old.get('r.lan/old:1'), { checkedAt: 7, digest: B });
    assert.equal(await old.get('bad'), undefined);
    await writeFile(store.path, '{ not json');
    assert.equal(await new FreshnessStore(dir).get('r.lan/old:1'), undefined, 'a damaged file costs a check');
    assert.ok((await readFile(store.path, 'utf8')).length > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('what the check found, in words', () => {
  assert.equal(shortDigest(A), `sha256:${'a'.repeat(12)}…`);
  assert.equal(
    newerText({ tag: TAG, current: B, known: A, pinned: false }),
    `A newer image is available: ${TAG} now points to sha256:bbbbbbbbbbbb… (the cached one is sha256:aaaaaaaaaaaa…).`,
  );
  assert.match(newerText({ tag: TAG, current: B, known: A, pinned: true }), /\(the pinned one is/);
  assert.equal(
    unknownTagText({ tag: TAG, checkedAt: 1 }),
    'The registry does not have alpine:3.99: docker.io answered 404 Not Found for that tag when last checked.',
  );
  assert.equal(
    unknownTagText({ tag: '127.0.0.1:5000/demo/app:1.99', checkedAt: 1 }),
    'The registry does not have 127.0.0.1:5000/demo/app:1.99: 127.0.0.1:5000 answered 404 Not Found for that tag when last checked.',
  );
});

test('Check for Newer Images Now says what it found', () => {
  assert.equal(checkSummary(3, [], []), 'Checked 3 tags: the cached and pinned images are current.');
  assert.equal(checkSummary(1, [], []), 'Checked 1 tag: the cached and pinned images are current.');
  assert.equal(
    checkSummary(4, ['r.lan/app:1'], ['r.lan/app:9', 'r.lan/db:2']),
    'Checked 4 tags. A newer image is in the registry for r.lan/app:1: "Pull the newer image" is offered on its FROM line. ' +
      'The registry does not have r.lan/app:9, r.lan/db:2: see Problems, where "Browse Tags…" lists the tags it has.',
  );
  assert.match(checkSummary(2, ['a:1', 'b:1'], []), /on their FROM lines\.$/);
});
