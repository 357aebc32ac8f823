// Property tests for the WWW-Authenticate parser (documented never to throw) and the Bearer realm
// check (only typed errors): arbitrary and structured headers, never anything else, never slow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bearerRealm, challengeScopes, parseChallenges } from '../../src/core/registry/challenge';
import { CALL_BOUND_MS, fuzzOptions, onlyTyped, pathological } from './fuzz-support';

const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,10}$/);
const value = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => JSON.stringify(s)),
  fc.string({ maxLength: 40 }).map((s) => `"${s}"`), // unescaped: may be unterminated or broken
  fc.stringMatching(/^[^\s,"]{0,30}$/),
  fc.webUrl().map((u) => `"${u}"`),
  fc.constantFrom('"file:///etc/passwd"', '"javascript:x"', '"http://u:p@h/t"', '""', '"/rel"'),
);
const param = fc
  .tuple(
    fc.oneof(token, fc.constantFrom('realm', 'service', 'scope', 'error', '__proto__', 'constructor')),
    value,
  )
  .map(([k, v]) => `${k}=${v}`);
const challenge = fc
  .tuple(
    fc.constantFrom('Bearer', 'Basic', 'bearer', 'BASIC', 'Negotiate', 'x'),
    fc.array(param, { maxLength: 5 }),
    fc.constantFrom(', ', ',', ' ,', ',,'),
  )
  .map(([s, ps, sep]) => `${s} ${ps.join(sep)}`);
const header = fc.oneof(
  fc.array(challenge, { minLength: 1, maxLength: 3 }).map((cs) => cs.join(', ')),
  fc.string({ maxLength: 200 }),
  fc.string({ unit: fc.constantFrom(...'Bearer realm=",\\ \t'), maxLength: 80 }),
);

function check(input: string | string[]) {
  const shown = JSON.stringify(input).slice(0, 80);
  const began = performance.now();
  let parsed: ReturnType<typeof parseChallenges> = [];
  assert.doesNotThrow(() => {
    parsed = parseChallenges(input);
  }, `parseChallenges(${shown})`);
  assert.ok(performance.now() - began < CALL_BOUND_MS, `parseChallenges(${shown}) is fast`);
  for (const c of parsed) {
    assert.equal(c.scheme, c.scheme.toLowerCase());
    assert.ok(Object.getPrototypeOf(c.params) === Object.prototype, 'params keep their prototype');
    challengeScopes(c);
    const realm = onlyTyped(() => bearerRealm(c, 'registry.test'), `bearerRealm(${shown})`);
    if (realm) {
      assert.ok(realm.protocol === 'https:' || realm.protocol === 'http:', `realm ${realm.href} is http(s)`);
      assert.ok(!realm.username && !realm.password, 'realm carries no credentials');
    }
  }
}

test('parseChallenges / bearerRealm: structured and arbitrary headers', () => {
  fc.assert(
    fc.property(fc.oneof(header, fc.array(header, { maxLength: 3 })), (h) => check(h)),
    fuzzOptions,
  );
});

test('parseChallenges: long pathological headers stay fast', () => {
  for (const h of pathological([
    '"',
    '\\',
    'a=',
    'a="',
    ',',
    ' ',
    'Bearer ',
    'x=,',
    'a=b ',
    '=',
    'ab==',
    'a b',
  ]))
    check(h);
  check(`Bearer realm="${'\\"'.repeat(50_000)}`);
  check(Array.from({ length: 2_000 }, () => 'Bearer realm="http://a/t",service="s"'));
});
