// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
// Property tests for the Dockerfile resolver (documented never to throw): Dockerfiles generated
// from the instructions that pull images, with ARG expansion, continuations, heredocs, directives
// and noise; and arbitrary text. It never throws and stays fast; positions stay inside the text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { resolveDockerfile } from '../../src/core/dockerfile';
import { CALL_BOUND_MS, fuzzOptions, pathological } from './fuzz-support';

const word = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/);
const refText = fc.oneof(
  fc.constantFrom(
    'alpine',
    'alpine:3.20',
    'ghcr.io/a/b:c',
    'scratch',
    'localhost:5000/x@sha256:' + 'a'.repeat(64),
    'Bad//Ref',
    '',
  ),
  word.map((w) => `\${${w}}`),
  fc.tuple(word, fc.string({ maxLength: 8 })).map(([w, d]) => `\${${w}:-${d}}`),
  fc
    .tuple(word, fc.constantFrom(':+', ':-', '-', '+', '#', '%', '/', ':?'))
    .map(([w, op]) => `\${${w}${op}x}`),
  fc.string({ maxLength: 20 }),
);
const line = fc.oneof(
  fc.tuple(refText, fc.option(word)).map(([r, as]) => `FROM ${r}${as ? ` AS ${as}` : ''}`),
  fc
    .tuple(
      fc.constantFrom(
        '--platform=$BUILDPLATFORM',
        '--platform=linux/arm64',
        '--platform=${X}',
        '--platform=',
      ),
      refText,
    )
    .map(([p, r]) => `FROM ${p} ${r}`),
  fc
    .tuple(word, fc.option(fc.string({ maxLength: 12 })))
    .map(([k, v]) => (v === null ? `ARG ${k}` : `ARG ${k}=${v}`)),
  refText.map((r) => `COPY --from=${r} /a /b`),
  refText.map((r) => `RUN --mount=type=bind,from=${r},target=/x true`),
  fc.constantFrom(
    '# syntax=docker/dockerfile:1',
    '# escape=`',
    '# escape=\\',
    '# check=skip=all',
    'RUN <<EOF',
    'EOF',
    'RUN <<-"X" cat',
    'X',
  ),
  fc.constantFrom('RUN echo \\', '  && true', 'ONBUILD FROM x', 'from alpine', '\tFROM\talpine', '#', ''),
  fc.string({ maxLength: 40 }),
);
const dockerfile = fc
  .tuple(fc.array(line, { maxLength: 25 }), fc.constantFrom('\n', '\r\n', '\r'))
  .map(([lines, eol]) => lines.join(eol));
const buildArgs = fc.dictionary(word, fc.string({ maxLength: 12 }), { maxKeys: 3 });

function check(text: string, args: Record<string, string> = {}) {
  const began = performance.now();
  let uses: ReturnType<typeof resolveDockerfile> = [];
  assert.doesNotThrow(
    () => {
      uses = resolveDockerfile(text, { buildArgs: args });
    },
    `resolveDockerfile(${JSON.stringify(text.slice(0, 120))})`,
  );
  const ms = performance.now() - began;
  assert.ok(ms < CALL_BOUND_MS, `resolveDockerfile took ${ms.toFixed(0)} ms`);
  const lines = text.split(/\r\n|\r|\n/).length;
  for (const u of uses) {
    assert.ok(u.line >= 1 && u.line <= lines, `line ${u.line} within 1..${lines}`);
    assert.ok(u.range.start.line >= 0 && u.range.end.line < lines + 1, 'range inside the text');
  }
}

test('resolveDockerfile: generated Dockerfiles and build args', () => {
  fc.assert(
    fc.property(dockerfile, buildArgs, (t, a) => check(t, a)),
    fuzzOptions,
  );
});

test('resolveDockerfile: arbitrary text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 500 }), (t) => check(t)),
    fuzzOptions,
  );
});

test('resolveDockerfile: long pathological inputs stay fast', () => {
  for (const t of pathological([
    'FROM ',
    '$',
    '${',
    '${a:-',
    '\\\n',
    '`\n',
    'ARG A=$A\n',
    '"',
    "'",
    '<<EOF\n',
    'RUN << \n',
    'ONBUILD ',
    'FROM a \\\\\n',
  ]))
    check(t);
  // Every FROM found its stage by a scan of all of them: 100,000 stages took 10 s.
  check('FROM a\n'.repeat(100_000));
  const chain = Array.from({ length: 2_000 }, (_, i) => `ARG A${i + 1}=\${A${i}}\${A${i}}`).join('\n');
  check(`ARG A0=x\n${chain}\nFROM alpine:\${A2000}`);
  // Shell patterns that make a backtracking regexp explode (they took minutes before the NFA).
  const long = 'a'.repeat(8_000);
  for (const op of ['#', '##', '%', '%%']) check(`ARG A=${long}\nFROM alpine:\${A${op}*a*a*a*a*a*b}`);
  for (const op of ['/', '//']) check(`ARG A=${long.slice(0, 2_000)}\nFROM alpine:\${A${op}*a*a*a*a*b/x}`);
  check(`ARG A=${'a'.repeat(1_000)}\nARG B=\${A//a/\${A}}\nARG C=\${B//a/\${B}}\nFROM alpine:\${C}`);
  check(Array.from({ length: 1_000 }, (_, i) => `FROM alpine AS s${i}\nCOPY --from=s${i} /a /b`).join('\n'));
});
