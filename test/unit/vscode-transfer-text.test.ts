// What the editor offers around archives (src/vscode/workbench/transfer-text.ts has no vscode import).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ARCHIVE_FILTERS } from '../../src/vscode/workbench/transfer-text';

test('the Import dialog starts with a file type that shows .tar, .tar.gz and .tgz archives', () => {
  const [first, ...rest] = Object.entries(ARCHIVE_FILTERS);
  assert.ok(first);
  const [name, extensions] = first;
  assert.match(name, /\.tar\.gz/);
  // As the desktop dialogs match: macOS by the last extension, Windows and GTK by *.ext.
  for (const file of ['images.tar', 'images.tar.gz', 'IMAGES.TGZ', 'docker-save.tar']) {
    const last = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
    assert.ok(extensions.includes(last), `${file}: macOS`);
    assert.ok(
      extensions.some((e) => file.toLowerCase().endsWith(`.${e}`)),
      `${file}: *.ext`,
    );
  }
  assert.deepEqual(rest, [['All files', ['*']]]);
});
