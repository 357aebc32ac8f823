import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isStowageError } from '../../src/core/errors';
import {
  bearerRealm,
  type Challenge,
  challengeScopes,
  findChallenge,
  parseChallenges,
} from '../../src/core/registry/challenge';

const c = (scheme: string, params: Record<string, string> = {}, token68?: string): Challenge => ({
  scheme,
  params,
  ...(token68 !== undefined ? { token68 } : {}),
});

describe('parseChallenges', () => {
  const cases: [string, string | string[] | undefined, Challenge[]][] = [
    [
      'Docker Hub',
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      [
        c('bearer', {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull',
        }),
      ],
    ],
    [
      'GHCR',
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
      [
        c('bearer', {
          realm: 'https://ghcr.io/token',
          service: 'ghcr.io',
          scope: 'repository:user/image:pull',
        }),
      ],
    ],
    [
      'Distribution token auth with an error',
      'Bearer realm="http://127.0.0.1:5001/auth",service="Docker registry",scope="repository:team/app:pull",error="insufficient_scope"',
      [
        c('bearer', {
          realm: 'http://127.0.0.1:5001/auth',
          service: 'Docker registry',
          scope: 'repository:team/app:pull',
          error: 'insufficient_scope',
        }),
      ],
    ],
    [
      'Quay',
      'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
      [c('bearer', { realm: 'https://quay.io/v2/auth', service: 'quay.io' })],
    ],
    [
      'Harbor, with a push scope',
      'Bearer realm="https://harbor.example/service/token",service="harbor-registry",scope="repository:lib/app:pull,push"',
      [
        c('bearer', {
          realm: 'https://harbor.example/service/token',
          service: 'harbor-registry',
          scope: 'repository:lib/app:pull,push',
        }),
      ],
    ],
    [
      'ECR (Basic with a URL realm)',
      'Basic realm="https://123.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
      [c('basic', { realm: 'https://123.dkr.ecr.us-east-1.amazonaws.com/', service: 'ecr.amazonaws.com' })],
    ],
    ['Distribution htpasswd', 'Basic realm="Registry Realm"', [c('basic', { realm: 'Registry Realm' })]],
    [
      'any parameter order, odd case, white space',
      '  BEARER   Scope = "repository:a:pull" ,SERVICE="s",  Realm="https://r.example/t"  ',
      [c('bearer', { scope: 'repository:a:pull', service: 's', realm: 'https://r.example/t' })],
    ],
    [
      'comma inside a quoted scope',
      'Bearer realm="https://r/t",scope="repository:a:pull,push"',
      [c('bearer', { realm: 'https://r/t', scope: 'repository:a:pull,push' })],
    ],
    [
      'several scopes in one parameter',
      'Bearer realm="https://r/t",scope="repository:a:pull repository:b:pull,push"',
      [c('bearer', { realm: 'https://r/t', scope: 'repository:a:pull repository:b:pull,push' })],
    ],
    [
      'repeated scope parameters are joined',
      'Bearer realm="https://r/t",scope="repository:a:pull",scope="repository:b:pull"',
      [c('bearer', { realm: 'https://r/t', scope: 'repository:a:pull repository:b:pull' })],
    ],
    [
      'other duplicates: the first wins',
      'Bearer realm="https://good/t",realm="https://evil/t"',
      [c('bearer', { realm: 'https://good/t' })],
    ],
    [
      'escapes in quoted strings',
      'Basic realm="say \\"hi\\", ok\\\\"',
      [c('basic', { realm: 'say "hi", ok\\' })],
    ],
    [
      'unquoted values, including an unquoted URL',
      'Bearer realm=https://r.example/token,service=reg,scope=repository:a:pull',
      [c('bearer', { realm: 'https://r.example/token', service: 'reg', scope: 'repository:a:pull' })],
    ],
    [
      'several challenges in one header',
      'Basic realm="basic realm", Bearer realm="https://r/t", service="s" , Digest realm="d", nonce="n, m"',
      [
        c('basic', { realm: 'basic realm' }),
        c('bearer', { realm: 'https://r/t', service: 's' }),
        c('digest', { realm: 'd', nonce: 'n, m' }),
      ],
    ],
    [
      'several headers',
      ['Basic realm="a"', 'Bearer realm="https://r/t",service="s"'],
      [c('basic', { realm: 'a' }), c('bearer', { realm: 'https://r/t', service: 's' })],
    ],
    [
      'token68 challenges',
      'Negotiate YIIBd2Y=, Basic realm="x"',
      [c('negotiate', {}, 'YIIBd2Y='), c('basic', { realm: 'x' })],
    ],
    ['a scheme without parameters', 'Bearer', [c('bearer')]],
    [
      'parameter names that are Object.prototype names',
      'Bearer constructor="c",__proto__="p",toString="t"',
      [c('bearer', JSON.parse('{"constructor":"c","__proto__":"p","tostring":"t"}'))],
    ],
    ['empty quoted value', 'Bearer realm="",service=""', [c('bearer', { realm: '', service: '' })]],
    ['undefined', undefined, []],
    ['empty', '', []],
    ['only commas and space', ' , ,, ', []],
  ];
  for (const [name, header, expected] of cases) {
    test(name, () => assert.deepEqual(parseChallenges(header), expected));
  }

  const malformed: [string, string, Challenge[]][] = [
    [
      'unterminated quote drops that parameter',
      'Bearer realm="https://r/t",service="oops',
      [c('bearer', { realm: 'https://r/t' })],
    ],
    [
      'a parameter before any scheme is ignored',
      'realm="x", Bearer service="s"',
      [c('bearer', { service: 's' })],
    ],
    [
      'junk between items is skipped',
      'Bearer realm="a" junk, service="s", @@@, Basic',
      [c('bearer', { realm: 'a', service: 's' }), c('basic')],
    ],
    ['non-token garbage', '"" ;; === Bearer realm="a"', [c('bearer', { realm: 'a' })]],
    // `name=` alone is token68 syntax (RFC 7235); the parameters after it are kept leniently.
    ['equals with no value', 'Bearer realm=, service="s"', [c('bearer', { service: 's' }, 'realm=')]],
    ['equals with no value, later', 'Bearer service="s", realm=', [c('bearer', { service: 's', realm: '' })]],
  ];
  for (const [name, header, expected] of malformed) {
    test(`malformed: ${name}`, () => assert.deepEqual(parseChallenges(header), expected));
  }

  test('pathological inputs finish and give sane results', () => {
    assert.equal(parseChallenges(`Bearer ${'a'.repeat(200_000)}`).length, 1);
    assert.deepEqual(parseChallenges(','.repeat(200_000)), []);
    assert.deepEqual(parseChallenges('='.repeat(200_000)), []);
    assert.deepEqual(parseChallenges(`Bearer realm="${'\\"'.repeat(50_000)}`), [c('bearer')]);
    assert.ok(parseChallenges('a '.repeat(100_000)).length <= 32_768);
    assert.deepEqual(parseChallenges(`Bearer ${'x=y '.repeat(50_000)}`)[0]!.params.x, 'y');
  });

  test('a very long header is cut, not slow', () => {
    const long = `Bearer realm="https://r/t",${'x="y",'.repeat(100_000)}`;
    const out = parseChallenges(long);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.params.realm, 'https://r/t');
  });

  test('never throws anything but a StowageError, returns well-formed challenges (property)', () => {
    const alphabet = fc.constantFrom(
      ...'Bearer Basic realm service scope error = , " \\ \t : / a b = = ,, ""'.split(' '),
      ' ',
      '"',
      '\\',
      ',',
      '=',
      '\n',
      'é',
      '\u0000',
    );
    const headerish = fc.array(alphabet, { maxLength: 60 }).map((a) => a.join(''));
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 200 }), headerish, fc.array(headerish, { maxLength: 3 })),
        (h) => {
          let out: Challenge[];
          try {
            out = parseChallenges(h);
          } catch (e) {
            assert.ok(isStowageError(e), `threw a non-StowageError: ${String(e)}`);
            return;
          }
          for (const ch of out) {
            assert.match(ch.scheme, /^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
            for (const k of Object.keys(ch.params)) assert.equal(k, k.toLowerCase());
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('parseChallenges round trip (property)', () => {
  const token = fc.oneof(
    fc.stringMatching(/^[a-z][a-z0-9_-]{0,11}$/),
    fc.constantFrom('constructor', '__proto__'),
  );
  const quote = (v: string) => `"${v.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
  test('formatted challenges parse back to what was formatted', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            scheme: token,
            params: fc.dictionary(token, fc.string({ maxLength: 30 }), { minKeys: 1, maxKeys: 5 }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.constantFrom(',', ', ', ' ,  '),
        (challenges, sep) => {
          const header = challenges
            .map(
              (ch) =>
                `${ch.scheme} ${Object.entries(ch.params)
                  .map(([k, v]) => `${k}=${quote(v)}`)
                  .join(sep)}`,
            )
            .join(sep);
          const expected = challenges.map((ch) => ({
            scheme: ch.scheme,
            params: Object.fromEntries(Object.entries(ch.params)),
          }));
          assert.deepEqual(parseChallenges(header), expected);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('challenge helpers', () => {
  const [bearer] = parseChallenges(
    'Basic realm="b", Bearer realm="https://auth.example/token?x=1",scope="repository:a:pull  repository:b:pull,push"',
  ).filter((ch) => ch.scheme === 'bearer');

  test('findChallenge is case-insensitive', () => {
    const all = parseChallenges('Basic realm="b", Bearer realm="https://r/t"');
    assert.equal(findChallenge(all, 'BEARER')?.params.realm, 'https://r/t');
    assert.equal(findChallenge(all, 'digest'), undefined);
  });

  test('challengeScopes splits on white space', () => {
    assert.deepEqual(challengeScopes(bearer!), ['repository:a:pull', 'repository:b:pull,push']);
    assert.deepEqual(challengeScopes(c('bearer')), []);
  });

  test('bearerRealm accepts absolute http(s) URLs', () => {
    assert.equal(bearerRealm(bearer!, 'r.example').href, 'https://auth.example/token?x=1');
    assert.equal(
      bearerRealm(c('bearer', { realm: 'http://127.0.0.1:5001/auth' }), '127.0.0.1:5000').host,
      '127.0.0.1:5001',
    );
  });

  const badRealms: [string, string | undefined, RegExp][] = [
    ['missing', undefined, /no realm/],
    ['empty', '', /no realm/],
    ['relative', '/token', /not an absolute URL/],
    ['host-relative', '//auth.example/token', /not an absolute URL/],
    ['file:', 'file:///etc/passwd', /not an http\(s\) URL/],
    ['javascript:', 'javascript:alert(1)', /not an http\(s\) URL/],
    ['ftp:', 'ftp://auth.example/token', /not an http\(s\) URL/],
    ['user info', 'https://user:secret@auth.example/token', /embeds credentials/],
  ];
  for (const [name, realm, why] of badRealms) {
    test(`bearerRealm rejects a ${name} realm, naming the registry`, () => {
      const ch = c('bearer', realm === undefined ? {} : { realm });
      assert.throws(
        () => bearerRealm(ch, 'registry.example:5000'),
        (e: unknown) => {
          assert.ok(isStowageError(e, 'REGISTRY_ERROR'));
          assert.match(e.message, /registry\.example:5000/);
          assert.match(e.message, why);
          assert.doesNotMatch(e.message, /secret/);
          return true;
        },
      );
    });
  }
});
