// A pull from a registry that needs a password (Bearer token auth, the Docker Hub flow, with no
// anonymous access): it fails with a "Sign In…" action; a wrong password is refused before anything is saved; after signing
// in through the command the pull succeeds. Real Distribution registry, real VS Code.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, startCodeServer } from '../support/code-server';
import { buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

describe('Stowage workbench: signing in to a registry that requires it', () => {
  let registry: RunningRegistry;
  let server: CodeServer;
  let wb: Workbench;
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-wb-auth-'));
    const workspace = join(root, 'ws');
    const [vsix] = await Promise.all([
      buildVsix(),
      (async () => {
        registry = await startRegistry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
        const image = await buildImage(join(root, 'layout'), {
          tag: '1.0',
          platforms: ['linux/amd64'],
          layers: 1,
          layerSize: 200_000,
          seed: 'wb-auth',
        });
        await pushLayout(image.layoutDir, '1.0', registry, 'private/app:1.0');
      })(),
    ]);
    await mkdir(workspace, { recursive: true });
    await writeFile(join(workspace, 'Dockerfile'), `FROM ${registry.host}/private/app:1.0\n`);
    server = await startCodeServer({
      vsix,
      // machine-overridable: code-server reads it from the machine settings.
      machineSettings: { 'stowage.cacheDirectory': join(root, 'cache') },
      settings: {
        'stowage.platforms': ['linux/amd64'],
        // The loopback token service speaks plain HTTP: credentials may go there only when listed.
        'stowage.insecureRegistries': [new URL(registry.tokenServer!.url).host],
        'stowage.checkForNewerImages': 'off',
        'stowage.codeLens': false,
      },
    });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'workbench-auth' });
    await server.waitForActivation();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await registry?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  /** Answers the input box whose title contains `title`. */
  async function answer(title: string, value: string): Promise<void> {
    const widget = wb.page.locator('.quick-input-widget');
    await widget.locator('.quick-input-title', { hasText: title }).waitFor({ timeout: 10_000 });
    const input = widget.locator('.quick-input-box input');
    await input.fill(value);
    await input.press('Enter');
  }

  test('a pull without credentials fails with Sign In; a wrong password is refused; signing in makes it work', async () => {
    const creds = registry.credentials!;
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
    await wb.step('Pull Image', () => wb.editorContextMenu('private/app:1.0', 'Pull Image'));
    const failure = await wb.step('failure with Sign In…', () =>
      wb.notification(`Could not pull ${registry.host}/private/app:1.0`, 30_000),
    );
    const buttons = await failure.locator('.monaco-button').allTextContents();
    assert.deepEqual(
      buttons.map((b) => b.trim()),
      ['Sign In…', 'Show Log'],
    );

    await wb.step('Sign In… with a wrong password', async () => {
      await failure.locator('.monaco-button', { hasText: 'Sign In…' }).click();
      // The registry of the failed pull is filled in.
      const input = wb.page.locator('.quick-input-widget .quick-input-box input');
      await wb.page.locator('.quick-input-widget .quick-input-title', { hasText: '(1/3)' }).waitFor();
      assert.equal(await input.inputValue(), registry.host);
      await input.press('Enter');
      await answer('(2/3)', creds.username);
      await answer('(3/3)', `${creds.password}-wrong`);
    });
    const refused = await wb.step('refused, nothing saved', () =>
      wb.notification('did not accept the user name and password', 20_000),
    );

    await wb.step('Try Again with the right password', async () => {
      await refused.locator('.monaco-button', { hasText: 'Try Again' }).click();
      await answer('(1/3)', registry.host);
      await answer('(2/3)', creds.username);
      await answer('(3/3)', creds.password);
      await wb.waitForNotification(`Signed in to ${registry.host} as ${creds.username}`, 20_000);
    });

    await wb.step('Pull Image again', () => wb.editorContextMenu('private/app:1.0', 'Pull Image'));
    const done = await wb.step('pulled', () => wb.waitForNotification(/Pulled .*private\/app:1\.0/, 30_000));
    assert.match(done, /Pulled 127\.0\.0\.1:\d+\/private\/app:1\.0 · /);
    // The password never reaches the log.
    await server.saveLogs(wb.artifacts);
    const files = await readdir(join(wb.artifacts, 'vscode-logs'), { recursive: true, withFileTypes: true });
    for (const f of files) {
      if (!f.isFile()) continue;
      const text = await readFile(join(f.parentPath, f.name), 'utf8');
      assert.ok(!text.includes(creds.password), `${f.name} does not contain the password`);
    }
  });

  test('nothing in the session reached beyond this machine', () => {
    assert.deepEqual(wb.blocked, []);
  });
});
