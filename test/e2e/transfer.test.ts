// Archives and pushes in the VS Code UI: importing gzip-compressed archives (.tar.gz and .tgz,
// from the Explorer's menu and the open dialog), what an export of a partly pulled image says, and a
// push of one: the editor's own ways out (Pull All Platforms and Push). The .vsix in code-server,
// a real Distribution registry on loopback. Screenshots: test-results/transfer/.
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { createGzip } from 'node:zlib';
import type { Locator } from 'playwright-core';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { parseReference } from '../../src/core/reference';
import { exportImages } from '../../src/core/transfer/export';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, startCodeServer } from '../support/code-server';
import { clientFor, Store } from '../support/engine';
import { buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];

describe('archives and pushes in the VS Code UI', () => {
  let registry: RunningRegistry;
  let server: CodeServer;
  let wb: Workbench;
  let tmp: string;
  let workspace: string;
  let multiIndex: string;

  /** `repoTag` pulled for linux/amd64 into a throw-away cache, exported, gzip-compressed to `file`. */
  async function gzipArchive(repoTag: string, file: string): Promise<void> {
    const store = await Store.open(await mkdtemp(join(tmp, 'store-')));
    const { client } = clientFor(registry);
    try {
      await pull(store, client, `${registry.host}/${repoTag}`, { platforms: amd64 });
    } finally {
      await client.close();
    }
    const tar = `${file}.plain`;
    await exportImages(store, [`${registry.host}/${repoTag}`], tar);
    await pipeline(createReadStream(tar), createGzip(), createWriteStream(file));
    await rm(tar);
  }

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'stowage-transfer-e2e-'));
    const vsix = buildVsix();
    registry = await startRegistry();
    const build = (name: string, platforms: string[]) =>
      buildImage(join(tmp, 'layouts', name), {
        platforms,
        layers: 1,
        layerSize: 30_000,
        seed: `e2e-${name}`,
      });
    const [multi, gz, tgz] = await Promise.all([
      build('multi', ['linux/amd64', 'linux/arm64']),
      build('gz', ['linux/amd64']),
      build('tgz', ['linux/amd64']),
    ]);
    multiIndex = await pushLayout(multi!.layoutDir, 'latest', registry, 'multi/app:1.0');
    await pushLayout(gz!.layoutDir, 'latest', registry, 'gz/app:1.0');
    await pushLayout(tgz!.layoutDir, 'latest', registry, 'tgz/app:1.0');
    workspace = join(tmp, 'workspace');
    await mkdir(workspace, { recursive: true });
    await writeFile(join(workspace, 'Dockerfile'), `FROM ${registry.host}/multi/app:1.0\n`);
    await gzipArchive('gz/app:1.0', join(workspace, 'images.tar.gz'));
    await gzipArchive('tgz/app:1.0', join(workspace, 'other.tgz'));
    server = await startCodeServer({
      vsix: await vsix,
      machineSettings: { 'stowage.cacheDirectory': join(tmp, 'cache') },
      settings: { 'stowage.platforms': ['linux/amd64'], 'stowage.checkForNewerImages': 'off' },
    });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'transfer' });
    await server.waitForActivation();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  // The Explorer offered Import on .tar files only. (code-server's own open dialog lists every file
  // when one of the types is "All files"; the desktop dialogs' default type is checked in
  // test/unit/vscode-transfer-text.test.ts.)
  test('a .tar.gz imports from the Explorer’s context menu, a .tgz from the Import dialog', async () => {
    await wb.step('Explorer: right-click images.tar.gz → Import Images from Archive…', async () => {
      await wb.openViewContainer('Explorer');
      const file = wb.page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'images.tar.gz' });
      await wb.contextMenu(file.first(), 'Import Images from Archive…');
    });
    const imported = await wb.step('imported', () => wb.waitForNotification(/Imported 1 image/, 30_000));
    assert.match(imported, /\(127\.0\.0\.1:\d+\/gz\/app:1\.0\)/);

    await wb.runCommand('Notifications: Clear All Notifications');
    const input = wb.page.locator('.quick-input-widget .quick-input-box input');
    const row = wb.page.locator('.quick-input-widget .quick-input-list .monaco-list-row', {
      hasText: 'other.tgz',
    });
    await wb.step('Import Images from Archive…: the dialog lists other.tgz', async () => {
      await startCommand(wb, 'Stowage: Import Images from Archive…');
      await input.fill(`${workspace}/`);
      await row.first().waitFor({ timeout: 15_000 });
    });
    await wb.step('open other.tgz', async () => {
      await input.fill(join(workspace, 'other.tgz'));
      await input.press('Enter');
    });
    const second = await wb.step('imported from the dialog', () =>
      wb.waitForNotification(/Imported 1 image/, 30_000),
    );
    assert.match(second, /\(127\.0\.0\.1:\d+\/tgz\/app:1\.0\)/);
  });

  test('an export of an image pulled for one platform says what was left out; a push of it offers Pull All Platforms and Push', async () => {
    const host = registry.host;
    await wb.page.keyboard.press('Escape'); // a menu or picker an earlier test left open
    await wb.runCommand('Notifications: Clear All Notifications');
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
    await wb.step('Pull Image (linux/amd64, as stowage.platforms says)', () =>
      wb.editorContextMenu('multi/app:1.0', 'Pull Image'),
    );
    await wb.step('pulled', () => wb.waitForNotification(/Pulled .*multi\/app:1\.0/, 30_000));

    // In the folder the save dialog opens in (Enter on a path elsewhere only goes to that folder).
    const archive = join(workspace, 'multi.tar');
    await wb.runCommand('Notifications: Clear All Notifications');
    const input = await wb.step('Export Images to Archive…: pick the image', async () => {
      const box = await startCommand(wb, 'Stowage: Export Images to Archive…');
      await box.fill('multi/app');
      const item = wb.page
        .locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: 'multi/app:1.0' })
        .first();
      await item.click();
      const deadline = Date.now() + 10_000;
      while ((await item.getAttribute('aria-checked')) !== 'true') {
        if (Date.now() > deadline) throw new Error('the image is not checked');
        await wb.page.waitForTimeout(100);
      }
      return box;
    });
    await wb.step('OK: the save dialog shows its default, images.tar', async () => {
      await wb.page.locator('.quick-input-widget .monaco-button', { hasText: 'OK' }).click();
      const deadline = Date.now() + 15_000;
      while (!(await input.inputValue()).endsWith('images.tar')) {
        if (Date.now() > deadline)
          throw new Error(`no save dialog; the box holds "${await input.inputValue()}"`);
        await wb.page.waitForTimeout(100);
      }
    });
    const summary = await wb.step('save as multi.tar', async () => {
      await input.fill(archive);
      await input.press('Enter');
      return wb.notification(/Exported 1 image/, 30_000);
    });
    const text = (await summary.locator('.notification-list-item-message').textContent()) ?? '';
    assert.ok(text.startsWith('Exported 1 image to multi.tar ('), text);
    assert.ok((await stat(archive)).size > 0);
    assert.match(text, /multi\/app:1\.0 holds linux\/amd64; left out, not cached: linux\/arm64\./);
    assert.match(text, /For a complete archive, pull all platforms, then export again\./);
    assert.doesNotMatch(text, /--all-platforms/);
    const exportButtons = (await summary.locator('.monaco-button').allTextContents()).map((b) => b.trim());
    assert.deepEqual(exportButtons, ['Pull All Platforms']);

    await wb.runCommand('Notifications: Clear All Notifications');
    const destination = `${host}/copy/app:1.0`;
    await wb.step('Cache view: Push Image to a Registry…', async () => {
      await wb.openViewContainer('Stowage');
      await wb.contextMenu(wb.treeItem('Cache', `${host}/multi/app:1.0`), 'Push Image to a Registry…');
      const input = wb.page.locator('.quick-input-widget .quick-input-box input');
      await input.waitFor({ state: 'visible' });
      await input.fill(destination);
      await input.press('Enter');
    });
    const refused = await wb.step('the push is refused, with the editor’s ways out', () =>
      wb.notification(/does not hold all of/, 30_000),
    );
    const message = (await refused.locator('.notification-list-item-message').textContent()) ?? '';
    assert.doesNotMatch(message, /--all-platforms|--platform|stowage pull/, message);
    assert.match(message, /Pull All Platforms and Push fetches the rest/);
    const buttons = (await refused.locator('.monaco-button').allTextContents()).map((b) => b.trim());
    assert.deepEqual(buttons, ['Pull All Platforms and Push', 'Push linux/amd64 Only', 'Show Log']);

    await wb.step('click Pull All Platforms and Push', async () => {
      await refused.hover();
      await refused.locator('.monaco-button', { hasText: 'Pull All Platforms and Push' }).click();
    });
    // It follows a progress notification, which VS Code often files under the bell, not as a toast.
    const pushed = await wb.step('pushed (Notifications center)', async () => {
      await wb.runCommand('Notifications: Show Notifications');
      const item = wb.page
        .locator('.notifications-center .notification-list-item', { hasText: /Pushed .*multi\/app:1\.0/ })
        .first();
      await item.waitFor({ state: 'visible', timeout: 60_000 });
      return (await item.locator('.notification-list-item-message').textContent()) ?? '';
    });
    assert.match(pushed, new RegExp(`to ${host.replace(/\./g, '\\.')}/copy/app:1\\.0@sha256:`));
    const { client } = clientFor(registry);
    try {
      const served = await client.head(parseReference(destination));
      assert.equal(served?.digest, multiIndex, 'the registry serves the whole index, every platform');
    } finally {
      await client.close();
    }
    assert.deepEqual(wb.blocked, []);
  });
});

/**
 * Runs a palette command that asks with a quick input of its own (a picker, a file dialog), and
 * returns that input's box once the command's picker has made way for it.
 */
async function startCommand(wb: Workbench, title: string): Promise<Locator> {
  const { page } = wb;
  await page.locator('.monaco-workbench').focus();
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${title}`);
  const row = page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: title })
    .first();
  await row.click();
  // The command's own input replaces the palette's text (the deadline only bounds a hung test).
  const deadline = Date.now() + 15_000;
  while ((await input.inputValue()).startsWith('>')) {
    if (Date.now() > deadline) throw new Error(`${title} opened no input of its own`);
    await page.waitForTimeout(100);
  }
  return input;
}
