// Dockerfile editor features as a user sees them: the packaged extension in code-server, a real
// registry on loopback, a cache filled by the pull engine. Hover over a cached and an uncached
// FROM, the newer-image diagnostic, "Pin to digest" through the light bulb menu (Ctrl+.), and the
// editor context menu on a line the cursor is not on. Screenshots: test-results/editor/.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatBytes } from '../../src/core/format';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { Workbench } from '../support/browser';
import { buildVsix, type CodeServer, startCodeServer } from '../support/code-server';
import { clientFor, Store } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { type Proxy as RecordingProxy, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];

describe('Dockerfile editor features in the VS Code UI', () => {
  let registry: RunningRegistry;
  let server: CodeServer;
  let wb: Workbench;
  let tmp: string;
  let workspace: string;
  let app: BuiltImage;
  let appDigest: string;
  let otherDigest: string;
  let freshNewDigest: string;
  /** HEADs of fixture/fresh:1.0 the registry served before the editor started. */
  let freshHeadsBefore = 0;
  const freshHeads = () =>
    (registry.logs().match(/"HEAD \/v2\/fixture\/fresh\/manifests\/1\.0 /g) ?? []).length;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'stowage-editor-e2e-'));
    registry = await startRegistry();
    const vsix = buildVsix();
    // app: pulled (cached); other: only in the registry; fresh: pulled, then the tag moves on.
    app = await buildImage(join(tmp, 'app'), {
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 3,
      layerSize: [300_000, 120_000, 30_000],
      seed: 'e2e-editor-app',
      entrypoint: ['/usr/local/bin/app'],
      cmd: ['--serve'],
      exposedPorts: ['8080/tcp'],
      labels: { 'org.opencontainers.image.version': '1.0' },
      created: '2024-03-04T05:06:07Z',
    });
    appDigest = await pushLayout(app.layoutDir, 'latest', registry, 'fixture/app:1.0');
    const other = await buildImage(join(tmp, 'other'), {
      platforms: ['linux/amd64'],
      seed: 'e2e-editor-other',
    });
    otherDigest = await pushLayout(other.layoutDir, 'latest', registry, 'fixture/other:1.0');
    const cacheDir = join(tmp, 'cache');
    const store = await Store.open(cacheDir);
    const { client } = clientFor(registry);
    try {
      await pull(store, client, `${registry.host}/fixture/app:1.0`, { platforms: amd64 });
    } finally {
      await client.close();
    }
    freshNewDigest = await cacheThenMove(tmp, registry, store, 'fixture/fresh:1.0');
    // moved: the same, for the views; fixture/app:9.9 never exists.
    await cacheThenMove(tmp, registry, store, 'fixture/moved:1.0');

    workspace = join(tmp, 'workspace');
    await mkdir(join(workspace, '.vscode'), { recursive: true });
    const dockerfile = [
      `FROM ${registry.host}/fixture/app:1.0 AS build`,
      'RUN echo build',
      '',
      `FROM ${registry.host}/fixture/other:1.0`,
      `COPY --from=${registry.host}/fixture/fresh:1.0 /x /x`,
      '',
    ].join('\n');
    await writeFile(join(workspace, 'Dockerfile'), dockerfile);
    await writeFile(
      join(workspace, 'stages.Dockerfile'),
      [
        `FROM ${registry.host}/fixture/app:1.0 AS build`,
        'RUN echo build',
        `FROM ${registry.host}/fixture/moved:1.0`,
        'COPY --from=build /x /x',
        `FROM ${registry.host}/fixture/app:9.9`,
        '',
      ].join('\n'),
    );
    await writeFile(
      join(workspace, 'args.Dockerfile'),
      `ARG TAG\nFROM ${registry.host}/fixture/other:$\{TAG}\n`,
    );
    const settings = {
      'stowage.cacheDirectory': cacheDir,
      'stowage.platforms': ['linux/amd64'],
      'stowage.checkForNewerImages': 'daily',
    };
    // cacheDirectory is machine-overridable: the workspace setting wins wherever VS Code reads it from.
    await writeFile(join(workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2));
    freshHeadsBefore = freshHeads();
    server = await startCodeServer({ vsix: await vsix, settings, machineSettings: settings });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'editor' });
    await server.waitForActivation();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('hover over a cached FROM shows what the cache holds', async () => {
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
    const text = await wb.step('hover cached FROM', () =>
      waitForHover(wb, 'fixture/app', (t) => /Cached/.test(t)),
    );
    const p = app.platforms.find((x) => x.platform === 'linux/amd64')!;
    assert.ok(text.includes(`${registry.host}/fixture/app:1.0`), text);
    assert.ok(text.includes(`Index digest: ${appDigest}`), text);
    assert.ok(text.includes(`Manifest digest: ${p.manifest.digest}`), text);
    const size = p.config.size + p.layers.reduce((n, l) => n + l.size, 0);
    assert.ok(text.includes(`${formatBytes(size)} compressed · 3 layers`), text);
    assert.match(text, /Entrypoint: \["\/usr\/local\/bin\/app"\]/);
    assert.match(text, /Exposed ports: 8080\/tcp/);
    assert.match(text, /Created: 2024-03-04 05:06:07 UTC/);
    assert.match(text, /linux\/amd64 ✓, linux\/arm64/);
  });

  test('hover over an uncached FROM says "Not in cache" with a Pull link', async () => {
    const text = await wb.step('hover uncached FROM', () =>
      waitForHover(wb, 'fixture/other', (t) => /Not in cache/.test(t)),
    );
    assert.ok(text.includes(`${registry.host}/fixture/other:1.0`), text);
    const link = wb.page.locator('.monaco-hover:not(.hidden) a', { hasText: 'Pull' }).first();
    assert.match(
      (await link.getAttribute('data-href')) ?? (await link.getAttribute('href')) ?? '',
      /stowage\.pullImage/,
    );
  });

  test('a tag that moved on shows "A newer image is available" in Problems', async () => {
    const problem = await wb.step('problems show the newer image', () =>
      waitForProblem(wb, 'A newer image is available'),
    );
    assert.ok(problem.includes(`${registry.host}/fixture/fresh:1.0`), problem);
    assert.ok(problem.includes(freshNewDigest.slice(0, 19)), problem);
    const warnings = await wb.page
      .locator('.markers-panel .monaco-list-row', { hasText: 'fixture/app' })
      .count();
    assert.equal(warnings, 0, 'the cached, current image has no problem');
  });

  test('the check is remembered on disk: after a reload the problem returns without another HEAD', async () => {
    assert.equal(freshHeads() - freshHeadsBefore, 1, 'one HEAD for the newer-image check');
    await wb.step('reloaded window shows the problem again', async () => {
      await wb.page.reload();
      await wb.waitForWorkbench();
      await wb.openFile('Dockerfile');
      await wb.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
      await wb.page
        .locator('.markers-panel .monaco-list-row', { hasText: 'A newer image is available' })
        .first()
        .waitFor({ state: 'visible', timeout: 30_000 });
    });
    assert.equal(freshHeads() - freshHeadsBefore, 1, 'no second HEAD within the daily throttle');
  });

  test('right-click a FROM line the cursor is not on: Pull Image is there and pulls that line', async () => {
    // The cursor sits on another line: the menu must not depend on where it was before the click.
    await wb.step('cursor on the RUN line', () => wb.clickEditorText('echo build'));
    await wb.page.waitForTimeout(300);
    const onImage = await wb.step('right-click FROM (cursor elsewhere)', async () => {
      await wb.clickEditorText('fixture/app', { button: 'right' });
      const menu = wb.page.locator('.monaco-menu .action-label');
      await menu.first().waitFor();
      return menu.allInnerTexts();
    });
    const clean = (xs: string[]) => xs.map((x) => x.trim());
    assert.ok(clean(onImage).includes('Pull Image'), `menu on FROM: ${clean(onImage)}`);
    assert.ok(clean(onImage).includes('Pin to Digest'), `menu on FROM: ${clean(onImage)}`);
    await wb.step('pick Pull Image', () => wb.pickMenuItem('Pull Image'));
    const done = await wb.step('the right-clicked line is pulled', () =>
      wb.waitForNotification(/fixture\/app:1\.0 is already cached/, 20_000),
    );
    assert.ok(done.includes(`${registry.host}/fixture/app:1.0 is already cached`), done);

    // A line without an image: the item is offered (the menu cannot know the line in time) and says so.
    await wb.step('cursor on the FROM line', () => wb.clickEditorText('fixture/app'));
    await wb.page.waitForTimeout(300);
    await wb.step('right-click RUN → Pull Image', () => wb.editorContextMenu('echo build', 'Pull Image'));
    const why = await wb.step('says the line has no image', () =>
      wb.waitForNotification(/Line 2 of Dockerfile has no image to pull/, 20_000),
    );
    assert.match(why, /Right-click a FROM line/);
    await wb.runCommand('Notifications: Clear All Notifications');
  });

  test('"Pin to digest" from the light bulb menu (Ctrl+.) rewrites the line', async () => {
    await pickQuickFix(wb, 'fixture/app', 'Pin to digest');
    const line = await wb.step('cached FROM pinned', () =>
      waitForLine(wb, 'fixture/app', (l) => l.includes('@sha256:')),
    );
    assert.equal(line, `FROM ${registry.host}/fixture/app:1.0@${appDigest} AS build`);
  });

  test('"Pin to digest" on an uncached image asks the registry (manifest HEAD)', async () => {
    await pickQuickFix(wb, 'fixture/other', 'Pin to digest');
    const line = await wb.step('uncached FROM pinned', () =>
      waitForLine(wb, 'fixture/other', (l) => l.includes('@sha256:')),
    );
    assert.equal(line, `FROM ${registry.host}/fixture/other:1.0@${otherDigest}`);
  });

  test('a pin older than the tag gets "Update pinned digest", which rewrites it to the newer digest', async () => {
    await pickQuickFix(wb, 'fixture/fresh', 'Pin to digest');
    const pinnedOld = await waitForLine(wb, 'fixture/fresh', (l) => l.includes('@sha256:'));
    assert.ok(!pinnedOld.includes(freshNewDigest), 'pinned to the cached (older) digest');
    await pickQuickFix(wb, 'fixture/fresh', 'Update pinned digest');
    const line = await wb.step('pinned digest updated', () =>
      waitForLine(wb, 'fixture/fresh', (l) => l.includes(freshNewDigest)),
    );
    assert.equal(line, `COPY --from=${registry.host}/fixture/fresh:1.0@${freshNewDigest} /x /x`);
  });

  test('"Pull the newer image" on an unpinned tag fetches it (the cache alone would say it is complete)', async () => {
    await pickQuickFix(wb, 'fixture/fresh', 'Remove digest pin');
    await waitForLine(wb, 'fixture/fresh', (l) => !l.includes('@sha256:'));
    await pickQuickFix(wb, 'fixture/fresh', 'Pull the newer image');
    const done = await wb.step('newer image pulled', () =>
      wb.waitForNotification(/Pulled .*fixture\/fresh:1\.0/, 30_000),
    );
    assert.match(done, /Pulled/);
    await wb.step('the newer-image problem is gone', async () => {
      await wb.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
      await wb.page
        .locator('.markers-panel .monaco-list-row', { hasText: 'A newer image is available' })
        .first()
        .waitFor({ state: 'detached', timeout: 30_000 });
    });
  });

  test('an ARG without a value: the hover gives the reason once; "Set build argument" from the light bulb resolves the FROM', async () => {
    await wb.step('open args.Dockerfile', () => wb.openFile('args.Dockerfile'));
    const before = await wb.step('hover unresolvable FROM', () =>
      waitForHover(wb, 'fixture/other', (t) => /Not pullable as written/.test(t) && /has no value/.test(t)),
    );
    assert.equal(before.split('ARG TAG has no value').length - 1, 1, `the reason appears once: ${before}`);
    assert.match(before, /Set build argument TAG/);
    await pickQuickFix(wb, 'fixture/other', 'Set build argument TAG…');
    await wb.step('type the value', async () => {
      const widget = wb.page.locator('.quick-input-widget');
      await widget
        .locator('.quick-input-title', { hasText: 'Build Argument TAG' })
        .waitFor({ timeout: 10_000 });
      const input = widget.locator('.quick-input-box input');
      await input.fill('1.0');
      await input.press('Enter');
    });
    const after = await wb.step('hover resolved FROM', () =>
      waitForHover(wb, 'fixture/other', (t) => /Not in cache/.test(t)),
    );
    assert.ok(after.includes(`${registry.host}/fixture/other:1.0`), after);
  });

  test('hover over a stage name says which stage it is, where and from which image', async () => {
    await wb.step('open stages.Dockerfile', () => wb.openFile('stages.Dockerfile'));
    const text = await wb.step('hover COPY --from=build', () =>
      waitForHover(wb, 'build /x', (t) => /build stage 0/.test(t)),
    );
    assert.match(
      text,
      /^build · build stage 0\s+Defined on line 1, from 127\.0\.0\.1:\d+\/fixture\/app:1\.0\.$/,
    );
  });

  test('a tag the registry does not have is a Problem on its FROM, with "Browse Tags…" to pick one it has', async () => {
    await wb.step('stages.Dockerfile open', () => wb.openFile('stages.Dockerfile'));
    const problem = await wb.step('problems show the unknown tag', () =>
      waitForProblem(wb, 'The registry does not have'),
    );
    assert.ok(
      problem.includes(
        `The registry does not have ${registry.host}/fixture/app:9.9: ${registry.host} answered 404 Not Found for that tag`,
      ),
      problem,
    );
    assert.equal(
      await wb.page.locator('.markers-panel .monaco-list-row', { hasText: 'fixture/app:1.0' }).count(),
      0,
      'a tag the registry has is no problem',
    );
    const offered = await pickQuickFix(wb, 'app:9.9', 'Browse Tags…');
    assert.ok(
      !offered.includes('Pin to digest'),
      `no digest to pin for a tag the registry lacks: ${offered}`,
    );
    const tags = await wb.step('the tags it has', async () => {
      const widget = wb.page.locator('.quick-input-widget');
      await widget.locator('.quick-input-title', { hasText: 'Tags of' }).waitFor({ timeout: 15_000 });
      const labels = widget.locator('.quick-input-list .monaco-list-row .label-name');
      await labels.first().waitFor({ timeout: 15_000 });
      return labels.allInnerTexts();
    });
    assert.deepEqual(
      tags.map((t) => t.trim()),
      ['1.0'],
    );
    await wb.page.keyboard.press('Escape');
  });

  test('the views mark a moved tag "newer on registry"; Pull the Newer Image from the Cache view fetches it', async () => {
    await wb.step('Stowage views, wider', async () => {
      await wb.openViewContainer('Stowage');
      // Wide enough for the rows' descriptions to be read in the screenshots: drag its edge.
      const box = await wb.page.locator('.part.sidebar').boundingBox();
      assert.ok(box);
      const edge = { x: box.x + box.width + 1, y: box.y + box.height / 2 };
      await wb.page.mouse.move(edge.x, edge.y);
      await wb.page.mouse.down();
      await wb.page.mouse.move(edge.x + 260, edge.y, { steps: 5 });
      await wb.page.mouse.up();
    });
    const moved = `${registry.host}/fixture/moved:1.0`;
    const row = wb.treeItem('Workspace Images', moved);
    const missing = wb.treeItem('Workspace Images', `${registry.host}/fixture/app:9.9`);
    await wb.step('Workspace Images: newer on registry, tag not on registry', async () => {
      await row.filter({ hasText: 'newer on registry' }).waitFor({ timeout: 20_000 });
      await missing.filter({ hasText: 'tag not on registry' }).waitFor({ timeout: 20_000 });
      // Scrolled so that both rows are in the screenshot.
      await row.hover();
      await wb.page.mouse.wheel(0, 200);
    });
    assert.match((await row.textContent()) ?? '', /cached · [\d.]+ kB · newer on registry/);
    assert.equal(await row.locator('.custom-view-tree-node-item-icon.codicon-arrow-circle-up').count(), 1);
    const cached = wb.treeItem('Cache', moved);
    await wb.step('Cache: newer on registry', () =>
      cached.filter({ hasText: 'newer on registry' }).waitFor({ timeout: 20_000 }),
    );
    const menu = await wb.step('right-click the cached image', async () => {
      await cached.click({ button: 'right' });
      const items = wb.page.locator('.monaco-menu .action-label');
      await items.first().waitFor();
      return items.allInnerTexts();
    });
    assert.equal(menu.map((m) => m.trim())[0], 'Pull the Newer Image', `menu: ${menu}`);
    await wb.step('Pull the Newer Image', () => wb.pickMenuItem('Pull the Newer Image'));
    const done = await wb.step('the newer image is pulled', () =>
      wb.waitForNotification(/Pulled .*fixture\/moved:1\.0/, 30_000),
    );
    assert.match(done, /^Pulled 127\.0\.0\.1:\d+\/fixture\/moved:1\.0 · /);
    await wb.step('no longer marked', async () => {
      await cached.filter({ hasNotText: 'newer on registry' }).waitFor({ timeout: 20_000 });
      await row.filter({ hasNotText: 'newer on registry' }).waitFor({ timeout: 20_000 });
    });
  });

  test('nothing in the session reached beyond this machine', () => {
    assert.deepEqual(wb.blocked, []);
  });
});

describe('Dockerfile editor features in an untrusted workspace', () => {
  let registry: RunningRegistry;
  let proxy: RecordingProxy;
  let server: CodeServer;
  let wb: Workbench;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'stowage-editor-untrusted-'));
    registry = await startRegistry();
    // Every request the extension could make goes through this recording proxy.
    proxy = await startProxy(registry.url);
    const vsix = buildVsix();
    const cacheDir = join(tmp, 'cache');
    const store = await Store.open(cacheDir);
    await cacheThenMove(tmp, registry, store, 'fixture/moving:1.0', proxy.host);
    proxy.requests.length = 0;

    const workspace = join(tmp, 'workspace');
    await mkdir(workspace, { recursive: true });
    await writeFile(
      join(workspace, 'Dockerfile'),
      `FROM ${proxy.host}/fixture/moving:1.0\nFROM ${proxy.host}/fixture/absent:1.0\n`,
    );
    const settings = { 'stowage.cacheDirectory': cacheDir, 'stowage.platforms': ['linux/amd64'] };
    server = await startCodeServer({ vsix: await vsix, trusted: false, settings, machineSettings: settings });
    wb = await Workbench.open(server, server.workbenchUrl(workspace), { name: 'editor-untrusted' });
    await server.waitForActivation();
  });

  after(async () => {
    await wb?.close();
    await server?.stop();
    await proxy?.stop();
    await registry?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('hover still shows the cache; no newer-image check and no request reaches the registry', async () => {
    await wb.step('restricted mode', () =>
      wb.restrictedModeIndicator().waitFor({ state: 'visible', timeout: 30_000 }),
    );
    await wb.step('open Dockerfile', () => wb.openFile('Dockerfile'));
    const cached = await wb.step('hover cached FROM (untrusted)', () =>
      waitForHover(wb, 'fixture/moving', (t) => /Cached/.test(t)),
    );
    assert.match(cached, /Cached/);
    const absent = await wb.step('hover uncached FROM (untrusted)', () =>
      waitForHover(wb, 'fixture/absent', (t) => /Not in cache/.test(t)),
    );
    assert.match(absent, /Not in cache/);
    // The trusted test sees the check's result within seconds of opening; give it ample time here.
    await wb.page.waitForTimeout(6000);
    await wb.page.keyboard.press('Escape');
    await wb.step('no problems', async () => {
      await wb.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
      await wb.page.locator('.markers-panel').waitFor({ state: 'visible' });
    });
    assert.equal(
      await wb.page.locator('.markers-panel .monaco-list-row', { hasText: 'A newer image' }).count(),
      0,
    );
    assert.deepEqual(proxy.requests, [], 'the extension sent requests in an untrusted workspace');
    assert.deepEqual(wb.blocked, []);
  });
});

/**
 * A tag that moved on: pushes an image to `repoTag`, pulls it into `store` (through `host`, the
 * registry's or a proxy's), then pushes another image to the same tag. Returns the new digest.
 */
async function cacheThenMove(
  dir: string,
  registry: RunningRegistry,
  store: Store,
  repoTag: string,
  host = registry.host,
): Promise<string> {
  const [before, after] = await Promise.all(
    ['1', '2'].map((n) =>
      buildImage(join(dir, `${repoTag.replace(/\W/g, '-')}-${n}`), {
        platforms: ['linux/amd64'],
        seed: `e2e-${repoTag}-${n}`,
      }),
    ),
  );
  await pushLayout(before!.layoutDir, 'latest', registry, repoTag);
  const { client } = clientFor(registry);
  try {
    await pull(store, client, `${host}/${repoTag}`, { platforms: amd64 });
  } finally {
    await client.close();
  }
  return pushLayout(after!.layoutDir, 'latest', registry, repoTag);
}

/** Shows the Problems panel and waits for a problem whose row has `text`; returns the row's text. */
async function waitForProblem(wb: Workbench, text: string): Promise<string> {
  await wb.page.keyboard.press('Escape');
  await wb.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
  const row = wb.page.locator('.markers-panel .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the user reads
  return row.innerText();
}

/** Hovers `text` until the hover's text satisfies `ok` (the cache is read on first hover). */
async function waitForHover(wb: Workbench, text: string, ok: (t: string) => boolean): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const t = await wb.hoverText(text);
    if (ok(t) || Date.now() > deadline) return t;
    await wb.page.mouse.move(0, 0);
    await wb.page.waitForTimeout(500);
  }
}

/**
 * Puts the cursor on `text`, opens the code action menu with Ctrl+. and picks `title`. Retries:
 * on a busy machine a keypress can land before the editor has focus or its actions are computed.
 */
async function pickQuickFix(wb: Workbench, text: string, title: string): Promise<string[]> {
  const row = wb.page.locator('.action-widget .monaco-list-row', { hasText: title }).first();
  await wb.step(`light bulb menu on ${text}`, async () => {
    const deadline = Date.now() + 45_000;
    for (;;) {
      await wb.page.keyboard.press('Escape');
      await wb.clickEditorText(text);
      await wb.page.keyboard.press('Control+.');
      try {
        await row.waitFor({ state: 'visible', timeout: 5000 });
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
    }
  });
  const offered = await wb.page.locator('.action-widget .monaco-list-row').allInnerTexts();
  await row.click();
  return offered.map((t) => t.trim()).filter(Boolean);
}

async function waitForLine(wb: Workbench, text: string, ok: (line: string) => boolean): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const line = ((await wb.editorLine(text).textContent()) ?? '').replace(/\u00a0/g, ' ').trim();
    if (ok(line) || Date.now() > deadline) return line;
    await wb.page.waitForTimeout(200);
  }
}
