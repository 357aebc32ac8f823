import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isStowageError, type StowageError } from '../../src/core/errors';
import {
  type Credential,
  type CredentialSource,
  chainCredentials,
  DockerConfigCredentials,
  defaultHelperExec,
  lookupCredential,
  normaliseRegistryKey,
  StaticCredentials,
} from '../../src/core/registry/credentials';

const b64 = (s: string) => Buffer.from(s).toString('base64');

// A fake credential helper speaking docker-credential-helpers' protocol, logging each call.
const HELPER = `#!/bin/sh
read -r server
echo "$1 $server" >> "$(dirname "$0")/calls.log"
case "$server" in
  ghcr.io) printf '{"ServerURL":"ghcr.io","Username":"octo","Secret":"s3cret-helper"}' ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-123"}' "$server" ;;
  broken.example) echo "keychain is locked" >&2; exit 3 ;;
  garbage.example) echo "not json s3cret-garbage" ;;
  empty.example) printf '{"ServerURL":"empty.example","Username":"","Secret":""}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

let root: string;
let bin: string;
let n = 0;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'stowage-creds-'));
  bin = join(root, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'docker-credential-test'), HELPER);
  await chmod(join(bin, 'docker-credential-test'), 0o755);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A fresh DOCKER_CONFIG dir holding `config` (an object, or raw text), and a source reading it. */
async function setup(config?: unknown) {
  const dir = join(root, `cfg${n++}`);
  await mkdir(dir);
  const file = join(dir, 'config.json');
  if (config !== undefined)
    await writeFile(file, typeof config === 'string' ? config : JSON.stringify(config));
  const env = { PATH: `${bin}:/usr/bin:/bin`, DOCKER_CONFIG: dir, HOME: join(root, 'nohome') };
  return { dir, file, env, creds: new DockerConfigCredentials({ env }) };
}

async function helperCalls(): Promise<string[]> {
  try {
    return (await readFile(join(bin, 'calls.log'), 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function rejectsWith(p: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<StowageError> {
  let err: unknown;
  await assert.rejects(p, (e) => {
    err = e;
    return true;
  });
  assert.ok(isStowageError(err), `expected a StowageError, got ${String(err)}`);
  assert.equal(err.code, code);
  for (const p of patterns) assert.match(`${err.message} ${err.hint ?? ''}`, p);
  return err;
}

describe('normaliseRegistryKey', () => {
  const cases: [string, string][] = [
    ['https://index.docker.io/v1/', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['registry-1.docker.io', 'docker.io'],
    ['docker.io', 'docker.io'],
    ['https://Registry.Example:5000/v2/', 'registry.example:5000'],
    ['http://reg.example/v1/', 'reg.example'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['ghcr.io', 'ghcr.io'],
  ];
  for (const [input, expected] of cases)
    test(`${input} → ${expected}`, () => assert.equal(normaliseRegistryKey(input), expected));
});

describe('DockerConfigCredentials: auths', () => {
  test('no config file means no credentials', async () => {
    const { creds } = await setup();
    assert.equal(await creds.get('docker.io'), undefined);
  });

  test('config dir defaults to $DOCKER_CONFIG, then $HOME/.docker; configDir overrides', async () => {
    const home = join(root, `home${n++}`);
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(
      join(home, '.docker', 'config.json'),
      JSON.stringify({ auths: { 'a.example': { auth: b64('h:p') } } }),
    );
    const viaHome = new DockerConfigCredentials({ env: { HOME: home } });
    assert.equal(viaHome.configFile, join(home, '.docker', 'config.json'));
    assert.deepEqual(await viaHome.get('a.example'), { username: 'h', password: 'p' });
    const { dir } = await setup({});
    assert.equal(
      new DockerConfigCredentials({ env: { HOME: home, DOCKER_CONFIG: dir } }).configFile,
      join(dir, 'config.json'),
    );
    assert.equal(
      new DockerConfigCredentials({ env: { HOME: home }, configDir: dir }).configFile,
      join(dir, 'config.json'),
    );
  });

  test('Docker Hub under https://index.docker.io/v1/, others by host[:port] with optional scheme and path', async () => {
    const { creds } = await setup({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
        '127.0.0.1:5000': { auth: b64('local:pw') },
        'https://reg2.example/v1/': { auth: b64('u2:p2') },
        'http://reg3.example:8443/v2/': { auth: b64('u3:p3') },
        'REG4.example': { auth: b64('u4:p4') },
        'ghcr.io': {},
      },
    });
    assert.deepEqual(await creds.get('docker.io'), { username: 'hubuser', password: 'hubpass' });
    assert.deepEqual(await creds.get('127.0.0.1:5000'), { username: 'local', password: 'pw' });
    assert.deepEqual(await creds.get('reg2.example'), { username: 'u2', password: 'p2' });
    assert.deepEqual(await creds.get('reg3.example:8443'), { username: 'u3', password: 'p3' });
    assert.deepEqual(await creds.get('reg4.example'), { username: 'u4', password: 'p4' });
    assert.equal(await creds.get('reg3.example'), undefined, 'the port is part of the key');
    assert.equal(await creds.get('ghcr.io'), undefined, 'an empty entry is no credential');
    assert.equal(await creds.get('quay.io'), undefined);
  });

  test('Docker Hub aliases as keys', async () => {
    const { creds } = await setup({ auths: { 'index.docker.io': { auth: b64('a:b') } } });
    assert.deepEqual(await creds.get('docker.io'), { username: 'a', password: 'b' });
  });

  test('the exact key wins over an alias', async () => {
    const { creds } = await setup({
      auths: { 'https://reg.example/v1/': { auth: b64('alias:x') }, 'reg.example': { auth: b64('exact:y') } },
    });
    assert.deepEqual(await creds.get('reg.example'), { username: 'exact', password: 'y' });
  });

  test('passwords may contain colons; identitytoken, registrytoken, username/password fields', async () => {
    const { creds } = await setup({
      auths: {
        'a.example': { auth: b64('user:pa:ss:word') },
        'b.example': { auth: b64('user:'), identitytoken: 'refresh-b' },
        'c.example': { registrytoken: 'bearer-c' },
        'd.example': { username: 'plain', password: 'fields' },
      },
    });
    assert.deepEqual(await creds.get('a.example'), { username: 'user', password: 'pa:ss:word' });
    assert.deepEqual(await creds.get('b.example'), {
      username: 'user',
      password: '',
      identityToken: 'refresh-b',
    });
    assert.deepEqual(await creds.get('c.example'), { registryToken: 'bearer-c' });
    assert.deepEqual(await creds.get('d.example'), { username: 'plain', password: 'fields' });
  });

  test('malformed config.json: a clear error naming the file, never its content', async () => {
    const { creds, file } = await setup('{"auths": {"x.example": {"auth": "c2VjcmV0OnNlY3JldA=="}}');
    const e = await rejectsWith(creds.get('x.example'), 'CREDENTIALS', /malformed/, /not valid JSON/);
    assert.ok(e.message.includes(file));
    assert.doesNotMatch(e.message, /c2VjcmV0/);
  });

  const shapes: [string, unknown, RegExp][] = [
    ['not an object', '[1,2]', /not a JSON object/],
    ['auths not an object', { auths: 'x' }, /"auths" is not an object/],
    ['an auths entry not an object', { auths: { 'x.example': 'y' } }, /entry "x.example" is not an object/],
    ['auth not a string', { auths: { 'x.example': { auth: 5 } } }, /"auth" of "auths" entry "x.example"/],
    ['credHelpers of non-strings', { credHelpers: { 'x.example': 1 } }, /credHelpers/],
    ['credsStore not a string', { credsStore: true }, /credsStore/],
  ];
  for (const [name, config, why] of shapes) {
    test(`malformed config.json: ${name}`, async () => {
      const { creds, file } = await setup(config);
      const e = await rejectsWith(creds.get('x.example'), 'CREDENTIALS', why);
      assert.ok(e.message.includes(file));
    });
  }

  test('an auth value that is not user:password: error naming the key, not the value', async () => {
    const { creds } = await setup({ auths: { 'x.example': { auth: b64('nocolon-s3cret') } } });
    const e = await rejectsWith(creds.get('x.example'), 'CREDENTIALS', /"x.example"/, /user:password/);
    assert.doesNotMatch(e.message, /s3cret|bm9jb2xvbi1zM2NyZXQ/);
  });

  test('an empty config.json is no credentials; an unreadable one too', async () => {
    const { creds } = await setup('');
    assert.equal(await creds.get('x.example'), undefined);
    const d = await setup();
    await mkdir(d.file); // a directory where the file should be: stat works, reading fails
    assert.equal(await d.creds.get('x.example'), undefined);
  });

  test('re-reads the file when it changes', async () => {
    const { creds, file } = await setup({ auths: { 'x.example': { auth: b64('one:1') } } });
    assert.deepEqual(await creds.get('x.example'), { username: 'one', password: '1' });
    await writeFile(file, JSON.stringify({ auths: { 'x.example': { auth: b64('second:22') } } }));
    assert.deepEqual(await creds.get('x.example'), { username: 'second', password: '22' });
    await rm(file);
    assert.equal(await creds.get('x.example'), undefined);
  });
});

describe('DockerConfigCredentials: credential helpers', () => {
  test('credsStore applies to all registries; <token> means an identity token', async () => {
    const { creds } = await setup({ credsStore: 'test', auths: { 'https://index.docker.io/v1/': {} } });
    assert.deepEqual(await creds.get('ghcr.io'), { username: 'octo', password: 's3cret-helper' });
    assert.deepEqual(await creds.get('docker.io'), { identityToken: 'refresh-123' });
    const calls = await helperCalls();
    assert.ok(calls.includes('get ghcr.io'));
    assert.ok(calls.includes('get https://index.docker.io/v1/'), 'Docker Hub is asked for by its config key');
  });

  test('"credentials not found" means none, and an inline auths entry is used then', async () => {
    const { creds } = await setup({
      credsStore: 'test',
      auths: { 'inline.example': { auth: b64('in:line') } },
    });
    assert.equal(await creds.get('unknown.example'), undefined);
    assert.deepEqual(await creds.get('inline.example'), { username: 'in', password: 'line' });
    assert.equal(await creds.get('empty.example'), undefined, 'an empty secret is no credential');
  });

  test('credHelpers overrides credsStore for its host', async () => {
    const { creds } = await setup({ credsStore: 'absent', credHelpers: { 'ghcr.io': 'test' } });
    assert.deepEqual(await creds.get('ghcr.io'), { username: 'octo', password: 's3cret-helper' });
    await rejectsWith(
      creds.get('quay.io'),
      'CREDENTIALS',
      /docker-credential-absent/,
      /not installed or not on PATH/,
    );
  });

  test('credHelpers keys may carry a scheme and path', async () => {
    const { creds } = await setup({ credHelpers: { 'https://ghcr.io/v2/': 'test' } });
    assert.deepEqual(await creds.get('ghcr.io'), { username: 'octo', password: 's3cret-helper' });
    assert.equal(await creds.get('quay.io'), undefined, 'no credsStore: other hosts have no helper');
  });

  test('a missing helper: error naming it, with what to do', async () => {
    const { creds, file } = await setup({ credsStore: 'desktop' });
    const e = await rejectsWith(
      creds.get('docker.io'),
      'CREDENTIALS',
      /docker-credential-desktop/,
      /credsStore/,
      /Install docker-credential-desktop, or remove "credsStore"/,
    );
    assert.ok(e.message.includes(file));
  });

  test('a failing helper: error naming it and its message', async () => {
    const { creds } = await setup({ credsStore: 'test' });
    await rejectsWith(
      creds.get('broken.example'),
      'CREDENTIALS',
      /docker-credential-test/,
      /keychain is locked/,
    );
  });

  test('a helper answering non-JSON: error that does not echo the output', async () => {
    const { creds } = await setup({ credsStore: 'test' });
    const e = await rejectsWith(
      creds.get('garbage.example'),
      'CREDENTIALS',
      /docker-credential-test/,
      /not JSON/,
    );
    assert.doesNotMatch(`${e.message} ${e.hint}`, /s3cret/);
  });

  test('a helper that hangs with a child holding its output is given up at the timeout, at once', async () => {
    // As pass → gpg → pinentry: the helper's child keeps stdout open after the helper is killed.
    await writeFile(join(bin, 'docker-credential-stuck'), '#!/bin/sh\nsleep 30 &\nwait\n');
    await chmod(join(bin, 'docker-credential-stuck'), 0o755);
    const { env } = await setup();
    const exec = defaultHelperExec(env, 300);
    const began = Date.now();
    await assert.rejects(exec('docker-credential-stuck', 'get', 'x.example'), /did not answer within 0\.3 s/);
    assert.ok(Date.now() - began < 5_000, `gave up after ${Date.now() - began} ms`);
  });

  test('an invalid helper name is refused, not run', async () => {
    const { creds } = await setup({ credsStore: '../../bin/sh' });
    await rejectsWith(creds.get('x.example'), 'CREDENTIALS', /Invalid credential helper name/);
  });

  test('lazy: nothing runs until asked; a static hit first never reaches a broken helper', async () => {
    const before = (await helperCalls()).length;
    const { creds } = await setup({ credsStore: 'test' });
    const statics = new StaticCredentials();
    statics.set('broken.example', { username: 'ext', password: 'secret-storage' });
    const chain = chainCredentials(statics, creds);
    assert.deepEqual(await chain.get('broken.example'), { username: 'ext', password: 'secret-storage' });
    assert.equal((await helperCalls()).length, before);
  });

  test('concurrent lookups of one registry run the helper once', async () => {
    const before = (await helperCalls()).length;
    const { creds } = await setup({ credsStore: 'test' });
    const all = await Promise.all([creds.get('ghcr.io'), creds.get('ghcr.io'), creds.get('ghcr.io')]);
    for (const c of all) assert.deepEqual(c, { username: 'octo', password: 's3cret-helper' });
    assert.equal((await helperCalls()).length, before + 1);
  });

  test('execHelper option: the program, action and server URL; rejection with "not found" means none', async () => {
    const seen: string[] = [];
    const { env, dir } = await setup({ credsStore: 'custom' });
    const creds = new DockerConfigCredentials({
      env,
      configDir: dir,
      execHelper: async (helper, action, input) => {
        seen.push(`${helper} ${action} ${input}`);
        if (input === 'none.example') throw new Error('credentials not found in native keychain');
        return JSON.stringify({ ServerURL: input, Username: 'x', Secret: 'y' });
      },
    });
    assert.deepEqual(await creds.get('127.0.0.1:5000'), { username: 'x', password: 'y' });
    assert.equal(await creds.get('none.example'), undefined);
    assert.deepEqual(seen, [
      'docker-credential-custom get 127.0.0.1:5000',
      'docker-credential-custom get none.example',
    ]);
  });
});

describe('DockerConfigCredentials: store and erase (login, logout)', () => {
  const mode = async (f: string) => (await stat(f)).mode & 0o777;

  test('inline: base64 user:password under the docker key, the rest of the file kept, mode 0600', async () => {
    const { file, creds } = await setup({
      auths: { 'other.example': { auth: b64('a:b') } },
      proxies: { default: { httpProxy: 'http://proxy:3128' } },
    });
    const where = await creds.store('127.0.0.1:5000', { username: 'u', password: 'p:w' });
    assert.deepEqual(where, { file });
    const written = JSON.parse(await readFile(file, 'utf8'));
    assert.deepEqual(written.auths['127.0.0.1:5000'], { auth: b64('u:p:w') });
    assert.deepEqual(written.auths['other.example'], { auth: b64('a:b') });
    assert.deepEqual(written.proxies, { default: { httpProxy: 'http://proxy:3128' } });
    assert.equal(await mode(file), 0o600);
    assert.deepEqual(await creds.get('127.0.0.1:5000'), { username: 'u', password: 'p:w' });
    await creds.store('docker.io', { username: 'hub', password: 'x' });
    assert.ok(JSON.parse(await readFile(file, 'utf8')).auths['https://index.docker.io/v1/']);
    assert.deepEqual(await creds.get('docker.io'), { username: 'hub', password: 'x' });
  });

  test('no config yet: the folder (0700) and file (0600) are made', async () => {
    const { dir, creds } = await setup();
    await rm(dir, { recursive: true });
    await creds.store('ghcr.io', { username: 'octo', password: 'pat' });
    assert.equal(await mode(dir), 0o700);
    assert.equal(await mode(join(dir, 'config.json')), 0o600);
    assert.deepEqual(await creds.get('ghcr.io'), { username: 'octo', password: 'pat' });
  });

  test('a credential helper stores and erases; the file keeps only an empty entry, never the secret', async () => {
    const calls: [string, string, string][] = [];
    const { dir, file } = await setup({ credsStore: 'test', auths: { 'ghcr.io': { auth: b64('old:one') } } });
    const creds = new DockerConfigCredentials({
      configDir: dir,
      execHelper: async (program, action, input) => {
        calls.push([program, action, input]);
        return '';
      },
    });
    assert.deepEqual(await creds.store('docker.io', { username: 'hub', password: 's3cret' }), {
      helper: 'docker-credential-test',
      file,
    });
    assert.deepEqual(calls, [
      [
        'docker-credential-test',
        'store',
        JSON.stringify({ ServerURL: 'https://index.docker.io/v1/', Username: 'hub', Secret: 's3cret' }),
      ],
    ]);
    const text = await readFile(file, 'utf8');
    assert.ok(!text.includes('s3cret') && !text.includes(b64('hub:s3cret')), 'no secret in the file');
    assert.deepEqual(JSON.parse(text).auths['https://index.docker.io/v1/'], {});
    assert.equal(await creds.erase('ghcr.io'), true);
    assert.deepEqual(calls[1], ['docker-credential-test', 'erase', 'ghcr.io']);
    assert.equal(JSON.parse(await readFile(file, 'utf8')).auths['ghcr.io'], undefined);
  });

  test('erase: every alias entry goes; nothing stored, or no file, is false', async () => {
    const { file, creds } = await setup({
      auths: { 'https://index.docker.io/v1/': { auth: b64('a:b') }, 'index.docker.io': { auth: b64('c:d') } },
    });
    assert.equal(await creds.erase('docker.io'), true);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')).auths, {});
    assert.equal(await creds.get('docker.io'), undefined);
    assert.equal(await creds.erase('docker.io'), false);
    const none = await setup();
    assert.equal(await none.creds.erase('ghcr.io'), false);
  });

  test('a malformed config is an error naming the file, and is left as it was', async () => {
    const { file, creds } = await setup('{ "auths": ');
    await rejectsWith(
      creds.store('ghcr.io', { username: 'u', password: 'p' }),
      'CREDENTIALS',
      /config\.json/,
    );
    assert.equal(await readFile(file, 'utf8'), '{ "auths": ');
  });

  test('a helper that fails to store: a CREDENTIALS error naming it; the file is not changed', async () => {
    const { dir, file } = await setup({ credsStore: 'test' });
    const before = await readFile(file, 'utf8');
    const creds = new DockerConfigCredentials({
      configDir: dir,
      execHelper: async () => {
        throw new Error('keychain is locked');
      },
    });
    await rejectsWith(
      creds.store('ghcr.io', { username: 'u', password: 'p' }),
      'CREDENTIALS',
      /docker-credential-test/,
      /could not store/,
    );
    assert.equal(await readFile(file, 'utf8'), before);
  });
});

describe('StaticCredentials, chainCredentials, lookupCredential', () => {
  test('StaticCredentials set/get/delete, with registry aliases', async () => {
    const s = new StaticCredentials();
    s.set('index.docker.io', { username: 'u', password: 'p' });
    assert.deepEqual(await s.get('docker.io'), { username: 'u', password: 'p' });
    const got = (await s.get('docker.io'))!;
    got.password = 'changed';
    assert.deepEqual(await s.get('docker.io'), { username: 'u', password: 'p' }, 'returns copies');
    s.delete('docker.io');
    assert.equal(await s.get('docker.io'), undefined);
    s.set('x.example', {});
    assert.equal(await s.get('x.example'), undefined, 'an empty credential is none');
  });

  const fixed = (c: Credential | undefined): CredentialSource => ({ get: async () => c });
  const failing = (message: string): CredentialSource => ({
    get: async () => {
      throw new Error(message);
    },
  });

  test('chain: first hit wins, empty answers are skipped', async () => {
    const chain = chainCredentials(
      fixed(undefined),
      fixed({}),
      fixed({ username: 'a' }),
      fixed({ username: 'b' }),
    );
    assert.deepEqual(await chain.get('r'), { username: 'a' });
    assert.equal(await chainCredentials().get('r'), undefined);
  });

  test('chain: a failing source does not hide a later hit; its error surfaces when none hits', async () => {
    assert.deepEqual(await chainCredentials(failing('boom'), fixed({ username: 'a' })).get('r'), {
      username: 'a',
    });
    await assert.rejects(
      chainCredentials(failing('first'), fixed(undefined), failing('second')).get('r'),
      /first/,
    );
  });

  test('lookupCredential turns failures into a problem to report later', async () => {
    assert.deepEqual(await lookupCredential(fixed({ username: 'a' }), 'r'), {
      credential: { username: 'a' },
    });
    assert.deepEqual(await lookupCredential(fixed(undefined), 'r'), {});
    const { problem } = await lookupCredential(failing('boom'), 'r.example');
    assert.ok(isStowageError(problem, 'CREDENTIALS'));
    assert.match(problem.message, /r\.example/);
    const { creds } = await setup({ credsStore: 'desktop' });
    const r = await lookupCredential(creds, 'docker.io');
    assert.equal(r.credential, undefined);
    assert.match(r.problem!.message, /docker-credential-desktop/);
  });
});
