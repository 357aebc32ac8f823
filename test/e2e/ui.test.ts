// What a user sees: the extension installed from its .vsix into a real VS Code (code-server),
// a workspace with a Dockerfile, driven through Chromium. Screenshots land in test-results/ui/.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, copyWorkspace, startCodeServer } from '../support/code-server';

describe('Stowage in the VS Code UI', () => {
  let server: CodeServer;
  let workspace: string;
  let wb: Workbench;
  let workbenchAt = 0;

  before(async () => {
    const vsix = await buildVsix();
    workspace = await copyWorkspace();
    server = await startCodeServer({ vsix });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'ui' });
    workbenchAt = Date.now();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    if (workspace) await rm(workspace, { recursive: true, force: true });
  });

  test('the extension activates for a workspace with a Dockerfile', async (t) => {
    const activation = await server.waitForActivation('stowage.stowage');
    assert.match(activation.line, /activationEvent: 'workspaceContains:/);
    const ms = (at: number) => `${((at - server.startedAt) / 1000).toFixed(1)} s`;
    t.diagnostic(
      `code-server ${server.toolchain.codeServerVersion}: healthz ${ms(server.startedAt + server.startMs)}, ` +
        `workbench ${ms(workbenchAt)}, extension activated ${ms(activation.at)} after spawn`,
    );
  });

  test('the Stowage view container shows its three views', async () => {
    const item = await wb.step('activity bar shows Stowage', async () => {
      const item = wb.activityBarItem('Stowage');
      await item.waitFor({ state: 'visible', timeout: 30_000 });
      return item;
    });
    assert.match((await item.getAttribute('aria-label')) ?? '', /^Stowage/);
    const titles = await wb.step('Stowage views open', () => wb.openViewContainer('Stowage'));
    assert.deepEqual(
      titles.map((t) => t.toLowerCase()),
      ['workspace images', 'cache', 'registries'],
    );
  });

  test('Stowage: Show Version shows the version notification', async () => {
    const message = await wb.step('Show Version notification', async () => {
      await wb.runCommand('Stowage: Show Version');
      return wb.waitForNotification('Stowage 0.1.0');
    });
    assert.equal(message, 'Stowage 0.1.0');
  });

  test('the Dockerfile opens in an editor as a Dockerfile', async () => {
    await wb.step('Dockerfile open', () => wb.openFile('Dockerfile'));
    const line = (await wb.editorLine('FROM').textContent()) ?? '';
    assert.equal(line.replace(/\u00a0/g, ' ').trim(), 'FROM alpine:3.20');
    const mode = wb.page.locator('.statusbar-item[id="status.editor.mode"]');
    assert.equal((await mode.textContent())?.trim(), 'Docker');
  });

  test('nothing in the session reached beyond this machine', () => {
    assert.deepEqual(wb.blocked, [], 'requests to other hosts were made (and blocked)');
  });
});
