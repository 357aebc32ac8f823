// Archives in the VS Code UI: importing gzip-compressed archives (.tar.gz and .tgz, from the
// Explorer's menu and the open dialog). The .vsix in code-server, a real Distribution registry on
// loopback. Screenshots: test-results/transfer/.
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { createGzip } from 'node:zlib';
import type { Locator } from 'playwright-core';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
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
    const [gz, tgz] = await Promise.all([build('gz', ['linux/amd64']), build('tgz', ['linux/amd64'])]);
    await pushLayout(gz!.layoutDir, 'latest', registry, 'gz/app:1.0');
    await pushLayout(tgz!.layoutDir, 'latest', registry, 'tgz/app:1.0');
    workspace = join(tmp, 'workspace');
    await mkdir(workspace, { recursive: true });
    await writeFile(join(workspace, 'Dockerfile'), `FROM ${registry.host}/gz/app:1.0\n`);
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
