// What the CLI (dist/cli.js) says back about what it was given: a reference or URL holding
// credentials is never repeated with them (errors, --json, Dockerfile rows), and a reference no
// pull could bring is called invalid, not "not in the cache". No registry: every case fails
// before the network.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type CliRun, requireCli, runCli } from '../support/cli';
import { putTinyImage, Store } from '../support/engine';

const SECRET = 's3cret-pw';
let work: string;
let cache: string;

/** The built CLI with this file's cache and no docker config. */
function cli(...args: string[]): Promise<CliRun> {
  return runCli(args, 60_000, { STOWAGE_CACHE: cache, DOCKER_CONFIG: join(work, 'no-docker-config') });
}

before(async () => {
  requireCli();
  work = await mkdtemp(join(tmpdir(), 'stowage-cli-inputs-'));
  cache = join(work, 'cache');
  // One cached image (config and manifest, no layers): push and export get past the source.
  const store = await Store.open(cache);
  await store.setReference('127.0.0.1:5000/team/app:v1', await putTinyImage(store));
});

after(() => rm(work, { recursive: true, force: true }));

/** Failed, said so in one line or JSON, never with the password; `***@` where it was. */
function hidden(r: CliRun, what: string): void {
  assert.notEqual(r.code, 0, `${what}: ${r.stdout}`);
  const out = `${r.stdout}${r.stderr}`;
  assert.ok(!out.includes(SECRET), `${what} repeated the password:\n${out}`);
  assert.ok(!out.includes('user:'), `${what} repeated the user name:\n${out}`);
  assert.match(out, /\*\*\*@/, `${what} shows where the credentials were:\n${out}`);
}

describe('credentials in what a command is given are never repeated', () => {
  const url = `https://user:${SECRET}@registry.example/team/app:v1`;
  const bare = `user:${SECRET}@registry.example/team/app`;

  test('a reference with user:password@ (URL or bare) given to any command', async () => {
    for (const args of [
      ['pull', url],
      ['pull', bare],
      ['pull', '--json', url],
      ['pull', '--json', url, 'alpine@latest'],
      ['pull', url, '127.0.0.1:5000/team/app:v1'],
      ['inspect', url],
      ['inspect', '--json', bare],
      ['rm', url],
      ['export', url, '-o', join(work, 'x.tar')],
      ['push', url, '127.0.0.1:5000/team/copy:v1'],
      ['push', '127.0.0.1:5000/team/app:v1', url],
      ['tags', bare],
      ['login', `https://user:${SECRET}@registry.example`],
    ]) {
      const r = await cli(...args);
      hidden(r, args.join(' '));
    }
    // What it is and what to do instead.
    const r = await cli('pull', url);
    assert.match(r.stderr, /cannot be part of an image reference.*stowage login registry\.example/);
  });

  test('--mirror and a daemon.json mirror with credentials, in any shape the check refuses', async () => {
    for (const mirror of [
      `docker.io=ftp://user:${SECRET}@mirror.example/`,
      `https://user:${SECRET}@mirror.example/`,
      `docker.io=https://user:${SECRET}@mirror example/`,
    ]) {
      hidden(await cli('pull', '--mirror', mirror, 'alpine'), `--mirror ${mirror}`);
    }
    const daemon = join(work, 'daemon.json');
    await writeFile(daemon, JSON.stringify({ 'registry-mirrors': [`user:${SECRET}@mirror.example`] }));
    hidden(await cli('pull', '--daemon-config', daemon, 'alpine'), 'daemon.json');
  });

  test('a Dockerfile reference with credentials: pull -f, its JSON, refs --json', async () => {
    const dockerfile = join(work, 'Dockerfile');
    await writeFile(
      dockerfile,
      `FROM https://user:${SECRET}@registry.example/base:1\nCOPY --from=user:${SECRET}@registry.example/x:1 / /\n`,
    );
    for (const args of [
      ['pull', '-f', dockerfile],
      ['pull', '--json', '-f', dockerfile],
      ['refs', dockerfile],
      ['refs', '--json', dockerfile],
    ]) {
      hidden(await cli(...args), args.join(' '));
    }
  });

  test('a digest after the credentials stays; a tag typed after @ is shown as typed', async () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const r = await cli('pull', `https://user:${SECRET}@registry.example/x@${digest}`);
    hidden(r, 'pull URL@digest');
    assert.ok(r.stderr.includes(`https://***@registry.example/x@${digest}`), r.stderr);
    const typo = await cli('pull', 'alpine@latest');
    assert.equal(typo.code, 1);
    assert.match(typo.stderr, /"alpine@latest": Invalid digest "latest"/);
  });
});

describe('a reference no pull could bring is invalid, not "not in the cache"', () => {
  test('export, push, inspect and rm of "bad ref!" say why it is no reference (exit 1)', async () => {
    for (const args of [
      ['export', 'bad ref!', '-o', join(work, 'y.tar')],
      ['export', '127.0.0.1:5000/team/app:v1', 'Bad/Ref', '-o', join(work, 'y.tar')],
      ['push', 'bad ref!', '127.0.0.1:5000/team/copy:v1'],
      ['inspect', 'bad ref!'],
      ['rm', 'bad ref!'],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /Invalid image reference "(bad ref!|Bad\/Ref)"/, args.join(' '));
      assert.doesNotMatch(r.stderr, /not in the cache|stowage pull/, args.join(' '));
    }
  });

  test('a valid reference that is not cached still says so, with the pull that brings it', async () => {
    const r = await cli('export', 'alpine:3', '-o', join(work, 'z.tar'));
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /docker\.io\/library\/alpine:3 is not in the cache .*stowage pull alpine:3, or Pull Image in VS Code/,
    );
    const digest = await cli('export', `sha256:${'b'.repeat(64)}`, '-o', join(work, 'z.tar'));
    assert.match(digest.stderr, /No cached image has the digest sha256:b{64}/);
  });
});
