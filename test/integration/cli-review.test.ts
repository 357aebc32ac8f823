// The CLI as a docker/skopeo user meets it (dist/cli.js): file-system failures in one line, caches
// that read-only commands never create, JSON on failure, file:line for -f, exit 130/143 on signals.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CLI, type CliRun, runCli } from '../support/cli';
import { Store } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let cache: string;
let reg: RunningRegistry;
let image: BuiltImage;

/** The built CLI with this file's cache and no docker config. */
function cli(...args: string[]): Promise<CliRun> {
  return runCli(args, 60_000, { STOWAGE_CACHE: cache, DOCKER_CONFIG: join(work, 'no-docker-config') });
}

/** Exit 1 with exactly one line on stderr, and no stack trace. */
function oneLineError(r: CliRun, message: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr.split('\n').length, 2, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /);
  assert.match(r.stderr, message);
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-cli-review-'));
  cache = join(work, 'cache');
  reg = await startRegistry();
  image = await buildImage(join(work, 'img'), {
    tag: 'v1',
    seed: 'cli-review',
    layers: 2,
    layerSize: 50_000,
  });
  await pushLayout(image.layoutDir, 'v1', reg, 'demo/base:v1');
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('file-system failures: one line naming the path, exit 1', () => {
  test('--cache naming a file', async () => {
    const file = join(work, 'afile');
    await writeFile(file, 'x');
    for (const command of [['ls'], ['pull', `${reg.host}/demo/base:v1`]]) {
      const r = await cli(...command, '--cache', file);
      oneLineError(
        r,
        new RegExp(`^stowage ${command[0]}: cannot use ${file} as the cache: it is a file, not a folder\n$`),
      );
    }
  });

  test('import of a missing archive, export into a missing folder', async () => {
    oneLineError(await cli('import', 'nope.tar'), /^stowage import: cannot read nope\.tar: no such file\n$/);
    assert.equal((await cli('pull', `${reg.host}/demo/base:v1`)).code, 0);
    const r = await cli('export', `${reg.host}/demo/base:v1`, '-o', '/nonexist/dir/x.tar');
    oneLineError(
      r,
      /^stowage export: cannot write \/nonexist\/dir\/x\.tar: the folder \/nonexist\/dir does not exist\n$/,
    );
  });
});

describe('read-only commands never make a cache', () => {
  test('a missing cache is an empty one, and stays missing', async () => {
    const missing = join(work, 'no-cache-here');
    const ls = await cli('ls', '--cache', missing, '--json');
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(JSON.parse(ls.stdout), []);
    const table = await cli('ls', '--cache', missing);
    assert.equal(table.stdout.split('\n')[1], '', 'the header, no rows');
    for (const command of ['inspect', 'rm']) {
      oneLineError(await cli(command, 'alpine', '--cache', missing), /alpine:latest is not in the cache/);
    }
    const exported = await cli('export', 'alpine', '-o', join(work, 'a.tar'), '--cache', missing);
    oneLineError(exported, /alpine:latest is not in the cache/);
    const gc = await cli('gc', '--cache', missing, '--json');
    assert.deepEqual(JSON.parse(gc.stdout), { removedBlobs: 0, freedBytes: 0, removedIngests: 0 });
    await assert.rejects(readdir(missing), { code: 'ENOENT' });
  });

  test('a folder with other things in it is refused and left as it was', async () => {
    const other = join(work, 'project');
    await mkdir(other);
    await writeFile(join(other, 'notes.txt'), 'mine');
    for (const command of [['ls'], ['gc'], ['inspect', 'alpine'], ['rm', 'alpine']]) {
      const r = await cli(...command, '--cache', other);
      oneLineError(
        r,
        new RegExp(
          `: ${other} is not a Stowage cache \\(no oci-layout file\\); pass the cache folder with --cache`,
        ),
      );
    }
    assert.deepEqual(await readdir(other), ['notes.txt']);
  });

  test('pull still creates the cache', async () => {
    const fresh = join(work, 'fresh', 'cache');
    const r = await cli('pull', `${reg.host}/demo/base:v1`, '--cache', fresh);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readdir(fresh)).includes('oci-layout'));
  });
});

describe('pull', () => {
  test('a reference by digest shows its digest once', async () => {
    for (const ref of [`${reg.host}/demo/base@${image.digest}`, `${reg.host}/demo/base:v1@${image.digest}`]) {
      const r = await cli('pull', ref);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(`));
      assert.equal(r.stdout.split('@').length, 2, r.stdout);
    }
  });

  test('--json: one failing reference prints its error object too', async () => {
    const r = await cli('pull', `${reg.host}/demo/base:nope`, '--json');
    assert.equal(r.code, 1);
    const out = JSON.parse(r.stdout);
    assert.equal(out.reference, `${reg.host}/demo/base:nope`);
    assert.equal(out.error.code, 'NOT_FOUND');
    assert.match(out.error.message, /HTTP 404/);
    assert.equal(r.stderr.split('\n').length, 2, r.stderr);
  });

  test('-f: a registry failure keeps the file:line of its reference', async () => {
    const dockerfile = join(work, 'Dockerfile.local');
    await writeFile(dockerfile, `FROM ${reg.host}/demo/base:v1\n\nFROM ${reg.host}/demo/base:nope\n`);
    const r = await cli('pull', '-f', dockerfile, '--json');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`^stowage pull: ${dockerfile}:3: ${reg.host}/demo/base:nope: .*HTTP 404`, 'm'),
    );
    const failed = (JSON.parse(r.stdout) as { error?: unknown; file?: string; line?: number }[]).find(
      (x) => x.error,
    );
    assert.deepEqual([failed?.file, failed?.line], [dockerfile, 3]);
  });

  test('--platform takes a comma-separated list, as buildx does', async () => {
    const r = await cli(
      'pull',
      `${reg.host}/demo/base:v1`,
      '--platform',
      'linux/amd64,linux/arm64',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...JSON.parse(r.stdout).platforms].sort(), ['linux/amd64', 'linux/arm64']);
  });

  test('--ca-file without a PEM certificate is a usage error', async () => {
    const bad = join(work, 'bad.pem');
    await writeFile(bad, 'not a certificate\n');
    const r = await cli('pull', `${reg.host}/demo/base:v1`, '--ca-file', bad);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `stowage pull: --ca-file ${bad} holds no PEM certificate\n`);
  });

  test('Ctrl+C exits 130, SIGTERM 143, with the message', async () => {
    const connected: Socket[] = [];
    let onConnection = () => {};
    // A registry that accepts and never answers: the pull waits until the signal.
    const server: Server = createServer((socket) => {
      connected.push(socket);
      onConnection();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      for (const [signal, code] of [
        ['SIGINT', 130],
        ['SIGTERM', 143],
      ] as const) {
        const child = spawn(process.execPath, [CLI, 'pull', `127.0.0.1:${port}/x/y:1`], {
          env: { ...process.env, STOWAGE_CACHE: cache },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d) => {
          stderr += d;
        });
        await new Promise<void>((resolve) => {
          onConnection = resolve;
        });
        child.kill(signal);
        const [exit] = await new Promise<[number | null]>((resolve) =>
          child.on('close', (c) => resolve([c])),
        );
        assert.equal(exit, code, stderr);
        assert.match(stderr, /^stowage pull: .*cancelled\.\n$/);
      }
    } finally {
      for (const s of connected) s.destroy();
      server.close();
    }
  });
});

describe('arguments and help', () => {
  test('an unknown option or command gets a suggestion, exit 2', async () => {
    const option = await cli('pull', '--plaform', 'linux/arm64', 'x');
    assert.equal(option.code, 2);
    assert.match(option.stderr, /^stowage pull: unknown option --plaform \(did you mean --platform\?\)\n/);
    const command = await cli('pul');
    assert.equal(command.code, 2);
    assert.match(command.stderr, /^stowage: unknown command "pul" \(did you mean "pull"\?\)\n/);
    const before = await cli('--cache', cache, 'ls');
    assert.equal(before.code, 2);
    assert.match(before.stderr, /options go after the command: stowage ls --cache /);
  });

  test('stowage help CMD is CMD --help; extra arguments to ls and gc are usage errors', async () => {
    const help = await cli('help', 'pull');
    assert.equal(help.code, 0);
    assert.equal(help.stdout, (await cli('pull', '--help')).stdout);
    assert.match(help.stdout, /^usage: stowage pull /);
    assert.match(help.stdout, /\n {2}-v, --verbose +log every registry request/);
    for (const command of ['ls', 'gc']) {
      const r = await cli(command, 'extra');
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`${command} takes no arguments`));
    }
  });

  test('export -o - --json: the archive on stdout, the JSON summary on stderr', async () => {
    assert.equal((await cli('pull', `${reg.host}/demo/base:v1`)).code, 0);
    const r = await cli('export', `${reg.host}/demo/base:v1`, '-o', '-', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.slice(257, 262), 'ustar', 'a tar archive');
    assert.equal(JSON.parse(r.stderr).file, '-');
  });
});

describe('finding a cached image as docker finds a local one', () => {
  test('by a name recorded verbatim, by repo@digest, by a bare digest; rm by digest', async () => {
    const own = join(work, 'lookup');
    const pulled = await runCli(['pull', `${reg.host}/demo/base:v1`, '--cache', own], 60_000);
    assert.equal(pulled.code, 0, pulled.stderr);
    // An archive from another tool may name an image "v9" alone (skopeo's oci-archive:x.tar:v9).
    const store = await Store.open(own);
    const top = await store.getReference(`${reg.host}/demo/base:v1`);
    await store.setReference('v9', top!);
    for (const input of ['v9', `${reg.host}/demo/base@${image.digest}`, image.digest]) {
      const r = await cli('inspect', input, '--cache', own, '--json');
      assert.equal(r.code, 0, `${input}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).digest, image.digest, input);
    }
    // Two names share the digest: rm by digest will not guess which one.
    const ambiguous = await cli('rm', image.digest, '--cache', own);
    assert.equal(ambiguous.code, 2);
    assert.match(ambiguous.stderr, /cached under several names/);
    assert.equal((await cli('rm', 'v9', '--cache', own)).stdout, 'removed v9\n');
    assert.equal(
      (await cli('rm', image.digest, '--cache', own)).stdout,
      `removed ${reg.host}/demo/base:v1\n`,
    );
    const gone = await cli('inspect', image.digest, '--cache', own);
    oneLineError(gone, new RegExp(`No cached image has the digest ${image.digest}`));
  });
});

describe('a registry slow to answer is not a silent one', () => {
  test('each retry is told on stderr, then the one-line error', async () => {
    // Over plain HTTP every request gets a 503 (TLS hellos are dropped: a plain server).
    const server = createHttpServer((_req, res) => {
      res.writeHead(503, { 'retry-after': '0' });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await cli('pull', `127.0.0.1:${port}/a/b:v1`, '--cache', join(work, 'slow'));
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.deepEqual(
        lines.slice(0, 3),
        [2, 3, 4].map((n) => `stowage: 127.0.0.1:${port}: HTTP 503; trying again (attempt ${n} of 4)`),
      );
      assert.match(lines[3]!, /^stowage pull: .*HTTP 503/);
      assert.equal(lines.length, 4);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
