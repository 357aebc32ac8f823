// Trusting a workspace brings Stowage's network features to life in the same window: a folder
// opened in Restricted Mode, a pull tried there (it makes the registry client, offline then),
// the Registries view asking for trust; then the user trusts the folder. Without a reload or a
// settings change the view lists tags, the newer-image check finds a missing tag, and the pull
// works. Screenshots: test-results/trust/.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, startCodeServer } from '../support/code-server';
import { buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

describe('granting workspace trust', () => {
  let registry: RunningRegistry;
  let server: CodeServer;
  let wb: Workbench;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'stowage-trust-'));
    const vsix = buildVsix();
    registry = await startRegistry();
    const image = await buildImage(join(tmp, 'image'), {
      platforms: ['linux/amd64'],
      layers: 1,
      layerSize: 20_000,
      seed: 'e2e-trust',
    });
    await pushLayout(image.layoutDir, 'latest', registry, 'trust/app:1.0');
    const workspace = join(tmp, 'workspace');
    await mkdir(workspace, { recursive: true });
    await writeFile(
      join(workspace, 'Dockerfile'),
      `FROM ${registry.host}/trust/app:1.0\nFROM ${registry.host}/trust/app:nope\n`,
    );
    // None of the settings the manifest restricts in untrusted workspaces (stowage.cacheDirectory,
    // insecureRegistries, …): VS Code fires a settings change for those on trust, which would
    // hide what this tests. Most users set none of them. The cache folder comes from STOWAGE_CACHE.
    const settings = { 'stowage.platforms': ['linux/amd64'], 'stowage.checkForNewerImages': 'daily' };
    server = await startCodeServer({
      vsix: await vsix,
      trusted: false,
      settings,
      env: { STOWAGE_CACHE: join(tmp, 'cache') },
    });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'trust' });
    await server.waitForActivation();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('after Trust, the Registries view, the newer-image check and pulls use the network without a reload', async () => {
    const host = registry.host;
    await wb.step('restricted mode', () =>
      wb.restrictedModeIndicator().waitFor({ state: 'visible', timeout: 30_000 }),
    );
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
    await wb.step('Pull Image in Restricted Mode', () => wb.editorContextMenu('trust/app:1.0', 'Pull Image'));
    const refused = await wb.step('the pull says trust is missing', () =>
      wb.notification(/does not contact registries in an untrusted workspace/, 30_000),
    );

    await wb.step('Registries view: trust needed', async () => {
      await wb.openViewContainer('Stowage');
      await wb.treeItem('Registries', host).click();
      await wb.treeItem('Registries', /^\s*trust\/app\s*$/).click();
      await wb
        .treeItem('Registries', 'Trust this workspace to contact registries')
        .waitFor({ timeout: 15_000 });
    });

    await wb.step('Manage Workspace Trust (the pull’s button) → Trust', async () => {
      await refused.hover();
      await refused.locator('.monaco-button', { hasText: 'Manage Workspace Trust' }).click();
      const trust = wb.page
        .locator('.workspace-trust-editor .monaco-button', { hasText: /^\s*Trust\s*$/ })
        .first();
      await trust.click({ timeout: 15_000 });
      await wb.restrictedModeIndicator().waitFor({ state: 'hidden', timeout: 15_000 });
      // Out of the way (it opens as a modal editor over the workbench).
      await wb.runCommand('View: Close Editor');
      await wb.page.locator('.workspace-trust-editor').waitFor({ state: 'hidden', timeout: 10_000 });
    });

    // Nothing else is done: the expanded repository lists its tags by itself.
    await wb.step('Registries view lists the tags', () =>
      wb.treeItem('Registries', /^\s*1\.0\s*$/).waitFor({ timeout: 30_000 }),
    );
    assert.equal(await wb.treeItem('Registries', 'Trust this workspace').count(), 0);

    // The newer-image check ran when trust was granted: the registry has no tag "nope".
    const problem = await wb.step('Problems: the missing tag', async () => {
      await wb.page.keyboard.press('Escape');
      await wb.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
      const row = wb.page.locator('.markers-panel .monaco-list-row', { hasText: 'does not have' }).first();
      await row.waitFor({ state: 'visible', timeout: 30_000 });
      // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the user reads
      return row.innerText();
    });
    assert.match(problem, /does not have .*trust\/app:nope/);

    await wb.step('Pull Image again', async () => {
      await wb.runCommand('Notifications: Clear All Notifications');
      await wb.openFile('Dockerfile');
      await wb.editorContextMenu('trust/app:1.0', 'Pull Image');
    });
    const pulled = await wb.step('pulled', () => wb.waitForNotification(/Pulled .*trust\/app:1\.0/, 30_000));
    assert.match(pulled, new RegExp(`^Pulled ${host.replace(/\./g, '\\.')}/trust/app:1\\.0 · `));
    assert.deepEqual(wb.blocked, []);
  });
});
