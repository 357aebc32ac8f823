// Property tests for the image reference parser: any input yields a Reference that survives a
// round trip, or an INVALID_REFERENCE / RESERVED_NAME StowageError; never anything else, never slow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatReference, parsePullableReference, parseReference } from '../../src/core/reference';
import { fuzzOptions, onlyTyped, pathological } from './fuzz-support';

const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });
const component = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,8}){0,2}$/);
const registry = fc.oneof(
  fc.constant(''),
  fc.stringMatching(/^[a-z0-9]{1,10}(\.[a-z0-9-]{1,10}[a-z0-9]){1,3}$/),
  fc
    .tuple(
      fc.constantFrom('localhost', '127.0.0.1', '[::1]', 'Registry'),
      fc.option(fc.integer({ min: 0, max: 70_000 })),
    )
    .map(([h, p]) => (p === null ? h : `${h}:${p}`)),
  fc.string({ maxLength: 12 }),
);
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
  fc
    .tuple(fc.constantFrom('sha256', 'md5', 'SHA256', 'sha512', ''), fc.string({ maxLength: 70 }))
    .map(([a, h]) => `${a}:${h}`),
);
const structured = fc
  .record({
    registry,
    path: fc.array(component, { minLength: 1, maxLength: 4 }),
    tag: fc.option(fc.oneof(fc.stringMatching(/^[\w][\w.-]{0,20}$/), fc.string({ maxLength: 10 }))),
    digest: fc.option(digest),
  })
  .map(
    ({ registry, path, tag, digest }) =>
      `${registry ? `${registry}/` : ''}${path.join('/')}${tag === null ? '' : `:${tag}`}${digest === null ? '' : `@${digest}`}`,
  );
const alphabet = fc.string({ unit: fc.constantFrom(...'aZ09:/@._-[] \t%'), maxLength: 60 });

function check(input: string) {
  const ref = onlyTyped(() => parseReference(input), `parseReference(${JSON.stringify(input.slice(0, 80))})`);
  if (!ref) return;
  // A parsed reference formats to a name that parses back to the same reference.
  const again = onlyTyped(() => parseReference(formatReference(ref)), 'parseReference(formatReference(ref))');
  assert.deepEqual(again, ref);
  assert.ok(
    !ref.repository.includes('..') && !ref.repository.startsWith('/'),
    'no path tricks in the repository',
  );
  onlyTyped(() => parsePullableReference(input), 'parsePullableReference');
}

test('parseReference: structured references, arbitrary strings and unicode', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        structured,
        alphabet,
        fc.string({ maxLength: 300 }),
        fc.string({ unit: 'binary', maxLength: 100 }),
      ),
      check,
    ),
    fuzzOptions,
  );
});

test('parseReference: long pathological inputs stay fast and typed', () => {
  for (const input of pathological(['a', 'a.', 'a-', 'a_', 'a__', 'a/', 'a:', 'a@', '[', ':', 'A', 'a.a-']))
    check(input);
  for (const input of [
    `${'a.'.repeat(30_000)}a/b`,
    `x/${'a-'.repeat(30_000)}`,
    `x@sha256:${'a'.repeat(100_000)}`,
  ])
    check(input);
});
