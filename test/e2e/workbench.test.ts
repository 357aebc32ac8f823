// The editor experience end to end: the .vsix in a real VS Code (code-server) driven through
// Chromium, pulling from a real Distribution registry behind a throttling loopback proxy (so a
// pull lasts long enough to be seen and cancelled). Screenshots land in test-results/workbench/.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, startCodeServer } from '../support/code-server';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { buildImage } from '../support/fixtures';
import { pushLayout, tagMany } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const MB = 1_000_000;

/** Bytes of partial downloads kept in the cache's ingest area. */
async function ingestBytes(cacheDir: string): Promise<number> {
  const root = join(cacheDir, '.stowage', 'ingest');
  let total = 0;
  for (const name of await readdir(root).catch(() => [] as string[])) {
    total += (await stat(join(root, name, 'data')).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

describe('Stowage workbench: pulls, views and progress in the VS Code UI', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let server: CodeServer;
  let wb: Workbench;
  let root: string;
  let workspace: string;
  let cacheDir: string;
  let host: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-wb-'));
    workspace = join(root, 'ws');
    cacheDir = join(root, 'cache');
    const [vsix] = await Promise.all([
      buildVsix(),
      (async () => {
        registry = await startRegistry();
        const layouts = join(root, 'layouts');
        const small = await buildImage(join(layouts, 'small'), {
          tag: '1.0',
          platforms: ['linux/amd64', 'linux/arm64'],
          layers: 2,
          layerSize: 1_500_000,
          seed: 'wb-small',
        });
        const other = await buildImage(join(layouts, 'other'), {
          tag: '2.0',
          platforms: ['linux/amd64'],
          layers: 1,
          layerSize: 1_000_000,
          seed: 'wb-other',
        });
        const big = await buildImage(join(layouts, 'big'), {
          tag: '1',
          platforms: ['linux/amd64'],
          layers: 2,
          layerSize: 15_000_000,
          seed: 'wb-big',
        });
        await pushLayout(small.layoutDir, '1.0', registry, 'small:1.0');
        await pushLayout(other.layoutDir, '2.0', registry, 'other:2.0');
        await pushLayout(big.layoutDir, '1', registry, 'big:1');
        await pushLayout(small.layoutDir, '1.0', registry, 'many:base');
        await tagMany(
          registry,
          'many',
          'base',
          Array.from({ length: 250 }, (_, i) => `v${String(i + 1).padStart(3, '0')}`),
        );
      })(),
    ]);
    proxy = await startFaultProxy(registry.url, {});
    host = proxy.host;
    await mkdir(join(workspace, 'app'), { recursive: true });
    await writeFile(join(workspace, 'Dockerfile'), `FROM ${host}/small:1.0\nRUN echo hello\n`);
    await writeFile(
      join(workspace, 'app', 'Dockerfile'),
      `FROM ${host}/other:2.0 AS build\nFROM ${host}/small:1.0\nCOPY --from=build / /\n`,
    );
    server = await startCodeServer({
      vsix,
      // machine-overridable: code-server reads it from the machine settings.
      machineSettings: { 'stowage.cacheDirectory': cacheDir },
      settings: {
        'stowage.platforms': ['linux/amd64'],
        'stowage.checkForNewerImages': 'off',
        'stowage.codeLens': false,
      },
    });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'workbench' });
    await server.waitForActivation();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await proxy?.stop();
    await registry?.stop();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('right-click a FROM line → Pull Image: progress, then the Cache view and a cached icon', async () => {
    proxy.configure({ bytesPerSecond: 1.5 * MB });
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
    await wb.step('right-click FROM → Pull Image', () => wb.editorContextMenu('small:1.0', 'Pull Image'));
    const progress = await wb.step('progress notification', () =>
      wb.waitForNotification(/layer \d\/2 · [\d.]+\/3\.\d MB/, 20_000),
    );
    assert.match(progress, /layer \d\/2/);
    const titled = wb.page.locator('.notifications-toasts .notification-list-item', {
      hasText: `Pulling ${host}/small:1.0`,
    });
    assert.equal(await titled.count(), 1, 'the progress notification is titled with the reference');
    const done = await wb.step('success message', () =>
      wb.waitForNotification(/Pulled .*small:1\.0/, 30_000),
    );
    assert.match(done, /Pulled 127\.0\.0\.1:\d+\/small:1\.0 · 3\.\d MB in [\d.]+ m?s\./);

    await wb.step('Stowage views', () => wb.openViewContainer('Stowage'));
    const cached = wb.treeItem('Cache', `${host}/small:1.0`);
    await wb.step('Cache view lists the image', () => cached.waitFor({ timeout: 15_000 }));
    assert.match((await cached.textContent()) ?? '', /3\.\d MB · linux\/amd64/);
    const row = wb.treeItem('Workspace Images', `${host}/small:1.0`);
    await wb.step('Workspace Images shows it cached', () =>
      row.locator('.codicon-pass-filled').waitFor({ timeout: 15_000 }),
    );
    assert.match((await row.textContent()) ?? '', /cached · 3\.\d MB/);
    const index = await readFile(join(cacheDir, 'index.json'), 'utf8');
    assert.match(index, /small:1\.0/, 'the image went to the cache folder from stowage.cacheDirectory');
    const description = await wb.view('Cache').locator('.pane-header .description').textContent();
    assert.match(description ?? '', /MB on disk/);

    await wb.step('right-click the cached image → Inspect Image', () =>
      wb.contextMenu(cached, 'Inspect Image'),
    );
    const tab = wb.page.locator('.tabs-container .tab', { hasText: 'small:1.0.json' });
    await wb.step('what the cache holds, as JSON', () => tab.waitFor({ timeout: 15_000 }));
    const text = (
      (await wb.page.locator('.editor-instance .view-lines').first().textContent()) ?? ''
    ).replace(/\u00a0/g, ' ');
    assert.match(text, /"name": "127\.0\.0\.1:\d+\/small:1\.0"/);
    assert.match(text, /"digest": "sha256:[0-9a-f]{64}"/);
    await wb.runCommand('View: Close Editor');
  });

  test('Pull All Images in Workspace pulls both Dockerfiles under one notification', async () => {
    proxy.configure({ bytesPerSecond: 1 * MB });
    await wb.step('run Pull All Images in Workspace', () =>
      wb.runCommand('Stowage: Pull All Images in Workspace'),
    );
    await wb.step('one notification for the batch', () => wb.waitForNotification(/\d\/2 images/, 20_000));
    assert.equal(
      await wb.page
        .locator('.notifications-toasts .notification-list-item', { hasText: 'Pulling 2 images' })
        .count(),
      1,
    );
    const done = await wb.step('batch success', () => wb.waitForNotification(/Pulled 1 image/, 30_000));
    assert.match(done, /Pulled 1 image · 1\.\d MB in .* \(1 more already cached\)\./);
    await wb.step('Cache view lists the second image', () =>
      wb.treeItem('Cache', `${host}/other:2.0`).waitFor({ timeout: 15_000 }),
    );
  });

  test('cancel a pull of a large image midway, then pull again: it completes and resumes', async () => {
    proxy.configure({ bytesPerSecond: 4 * MB });
    await writeFile(join(workspace, 'big.Dockerfile'), `FROM ${host}/big:1\n`);
    // The new file shows up in Workspace Images (file watcher); clicking its image opens the line.
    await wb.step('open big.Dockerfile from Workspace Images', async () => {
      await wb.openViewContainer('Stowage');
      const row = wb.treeItem('Workspace Images', `${host}/big:1`);
      await row.waitFor({ timeout: 20_000 });
      await row.click();
      await wb.page.locator('.tabs-container .tab.active', { hasText: 'big.Dockerfile' }).waitFor();
    });
    // The earlier tests' messages still fill the toast corner: clear them so the progress toast shows.
    await wb.step('clear notifications', () => wb.runCommand('Notifications: Clear All Notifications'));
    await wb.step('Pull Image', () => wb.editorContextMenu('big:1', 'Pull Image'));
    const toast = wb.page
      .locator('.notifications-toasts .notification-list-item', { hasText: `Pulling ${host}/big:1` })
      .first();
    await wb.step('progress past 5 MB', async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const text = (await toast.textContent().catch(() => '')) ?? '';
        const m = text.match(/([\d.]+)\/([\d.]+) MB/);
        if (m && Number(m[1]) >= 5) return;
        if (Date.now() > deadline) throw new Error(`no progress past 5 MB; last: ${text}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    });
    await wb.step('click Cancel', async () => {
      await toast.hover();
      await toast.locator('.monaco-button', { hasText: 'Cancel' }).click();
    });
    await wb.step('cancelled message', () => wb.waitForNotification(/was cancelled/, 15_000));
    // The cancelled transfer closes its partial files just after the message: give it a moment.
    let partial = 0;
    for (let i = 0; i < 50 && partial === 0; i++) {
      partial = await ingestBytes(cacheDir);
      if (partial === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(partial > 0, 'the partial download stays in the cache for resuming');

    proxy.configure({ bytesPerSecond: 20 * MB });
    const before = proxy.requests.length;
    await wb.step('pull again', () => wb.editorContextMenu('big:1', 'Pull Image'));
    const done = await wb.step('pull completes', () => wb.waitForNotification(/Pulled .*big:1/, 60_000));
    assert.match(done, /Pulled .*big:1 · /);
    const ranged = proxy.requests
      .slice(before)
      .filter((r) => r.path.includes('/blobs/') && r.range && !/^bytes=0-/.test(r.range));
    assert.ok(ranged.length > 0, 'the second pull asked for the rest of a blob with Range');
    assert.ok(
      ranged.every((r) => r.status === 206),
      'the registry answered the resumed range',
    );
    // What the first pull kept was not downloaded again: the second pull moved less than the image.
    const second = proxy.requests.slice(before).filter((r) => r.path.includes('/blobs/'));
    const bytes = second.reduce((n, r) => n + r.bytes, 0);
    assert.ok(bytes < 30 * MB, `the second pull downloaded ${bytes} bytes, less than the whole image`);
  });

  test('the Registries view lists tags a page at a time, filters them, and Use in FROM rewrites the line', async () => {
    proxy.configure({ bytesPerSecond: undefined });
    await wb.step('Stowage views', () => wb.openViewContainer('Stowage'));
    // Collapse the other views' content out of the way by focusing the Registries view.
    await wb.runCommand('Stowage: Focus on Registries View').catch(() => undefined);
    const registryRow = wb.treeItem('Registries', host);
    await wb.step('expand the registry', async () => {
      await registryRow.click();
      await wb.treeItem('Registries', /^\s*many\s*$/).waitFor({ timeout: 15_000 });
    });
    const many = wb.treeItem('Registries', /^many/);
    await wb.step('expand many: first page', async () => {
      await many.click();
      await wb.treeItem('Registries', /^\s*base\s*$/).waitFor({ timeout: 15_000 });
    });
    await wb.step('Load more…', async () => {
      await wb.page.keyboard.press('End');
      const more = wb.treeItem('Registries', 'Load more…');
      await more.waitFor({ timeout: 10_000 });
      // The last row counts what is loaded (the first page).
      assert.match((await more.textContent()) ?? '', /50 of 251 tags/);
      await more.click();
      await wb.treeItem('Registries', '100 of 251 tags').waitFor({ timeout: 15_000 });
    });
    await wb.step('filter v123', async () => {
      await wb.page.keyboard.press('Home');
      const row = wb.treeItem('Registries', /^\s*many\s*100 of 251 tags/);
      await row.hover();
      await row.locator('.action-label[aria-label="Filter Tags…"]').click();
      const input = wb.page.locator('.quick-input-widget .quick-input-box input');
      await input.waitFor({ state: 'visible' });
      await input.fill('v123');
      await input.press('Enter');
      await wb.treeItem('Registries', 'filter: v123').waitFor({ timeout: 15_000 });
      await wb.treeItem('Registries', /^\s*v123\s*$/).waitFor({ timeout: 15_000 });
    });
    await wb.step('cursor on the FROM line', async () => {
      // Its tab is still open from the first test (Quick Open would also match big.Dockerfile).
      const tab = wb.page.locator('.tabs-container .tab', {
        has: wb.page.locator('.label-name', { hasText: /^Dockerfile$/ }),
      });
      await tab.click();
      await wb.clickEditorText('small:1.0');
    });
    await wb.step('Use in FROM', async () => {
      const tag = wb.treeItem('Registries', /^\s*v123\s*$/);
      await tag.hover();
      await tag.locator('.action-label[aria-label="Use in FROM"]').click();
      await wb.editorLine(`${host}/many:v123`).waitFor({ timeout: 10_000 });
    });
    const line = ((await wb.editorLine('FROM').textContent()) ?? '').replace(/\u00a0/g, ' ').trim();
    assert.equal(line, `FROM ${host}/many:v123`);
  });

  test('the Registries view: a tag expands to its digest and platforms', async () => {
    await wb.step('Stowage views', () => wb.openViewContainer('Stowage'));
    await wb.runCommand('Stowage: Focus on Registries View').catch(() => undefined);
    // The earlier test left `many` expanded (its rows would push `small` out of the rendered list).
    const many = wb.treeItem('Registries', /^\s*many/);
    if ((await many.getAttribute('aria-expanded').catch(() => null)) === 'true') await many.click();
    const registryRow = wb.treeItem('Registries', host);
    await wb.step('expand the registry', async () => {
      if ((await registryRow.getAttribute('aria-expanded')) !== 'true') await registryRow.click();
      await wb.treeItem('Registries', /^\s*small\s*$/).waitFor({ timeout: 15_000 });
    });
    await wb.step('expand small', async () => {
      await wb.treeItem('Registries', /^\s*small\s*$/).click();
      await wb.treeItem('Registries', /^\s*1\.0\s*(cached\b.*)?$/).waitFor({ timeout: 15_000 });
    });
    // Past the moment a redraw of the repository once dropped the tag rows' handles.
    await wb.page.waitForTimeout(1000);
    const tag = wb.treeItem('Registries', /^\s*1\.0\s*(cached\b.*)?$/);
    await wb.step('expand tag 1.0', async () => {
      await tag.click();
      await wb.page.keyboard.press('ArrowRight');
      await wb.treeItem('Registries', /sha256:[0-9a-f]{64}/).waitFor({ timeout: 15_000 });
    });
    assert.equal(await tag.getAttribute('aria-expanded'), 'true');
    const rows = await wb.view('Registries').locator('.monaco-list-row').allInnerTexts();
    const at = rows.findIndex((r) => /^\s*1\.0\s*(cached\b.*)?$/.test(r));
    const children = rows.slice(at + 1, at + 4).join('\n');
    assert.match(children, /sha256:[0-9a-f]{64}\s*multi-platform index/);
    assert.match(children, /linux\/amd64/);
    assert.match(children, /linux\/arm64/);
  });

  test('Pull All Images in Workspace with failures: one error toast counts them, no success toast', async () => {
    proxy.configure({ bytesPerSecond: undefined });
    // One tag the registry lacks, one reference that cannot be resolved; the rest pull or are cached.
    await writeFile(
      join(workspace, 'broken.Dockerfile'),
      `ARG NOPE\nFROM ${host}/absent:1\nFROM ${host}/other:$\{NOPE}\nFROM ${host}/small:1.0\n`,
    );
    await wb.step('broken.Dockerfile is indexed', async () => {
      await wb.openViewContainer('Stowage');
      await wb.treeItem('Workspace Images', 'broken.Dockerfile').waitFor({ timeout: 20_000 });
    });
    await wb.runCommand('Notifications: Clear All Notifications');
    await wb.step('run Pull All Images in Workspace', () =>
      wb.runCommand('Stowage: Pull All Images in Workspace'),
    );
    // On screen as a toast (not only under the bell), with its buttons.
    const toast = wb.page
      .locator('.notifications-toasts .notification-list-item', { hasText: 'could not be pulled' })
      .first();
    await wb.step('the error toast', () => toast.waitFor({ state: 'visible', timeout: 60_000 }));
    const text = ((await toast.locator('.notification-list-item-message').textContent()) ?? '').trim();
    assert.match(
      text,
      /^2 of \d+ images could not be pulled \(1 cannot be resolved\)\. 127\.0\.0\.1:\d+\/absent:1: /,
    );
    assert.match(text, /\(and 1 more, listed in the log\)\./);
    assert.match(text, /(Pulled \d+ images?|already cached)/, 'what did succeed is said too');
    assert.ok(await toast.locator('.codicon-error').count(), 'an error, not an information message');
    const buttons = await toast.locator('.monaco-button').allInnerTexts();
    assert.ok(
      buttons.some((b) => /Show Log/.test(b)),
      `buttons: ${buttons}`,
    );
    const toasts = await wb.notifications();
    assert.ok(
      !toasts.some((t) => /^(Pulled|All \d+ images)/.test(t.trim()) || /^Skipped/.test(t.trim())),
      `no success or separate "Skipped" toast beside it: ${toasts.join(' | ')}`,
    );
  });

  test('a pull the registry fails (5xx after the retries) offers Retry, which pulls it once the registry is back', async () => {
    // Every manifest request of many:v007 fails with 500/502/503 until the plan is lifted.
    const path = '/v2/many/manifests/v007';
    proxy.configure({ bytesPerSecond: undefined, plan: (r) => (r.path === path ? 'burst5xx' : undefined) });
    await writeFile(join(workspace, 'retry.Dockerfile'), `FROM ${host}/many:v007\n`);
    await wb.runCommand('Notifications: Clear All Notifications');
    await wb.step('open retry.Dockerfile', () => wb.openFile('retry.Dockerfile'));
    await wb.step('Pull Image', () => wb.editorContextMenu('many:v007', 'Pull Image'));
    const failure = await wb.step('the failure, with Retry', () =>
      wb.notification(`Could not pull ${host}/many:v007`, 30_000),
    );
    const message = (await failure.locator('.notification-list-item-message').textContent()) ?? '';
    assert.match(message, /HTTP 50[023]/);
    const buttons = await failure.locator('.monaco-button').allTextContents();
    assert.deepEqual(
      buttons.map((b) => b.trim()),
      ['Retry', 'Show Log'],
    );
    const failed = proxy.requests.filter((r) => r.path === path).length;
    assert.ok(failed >= 2, `the client tried more than once before giving up (${failed} requests)`);
    proxy.configure({ plan: undefined });
    await wb.step('click Retry', () => failure.locator('.monaco-button', { hasText: 'Retry' }).click());
    const done = await wb.step('pulled on Retry', () =>
      wb.waitForNotification(/Pulled .*many:v007|many:v007 is already cached/, 30_000),
    );
    assert.match(done, /^(Pulled|127\.0\.0\.1:\d+\/many:v007 is already cached)/);
    assert.ok(
      proxy.requests.filter((r) => r.path === path && r.status === 200).length > 0,
      'Retry asked the registry again',
    );
  });

  test('nothing in the session reached beyond this machine', () => {
    assert.deepEqual(wb.blocked, []);
  });
});
