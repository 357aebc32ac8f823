// The CLI as users run it (node dist/cli.js): pull, ls, inspect, rm, gc, tags, exit codes.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliRun, runCli } from '../support/cli';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let cache: string;
let reg: RunningRegistry;
let image: BuiltImage;

function cli(...args: string[]): Promise<CliRun> {
  return cliWith({}, ...args);
}

/** The built CLI with this file's cache and no docker config unless a test gives one. */
function cliWith(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  return runCli(args, 60_000, {
    STOWAGE_CACHE: cache,
    DOCKER_CONFIG: join(work, 'no-docker-config'),
    ...env,
  });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-cli-'));
  cache = join(work, 'cache');
  reg = await startRegistry();
  image = await buildImage(join(work, 'img'), { tag: 'v1', seed: 'cli', layers: 2, layerSize: 100_000 });
  await pushLayout(image.layoutDir, 'v1', reg, 'cli/app:v1');
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('stowage CLI', () => {
  test('pull --json, then again from the cache', async () => {
    const ref = `${reg.host}/cli/app:v1`;
    const first = await cli('pull', ref, '--platform', 'linux/arm64', '--json');
    assert.equal(first.code, 0, first.stderr);
    const r = JSON.parse(first.stdout);
    assert.equal(r.digest, image.digest);
    assert.deepEqual(r.platforms, ['linux/arm64']);
    assert.equal(r.fromCache, false);
    assert.equal(r.blobsDownloaded, 3);
    const again = await cli('pull', ref, '--platform', 'linux/arm64', '--json', '-v');
    assert.equal(again.code, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).fromCache, true);
    assert.ok(!/→/.test(again.stderr), 'no request was logged for a cached image');
  });

  test('plain pull prints one line per blob when not on a terminal', async () => {
    const r = await cli('pull', `${reg.host}/cli/app:v1`, '--platform', 'linux/amd64');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /pulled layer sha256:[0-9a-f]{64}/);
    assert.match(r.stdout, new RegExp(`${reg.host}/cli/app:v1@${image.digest}`));
  });

  test('pull -f: every image a Dockerfile needs, build args applied, platforms merged per image', async () => {
    const dir = await mkdtemp(join(work, 'df-'));
    const dockerfile = join(dir, 'Dockerfile');
    await writeFile(
      dockerfile,
      [
        'ARG REG',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile's ${…}
        'FROM ${REG}/cli/app:v1 AS build',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile's ${…}
        'FROM --platform=linux/arm64 ${REG}/cli/app:v1',
        'COPY --from=build /a /b',
        '',
      ].join('\n'),
    );
    const own = join(dir, 'cache');
    const args = ['pull', '-f', dockerfile, '--build-arg', `REG=${reg.host}`, '--platform', 'linux/amd64'];
    const r = await cli(...args, '--cache', own, '--json');
    assert.equal(r.code, 0, r.stderr);
    const results = JSON.parse(r.stdout) as { reference: string; platforms: string[]; fromCache: boolean }[];
    assert.equal(results.length, 1, 'one pull for the one image');
    assert.equal(results[0]!.reference, `${reg.host}/cli/app:v1`);
    assert.deepEqual([...results[0]!.platforms].sort(), ['linux/amd64', 'linux/arm64']);
    const again = await cli(...args, '--cache', own);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /already cached/);
  });

  test('pull -f: unresolvable lines and failed pulls are each reported, the rest is pulled, exit 1', async () => {
    const dir = await mkdtemp(join(work, 'df-'));
    const dockerfile = join(dir, 'Dockerfile');
    await writeFile(
      dockerfile,
      [`FROM ${reg.host}/cli/app:v1`, 'FROM Team/App:1', `FROM ${reg.host}/cli/app:nope`, ''].join('\n'),
    );
    const own = join(dir, 'cache');
    const r = await cli('pull', '-f', dockerfile, '--cache', own);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`${dockerfile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: .*lower ?case`, 'i'),
    );
    assert.match(r.stderr, /cli\/app:nope: /);
    assert.match(r.stderr, /2 of 3 could not be pulled/);
    assert.match(r.stdout, new RegExp(`${reg.host}/cli/app:v1@${image.digest}`));
    const inspect = await cli('inspect', `${reg.host}/cli/app:v1`, '--cache', own);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(
      (await cli('pull', `${reg.host}/cli/app:v1`, '--build-arg', 'A=1')).code,
      2,
      '--build-arg needs -f',
    );
  });

  test('the launcher keeps a per-user V8 code cache per command, and shrugs off a damaged one', async () => {
    const home = await mkdtemp(join(work, 'xdg-'));
    const dir = join(home, 'stowage-cli');
    const run = () => cliWith({ XDG_CACHE_HOME: home }, 'ls', '--json');
    const first = await run();
    assert.equal(first.code, 0, first.stderr);
    const files = await readdir(dir);
    assert.equal(files.length, 1, files.join());
    assert.match(files[0]!, /^node\d+_\d+_\d+-[a-z0-9]+-\d+-\d+\.ls\.v8$/);
    assert.equal((await stat(dir)).mode & 0o777, 0o700, 'compiled code is private to the user');
    assert.equal((await stat(join(dir, files[0]!))).mode & 0o777, 0o600);
    await writeFile(join(dir, files[0]!), 'not a code cache');
    const second = await run();
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    const rewritten = await readFile(join(dir, files[0]!));
    assert.notEqual(
      rewritten.toString('latin1', 0, 16),
      'not a code cache',
      'a rejected cache is written anew',
    );
  });

  test('ls and inspect read the cache', async () => {
    const ls = await cli('ls', '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const rows = JSON.parse(ls.stdout) as { name: string; digest: string }[];
    assert.deepEqual(
      rows.map((x) => x.name),
      [`${reg.host}/cli/app:v1`],
    );
    const inspect = await cli('inspect', `${reg.host}/cli/app:v1`, '--json');
    assert.equal(inspect.code, 0, inspect.stderr);
    const info = JSON.parse(inspect.stdout);
    assert.equal(info.digest, image.digest);
    const cached = info.platforms.filter((p: { cached: boolean }) => p.cached).length;
    assert.equal(cached, 2, 'arm64 and amd64 were pulled');
    const text = await cli('inspect', `${reg.host}/cli/app:v1`);
    assert.match(text.stdout, /linux\/amd64/);
  });

  test('tags lists a repository', async () => {
    const r = await cli('tags', `${reg.host}/cli/app`, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), ['v1']);
  });

  test('rm then gc frees the blobs', async () => {
    const rmr = await cli('rm', `${reg.host}/cli/app:v1`);
    assert.equal(rmr.code, 0, rmr.stderr);
    const gc = await cli('gc', '--json');
    assert.equal(gc.code, 0, gc.stderr);
    assert.ok(JSON.parse(gc.stdout).removedBlobs >= 5);
    const missing = await cli('rm', `${reg.host}/cli/app:v1`);
    assert.equal(missing.code, 1);
  });

  test('errors: one line, exit 1; usage: exit 2', async () => {
    const notFound = await cli('pull', `${reg.host}/cli/app:nope`);
    assert.equal(notFound.code, 1);
    assert.equal(notFound.stderr.trim().split('\n').length, 1, notFound.stderr);
    assert.match(notFound.stderr, /NOT_FOUND|not|Check the tag/i);
    const notCached = await cli('inspect', 'alpine:3.20');
    assert.equal(notCached.code, 1);
    assert.match(notCached.stderr, /not in the cache/);
    assert.equal((await cli('pull')).code, 2);
    assert.equal((await cli('pull', 'x', '--bogus')).code, 2);
    assert.equal((await cli('frobnicate')).code, 2);
    const badPlatform = await cli('pull', `${reg.host}/cli/app:v1`, '--platform', 'linux//amd64');
    assert.equal(badPlatform.code, 2, 'a malformed --platform is a usage error');
    assert.match(badPlatform.stderr, /Invalid platform "linux\/\/amd64"/);
    const offline = await cli('pull', `${reg.host}/cli/app:v1`, '--offline', '--always');
    assert.equal(offline.code, 1);
    assert.match(offline.stderr, /[Oo]ffline/);
  });

  test('login checks the password with the registry, then keeps it where docker does; logout removes it', async () => {
    const secure = await startRegistry({ tls: true, auth: 'basic' });
    try {
      await pushLayout(image.layoutDir, 'v1', secure, 'priv/app:v1');
      const { username, password } = secure.credentials!;
      const dockerConfig = join(work, 'login-config');
      const env = { DOCKER_CONFIG: dockerConfig };
      const configFile = join(dockerConfig, 'config.json');
      const login = (secret: string, ...extra: string[]) =>
        runCli(
          [
            'login',
            `https://${secure.host}/`,
            '-u',
            username,
            '--password-stdin',
            '--ca-file',
            secure.caFile!,
            ...extra,
          ],
          60_000,
          { STOWAGE_CACHE: cache, ...env },
          `${secret}\n`,
        );

      const wrong = await login('not-the-password');
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, new RegExp(`Login to ${secure.host.replace('.', '\\.')} failed`));
      assert.ok(!wrong.stderr.includes('not-the-password'), 'the password is never printed');
      await assert.rejects(stat(configFile), 'nothing was written for a refused password');

      const ok = await login(password, '-v');
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /^Login Succeeded\n$/);
      assert.match(ok.stderr, /stored unencrypted/);
      assert.ok(!ok.stderr.includes(password), 'not in the request log either');
      const stored = JSON.parse(await readFile(configFile, 'utf8'));
      assert.deepEqual(stored.auths[secure.host], {
        auth: Buffer.from(`${username}:${password}`).toString('base64'),
      });
      assert.equal((await stat(configFile)).mode & 0o777, 0o600);

      const ref = `${secure.host}/priv/app:v1`;
      const pulled = await cliWith(
        env,
        'pull',
        ref,
        '--ca-file',
        secure.caFile!,
        '--json',
        '--cache',
        join(work, 'login-cache'),
      );
      assert.equal(pulled.code, 0, pulled.stderr);
      assert.equal(JSON.parse(pulled.stdout).digest, image.digest);

      const out = await cliWith(env, 'logout', secure.host);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, `Removed login credentials for ${secure.host}\n`);
      assert.deepEqual(JSON.parse(await readFile(configFile, 'utf8')).auths, {});
      assert.equal((await cliWith(env, 'logout', secure.host)).stdout, `Not logged in to ${secure.host}\n`);
      const denied = await cliWith(
        env,
        'pull',
        ref,
        '--ca-file',
        secure.caFile!,
        '--cache',
        join(work, 'login-cache-2'),
      );
      assert.equal(denied.code, 1);

      const usage = await cliWith(env, 'login', secure.host, '--password-stdin');
      assert.equal(usage.code, 2, 'a password on stdin needs -u');
      const noTerminal = await cliWith(env, 'login', secure.host, '-u', username);
      assert.equal(noTerminal.code, 2);
      assert.match(noTerminal.stderr, /no terminal to ask on/);
      assert.equal((await cliWith(env, 'login', 'ghcr.io/owner')).code, 2, 'a repository is not a registry');
    } finally {
      await secure.stop();
    }
  });

  test("credentials from docker's config.json and a CA file reach a TLS + basic-auth registry", async () => {
    const secure = await startRegistry({ tls: true, auth: 'basic' });
    try {
      await pushLayout(image.layoutDir, 'v1', secure, 'priv/app:v1');
      const ref = `${secure.host}/priv/app:v1`;
      const denied = await cli('pull', ref, '--ca-file', secure.caFile!);
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /HTTP 401|UNAUTHORIZED|Sign in/i);
      const dockerConfig = join(work, 'docker-config');
      await mkdir(dockerConfig, { recursive: true });
      const { username, password } = secure.credentials!;
      const auth = Buffer.from(`${username}:${password}`).toString('base64');
      await writeFile(
        join(dockerConfig, 'config.json'),
        JSON.stringify({ auths: { [secure.host]: { auth } } }),
      );
      const ok = await cliWith(
        { DOCKER_CONFIG: dockerConfig },
        'pull',
        ref,
        '--ca-file',
        secure.caFile!,
        '--json',
        '-v',
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(JSON.parse(ok.stdout).digest, image.digest);
      assert.ok(!ok.stderr.includes(password), 'the request log never shows the password');
      assert.ok(!ok.stderr.includes(auth));
    } finally {
      await secure.stop();
    }
  });
});
