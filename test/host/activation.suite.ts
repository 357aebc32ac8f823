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
