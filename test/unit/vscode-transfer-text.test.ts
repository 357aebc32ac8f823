// What the editor says after an export and when a push finds part of an image missing
// (src/vscode/workbench/transfer-text.ts has no vscode import).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StowageError } from '../../src/core/errors';
import type { ExportedImage, ExportResult } from '../../src/core/transfer/export';
import { ARCHIVE_FILTERS, exportSummary, partialPushFailure } from '../../src/vscode/workbench/transfer-text';

const DIGEST = `sha256:${'a'.repeat(64)}` as const;

function exported(images: Partial<ExportedImage>[]): ExportResult {
  return {
    images: images.map((i) => ({
      name: 'docker.io/library/alpine:3.20',
      digest: DIGEST,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      platforms: ['linux/amd64'],
      missingPlatforms: [],
      ...i,
    })),
    blobs: 3,
    blobBytes: 3_300_000,
    archiveBytes: 3_400_000,
  };
}

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

test('export of a whole single-platform image: how many, where, how big; nothing to act on', () => {
  const { text, actions } = exportSummary(exported([{ dockerPlatform: 'linux/amd64' }]), 'images.tar');
  assert.equal(text, 'Exported 1 image to images.tar (3.4 MB).');
  assert.deepEqual(actions, []);
});

test('export says which platforms were left out (not cached) and which one docker load takes', () => {
  const result = exported([
    {
      platforms: ['linux/amd64', 'linux/arm64'],
      missingPlatforms: ['linux/arm/v7', 'linux/s390x'],
      dockerPlatform: 'linux/amd64',
    },
    { name: '127.0.0.1:5000/team/app:1.0', platforms: ['linux/arm64'], dockerPlatform: 'linux/arm64' },
  ]);
  const { text, actions } = exportSummary(result, 'out/images.tar');
  assert.equal(
    text,
    'Exported 2 images to out/images.tar (3.4 MB). alpine:3.20 holds linux/amd64, linux/arm64 ' +
      '(docker load takes linux/amd64); left out, not cached: linux/arm/v7, linux/s390x. ' +
      'For a complete archive, pull all platforms, then export again.',
  );
  assert.doesNotMatch(text, /--all-platforms/, 'no CLI flags in the editor');
  // One button pulls every platform of the images that lack some (the other one is whole).
  assert.deepEqual(actions, [
    {
      title: 'Pull All Platforms',
      command: 'stowage.pullImage',
      args: [[{ reference: 'docker.io/library/alpine:3.20', allPlatforms: true }]],
    },
  ]);
});

test('export: a multi-platform archive names the platform docker load takes even when nothing is missing', () => {
  const result = exported([{ platforms: ['linux/amd64', 'linux/arm64'], dockerPlatform: 'linux/arm64' }]);
  assert.equal(
    exportSummary(result, 'a.tar').text,
    'Exported 1 image to a.tar (3.4 MB). alpine:3.20 holds linux/amd64, linux/arm64 (docker load takes linux/arm64).',
  );
});

test('export: names from an archive are shown as text, not as links', () => {
  const result = exported([
    { name: '[x](command:workbench.action.terminal.sendSequence)', missingPlatforms: ['linux/arm64'] },
  ]);
  const { text, actions } = exportSummary(result, 'a.tar');
  assert.doesNotMatch(text, /\]\(/);
  assert.deepEqual(actions, [], 'a name no pull can fetch offers no pull');
});

test('push of a partly cached index: the core message, the editor’s way out, and buttons that do it', () => {
  const error = new StowageError(
    'NOT_CACHED',
    'The cache does not hold all of docker.io/library/alpine:3.20 (it has linux/amd64 of linux/amd64, linux/arm64); a registry refuses an index whose images are missing.',
    'Pull every platform first (stowage pull --all-platforms alpine:3.20), or push one: --platform linux/amd64.',
  );
  const { text, actions } = partialPushFailure(error, {
    source: 'docker.io/library/alpine:3.20',
    destination: 'registry.lan/team/alpine:3.20',
    cached: ['linux/amd64'],
  });
  assert.match(
    text,
    /^The cache does not hold all of docker\.io\/library\/alpine:3\.20 \(it has linux\/amd64 of/,
  );
  assert.doesNotMatch(text, /--all-platforms|--platform|stowage pull/, 'the CLI’s hint is not the editor’s');
  assert.match(
    text,
    /Pull All Platforms and Push fetches the rest \(every platform and attestation the index lists\), then pushes; Push linux\/amd64 Only pushes that platform’s image alone\.$/,
  );
  assert.deepEqual(actions, [
    {
      title: 'Pull All Platforms and Push',
      command: 'stowage.pushImage',
      args: [
        { reference: 'docker.io/library/alpine:3.20', allPlatforms: true },
        'registry.lan/team/alpine:3.20',
      ],
    },
    {
      title: 'Push linux/amd64 Only',
      command: 'stowage.pushImage',
      args: [
        { reference: 'docker.io/library/alpine:3.20', platform: 'linux/amd64' },
        'registry.lan/team/alpine:3.20',
      ],
    },
    { title: 'Show Log', command: 'stowage.showLog' },
  ]);
});

test('push of a partly cached index no registry can complete (an archive’s name): only one platform', () => {
  const error = new StowageError('NOT_CACHED', 'The cache does not hold all of v9.', 'stowage pull v9');
  const { text, actions } = partialPushFailure(error, {
    source: 'v9!',
    destination: 'registry.lan/v9:1',
    cached: ['linux/arm64'],
  });
  assert.equal(
    text,
    'The cache does not hold all of v9. Push linux/arm64 Only pushes that platform’s image alone, or import an archive that holds all of it.',
  );
  assert.deepEqual(
    actions.map((a) => a.title),
    ['Push linux/arm64 Only', 'Show Log'],
  );
  // Nothing of it cached whole: nothing to push alone either.
  const none = partialPushFailure(error, { source: 'v9!', destination: 'registry.lan/v9:1', cached: [] });
  assert.equal(none.text, 'The cache does not hold all of v9. Import an archive that holds all of it.');
});
