import assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { Store } from '../../src/core/store';
import type { StowageApi } from '../../src/vscode/activate';

describe('activation', () => {
  it('activates and contributes its commands', async () => {
    const ext = vscode.extensions.getExtension('stowage.stowage');
    assert.ok(ext, 'extension stowage.stowage is installed');
    await ext.activate();
    assert.equal(ext.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('stowage.showVersion'));
    const version = await vscode.commands.executeCommand('stowage.showVersion');
    assert.equal(version, ext.packageJSON.version);
  });
});

describe('contributions', () => {
  it('registers the Stowage view container and its three views with the workbench', async () => {
    const ext = vscode.extensions.getExtension('stowage.stowage');
    assert.ok(ext, 'extension stowage.stowage is installed');
    const contributes = ext.packageJSON.contributes;
    assert.deepEqual(
      contributes.viewsContainers.activitybar.map((c: { id: string; title: string }) => [c.id, c.title]),
      [['stowage', 'Stowage']],
    );
    const views = contributes.views.stowage.map((v: { id: string }) => v.id);
    assert.deepEqual(views, ['stowage.workspaceImages', 'stowage.cache', 'stowage.registries']);
    // The workbench creates these commands only for containers and views it actually registered.
    const commands = await vscode.commands.getCommands(true);
    assert.ok(commands.includes('workbench.view.extension.stowage'), 'view container command exists');
    for (const id of views) assert.ok(commands.includes(`${id}.focus`), `${id}.focus exists`);
  });
});

describe('shared cache', () => {
  it('notices changes another process makes to the cache (index.json replaced)', async () => {
    const ext = vscode.extensions.getExtension<StowageApi>('stowage.stowage');
    assert.ok(ext);
    const api = await ext.activate();
    const store = await api.stowage.getStore();
    const name = '127.0.0.1:9/host-suite/watch:v1';
    const fired = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('onDidChangeCache did not fire within 10 s')), 10_000);
      const sub = api.stowage.onDidChangeCache(() => {
        clearTimeout(timer);
        sub.dispose();
        resolve();
      });
    });
    // A separate Store instance on the same folder stands in for the CLI or another window.
    const other = await Store.open(store.dir);
    await other.setReference(name, {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${'0'.repeat(64)}`,
      size: 2,
    });
    try {
      await fired;
    } finally {
      await other.removeReference(name);
    }
  });
});
