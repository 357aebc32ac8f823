// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { expandWord, resolveDockerfile, useAt } from '../../src/core/dockerfile';

const PLATFORMS = {
  buildPlatform: { os: 'linux', architecture: 'amd64' },
  targetPlatform: { os: 'linux', architecture: 'arm64' },
};

/** Fragments Dockerfiles are made of, including the awkward ones. */
const fragment = fc.constantFrom(
  'FROM',
  'from',
  'ARG',
  'COPY',
  'RUN',
  'ONBUILD',
  'AS',
  'as',
  '--from=',
  '--platform=',
  '--mount=type=bind,from=',
  '$BUILDPLATFORM',
  '${TARGETARCH}',
  '${V:-x}',
  '${V+',
  '${',
  '}',
  '$',
  'alpine:3.20',
  'Build',
  'build',
  '0',
  '7',
  'scratch',
  '127.0.0.1:5000/a/b',
  '@sha256:',
  '<<EOF',
  '<<-EOF',
  '3<<EOF',
  'EOF',
  '\tEOF',
  '# syntax=docker/dockerfile:1',
  '# escape=`',
  '#',
  '\\',
  '`',
  '"',
  "'",
  '=',
  ' ',
  '\t',
  '\r',
  '\uFEFF',
);

const line = fc.array(fragment, { maxLength: 8 }).map((parts) => parts.join(' '));
const dockerfileish = fc
  .array(fc.oneof(line, fc.string({ maxLength: 40 })), { maxLength: 25 })
  .map((l) => l.join('\n'));
const buildArgs = fc.dictionary(
  fc.constantFrom('V', 'TAG', 'BUILDPLATFORM', 'TARGETARCH', 'IMAGE'),
  fc.string({ maxLength: 12 }),
);

function checkUses(text: string, options = {}) {
  const uses = resolveDockerfile(text, { ...PLATFORMS, ...options });
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const u of uses) {
    assert.ok(u.line >= 1 && u.line <= lines, `line ${u.line} outside 1..${lines}`);
    assert.ok(u.range.start.line <= u.range.end.line);
    // Every entry either resolved or says why not.
    assert.ok(u.ref !== null || (typeof u.error === 'string' && u.error.length > 0));
    if (u.ref !== null) assert.equal(u.error, undefined);
    useAt(uses, u.range.start.line, u.range.start.character);
  }
}

describe('resolveDockerfile never throws', () => {
  test('arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => checkUses(text)),
      { numRuns: 500 },
    );
  });

  test('arbitrary unicode', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => checkUses(text)),
      { numRuns: 300 },
    );
  });

  test('Dockerfile-ish line mixes with build args', () => {
    fc.assert(
      fc.property(dockerfileish, buildArgs, (text, args) => checkUses(text, { buildArgs: args })),
      { numRuns: 1000 },
    );
  });

  test('expandWord never throws and reports errors as values', () => {
    const word = fc
      .array(fc.oneof(fragment, fc.string({ maxLength: 6 })), { maxLength: 10 })
      .map((p) => p.join(''));
    fc.assert(
      fc.property(word, (w) => {
        const e = expandWord(w, new Map([['V', 'v']]));
        if (e.error) assert.equal(e.result, '');
      }),
      { numRuns: 1000 },
    );
  });
});
