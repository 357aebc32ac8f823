// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type ImageUse,
  missingBuildArgs,
  parseDockerfile,
  type ResolveOptions,
  resolveDockerfile,
  useAt,
} from '../../src/core/dockerfile';
import { formatPlatform, hostPlatform } from '../../src/core/platform';

const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64' };
const D = `sha256:${'b'.repeat(64)}`;

/** Builds on amd64 for arm64 unless told otherwise, so the two platforms are told apart. */
function resolve(text: string, options: ResolveOptions = {}): ImageUse[] {
  return resolveDockerfile(text, { buildPlatform: AMD64, targetPlatform: ARM64, ...options });
}

/** [line, instruction, ref, platform, stage] of each use. */
function rows(text: string, options: ResolveOptions = {}) {
  return resolve(text, options).map((u) => [u.line, u.instruction, u.ref, u.platform, u.stage]);
}

function refs(text: string, options: ResolveOptions = {}): (string | null)[] {
  return resolve(text, options).map((u) => u.ref);
}

function only(text: string, options: ResolveOptions = {}): ImageUse {
  const uses = resolve(text, options);
  assert.equal(uses.length, 1, `expected one use, got ${JSON.stringify(uses, null, 1)}`);
  return uses[0] as ImageUse;
}

function range(sl: number, sc: number, el: number, ec: number) {
  return { start: { line: sl, character: sc }, end: { line: el, character: ec } };
}

/** The document text a range covers, with line breaks kept. */
function textAt(
  text: string,
  r: { start: { line: number; character: number }; end: { line: number; character: number } },
) {
  const lines = text.split('\n');
  if (r.start.line === r.end.line) return lines[r.start.line]?.slice(r.start.character, r.end.character);
  const middle = lines.slice(r.start.line + 1, r.end.line);
  return [
    lines[r.start.line]?.slice(r.start.character),
    ...middle,
    lines[r.end.line]?.slice(0, r.end.character),
  ].join('\n');
}

const fixture = (name: string) =>
  readFileSync(join(__dirname, '..', 'fixtures', 'dockerfiles', name), 'utf8');

describe('resolveDockerfile: basics', () => {
  test('one FROM: line, range, raw, normalised ref, target platform, no stage', () => {
    const u = only('FROM alpine:3.20\nRUN echo hi\n');
    assert.deepEqual(
      { ...u, reference: undefined },
      {
        line: 1,
        range: range(0, 5, 0, 16),
        instruction: 'FROM',
        raw: 'alpine:3.20',
        expanded: 'alpine:3.20',
        reference: undefined,
        ref: 'docker.io/library/alpine:3.20',
        platform: 'linux/arm64',
        stage: null,
      },
    );
    assert.deepEqual(u.reference, { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' });
  });

  test('names are normalised: library/, latest, registries with ports, digests', () => {
    const text = [
      'FROM alpine',
      'FROM user/app',
      'FROM ghcr.io/owner/repo/sub:tag',
      'FROM localhost:5000/team/app:v1',
      'FROM 127.0.0.1:5000/team/app',
      `FROM alpine@${D}`,
      `FROM registry.example.com:8443/base:1.0@${D}`,
      'FROM index.docker.io/library/debian:bookworm-slim',
    ].join('\n');
    assert.deepEqual(refs(text), [
      'docker.io/library/alpine:latest',
      'docker.io/user/app:latest',
      'ghcr.io/owner/repo/sub:tag',
      'localhost:5000/team/app:v1',
      '127.0.0.1:5000/team/app:latest',
      `docker.io/library/alpine@${D}`,
      `registry.example.com:8443/base:1.0@${D}`,
      'docker.io/library/debian:bookworm-slim',
    ]);
  });

  test('lowercase and mixed-case instructions, AS and comments', () => {
    const text =
      '# a comment\nfrom alpine:3 as Base\n  # indented comment\nFrom busybox AS other\ncopy --from=nginx:1 /a /b\n';
    assert.deepEqual(rows(text), [
      [2, 'FROM', 'docker.io/library/alpine:3', 'linux/arm64', 'base'],
      [4, 'FROM', 'docker.io/library/busybox:latest', 'linux/arm64', 'other'],
      [5, 'COPY', 'docker.io/library/nginx:1', 'linux/arm64', 'other'],
    ]);
  });

  test('scratch produces no entry, a stage built on scratch still counts as a stage', () => {
    assert.deepEqual(refs('FROM scratch AS empty\nFROM empty\nCOPY --from=scratch /a /b\nFROM alpine\n'), [
      'docker.io/library/alpine:latest',
    ]);
  });

  test('an empty file, blank lines and comments only yield nothing', () => {
    assert.deepEqual(resolve(''), []);
    assert.deepEqual(resolve('\n\n   \n'), []);
    assert.deepEqual(resolve('# just a comment\n# FROM alpine\n'), []);
  });

  test('CRLF line endings', () => {
    const uses = resolve(
      'ARG V=3\r\nFROM alpine:${V} \\\r\n  AS x\r\nRUN <<EOF\r\nFROM no\r\nEOF\r\nFROM busybox\r\n',
    );
    assert.deepEqual(
      uses.map((u) => [u.line, u.ref, u.stage]),
      [
        [2, 'docker.io/library/alpine:3', 'x'],
        [7, 'docker.io/library/busybox:latest', null],
      ],
    );
    assert.deepEqual(uses[0]?.range, range(1, 5, 1, 16));
  });

  test('without options the host platform is both build and target platform', () => {
    const host = formatPlatform(hostPlatform());
    const uses = resolveDockerfile(
      '# syntax=docker/dockerfile:1\nFROM --platform=$BUILDPLATFORM a\nFROM b\n',
    );
    assert.deepEqual(
      uses.map((u) => u.platform),
      [host, host, host],
    );
  });
});

describe('resolveDockerfile: ARGs', () => {
  test('nested meta ARG defaults', () => {
    const text = [
      'ARG GO_VERSION=1.22',
      'ARG DISTRO=bookworm',
      'ARG IMAGE="golang:${GO_VERSION}-${DISTRO}"',
      'FROM ${IMAGE} AS build',
    ].join('\n');
    const u = only(text);
    assert.equal(u.ref, 'docker.io/library/golang:1.22-bookworm');
    assert.equal(u.raw, '${IMAGE}');
    assert.equal(u.expanded, 'golang:1.22-bookworm');
    assert.deepEqual(u.range, range(3, 5, 3, 13));
  });

  test('a default sees only ARGs declared before it, and a later ARG replaces an earlier one', () => {
    const text =
      'ARG IMAGE=alpine:${TAG}\nARG TAG=3.20\nARG REPO=debian\nARG REPO=ubuntu\nFROM ${IMAGE}x\nFROM ${REPO}\n';
    // IMAGE expanded while TAG was still unset.
    assert.deepEqual(refs(text), ['docker.io/library/alpine:x', 'docker.io/library/ubuntu:latest']);
  });

  test('several ARGs on one line, quoted values and escapes', () => {
    const text = 'ARG A=alp B="ine" C=\'$A\' D=3\\.20\nFROM ${A}${B}:${D}\nFROM ${C}\n';
    const uses = resolve(text);
    assert.equal(uses[0]?.ref, 'docker.io/library/alpine:3.20');
    // Single quotes kept $A literal; "$A" is not a valid name.
    assert.equal(uses[1]?.ref, null);
    assert.equal(uses[1]?.expanded, '$A');
  });

  test('every word of an ARG declares one: ARG A B has no values, not A="B" (BuildKit parseArg)', () => {
    // dockerfile-ast reads a first word without "=" as ENV's old "KEY value" form.
    assert.deepEqual(refs('ARG TAG 3.20\nFROM alpine:${TAG:-3.19}\n'), ['docker.io/library/alpine:3.19']);
    assert.deepEqual(refs('ARG A B=2\nFROM alpine:${A:-1}.$B\n'), ['docker.io/library/alpine:1.2']);
    assert.deepEqual(refs("ARG A B C='3' D\nFROM alpine:${A:-1}${B:-.}$C${D-.x}\n"), [
      'docker.io/library/alpine:1.3.x',
    ]);
    // A continuation between the words, and a word split by one.
    assert.deepEqual(refs('ARG A \\\n  B=busy\\\nbox\nFROM ${A:-$B}\n'), [
      'docker.io/library/busybox:latest',
    ]);
    assert.deepEqual(refs('# escape=`\nARG A B=alp`\nine\nFROM ${A:-$B}\n'), [
      'docker.io/library/alpine:latest',
    ]);
    // Declaring the automatic platform ARGs keeps their values.
    const u = only('ARG TARGETOS TARGETARCH\nFROM --platform=$TARGETOS/$TARGETARCH img-$TARGETARCH\n');
    assert.equal(u.error, undefined);
    assert.equal(u.ref, 'docker.io/library/img-arm64:latest');
    assert.equal(u.platform, 'linux/arm64');
  });

  test('ARG REG TAG without values: both are named as missing, and build args for both resolve it', () => {
    const text = 'ARG REG TAG\nFROM ${REG}/app:${TAG}\n';
    assert.deepEqual(missingBuildArgs(only(text).error ?? ''), ['REG', 'TAG']);
    assert.deepEqual(refs(text, { buildArgs: { REG: 'registry.lan', TAG: '1' } }), ['registry.lan/app:1']);
    const inStage = resolve('FROM a\nARG X Y\nFROM b:$Y\n')[1];
    assert.match(inStage?.error ?? '', /ARG Y is declared inside a stage/);
  });

  test('ARGs declared inside a stage never affect a later FROM', () => {
    const text =
      'ARG TAG=3.19\nFROM alpine:${TAG} AS one\nARG TAG=3.20\nARG OTHER=busybox\nFROM alpine:${TAG}\nFROM ${OTHER}\n';
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => u.ref),
      ['docker.io/library/alpine:3.19', 'docker.io/library/alpine:3.19', null],
    );
    assert.match(uses[2]?.error ?? '', /^Line 6: /);
    assert.match(uses[2]?.error ?? '', /ARG OTHER is declared inside a stage/);
  });

  test('build args override defaults, including ones other defaults use', () => {
    const text = 'ARG GO=1.21\nARG IMAGE=golang:${GO}\nFROM ${IMAGE}\n';
    assert.deepEqual(refs(text, { buildArgs: { GO: '1.23' } }), ['docker.io/library/golang:1.23']);
    assert.deepEqual(refs(text, { buildArgs: { IMAGE: 'busybox:1' } }), ['docker.io/library/busybox:1']);
  });

  test('a build arg that no ARG declares is not visible', () => {
    const u = only('FROM alpine:${TAG}\n', { buildArgs: { TAG: '3.20' } });
    assert.equal(u.ref, null);
    assert.match(
      u.error ?? '',
      /--build-arg TAG is not used until ARG TAG is declared before the first FROM/,
    );
  });

  test('a build arg gives a value to an ARG declared without one', () => {
    assert.deepEqual(refs('ARG TAG\nFROM alpine:${TAG:-3}\n', { buildArgs: { TAG: 'edge' } }), [
      'docker.io/library/alpine:edge',
    ]);
  });

  test('an ARG with no value expands to empty (and is unset for ${V-x})', () => {
    const text =
      'ARG TAG\nFROM alpine:${TAG:-3.20}\nFROM alpine:${TAG-3.19}\nFROM busybox${TAG}\nFROM alpine:${TAG}\n';
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => u.ref),
      [
        'docker.io/library/alpine:3.20',
        'docker.io/library/alpine:3.19',
        'docker.io/library/busybox:latest',
        null,
      ],
    );
    assert.match(
      uses[3]?.error ?? '',
      /^Line 5: "alpine:\$\{TAG\}" expands to "alpine:", which is not a valid image reference/,
    );
    assert.match(uses[3]?.error ?? '', /ARG TAG has no value: give it a default or pass --build-arg TAG=/);
  });

  test('an ARG set to the empty string is set: ${V-x} keeps it empty, ${V:-x} does not', () => {
    const text = 'ARG SUFFIX=\nFROM alpine${SUFFIX-:broken}\nFROM alpine${SUFFIX:-:3}\n';
    assert.deepEqual(refs(text), ['docker.io/library/alpine:latest', 'docker.io/library/alpine:3']);
  });

  test('${V:+x} and ${V+x}', () => {
    const text =
      'ARG SET=1\nARG EMPTY=\nFROM alpine${SET:+:set}\nFROM alpine${EMPTY:+:no}\nFROM alpine${EMPTY+:yes}\nFROM alpine${NONE+:no}\n';
    assert.deepEqual(refs(text), [
      'docker.io/library/alpine:set',
      'docker.io/library/alpine:latest',
      'docker.io/library/alpine:yes',
      'docker.io/library/alpine:latest',
    ]);
  });

  test('$V, ${V}, quotes and escaped dollars in FROM', () => {
    const text = 'ARG R=alpine\nARG T=3\nFROM $R:$T\nFROM "${R}:${T}"\nFROM \'alpine\':3\nFROM alpine:\\$T\n';
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => u.ref),
      ['docker.io/library/alpine:3', 'docker.io/library/alpine:3', 'docker.io/library/alpine:3', null],
    );
    assert.equal(uses[3]?.expanded, 'alpine:$T');
  });

  test('pattern trimming: ${V%%-*}, ${V#*/}', () => {
    const text = 'ARG FULL=docker.io/library/golang:1.22-alpine\nFROM ${FULL%%-*}\nFROM ${FULL#*/}\n';
    assert.deepEqual(refs(text), ['docker.io/library/golang:1.22', 'docker.io/library/golang:1.22-alpine']);
  });

  test('a default that fails to expand is reported when a FROM uses it', () => {
    const u = only('ARG BAD=${X\nFROM alpine:${BAD}\n');
    assert.equal(u.ref, null);
    assert.match(u.error ?? '', /the default of ARG BAD cannot be expanded \(syntax error: missing '}'\)/);
  });
});

describe('resolveDockerfile: automatic platform ARGs and --platform', () => {
  test('--platform expands BUILDPLATFORM and TARGETPLATFORM; no --platform means the target', () => {
    const text = [
      'FROM --platform=$BUILDPLATFORM golang:1.22 AS build',
      'FROM --platform=${TARGETPLATFORM} alpine AS target',
      'FROM --platform=${TARGETOS}/${TARGETARCH} debian',
      'FROM --platform=$BUILDOS/$BUILDARCH busybox',
      'FROM ubuntu',
    ].join('\n');
    assert.deepEqual(
      resolve(text).map((u) => u.platform),
      ['linux/amd64', 'linux/arm64', 'linux/arm64', 'linux/amd64', 'linux/arm64'],
    );
  });

  test('variants: TARGETVARIANT, arm/v7, arm64/v8 normalised', () => {
    const arm = { os: 'linux', architecture: 'arm', variant: 'v7' };
    const text =
      'FROM --platform=linux/${TARGETARCH}/${TARGETVARIANT} a\nFROM --platform=linux/arm64/v8 b\nFROM c\n';
    assert.deepEqual(
      resolve(text, { targetPlatform: arm }).map((u) => u.platform),
      ['linux/arm/v7', 'linux/arm64', 'linux/arm/v7'],
    );
  });

  test('automatic ARGs are usable in image names and ARG defaults', () => {
    const text = 'ARG BASE=img-${TARGETARCH}\nFROM ${BASE}:1\nFROM tools-${BUILDARCH}${BUILDVARIANT}\n';
    assert.deepEqual(refs(text), ['docker.io/library/img-arm64:1', 'docker.io/library/tools-amd64:latest']);
  });

  test('build args can override the automatic ARGs', () => {
    const u = only('FROM --platform=$BUILDPLATFORM alpine\n', {
      buildArgs: { BUILDPLATFORM: 'linux/s390x' },
    });
    assert.equal(u.platform, 'linux/s390x');
  });

  test('TARGETSTAGE is the last stage name, or "default"', () => {
    assert.deepEqual(refs('FROM img-${TARGETSTAGE}\nFROM b AS final\n'), [
      'docker.io/library/img-final:latest',
      'docker.io/library/b:latest',
    ]);
    assert.deepEqual(refs('FROM img-${TARGETSTAGE}\n'), ['docker.io/library/img-default:latest']);
  });

  test('--platform with quotes, and a lone OS name', () => {
    const uses = resolve('FROM --platform="linux/arm/v6" a\nFROM --platform=linux b\n');
    assert.deepEqual(
      uses.map((u) => u.platform),
      ['linux/arm/v6', 'linux/amd64'],
    );
  });

  test('--platform= with nothing after it, even in quotes, is no --platform (BuildKit reads it so)', () => {
    const uses = resolve('FROM --platform= alpine\nFROM --platform="" busybox\n');
    assert.deepEqual(
      uses.map((u) => [u.ref, u.platform, u.error]),
      [
        ['docker.io/library/alpine:latest', 'linux/arm64', undefined],
        ['docker.io/library/busybox:latest', 'linux/arm64', undefined],
      ],
    );
  });

  test('an invalid or empty --platform is an error on that FROM', () => {
    const uses = resolve(
      'FROM --platform=not/a/valid/one alpine\nFROM --platform=$NOPE alpine\nFROM --platform alpine\n',
    );
    assert.equal(uses.length, 3);
    assert.ok(uses.every((u) => u.ref === null));
    assert.match(uses[0]?.error ?? '', /^Line 1: --platform=not\/a\/valid\/one is not a valid platform/);
    assert.match(
      uses[1]?.error ?? '',
      /^Line 2: --platform=\$NOPE expands to an empty platform\. ARG NOPE is not set/,
    );
    // "--platform alpine" has no value, so BuildKit sees no image at all: one word is left.
    assert.match(uses[2]?.error ?? '', /^Line 3: --platform needs a value/);
  });

  test('COPY --from=<image> and RUN --mount from=<image> are pulled for the target platform, as BuildKit does', () => {
    const text = [
      'FROM --platform=$BUILDPLATFORM golang:1.22 AS build',
      'COPY --from=tonistiigi/xx:1.4 / /',
      'RUN --mount=from=busybox:1,target=/bb true',
    ].join('\n');
    assert.deepEqual(rows(text), [
      [1, 'FROM', 'docker.io/library/golang:1.22', 'linux/amd64', 'build'],
      [2, 'COPY', 'docker.io/tonistiigi/xx:1.4', 'linux/arm64', 'build'],
      [3, 'RUN', 'docker.io/library/busybox:1', 'linux/arm64', 'build'],
    ]);
  });
});

describe('resolveDockerfile: stages', () => {
  test('stage names are case-insensitive for COPY --from and RUN --mount from', () => {
    const text = [
      'FROM golang:1.22 AS Build',
      'FROM alpine',
      'COPY --from=build /a /b',
      'COPY --from=BUILD /a /b',
      'RUN --mount=from=bUiLd,target=/x true',
    ].join('\n');
    assert.deepEqual(rows(text), [
      [1, 'FROM', 'docker.io/library/golang:1.22', 'linux/arm64', 'build'],
      [2, 'FROM', 'docker.io/library/alpine:latest', 'linux/arm64', null],
    ]);
  });

  test('FROM <stage> is a stage; FROM build:1.0 is an image even with a stage called build', () => {
    const text = 'FROM golang AS build\nFROM build\nFROM build:1.0\nFROM build AS again\n';
    assert.deepEqual(rows(text), [
      [1, 'FROM', 'docker.io/library/golang:latest', 'linux/arm64', 'build'],
      [3, 'FROM', 'docker.io/library/build:1.0', 'linux/arm64', null],
    ]);
  });

  test('FROM finds a stage through an ARG', () => {
    const text = 'ARG BASE=builder\nFROM golang AS builder\nFROM ${BASE}\n';
    assert.deepEqual(refs(text), ['docker.io/library/golang:latest']);
  });

  test('FROM matches stage names in lower case only (as BuildKit does), with a hint', () => {
    const uses = resolve('FROM golang AS Build\nFROM Build\n');
    assert.equal(uses.length, 2);
    assert.equal(uses[1]?.ref, null);
    assert.match(uses[1]?.error ?? '', /repository names must be lowercase/);
    assert.match(uses[1]?.error ?? '', /FROM finds a stage only by its lower-case name: write FROM build/);
  });

  test('FROM refers only to stages above it; its own name and later names are images', () => {
    const text = 'FROM later\nFROM self AS self\nFROM alpine AS later\n';
    assert.deepEqual(refs(text), [
      'docker.io/library/later:latest',
      'docker.io/library/self:latest',
      'docker.io/library/alpine:latest',
    ]);
  });

  test('COPY --from may name a stage defined further down', () => {
    assert.deepEqual(refs('FROM alpine\nCOPY --from=tools /a /b\nFROM busybox AS tools\n'), [
      'docker.io/library/alpine:latest',
      'docker.io/library/busybox:latest',
    ]);
  });

  test('COPY --from=<index> is a stage; an index out of range is an error', () => {
    const text =
      'FROM alpine\nFROM busybox\nCOPY --from=0 /a /b\nCOPY --from=1 /a /b\nCOPY --from=2 /a /b\nCOPY --from=-1 /a /b\n';
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => [u.line, u.instruction, u.ref]),
      [
        [1, 'FROM', 'docker.io/library/alpine:latest'],
        [2, 'FROM', 'docker.io/library/busybox:latest'],
        [5, 'COPY', null],
        [6, 'COPY', null],
      ],
    );
    assert.match(uses[2]?.error ?? '', /^Line 5: COPY --from=2 is not a stage index \(valid: 0 to 1\)\.$/);
  });

  test('multi-stage build: COPY --from image, stage and index with ranges', () => {
    const text = fixture('multistage.Dockerfile');
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => [u.line, u.instruction, u.raw, u.ref, u.platform, u.stage]),
      [
        [1, 'syntax', 'docker/dockerfile:1.7', 'docker.io/docker/dockerfile:1.7', 'linux/amd64', null],
        [5, 'FROM', '${IMAGE}', 'docker.io/library/golang:1.22-bookworm', 'linux/amd64', 'build'],
        [7, 'COPY', 'tonistiigi/xx:1.4.0', 'docker.io/tonistiigi/xx:1.4.0', 'linux/arm64', 'build'],
        [8, 'RUN', 'golang:1.22', 'docker.io/library/golang:1.22', 'linux/arm64', 'build'],
        [
          15,
          'FROM',
          `gcr.io/distroless/static-debian12:nonroot@${D}`,
          `gcr.io/distroless/static-debian12:nonroot@${D}`,
          'linux/arm64',
          'runtime',
        ],
        [18, 'COPY', 'ghcr.io/acme/certs:2024', 'ghcr.io/acme/certs:2024', 'linux/arm64', 'runtime'],
      ],
    );
    assert.deepEqual(uses[2]?.range, range(6, 12, 6, 31));
    for (const u of uses) assert.equal(textAt(text, u.range), u.raw);
  });
});

describe('resolveDockerfile: RUN --mount', () => {
  test('from= an image, a stage, several mounts, cache mounts without from', () => {
    const text = [
      'FROM alpine AS base',
      'RUN --mount=type=cache,target=/root/.cache --mount=type=bind,from=base,target=/b \\',
      '    --mount=type=bind,source=/x,from=registry.local:5000/tools:2,target=/t make',
    ].join('\n');
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => [u.line, u.instruction, u.ref, u.stage]),
      [
        [1, 'FROM', 'docker.io/library/alpine:latest', 'base'],
        [2, 'RUN', 'registry.local:5000/tools:2', 'base'],
      ],
    );
    assert.deepEqual(uses[1]?.range, range(2, 37, 2, 64));
    assert.equal(uses[1]?.raw, 'registry.local:5000/tools:2');
  });

  test('a quoted from value and the JSON form of RUN', () => {
    const text = 'FROM a\nRUN --mount=type=bind,from="busybox:1.36",target=/b ["sh","-c","true"]\n';
    const u = resolve(text)[1];
    assert.equal(u?.ref, 'docker.io/library/busybox:1.36');
    assert.equal(u?.expanded, 'busybox:1.36');
  });

  test('of several from= in one mount the last counts, its text is the range; a quoted from= is found', () => {
    const uses = resolve(
      'FROM a\nRUN --mount=from=nginx,FROM=busybox:1,target=/b --mount=type=bind,"from=node:22" x\n',
    );
    assert.deepEqual(
      uses.slice(1).map((u) => [u.raw, u.ref, u.range]),
      [
        ['busybox:1', 'docker.io/library/busybox:1', range(1, 28, 1, 37)],
        ['node:22"', 'docker.io/library/node:22', range(1, 72, 1, 80)],
      ],
    );
  });

  test('variables are not expanded in a mount from (BuildKit refuses them)', () => {
    const uses = resolve('ARG IMG=busybox\nFROM a\nRUN --mount=from=$IMG,target=/x true\n');
    assert.equal(uses[1]?.ref, null);
    assert.match(uses[1]?.error ?? '', /^Line 3: --mount from=\$IMG: BuildKit does not expand variables/);
  });
});

describe('resolveDockerfile: COPY --from', () => {
  test('variables are not expanded in --from (BuildKit refuses them)', () => {
    const uses = resolve('ARG IMG=busybox\nFROM a\nCOPY --from=${IMG} /a /b\n');
    assert.equal(uses.length, 2);
    assert.equal(uses[1]?.ref, null);
    assert.equal(uses[1]?.raw, '${IMG}');
    assert.match(
      uses[1]?.error ?? '',
      /^Line 3: COPY --from=\$\{IMG\}: BuildKit does not expand variables in --from/,
    );
  });

  test('other flags around --from, --from in quotes', () => {
    const text =
      'FROM a\nCOPY --chown=1000:1000 --from=nginx:1.27 --link /etc/nginx /x\nCOPY --from="node:22" /a /b\n';
    assert.deepEqual(refs(text), [
      'docker.io/library/a:latest',
      'docker.io/library/nginx:1.27',
      'docker.io/library/node:22',
    ]);
  });

  test('ADD and COPY without --from pull nothing', () => {
    assert.deepEqual(refs('FROM a\nADD https://example.com/x /x\nCOPY . /src\nCOPY --from= /a /b\n'), [
      'docker.io/library/a:latest',
    ]);
  });

  test('ONBUILD triggers run in child builds, not in this one', () => {
    assert.deepEqual(
      refs('FROM a\nONBUILD COPY --from=nginx /a /b\nONBUILD RUN --mount=from=busybox true\n'),
      ['docker.io/library/a:latest'],
    );
  });

  test('a stage FROM another stage runs its ONBUILD triggers: their images are pulled (BuildKit resolveStages)', () => {
    const text = [
      'ARG BASE=base',
      'FROM alpine AS base',
      'ONBUILD COPY --from=nginx:1 /a /b',
      'ONBUILD RUN --mount=type=bind,from=busybox:1,target=/b true',
      'FROM base AS app',
      'FROM golang AS other',
      'FROM app',
    ].join('\n');
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => [u.line, u.instruction, u.ref, u.stage]),
      [
        [2, 'FROM', 'docker.io/library/alpine:latest', 'base'],
        [3, 'COPY', 'docker.io/library/nginx:1', 'app'],
        [4, 'RUN', 'docker.io/library/busybox:1', 'app'],
        [6, 'FROM', 'docker.io/library/golang:latest', 'other'],
      ],
    );
    assert.deepEqual(uses[1]?.range, range(2, 20, 2, 27));
    // FROM app: app's own triggers (none), not base's; a trigger fires one stage down only.
    // A FROM naming the stage through an ARG runs them too; what they pull is listed once.
    assert.deepEqual(
      resolve(`${text}\nFROM \${BASE} AS again\n`).map((u) => [u.line, u.stage]),
      [
        [2, 'base'],
        [3, 'app'],
        [4, 'app'],
        [6, 'other'],
      ],
    );
    const viaArg = `${text.replace('FROM base AS app', 'FROM golang AS app')}\nFROM \${BASE} AS again\n`;
    assert.deepEqual(
      resolve(viaArg).map((u) => [u.line, u.stage]),
      [
        [2, 'base'],
        [3, 'again'],
        [4, 'again'],
        [5, 'app'],
        [6, 'other'],
      ],
    );
  });
});

describe('resolveDockerfile: escape directive and line continuations', () => {
  test('# escape=` with continuations; a backslash is then an ordinary character', () => {
    const text = fixture('windows.Dockerfile');
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => [u.line, u.ref, u.stage]),
      [
        [3, 'mcr.microsoft.com/windows/servercore:ltsc2022', 'base'],
        [8, 'mcr.microsoft.com/windows/nanoserver:ltsc2022', null],
      ],
    );
    // The FROM's image is split over two lines by a backtick continuation.
    assert.deepEqual(uses[0]?.range, range(2, 5, 3, 17));
    assert.equal(uses[0]?.raw, 'mcr.microsoft.com/windows/servercore:${TAG}');
    assert.equal(textAt(text, uses[0]!.range), 'mcr.microsoft.com/windows/`\nservercore:${TAG}');
  });

  test('with the default escape, a trailing backslash swallows the next line', () => {
    const text = 'FROM a\nRUN dir c:\\\nFROM busybox\n';
    assert.deepEqual(refs(text), ['docker.io/library/a:latest']);
    assert.deepEqual(refs(`# escape=\`\n${text}`), [
      'docker.io/library/a:latest',
      'docker.io/library/busybox:latest',
    ]);
  });

  test('a line ending in an escaped escape (C:\\) ends its instruction, as in BuildKit', () => {
    const ab = ['docker.io/library/a:latest', 'docker.io/library/b:latest'];
    assert.deepEqual(refs('FROM a\nCOPY app C:\\\\app\\\\\nFROM b\n'), ab);
    assert.deepEqual(refs('FROM a\nRUN echo \\\\\\  \nFROM b\n'), ab);
    assert.deepEqual(refs('# escape=`\nFROM a\nRUN dir ``\nFROM b\n'), ab);
  });

  test('leading Unicode blanks (no-break space, em space) before an instruction or a comment', () => {
    assert.deepEqual(refs('\u00a0FROM alpine\n\u2003# note \\\nFROM b\n'), [
      'docker.io/library/alpine:latest',
      'docker.io/library/b:latest',
    ]);
  });

  test('# escape= after a # syntax= with arguments is honoured (dockerfile-ast missed it)', () => {
    const text = '# syntax=docker/dockerfile:1 foo=bar\n# escape=`\nFROM alp`\nine\nRUN dir c:\\\nFROM b\n';
    assert.deepEqual(refs(text), [
      'docker.io/docker/dockerfile:1',
      'docker.io/library/alpine:latest',
      'docker.io/library/b:latest',
    ]);
  });

  test('# escape= is ignored after a blank line, a comment, or an unknown directive', () => {
    for (const before of ['\n', '# note\n', '# foo=bar\n']) {
      const uses = resolve(`${before}# escape=\`\nFROM alp\`\nine\n`);
      assert.equal(uses[0]?.ref, null, before);
    }
    assert.deepEqual(refs('# syntax=docker/dockerfile:1\n# escape=`\nFROM alp`\nine\n'), [
      'docker.io/docker/dockerfile:1',
      'docker.io/library/alpine:latest',
    ]);
  });

  test('continuations: split words, comment lines and empty lines inside, trailing spaces after the backslash', () => {
    const text = 'FROM \\\n# a comment\n\n  golang:1.22 \\  \n  AS build\nFROM alp\\\nine:3.20\n';
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => [u.line, u.ref, u.stage]),
      [
        [1, 'docker.io/library/golang:1.22', 'build'],
        [6, 'docker.io/library/alpine:3.20', null],
      ],
    );
    assert.deepEqual(uses[0]?.range, range(3, 2, 3, 13));
    assert.deepEqual(uses[1]?.range, range(5, 5, 6, 8));
    assert.equal(uses[1]?.raw, 'alpine:3.20');
  });
});

describe('resolveDockerfile: heredocs', () => {
  test('heredoc bodies are never instructions', () => {
    const text = fixture('heredocs.Dockerfile');
    assert.deepEqual(
      resolve(text).map((u) => [u.line, u.ref]),
      [
        [1, 'docker.io/library/alpine:3.20'],
        [30, 'docker.io/library/busybox:1.36'],
      ],
    );
  });

  test('a heredoc on a continued RUN with a mount', () => {
    const text = 'FROM a\nRUN --mount=from=node:22,target=/n \\\n  <<EOF bash\nFROM evil\nEOF\nFROM b\n';
    assert.deepEqual(
      resolve(text).map((u) => [u.line, u.instruction, u.ref]),
      [
        [1, 'FROM', 'docker.io/library/a:latest'],
        [2, 'RUN', 'docker.io/library/node:22'],
        [6, 'FROM', 'docker.io/library/b:latest'],
      ],
    );
  });

  test('a file-descriptor heredoc (3<<EOF)', () => {
    assert.deepEqual(refs('FROM a\nRUN 3<<EOF cat /dev/fd/3\nFROM evil\nEOF\nFROM b\n'), [
      'docker.io/library/a:latest',
      'docker.io/library/b:latest',
    ]);
  });

  test("<< EOF with spaces, and names BuildKit unquotes (<<EO\"F\", <<'e'o\\'f) are heredocs", () => {
    // BuildKit's lexer keeps "<<" and the blanks after it in one word (parser_heredoc_test.go).
    for (const intro of ['<< EOF', '<<  EOF  > /out', '<<\tEOF', 'cat <<EO"F"', "cat <<'E'OF"]) {
      assert.deepEqual(
        refs(`FROM a\nRUN ${intro}\nFROM evil\nEOF\nFROM b\n`),
        ['docker.io/library/a:latest', 'docker.io/library/b:latest'],
        intro,
      );
    }
    assert.deepEqual(refs("FROM a\nRUN <<'e'o\\'f\nFROM evil\neo'f\nFROM b\n"), [
      'docker.io/library/a:latest',
      'docker.io/library/b:latest',
    ]);
    assert.deepEqual(refs('FROM a\nCOPY << X /x\nFROM evil\nX\nFROM b\n'), [
      'docker.io/library/a:latest',
      'docker.io/library/b:latest',
    ]);
  });

  test('what BuildKit does not take for a heredoc leaves the next lines instructions', () => {
    for (const line of [
      'RUN echo \\<<EOF',
      'RUN cat<<EOF',
      'RUN ["cat", "<<EOF"]',
      'ENV X=<<EOF',
      'RUN "<<EOF"',
    ]) {
      assert.deepEqual(
        refs(`FROM a\n${line}\nFROM b\nEOF\n`),
        ['docker.io/library/a:latest', 'docker.io/library/b:latest'],
        line,
      );
    }
  });

  test('the body starts after the whole continued instruction and ends at an exact terminator', () => {
    const text =
      'FROM a\nRUN --mount=from=node:22,target=/n <<EOF \\\n  # note\n  bash\nFROM evil\nEOF \nEOF\nFROM b\n';
    assert.deepEqual(
      resolve(text).map((u) => [u.line, u.instruction, u.ref]),
      [
        [1, 'FROM', 'docker.io/library/a:latest'],
        [2, 'RUN', 'docker.io/library/node:22'],
        [8, 'FROM', 'docker.io/library/b:latest'],
      ],
    );
  });

  test('an unterminated heredoc swallows the rest of the file', () => {
    assert.deepEqual(refs('FROM a\nRUN <<EOF\nFROM evil\n'), ['docker.io/library/a:latest']);
  });

  test('<<EOF inside quotes is not a heredoc', () => {
    assert.deepEqual(refs('FROM a\nRUN echo "<<EOF"\nFROM b\n'), [
      'docker.io/library/a:latest',
      'docker.io/library/b:latest',
    ]);
  });
});

describe('resolveDockerfile: # syntax=', () => {
  test('the syntax directive is an image use, pulled for the build platform', () => {
    const uses = resolve('# syntax=docker/dockerfile:1.7-labs\nFROM alpine\n');
    assert.deepEqual(
      uses.map((u) => [u.line, u.instruction, u.ref, u.platform, u.stage]),
      [
        [1, 'syntax', 'docker.io/docker/dockerfile:1.7-labs', 'linux/amd64', null],
        [2, 'FROM', 'docker.io/library/alpine:latest', 'linux/arm64', null],
      ],
    );
    assert.deepEqual(uses[0]?.range, range(0, 9, 0, 35));
  });

  test('after a #! line, with spaces, with a digest; not after a blank line', () => {
    const pinned = `docker/dockerfile:1@${D}`;
    assert.deepEqual(refs(`#!/usr/bin/env -S docker build -f\n#  syntax = ${pinned}\nFROM a\n`), [
      `docker.io/docker/dockerfile:1@${D}`,
      'docker.io/library/a:latest',
    ]);
    assert.deepEqual(refs('\n# syntax=docker/dockerfile:1\nFROM a\n'), ['docker.io/library/a:latest']);
    assert.deepEqual(refs('FROM a\n# syntax=docker/dockerfile:1\n'), ['docker.io/library/a:latest']);
  });

  test('--build-arg BUILDKIT_SYNTAX names the frontend image instead of # syntax=, as BuildKit takes it', () => {
    const buildArgs = { BUILDKIT_SYNTAX: 'docker/dockerfile:1.7-labs' };
    const uses = resolve('# syntax=docker/dockerfile:1.4\nFROM alpine\n', { buildArgs });
    assert.deepEqual(
      uses.map((u) => [u.line, u.instruction, u.raw, u.ref, u.platform]),
      [
        [1, 'syntax', 'docker/dockerfile:1.4', 'docker.io/docker/dockerfile:1.7-labs', 'linux/amd64'],
        [2, 'FROM', 'alpine', 'docker.io/library/alpine:latest', 'linux/arm64'],
      ],
    );
    assert.deepEqual(uses[0]?.range, range(0, 9, 0, 30));
    // Without a directive the build still runs that frontend; the use sits at the top of the file.
    const [frontend] = resolve('FROM alpine\n', {
      buildArgs: { BUILDKIT_SYNTAX: ' docker/dockerfile:1 x=y' },
    });
    assert.deepEqual(
      [frontend?.line, frontend?.instruction, frontend?.ref, frontend?.range],
      [1, 'syntax', 'docker.io/docker/dockerfile:1', range(0, 0, 0, 0)],
    );
    const bad = resolve('FROM a\n', { buildArgs: { BUILDKIT_SYNTAX: 'Docker/Dockerfile' } })[0];
    assert.equal(bad?.ref, null);
    assert.match(
      bad?.error ?? '',
      /^Line 1: --build-arg BUILDKIT_SYNTAX=Docker\/Dockerfile is not a valid image/,
    );
  });

  test('an invalid syntax image is an error entry', () => {
    const u = resolve('# syntax=Docker/Dockerfile\nFROM a\n')[0];
    assert.equal(u?.instruction, 'syntax');
    assert.equal(u?.ref, null);
    assert.match(u?.error ?? '', /^Line 1: # syntax=Docker\/Dockerfile is not a valid image reference/);
  });
});

describe('resolveDockerfile: errors', () => {
  test('FROM ${UNSET} names the ARG and the line', () => {
    const u = only('FROM alpine\nRUN true\nFROM ${UNSET}\n'.split('\n').slice(2).join('\n'));
    assert.equal(u.ref, null);
    assert.equal(
      u.error,
      'Line 1: "${UNSET}" expands to an empty image name. ARG UNSET is not set: declare it before the first FROM.',
    );
    assert.deepEqual(u.range, range(0, 5, 0, 13));
  });

  test('uppercase repository, bad tag, bad digest, bad registry', () => {
    const text = `FROM Alpine\nFROM alpine:-bad\nFROM alpine@sha256:abc\nFROM bad_host:5000/x/y\nFROM ubuntu:24.04\n`;
    const uses = resolve(text);
    assert.deepEqual(
      uses.map((u) => u.ref),
      [null, null, null, null, 'docker.io/library/ubuntu:24.04'],
    );
    assert.match(
      uses[0]?.error ?? '',
      /^Line 1: "Alpine" is not a valid image reference: repository names must be lowercase\. Try "alpine"\.$/,
    );
    assert.match(uses[1]?.error ?? '', /^Line 2: .*tag "-bad" is not valid/);
    assert.match(uses[2]?.error ?? '', /^Line 3: /);
    assert.match(uses[3]?.error ?? '', /^Line 4: /);
  });

  test('malformed FROM lines', () => {
    const uses = resolve(
      'FROM\nFROM a b\nFROM alpine # trailing comment\nFROM ${V\nFROM alpine:${V:?needs_a_tag}\n',
    );
    assert.equal(uses.length, 5);
    assert.ok(uses.every((u) => u.ref === null && u.error));
    assert.match(uses[0]?.error ?? '', /^Line 1: FROM names no image/);
    assert.match(uses[1]?.error ?? '', /^Line 2: FROM takes an image and optionally "AS name", not 2 words/);
    assert.match(uses[2]?.error ?? '', /comments must be on lines of their own/);
    assert.match(uses[3]?.error ?? '', /^Line 4: cannot expand "\$\{V": syntax error: missing '}'/);
    assert.match(uses[4]?.error ?? '', /V: needs_a_tag/);
  });

  test('garbage in, no exception out', () => {
    for (const text of [
      '\u0000\u0001',
      'FROM',
      '<<EOF',
      'RUN <<',
      'RUN <<-',
      '\\',
      '`',
      '# escape=`',
      '${',
      'FROM ${',
      'COPY --from',
      'RUN --mount=',
      'FROM --platform= a',
      '\uFEFF',
      '\r\r\r',
      'ARG\nFROM $',
    ]) {
      assert.doesNotThrow(() => resolve(text), JSON.stringify(text));
    }
  });
});

describe('parseDockerfile', () => {
  test("dockerfile-ast's instructions are BuildKit's, at the positions of the text", () => {
    const text =
      '# syntax=x/y:1 a=b\n# escape=`\nFROM a AS one\nRUN cat << EOF\nFROM evil\nEOF\nCOPY C:\\\\ D:\\\\\nFROM one\n';
    const froms = parseDockerfile(text)?.getFROMs() ?? [];
    assert.deepEqual(
      froms.map((f) => [f.getRange().start.line, f.getImage(), f.getBuildStage()]),
      [
        [2, 'a', 'one'],
        [7, 'one', null],
      ],
    );
  });
});

describe('useAt', () => {
  const text =
    '# syntax=docker/dockerfile:1\nFROM golang:1.22 AS build\nCOPY --from=nginx:1 /a /b\nFROM alp\\\nine:3\n';
  const uses = resolve(text);

  test('finds the use whose range contains the position', () => {
    assert.equal(useAt(uses, 0, 12)?.instruction, 'syntax');
    assert.equal(useAt(uses, 1, 5)?.ref, 'docker.io/library/golang:1.22');
    assert.equal(useAt(uses, 1, 16)?.ref, 'docker.io/library/golang:1.22');
    assert.equal(useAt(uses, 2, 15)?.ref, 'docker.io/library/nginx:1');
    assert.equal(useAt(uses, 4, 2)?.ref, 'docker.io/library/alpine:3');
  });

  test('falls back to the use on that line, and to nothing', () => {
    assert.equal(useAt(uses, 1, 0)?.ref, 'docker.io/library/golang:1.22');
    assert.equal(useAt(uses, 2, 0)?.ref, 'docker.io/library/nginx:1');
    assert.equal(useAt(uses, 5, 0), undefined);
    assert.equal(useAt([], 0, 0), undefined);
  });
});

describe('missingBuildArgs: which build arguments would resolve a use', () => {
  const errorOf = (text: string, options: ResolveOptions = {}) => resolve(text, options)[0]!.error ?? '';

  test('an ARG declared without a value, or empty, is named; one never declared is not', () => {
    assert.deepEqual(missingBuildArgs(errorOf('ARG TAG\nFROM alpine:${TAG}')), ['TAG']);
    assert.deepEqual(missingBuildArgs(errorOf('ARG REG\nARG NAME\nFROM ${REG}${NAME}')), ['REG', 'NAME']);
    assert.deepEqual(missingBuildArgs(errorOf('ARG IMG=\nFROM ${IMG}')), ['IMG']);
    assert.deepEqual(missingBuildArgs(errorOf('FROM ${NEVER_DECLARED}')), []);
    assert.deepEqual(missingBuildArgs(errorOf('FROM Upper/Case')), []);
  });

  test("an ARG without a value that another ARG's default reads is named too, through several", () => {
    const text = 'ARG VERSION\nARG BASE=node:${VERSION}-alpine\nFROM ${BASE}\n';
    const error = errorOf(text);
    assert.match(error, /ARG VERSION has no value \(the default of ARG BASE reads it\)/);
    assert.deepEqual(missingBuildArgs(error), ['VERSION']);
    assert.deepEqual(refs(text, { buildArgs: { VERSION: '22' } }), ['docker.io/library/node:22-alpine']);
    const chain = 'ARG REG=\nARG REPO=${REG}/app\nARG IMAGE=${REPO}:1\nFROM ${IMAGE}\n';
    assert.match(errorOf(chain), /ARG REG is empty \(the default of ARG REPO reads it\)/);
    assert.deepEqual(missingBuildArgs(errorOf(chain)), ['REG']);
    // Declared after the default that reads it: a build argument would not reach that default.
    assert.deepEqual(missingBuildArgs(errorOf('ARG IMAGE=alpine:${TAG}\nARG TAG\nFROM ${IMAGE}\n')), []);
    // Read with a fallback (${V:-3}): V is not what went wrong, and the name's own hint stays.
    const fallback = errorOf('ARG V\nARG T=${V:-3}\nFROM Alpine:$T\n');
    assert.deepEqual(missingBuildArgs(fallback), []);
    assert.match(fallback, /Try "alpine:3"/);
  });

  test('giving those build arguments resolves the use', () => {
    const text = 'ARG REG\nARG TAG\nFROM ${REG}/app:${TAG}';
    const names = missingBuildArgs(errorOf(text));
    const buildArgs = Object.fromEntries(names.map((n) => [n, n === 'REG' ? 'registry.lan' : '1.0']));
    assert.equal(resolve(text, { buildArgs })[0]!.ref, 'registry.lan/app:1.0');
  });
});
