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
    // The CA files setting under its old name, as a user who set it before the rename has it.
    server = await startCodeServer({
      vsix,
      settings: { 'stowage.caCertificates': ['/etc/stowage/team-ca.pem'] },
    });
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

  test('Settings: the CA files setting is titled "Certificate Authority Files"; the old name says where it went', async () => {
    const editor = wb.page.locator('.settings-editor');
    const item = (label: RegExp) =>
      editor.locator('.setting-item-contents', {
        has: wb.page.locator('.setting-item-label', { hasText: label }),
      });
    await wb.step('Settings editor: certificate', async () => {
      await wb.runCommand('Preferences: Open Settings (UI)');
      await editor.locator('.settings-header .suggest-input-container').click();
      await wb.page.keyboard.type('@ext:stowage.stowage certificate');
      await item(/^Certificate Authority Files$/).waitFor({ timeout: 15_000 });
      await item(/^Ca Certificates$/).waitFor({ timeout: 15_000 });
    });
    const current = item(/^Certificate Authority Files$/);
    assert.match((await current.locator('.setting-item-category').textContent()) ?? '', /^Stowage:/);
    assert.match(
      (await current.locator('.setting-item-description').textContent()) ?? '',
      /PEM files with extra certificate authorities/,
    );
    // Shown only because it is set, with the deprecation warning naming the new setting.
    const old = item(/^Ca Certificates$/);
    assert.match(
      (await old.locator('.setting-item-deprecation-message').textContent()) ?? '',
      /Renamed to Stowage: Certificate Authority Files\. This name is still read where the new one is not set\./,
    );
    // The Settings editor opens over the workbench here; Escape closes it.
    await wb.step('close Settings', async () => {
      for (let i = 0; i < 3 && (await editor.isVisible()); i++) await wb.page.keyboard.press('Escape');
      await editor.waitFor({ state: 'hidden', timeout: 5_000 });
    });
  });

  test('nothing in the session reached beyond this machine', () => {
    assert.deepEqual(wb.blocked, [], 'requests to other hosts were made (and blocked)');
  });
});
