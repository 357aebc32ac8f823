// Long lists a page at a time (src/vscode/workbench/pager.ts and tag-list.ts have no vscode
// import): the Registries view's tags and catalog, and Browse Tags' picker.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pager } from '../../src/vscode/workbench/pager';
import { naturalOrder, TagList } from '../../src/vscode/workbench/tag-list';

/** What Distribution answers tags/list with when it ignores `n`: every tag, in one page. */
const HUGE = 200_000;
const hugePage = () => Array.from({ length: HUGE }, (_, i) => `1.${Math.floor(i / 1000)}.${i % 1000}`);

test('a page of 200,000 tags (a registry that ignores n) is shown 50 at a time, sorted, with the total', async () => {
  const page = hugePage().reverse();
  let requests = 0;
  const pager = new Pager<string>(
    async function* () {
      requests++;
      yield page;
    },
    50,
    naturalOrder,
  );
  const first = await pager.more();
  assert.deepEqual(first.slice(0, 3), ['1.0.0', '1.0.1', '1.0.2']);
  assert.equal(first.length, 50);
  assert.equal(pager.total(), HUGE);
  assert.equal(requests, 1);
  const second = await pager.more();
  assert.deepEqual(second.slice(0, 2), ['1.0.50', '1.0.51']);
  assert.equal(pager.items().length, 100);
  assert.equal(pager.hasMore(), true);
  // A filter that matches near the end walks the buffer without copying it per item.
  const tail = await pager.more((t) => t.startsWith('1.199.'));
  assert.equal(tail.length, 50);
  assert.equal(tail[0], '1.199.0');
});

test('a huge page that arrives after the first is buffered as well', async () => {
  const pager = new Pager<string>(async function* () {
    yield Array.from({ length: 50 }, (_, i) => `a${i}`);
    yield hugePage();
  }, 50);
  assert.equal((await pager.more()).length, 50);
  assert.deepEqual(await pager.more(), hugePage().slice(0, 50));
  assert.equal(pager.total(), 50 + HUGE, 'a page larger than asked for was followed to the end');
  pager.reset();
  assert.equal(pager.items().length, 0);
  assert.deepEqual(
    await pager.more(),
    Array.from({ length: 50 }, (_, i) => `a${i}`),
  );
});

test('Browse Tags keeps all 200,000 tags of one page; the picker gets a bounded, filtered list', () => {
  const list = new TagList();
  list.add(hugePage().reverse());
  list.add(['latest']);
  assert.equal(list.size, HUGE + 1);
  const shown = list.matching('', 10_000);
  assert.equal(shown.length, 10_000);
  assert.deepEqual(shown.slice(0, 3), ['1.0.0', '1.0.1', '1.0.2'], 'natural order: 1.0.2 before 1.0.10');
  // The filter looks at every tag, not only the ones shown before it was typed.
  assert.deepEqual(list.matching('LATEST', 10_000), ['latest']);
  assert.deepEqual(list.matching('1.199.99', 5), [
    '1.199.99',
    '1.199.990',
    '1.199.991',
    '1.199.992',
    '1.199.993',
  ]);
  assert.equal(list.matching('1.199.', 10_000).length, 1000);
});

test('Browse Tags: tags arriving page by page are shown in natural order, duplicates once', () => {
  const list = new TagList();
  list.add(['v10', 'v2']);
  assert.deepEqual(list.matching('', 100), ['v2', 'v10']);
  list.add(['v1', 'v2', 'latest']);
  assert.deepEqual(list.matching('', 100), ['latest', 'v1', 'v2', 'v10']);
  assert.deepEqual(list.matching('', 2), ['latest', 'v1']);
  assert.deepEqual(list.matching(' V1 ', 100), ['v1', 'v10'], 'trimmed, any case, anywhere in the tag');
});
