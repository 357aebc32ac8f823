import assert from 'node:assert/strict';
import * as vscode from 'vscode';

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
