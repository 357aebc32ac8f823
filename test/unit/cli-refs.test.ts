// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { formatPlatform, hostPlatform } from '../../src/core/platform';

const root = join(__dirname, '..', '..');
const fixtures = join(root, 'test/fixtures/dockerfiles');
const dir = mkdtempSync(join(tmpdir(), 'stowage-refs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the real CLI entry point (src/cli.ts, as bundled into dist/cli.js) in a child process. */
function stowage(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function dockerfile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

interface Row {
  line: number;
  instruction: string;
  raw: string;
  expanded: string;
  ref: string | null;
  platform: string;
  stage: string | null;
  error?: string;
  range: { start: { line: number; character: number }; end: { line: number; character: number } };
}

/** The rows; exit 0, or 1 when `errors` (every row is printed either way). */
function json(args: string[], env?: NodeJS.ProcessEnv, errors = false): Row[] {
  const r = stowage(['refs', ...args, '--json'], env);
  assert.equal(r.code, errors ? 1 : 0, r.stderr);
  return JSON.parse(r.stdout) as Row[];
}

describe('stowage refs --json', () => {
  test('lists every image of a multi-stage Dockerfile in file order', () => {
    const D = `sha256:${'b'.repeat(64)}`;
    const rows = json([join(fixtures, 'multistage.Dockerfile'), '--platform', 'linux/arm/v7']);
    assert.deepEqual(
      rows.map((r) => [r.line, r.instruction, r.ref, r.stage]),
      [
        [1, 'syntax', 'docker.io/docker/dockerfile:1.7', null],
        [5, 'FROM', 'docker.io/library/golang:1.22-bookworm', 'build'],
        [7, 'COPY', 'docker.io/tonistiigi/xx:1.4.0', 'build'],
        [8, 'RUN', 'docker.io/library/golang:1.22', 'build'],
        [15, 'FROM', `gcr.io/distroless/static-debian12:nonroot@${D}`, 'runtime'],
        [18, 'COPY', 'ghcr.io/acme/certs:2024', 'runtime'],
      ],
    );
    // --platform is the target; # syntax= and FROM --platform=$BUILDPLATFORM use the machine's.
    assert.deepEqual(
      rows.filter((r) => r.instruction === 'COPY' || r.line === 15).map((r) => r.platform),
      ['linux/arm/v7', 'linux/arm/v7', 'linux/arm/v7'],
    );
    const host = formatPlatform(hostPlatform());
    assert.deepEqual([rows[0]?.platform, rows[1]?.platform], [host, host]);
    assert.equal(rows[1]?.raw, '${IMAGE}');
    assert.equal(rows[1]?.expanded, 'golang:1.22-bookworm');
    assert.deepEqual(rows[2]?.range, { start: { line: 6, character: 12 }, end: { line: 6, character: 31 } });
    for (const r of rows) assert.equal('error' in r, false);
  });

  test('--build-arg overrides defaults; several may be given; NAME alone reads the environment', () => {
    const file = dockerfile(
      'args.Dockerfile',
      'ARG GO=1.21\nARG DISTRO=alpine\nFROM golang:${GO}-${DISTRO}\n',
    );
    assert.deepEqual(
      json([file, '--build-arg', 'GO=1.23', '--build-arg', 'DISTRO=bookworm']).map((r) => r.ref),
      ['docker.io/library/golang:1.23-bookworm'],
    );
    assert.deepEqual(
      json([file, '--build-arg', 'GO'], { GO: '1.20' }).map((r) => r.ref),
      ['docker.io/library/golang:1.20-alpine'],
    );
  });

  test('an unresolvable reference has ref null and an error naming the line and the ARG', () => {
    const file = dockerfile('unset.Dockerfile', 'FROM alpine AS ok\nFROM ${UNSET}\nFROM Alpine\n');
    const rows = json([file, '--platform', 'linux/amd64'], {}, true);
    assert.deepEqual(
      rows.map((r) => [r.line, r.ref, r.platform]),
      [
        [1, 'docker.io/library/alpine:latest', 'linux/amd64'],
        [2, null, 'linux/amd64'],
        [3, null, 'linux/amd64'],
      ],
    );
    assert.match(rows[1]?.error ?? '', /^Line 2: .*ARG UNSET is not set/);
    assert.match(rows[2]?.error ?? '', /^Line 3: .*must be lowercase/);
  });

  test('an empty Dockerfile gives an empty array', () => {
    assert.deepEqual(json([dockerfile('empty.Dockerfile', '')]), []);
  });
});

describe('stowage refs (table)', () => {
  test('an aligned table with errors in place of the reference (their line once); exit 1, as a linter', () => {
    const file = dockerfile(
      'table.Dockerfile',
      'FROM golang:1.22 AS build\nFROM ${NOPE}\nFROM alpine:3.20\nCOPY --from=build /a /b\n',
    );
    const r = stowage(['refs', file, '--platform', 'linux/arm64']);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^LINE\s+INSTRUCTION\s+REFERENCE\s+PLATFORM\s+STAGE$/);
    assert.match(lines[1] ?? '', /^1\s+FROM\s+docker\.io\/library\/golang:1\.22\s+linux\/arm64\s+build$/);
    assert.match(lines[2] ?? '', /^2\s+FROM\s+error: "\$\{NOPE\}" expands to an empty image name/);
    assert.match(lines[3] ?? '', /^3\s+FROM\s+docker\.io\/library\/alpine:3\.20\s+linux\/arm64\s+-$/);
    assert.equal(lines.length, 4);
    // Columns line up across rows.
    const at = (l: string, word: string) => l.indexOf(word);
    assert.equal(at(lines[1] as string, 'docker.io'), at(lines[0] as string, 'REFERENCE'));
    assert.equal(at(lines[3] as string, 'linux/arm64'), at(lines[0] as string, 'PLATFORM'));
    assert.equal(at(lines[1] as string, 'build'), at(lines[0] as string, 'STAGE'));
  });

  test('a syntax error is an error row: exit 1', () => {
    const file = dockerfile('syntax.Dockerfile', 'FROM alpine AS a b c\nFROM alpine:3.20\n');
    const r = stowage(['refs', '-f', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /\n1\s+FROM\s+error: FROM takes an image and optionally "AS name"/);
    assert.match(r.stdout, /\n2\s+FROM\s+docker\.io\/library\/alpine:3\.20/);
  });

  test('-f DOCKERFILE, as pull takes it, is the same as the argument', () => {
    const file = dockerfile('f.Dockerfile', 'FROM alpine:3.20\n');
    assert.deepEqual(json(['-f', file]), json([file]));
  });

  test('a Dockerfile with no images says so', () => {
    const file = dockerfile('none.Dockerfile', 'FROM scratch\nCOPY app /app\n');
    const r = stowage(['refs', file]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${file}: no image references\n`);
  });
});

describe('stowage refs: failures', () => {
  test('a missing file exits 1 with one line naming it', () => {
    const missing = join(dir, 'nope', 'Dockerfile');
    const r = stowage(['refs', missing, '--json']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `stowage refs: Cannot read Dockerfile ${missing}: no such file.\n`);
  });

  test('a directory exits 1', () => {
    const r = stowage(['refs', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /it is a directory/);
  });

  const bad: [string, string[], RegExp][] = [
    ['no file', ['refs'], /refs takes one Dockerfile/],
    ['two files', ['refs', 'a', 'b'], /refs takes one Dockerfile/],
    ['an unknown option', ['refs', 'Dockerfile', '--bogus'], /unknown option --bogus\n/],
    [
      'a typo',
      ['refs', 'Dockerfile', '--platfrom', 'x'],
      /unknown option --platfrom \(did you mean --platform\?\)/,
    ],
    ['a file twice', ['refs', 'Dockerfile', '-f', 'Other'], /refs takes one Dockerfile/],
    [
      'an invalid --platform',
      ['refs', 'Dockerfile', '--platform', 'linux//x'],
      /Invalid platform "linux\/\/x"/,
    ],
    ['--platform without a value', ['refs', 'Dockerfile', '--platform'], /--platform needs a value/],
    [
      'a malformed --build-arg',
      ['refs', 'Dockerfile', '--build-arg', '=x'],
      /--build-arg "=x" is not NAME=VALUE/,
    ],
  ];
  for (const [what, args, message] of bad) {
    test(`${what} exits 2 with the usage`, () => {
      const r = stowage(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /usage: stowage refs \[OPTIONS\] DOCKERFILE/);
    });
  }

  test('--help prints the usage, what refs does and every option, and exits 0', () => {
    const r = stowage(['refs', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^usage: stowage refs \[OPTIONS\] DOCKERFILE/);
    assert.match(r.stdout, /\nList the images a Dockerfile uses/);
    for (const option of [
      '-f, --file DOCKERFILE',
      '--platform OS/ARCH',
      '--build-arg NAME',
      '--json',
      '-h, --help',
    ]) {
      assert.ok(r.stdout.includes(option), option);
    }
  });
});
