import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { mergeMirrorSettings, mirrorBaseUrl, mirrorsFromDaemonConfig } from '../../src/core/registry/mirrors';

describe('mirrorBaseUrl: the forms users write', () => {
  const cases: [string, string][] = [
    ['https://mirror.example', 'https://mirror.example/'],
    ['https://mirror.example/', 'https://mirror.example/'],
    ['mirror.example:5000', 'https://mirror.example:5000/'],
    ['http://10.0.0.5:5000', 'http://10.0.0.5:5000/'],
    ['https://art.example/api/docker/hub-remote/', 'https://art.example/api/docker/hub-remote'],
    ['https://art.example/api/docker/hub-remote/v2/', 'https://art.example/api/docker/hub-remote'],
    ['https://mirror.example/v2', 'https://mirror.example/'],
    ['  HTTPS://Mirror.Example  ', 'https://mirror.example/'],
    ['[::1]:5000', 'https://[::1]:5000/'],
  ];
  for (const [input, want] of cases) {
    test(`${input.trim()} → ${want}`, () => assert.equal(mirrorBaseUrl(input, 'docker.io').href, want));
  }
  test('refuses what cannot be a mirror, as usage errors', () => {
    for (const bad of [
      'ftp://mirror.example',
      'https://user:pw@mirror.example',
      'https://m.example/?x=1',
      'https://m.example/#f',
      'http://',
    ]) {
      assert.throws(
        () => mirrorBaseUrl(bad, 'docker.io'),
        (e: unknown) => isStowageError(e, 'USAGE'),
        bad,
      );
    }
    assert.throws(
      () => mirrorBaseUrl('https://user:secret@m.example', 'docker.io'),
      (e: unknown) => isStowageError(e) && !e.detail.includes('secret'),
      'the password is not echoed',
    );
  });
});

describe('mirrorsFromDaemonConfig (docker daemon.json)', () => {
  test('registry-mirrors apply to Docker Hub, in order; insecure-registries to their hosts', () => {
    assert.deepEqual(
      mirrorsFromDaemonConfig({
        'registry-mirrors': ['https://mirror.gcr.io', 'http://10.0.0.5:5000/'],
        'insecure-registries': ['10.0.0.5:5000', 'http://registry.lan/'],
        'log-driver': 'json-file',
      }),
      {
        mirrors: { 'docker.io': ['https://mirror.gcr.io', 'http://10.0.0.5:5000/'] },
        insecureRegistries: ['10.0.0.5:5000', 'registry.lan'],
      },
    );
    assert.deepEqual(mirrorsFromDaemonConfig({}), { mirrors: {}, insecureRegistries: [] });
  });
  test('validates like dockerd: mirrors need a scheme; lists must be lists of strings', () => {
    const usage = (e: unknown) => isStowageError(e, 'USAGE');
    assert.throws(() => mirrorsFromDaemonConfig({ 'registry-mirrors': ['mirror.example'] }), usage);
    assert.throws(() => mirrorsFromDaemonConfig({ 'registry-mirrors': 'https://m.example' }), usage);
    assert.throws(() => mirrorsFromDaemonConfig({ 'insecure-registries': [5000] }), usage);
    assert.throws(() => mirrorsFromDaemonConfig([]), usage);
    assert.throws(() => mirrorsFromDaemonConfig(null), usage);
  });
  test("merging keeps each source's order, earlier sources first, without duplicates", () => {
    assert.deepEqual(
      mergeMirrorSettings(
        { mirrors: { 'docker.io': ['https://a'] }, insecureRegistries: ['x:1'] },
        {
          mirrors: { 'Docker.io': ['https://b', 'https://a'], 'ghcr.io': ['https://c'] },
          insecureRegistries: ['x:1', 'y'],
        },
      ),
      {
        mirrors: { 'docker.io': ['https://a', 'https://b'], 'ghcr.io': ['https://c'] },
        insecureRegistries: ['x:1', 'y'],
      },
    );
  });
});
