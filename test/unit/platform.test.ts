import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPlatform, parsePlatform, platformMatches, platformRank } from '../../src/core/platform';
import { selectManifests } from '../../src/core/store';

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

test('CPU levels: a machine runs its own level and those below it, never above', () => {
  const rank = (wanted: string, candidate: string) => {
    const [os, architecture, variant] = candidate.split('/');
    return platformRank(parsePlatform(wanted), { os: os!, architecture: architecture!, variant });
  };
  // linux/amd64 is v1: an amd64/v3 build could crash with an illegal instruction on it.
  assert.equal(rank('linux/amd64', 'linux/amd64'), 0);
  assert.equal(rank('linux/amd64', 'linux/amd64/v1'), 0);
  assert.equal(rank('linux/amd64', 'linux/amd64/v3'), undefined);
  assert.deepEqual(
    ['v4', 'v3', 'v2', 'v1'].map((v) => rank('linux/amd64/v3', `linux/amd64/${v}`)),
    [undefined, 0, 1, 2],
  );
  // arm is v7, and falls back to v6, then v5 (containerd's order).
  assert.deepEqual(
    ['v8', 'v7', 'v6', 'v5'].map((v) => rank('linux/arm', `linux/arm/${v}`)),
    [undefined, 0, 1, 2],
  );
  assert.equal(rank('linux/arm64', 'linux/arm64/v8'), 0);
  assert.equal(rank('linux/arm64', 'linux/arm64/v9'), undefined);
  assert.ok((rank('linux/arm64/v9', 'linux/arm64/v8.2') ?? -1) > 0);
  // Elsewhere a variant must be equal, and none wanted takes any (the exact one first).
  assert.equal(rank('linux/riscv64', 'linux/riscv64'), 0);
  assert.equal(rank('linux/riscv64', 'linux/riscv64/rva22'), 1);
  assert.equal(rank('linux/riscv64/rva22', 'linux/riscv64'), undefined);
});

test('from an index: the closest platform, the first listed on a tie', () => {
  const entry = (platform: string, digest: string) => {
    const [os, architecture, variant] = platform.split('/');
    return {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${digest.repeat(64)}` as `sha256:${string}`,
      size: 1,
      platform: { os: os!, architecture: architecture!, ...(variant ? { variant } : {}) },
    };
  };
  const index = {
    manifests: [
      entry('linux/amd64/v3', 'a'),
      entry('linux/amd64', 'b'),
      entry('linux/amd64', 'c'),
      entry('linux/arm/v6', 'd'),
    ],
  };
  const pick = (p: string) => selectManifests(index, [parsePlatform(p)]).map((m) => m.digest[7]);
  assert.deepEqual(pick('linux/amd64'), ['b']);
  assert.deepEqual(pick('linux/amd64/v3'), ['a']);
  assert.deepEqual(pick('linux/amd64/v2'), ['b']);
  assert.deepEqual(pick('linux/arm'), ['d']);
  assert.deepEqual(pick('linux/arm64'), []);
});

test('rejects malformed platforms', () => {
  assert.throws(() => parsePlatform('linux//amd64'), { code: 'INVALID_PLATFORM' });
  assert.throws(() => parsePlatform('a/b/c/d'), { code: 'INVALID_PLATFORM' });
  assert.throws(() => parsePlatform(''), { code: 'INVALID_PLATFORM' });
});
