import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { resolveDockerfile } from '../../src/core/dockerfile';
import { isStowageError } from '../../src/core/errors';
import { redactUserinfo } from '../../src/core/redact';
import {
  credentialKey,
  familiarReference,
  formatReference,
  parsePullableReference,
  parseReference,
  registryHost,
  registryName,
} from '../../src/core/reference';
import { mirrorBaseUrl } from '../../src/core/registry/mirrors';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  const cases: [string, string][] = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['index.docker.io/library/alpine:1', 'docker.io/library/alpine:1'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/team/app:v1', 'localhost:5000/team/app:v1'],
    ['127.0.0.1:5000/team/app:v1', '127.0.0.1:5000/team/app:v1'],
    ['ghcr.io/owner/repo/sub:tag', 'ghcr.io/owner/repo/sub:tag'],
    [`alpine@${D}`, `docker.io/library/alpine@${D}`],
    [`alpine:3.20@${D}`, `docker.io/library/alpine:3.20@${D}`],
    ['my_org/my-app__x.y:1.0-rc_1', 'docker.io/my_org/my-app__x.y:1.0-rc_1'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
  ];
  for (const [input, expected] of cases) {
    test(`${input} → ${expected}`, () => assert.equal(formatReference(parseReference(input)), expected));
  }

  test('keeps tag and digest both', () => {
    const r = parseReference(`app:v1@${D}`);
    assert.equal(r.tag, 'v1');
    assert.equal(r.digest, D);
  });

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['Alpine', /lowercase|not a valid/],
    ['team/App', /lowercase/],
    ['alpine:', /tag "" is not valid/],
    ['alpine:-bad', /tag "-bad"/],
    [`alpine:${'x'.repeat(129)}`, /tag/],
    ['alpine@sha256:abc', /sha256:<64 hex>/],
    [`alpine@md5:${'a'.repeat(32)}`, /sha256/],
    [`alpine@sha256:${'A'.repeat(64)}`, /sha256/],
    ['alpine@sha256:../../etc/passwd', /sha256/],
    ['a//b', /empty component/],
    ['has space', /white space/],
    ['ghcr.io/', /empty/],
  ];
  for (const [input, why] of bad) {
    test(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'INVALID_REFERENCE');
          assert.match(e.message, why);
          assert.ok(e.message.includes(`"${input}"`), 'the message names the input');
          return true;
        },
      );
    });
  }

  test('the lowercase hint names the whole corrected reference', () => {
    assert.throws(
      () => parseReference('127.0.0.1:5555/Demo/Legacy:1.0'),
      (e: Error & { hint?: string }) => e.hint === 'Try "127.0.0.1:5555/demo/legacy:1.0".',
    );
    assert.throws(
      () => parseReference('team/App:V1'),
      (e: Error & { hint?: string }) => e.hint === 'Try "team/app:V1".',
    );
  });

  test('scratch is reserved for pulls', () => {
    assert.throws(() => parsePullableReference('scratch'), { code: 'RESERVED_NAME' });
    assert.throws(() => parsePullableReference('SCRATCH'), { code: 'RESERVED_NAME' });
  });

  test('docker hub host and credential key', () => {
    assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryHost('ghcr.io'), 'ghcr.io');
    assert.equal(credentialKey('docker.io'), 'https://index.docker.io/v1/');
    assert.equal(credentialKey('127.0.0.1:5000'), '127.0.0.1:5000');
  });

  test('a registry as typed by a user', () => {
    assert.equal(registryName('ghcr.io'), 'ghcr.io');
    assert.equal(registryName(' https://127.0.0.1:5000/ '), '127.0.0.1:5000');
    assert.equal(registryName('index.docker.io'), 'docker.io');
    assert.equal(registryName('localhost:5000'), 'localhost:5000');
    for (const bad of ['', 'ghcr.io/owner', 'bad!host', 'a b'])
      assert.equal(registryName(bad), undefined, bad);
  });

  test('familiar form', () => {
    assert.equal(familiarReference(parseReference('alpine:3')), 'alpine:3');
    assert.equal(familiarReference(parseReference('user/app')), 'user/app:latest');
    assert.equal(familiarReference(parseReference('ghcr.io/a/b:c')), 'ghcr.io/a/b:c');
  });
});

describe('credentials in a reference or URL are never quoted back', () => {
  test('redactUserinfo hides everything up to the last @ (but a digest), with or without a scheme', () => {
    const cases: [string, string][] = [
      ['https://user:pass@host/x', 'https://***@host/x'],
      ['user:pass@host/x', '***@host/x'],
      ['user:pass@host:5000', '***@host:5000'],
      ['token@registry.example/x', '***@registry.example/x'],
      // A password holding '@' or '/' (unencoded) is hidden whole.
      ['https://u:p@ss@host/x', 'https://***@host/x'],
      ['https://u:pa/ss@host/x', 'https://***@host/x'],
      [`https://u:p@host/x@${D}`, `https://***@host/x@${D}`],
      ['docker.io=https://u:p@mirror/', 'docker.io=https://***@mirror/'],
      // Not credentials: a digest, a short or unknown digest, a tag typed after @, no @ at all.
      [`alpine:3@${D}`, `alpine:3@${D}`],
      ['alpine@sha256:abc', 'alpine@sha256:abc'],
      ['alpine@latest', 'alpine@latest'],
      ['host/x', 'host/x'],
    ];
    for (const [input, shown] of cases) assert.equal(redactUserinfo(input), shown, input);
  });

  test('parseReference says credentials are no part of a reference, and shows none of them', () => {
    for (const input of [
      'https://user:s3cret@host.example/x',
      'user:s3cret@host.example:5000/x',
      'u:s3cret@h',
    ]) {
      assert.throws(
        () => parseReference(input),
        (e: unknown) => {
          assert.ok(isStowageError(e, 'INVALID_REFERENCE'), String(e));
          assert.ok(!e.detail.includes('s3cret') && e.message.includes('***@'), e.detail);
          assert.match(e.detail, /user name or password cannot be part of an image reference.*stowage login/);
          return true;
        },
      );
    }
    // Quoted for another reason (white space), still hidden.
    assert.throws(
      () => parseReference('https://user:s3 cret@host/x'),
      (e: unknown) => isStowageError(e) && !/s3|cret/.test(e.message) && /white space/.test(e.message),
    );
  });

  test('mirror URLs and a Dockerfile FROM: their errors hide the credentials', () => {
    for (const url of ['ftp://user:s3cret@m.example/', 'https://user:s3cret@m example/']) {
      assert.throws(
        () => mirrorBaseUrl(url, 'docker.io'),
        (e: unknown) =>
          isStowageError(e, 'USAGE') && !e.detail.includes('s3cret') && /\*\*\*@/.test(e.detail),
      );
    }
    const [from, copy] = resolveDockerfile(
      'FROM https://user:s3cret@h.example/x\nCOPY --from=user:s3cret@h.example/y / /\n',
    );
    for (const use of [from, copy]) {
      assert.equal(use?.ref, null);
      assert.ok(use?.error && !use.error.includes('s3cret') && use.error.includes('***@'), use?.error);
    }
  });
});
