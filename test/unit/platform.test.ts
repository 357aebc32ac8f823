import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPlatform, parsePlatform, platformMatches } from '../../src/core/platform';

test('normalises platforms like containerd', () => {
  assert.equal(formatPlatform(parsePlatform('linux/arm64/v8')), 'linux/arm64');
  assert.equal(formatPlatform(parsePlatform('linux/arm')), 'linux/arm/v7');
  assert.equal(formatPlatform(parsePlatform('linux/x86_64')), 'linux/amd64');
  assert.equal(formatPlatform(parsePlatform('linux/aarch64')), 'linux/arm64');
  assert.equal(formatPlatform(parsePlatform('arm64')), 'linux/arm64');
  assert.equal(formatPlatform(parsePlatform('linux/arm/6')), 'linux/arm/v6');
});

test('matches variants', () => {
  assert.ok(
    platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }),
  );
  assert.ok(platformMatches(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
  assert.ok(
    !platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }),
  );
  assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
});

test('rejects malformed platforms', () => {
  assert.throws(() => parsePlatform('linux//amd64'), { code: 'INVALID_PLATFORM' });
  assert.throws(() => parsePlatform('a/b/c/d'), { code: 'INVALID_PLATFORM' });
  assert.throws(() => parsePlatform(''), { code: 'INVALID_PLATFORM' });
});
