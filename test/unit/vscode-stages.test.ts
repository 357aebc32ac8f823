// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
// Build stage mentions and their hover text (src/vscode/editor/stages.ts has no vscode import).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type StageMention,
  stageAt,
  stageHoverMarkdown,
  stageLocations,
} from '../../src/vscode/editor/stages';

const DOCKERFILE = [
  'ARG GO=1.22', //                                        0
  'FROM --platform=$BUILDPLATFORM golang:${GO} AS Build', // 1
  'RUN --mount=type=cache,from=build,target=/x true', //   2
  'FROM build AS test', //                                 3
  'FROM scratch AS empty', //                              4
  'COPY --from=build /a /b', //                            5
  'COPY --from=0 /a /b', //                                6
  'COPY --from="test" /a /b', //                           7
  'COPY --from=alpine:3.20 /etc/x /x', //                  8
  'FROM alpine:3.20', //                                   9
  'COPY --from=later /x /x', //                            10
  'FROM busybox AS later', //                              11
  '',
].join('\n');

/** The mention at the first `text` on `line` (0-based), a character into it. */
function at(line: number, text: string): StageMention | undefined {
  const col = DOCKERFILE.split('\n')[line]!.indexOf(text);
  assert.ok(col >= 0, `"${text}" on line ${line}`);
  return stageAt(DOCKERFILE, line, col + 1);
}

test('FROM, COPY --from (name, index, quoted) and RUN --mount from= name the stage they build on', () => {
  for (const [line, text] of [
    [3, 'build'],
    [5, 'build'],
    [6, '0'],
    [2, 'build'],
  ] as const) {
    const m = at(line, text);
    assert.ok(m, `a stage on line ${line + 1}`);
    assert.equal(m.stage.name, 'build', `line ${line + 1}`);
    assert.equal(m.stage.line, 2);
    assert.equal(m.stage.image, 'golang:${GO}');
    assert.equal(m.definition, false);
  }
  assert.equal(at(7, 'test')?.stage.name, 'test');
  assert.equal(at(7, 'test')?.stage.base?.name, 'build', 'test is built on build');
  // The range is the name as written, for the hover's highlight.
  assert.deepEqual(at(5, 'build')?.range, {
    start: { line: 5, character: 12 },
    end: { line: 5, character: 17 },
  });
});

test('a stage is used by COPY --from before its FROM; FROM finds only stages defined above', () => {
  assert.equal(at(10, 'later')?.stage.line, 12);
  assert.equal(at(8, 'alpine'), undefined, 'an image, not a stage');
  assert.equal(at(9, 'alpine'), undefined);
  assert.equal(at(11, 'busybox'), undefined);
  const forward = 'FROM app\nFROM alpine AS app\n';
  assert.equal(stageAt(forward, 0, 6), undefined, 'FROM app above "AS app" is the image app');
  // BuildKit finds a stage by its lower-case name only (the resolver warns about FROM Build).
  assert.equal(stageAt('FROM alpine AS build\nFROM Build\n', 1, 6), undefined);
});

test('stages are read as the resolver reads the file: a heredoc body is not a stage use, # escape= counts', () => {
  const heredoc = ['FROM alpine AS build', 'RUN cat << EOF', 'FROM build', 'EOF', 'FROM build', ''].join(
    '\n',
  );
  assert.equal(stageAt(heredoc, 2, 6), undefined, 'inside the heredoc body');
  assert.deepEqual(stageAt(heredoc, 0, 16)?.usedOn, [5]);
  // dockerfile-ast misses an escape directive after a # syntax= with arguments; BuildKit does not.
  const backtick = [
    '# syntax=docker/dockerfile:1 x=y',
    '# escape=`',
    'FROM alpine AS b`',
    'uild',
    'FROM build',
    '',
  ];
  assert.equal(stageAt(backtick.join('\n'), 4, 6)?.stage.line, 3);
});

test('Go to Definition and Find All References: the AS name, else the FROM line; every use', () => {
  const lines = DOCKERFILE.split('\n');
  const col = (line: number, text: string) => lines[line]!.indexOf(text);
  const fromCopy = stageLocations(DOCKERFILE, 5, col(5, 'build') + 1);
  assert.ok(fromCopy);
  assert.deepEqual(fromCopy.definition.start, { line: 1, character: col(1, 'Build') });
  assert.deepEqual(
    fromCopy.references.map((r) => r.start.line),
    [1, 2, 3, 5, 6],
    'AS Build, then RUN --mount from=build, FROM build, COPY --from=build and --from=0',
  );
  // From the definition itself, and for a stage used before its FROM.
  assert.deepEqual(stageLocations(DOCKERFILE, 1, col(1, 'Build') + 1)?.definition, fromCopy.definition);
  assert.equal(stageLocations(DOCKERFILE, 10, col(10, 'later') + 1)?.definition.start.line, 11);
  // A stage without a name is reached by its index: its FROM line.
  const unnamed = 'FROM alpine\nFROM busybox\nCOPY --from=0 /a /b\n';
  assert.deepEqual(stageLocations(unnamed, 2, 12)?.definition, {
    start: { line: 0, character: 0 },
    end: { line: 0, character: 0 },
  });
  assert.equal(stageLocations(DOCKERFILE, 8, col(8, 'alpine') + 1), undefined, 'an image is no stage');
});

test('flags are read as the resolver reads them: the last from= of a mount, flag names as written', () => {
  const text = 'FROM alpine AS a\nFROM busybox AS b\nRUN --mount=from=a,from=b true\nCOPY --FROM=a /x /y\n';
  const mount = text.split('\n')[2]!;
  assert.equal(
    stageAt(text, 2, mount.indexOf('from=a') + 6),
    undefined,
    'the first from= is not the one used',
  );
  assert.equal(stageAt(text, 2, mount.indexOf('from=b') + 6)?.stage.name, 'b');
  assert.equal(stageAt(text, 3, 13), undefined, 'BuildKit knows no --FROM');
});

test('AS name: the definition, with the lines that use it', () => {
  const m = at(1, 'Build');
  assert.ok(m?.definition);
  assert.deepEqual(m.usedOn, [3, 4, 6, 7]);
  assert.equal(m.stages, 5);
  assert.equal(at(4, 'empty')?.usedOn.length, 0);
});

test('nothing outside stage names, and never a throw on odd text', () => {
  assert.equal(at(1, 'golang'), undefined, 'the image is the image hover’s');
  assert.equal(at(5, '/a'), undefined);
  assert.equal(stageAt('', 0, 0), undefined);
  assert.equal(stageAt('COPY --from=9 /a /b\n', 0, 12), undefined, 'no stage 9');
  assert.equal(stageAt('FROM\nFROM --platform\nCOPY --from= x\n\\', 2, 12), undefined);
});

test('the hover says which stage, where it is defined and from which image', () => {
  const copy = stageHoverMarkdown(at(5, 'build')!, 'golang:1.22');
  assert.equal(
    copy,
    ['**`build`** · build stage 0', '', 'Defined on line 2, from `golang:${GO}` → `golang:1.22`.'].join('\n'),
  );
  assert.match(stageHoverMarkdown(at(6, '0')!, 'golang:${GO}'), /from `golang:\$\{GO\}`\.$/);
  assert.match(stageHoverMarkdown(at(7, 'test')!), /Defined on line 4, from the stage `build` \(line 2\)\./);
  assert.match(
    stageHoverMarkdown(stageAt('FROM scratch AS base\nFROM base\n', 1, 6)!),
    /from `scratch` \(an empty image\)/,
  );
  const definition = stageHoverMarkdown(at(1, 'Build')!, 'golang:1.22');
  assert.match(definition, /Defined here, on line 2/);
  assert.match(definition, /Used on lines 3, 4, 6, 7\.$/);
  assert.match(
    stageHoverMarkdown(at(11, 'later')!),
    /Used on line 11\. The last stage: what a build produces by default\.$/,
  );
  assert.match(stageHoverMarkdown(at(4, 'empty')!), /Not used by another instruction\.$/);
  assert.equal(
    stageHoverMarkdown(stageAt('FROM alpine\nFROM alpine\nCOPY --from=0 /a /b\n', 2, 12)!).split('\n')[0],
    '**Build stage 0**',
  );
});
