// The workbench inside the real extension host: every contributed command is registered, the
// tree providers' data over a real (throw-away) cache and the workspace's Dockerfiles, Use in
// FROM edits, cache removal, and the pure parts (tag pager, progress text, failure actions).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { parseReference, registryName } from '../../src/core/reference';
import { RegistryClient } from '../../src/core/registry/client';
import { Store } from '../../src/core/store';
import type { StowageApi } from '../../src/vscode/activate';
import type { FeatureContext, PullImageArgs } from '../../src/vscode/feature';
import { CacheTree } from '../../src/vscode/workbench/cache-tree';
import { failureActions } from '../../src/vscode/workbench/failure';
import { Pager } from '../../src/vscode/workbench/pager';
import { formatBytePair, progressMessage } from '../../src/vscode/workbench/progress-text';
import { problemText, successText } from '../../src/vscode/workbench/pulls';
import { RegistriesTree } from '../../src/vscode/workbench/registries-tree';
import { WorkspaceImagesTree, type WorkspaceNode } from '../../src/vscode/workbench/workspace-tree';
import { buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { startRegistry } from '../support/registry';
import { startTinyproxy } from '../support/tinyproxy';
import { featuresOf, quickFixes, until } from './helpers';

const CACHED = 'example.test/team/app:1.0';

async function features(): Promise<FeatureContext> {
  const ext = vscode.extensions.getExtension<StowageApi>('stowage.stowage');
  assert.ok(ext);
  const api = await ext.activate();
  return featuresOf(api, vscode.window.createOutputChannel('Stowage workbench test', { log: true }));
}

/** What a pull of alpine:3.20 that moved `bytes` returns (fromCache is set by each test). */
function pullResult(bytes: number) {
  return {
    reference: 'docker.io/library/alpine:3.20',
    digest: 'sha256:00' as `sha256:${string}`,
    mediaType: '',
    platforms: ['linux/amd64'],
    blobsDownloaded: 2,
    bytesDownloaded: bytes,
    totalBytes: bytes,
  };
}

describe('workbench: pure parts', () => {
  it('pages a list that arrives in one response (Distribution ignores n) 50 at a time', async () => {
    const all = Array.from({ length: 251 }, (_, i) => `t${i}`);
    let requests = 0;
    const pager = new Pager<string>(async function* () {
      requests++;
      yield all;
    }, 50);
    assert.deepEqual(await pager.more(), all.slice(0, 50));
    assert.equal(pager.total(), 251, 'the total is known without another request');
    assert.equal(requests, 1);
    await pager.more();
    assert.equal(pager.items().length, 100);
    for (let i = 0; i < 4; i++) await pager.more();
    assert.equal(pager.items().length, 251);
    assert.equal(pager.hasMore(), false);
  });

  it('sorts a short list that arrived whole (fewer tags than a page) before showing it', async () => {
    let requests = 0;
    const pager = new Pager<string>(
      async function* () {
        requests++;
        yield ['2025.04', 'latest', '2023.03', '2024.10', '2024.9'];
      },
      50,
      (a, b) => a.localeCompare(b, undefined, { numeric: true }),
    );
    assert.deepEqual(await pager.more(), ['2023.03', '2024.9', '2024.10', '2025.04', 'latest']);
    assert.equal(pager.total(), 5);
    assert.equal(pager.hasMore(), false, 'no "Load more…" after the whole list');
    assert.equal(requests, 1);
  });

  it('pages a registry that honours n, asking for each page only when needed', async () => {
    const asked: number[] = [];
    const pager = new Pager<string>(async function* () {
      for (let p = 0; p < 3; p++) {
        asked.push(p);
        yield Array.from({ length: 50 }, (_, i) => `p${p}-${i}`);
      }
    }, 50);
    await pager.more();
    assert.deepEqual(asked, [0]);
    assert.equal(pager.total(), undefined);
    // A filter loads pages until it has a page of matches or the list ends.
    const found = await pager.more((t) => t.endsWith('-7'));
    assert.deepEqual(found, ['p1-7', 'p2-7']);
    assert.deepEqual(asked, [0, 1, 2]);
    assert.equal(pager.hasMore(), false);
  });

  it('writes progress as "layer 3/7 · 45.2/120.0 MB · 38 MB/s"', () => {
    const p = {
      bytesDone: 45_200_000,
      bytesTotal: 120_000_000,
      blobsDone: 4,
      blobsTotal: 8,
      layersDone: 3,
      layersTotal: 7,
    };
    assert.equal(progressMessage(p, 38_000_000), 'layer 3/7 · 45.2/120.0 MB · 38 MB/s');
    assert.equal(progressMessage(p), 'layer 3/7 · 45.2/120.0 MB');
    assert.equal(formatBytePair(512, 900), '512/900 B');
    // Every byte in, layers still being flushed and verified.
    const landed = { ...p, bytesDone: 120_000_000, blobsDone: 7, layersDone: 6 };
    assert.equal(progressMessage(landed, 38_000_000), 'layer 6/7 · 120.0/120.0 MB · verifying');
  });

  it('says what a pull did', () => {
    const r = pullResult(3_400_000);
    assert.equal(successText([{ ...r, fromCache: false }], 1234), 'Pulled alpine:3.20 · 3.4 MB in 1.2 s.');
    assert.equal(successText([{ ...r, fromCache: true }], 3), 'alpine:3.20 is already cached (3.4 MB).');
    assert.equal(
      successText(
        [
          { ...r, fromCache: false },
          { ...r, fromCache: true },
        ],
        2000,
      ),
      'Pulled 1 image · 3.4 MB in 2.0 s (1 more already cached).',
    );
    assert.equal(
      successText(
        [
          { ...r, fromCache: false },
          { ...r, fromCache: false },
          { ...r, fromCache: true },
        ],
        2000,
      ),
      'Pulled 2 images · 6.8 MB in 2.0 s (1 more already cached).',
    );
    assert.equal(
      successText(
        [
          { ...r, fromCache: true },
          { ...r, fromCache: true },
        ],
        5,
      ),
      'All 2 images are already cached.',
    );
  });

  it('a batch with failures says how many were not pulled, and why, before what succeeded', () => {
    const result = pullResult(1_000_000);
    const ok = (fromCache: boolean) =>
      ({ target: { reference: 'alpine:3.20' }, ok: true, result: { ...result, fromCache } }) as const;
    const bad = (reference: string) =>
      ({
        target: { reference },
        ok: false,
        cancelled: false,
        error: new StowageError('NOT_FOUND', `${reference} was not found.`),
      }) as const;
    const missing = Array.from({ length: 9 }, (_, i) => bad(`127.0.0.1:5555/demo/gone${i}:1`));
    const outcomes = [ok(false), ok(true), ok(true), ok(true), ok(true), ...missing];
    assert.equal(
      problemText(outcomes, [], 2000),
      '9 of 14 images could not be pulled. 127.0.0.1:5555/demo/gone0:1: 127.0.0.1:5555/demo/gone0:1 was not found (and 8 more, listed in the log). Pulled 1 image · 1.0 MB in 2.0 s (4 more already cached).',
    );
    const skipped = [
      { ref: null, error: 'Dockerfile:3: ARG TAG has no value.' },
      { ref: null, error: 'Dockerfile:9: not a valid reference.' },
    ];
    assert.equal(
      problemText([ok(true), missing[0]!], skipped, 10),
      '3 of 4 images could not be pulled (2 cannot be resolved). 127.0.0.1:5555/demo/gone0:1: 127.0.0.1:5555/demo/gone0:1 was not found (and 2 more, listed in the log). alpine:3.20 is already cached (1.0 MB).',
    );
    assert.equal(
      problemText([ok(true)], skipped.slice(0, 1), 10),
      '1 of 2 images could not be pulled. Dockerfile:3: ARG TAG has no value. alpine:3.20 is already cached (1.0 MB).',
    );
    assert.equal(
      problemText([missing[0]!], [], 10),
      'Could not pull 127.0.0.1:5555/demo/gone0:1: 127.0.0.1:5555/demo/gone0:1 was not found.',
    );
  });

  it('offers the actions that fit a failure', () => {
    // The whole table is in test/unit/vscode-failure.test.ts; here, the same module in the host's bundle.
    const titles = (e: unknown, trusted = true) =>
      failureActions(e, { registry: 'r.example', trusted }).map((a) => a.title);
    assert.deepEqual(titles(new StowageError('UNAUTHORIZED', 'x')), ['Sign In…', 'Show Log']);
    assert.deepEqual(
      failureActions(new StowageError('UNAUTHORIZED', 'x'), { registry: 'r.example', trusted: true })[0]
        ?.args,
      ['r.example'],
    );
    assert.deepEqual(titles(new StowageError('TLS', 'x')), ['Open Settings', 'Show Log']);
    assert.deepEqual(titles(new StowageError('OFFLINE', 'x'), false), ['Manage Workspace Trust', 'Show Log']);
    assert.deepEqual(titles(new Error('boom')), ['Show Log']);
  });

  it('accepts registry names and refuses paths', () => {
    assert.equal(registryName('ghcr.io'), 'ghcr.io');
    assert.equal(registryName('https://127.0.0.1:5000/'), '127.0.0.1:5000');
    assert.equal(registryName('index.docker.io'), 'docker.io');
    assert.equal(registryName('ghcr.io/owner'), undefined);
    assert.equal(registryName(''), undefined);
  });
});

describe('workbench in the extension host', function () {
  this.timeout(60_000);
  let f: FeatureContext;
  let cacheDir: string;
  const config = () => vscode.workspace.getConfiguration('stowage');

  before(async () => {
    f = await features();
    cacheDir = await mkdtemp(join(tmpdir(), 'stowage-workbench-cache-'));
    const layouts = await mkdtemp(join(tmpdir(), 'stowage-workbench-layout-'));
    const image = await buildImage(join(layouts, 'app'), {
      platforms: ['linux/amd64'],
      index: false,
      layers: 2,
      layerSize: [30_000, 10_000],
      seed: 'workbench-app',
    });
    const store = await Store.open(cacheDir);
    const p = image.platforms[0]!;
    for (const d of [p.manifest, p.config, ...p.layers]) {
      await store.putBlob(
        await readFile(join(image.layoutDir, 'blobs', 'sha256', d.digest.slice(7))),
        d.digest as `sha256:${string}`,
      );
    }
    await store.setReference(CACHED, {
      mediaType: image.mediaType,
      digest: image.digest as `sha256:${string}`,
      size: image.size,
    });
    await rm(layouts, { recursive: true, force: true });
    await config().update('cacheDirectory', cacheDir, vscode.ConfigurationTarget.Workspace);
    await config().update('platforms', ['linux/amd64'], vscode.ConfigurationTarget.Workspace);
  });

  after(async () => {
    await config().update('cacheDirectory', undefined, vscode.ConfigurationTarget.Workspace);
    await config().update('platforms', undefined, vscode.ConfigurationTarget.Workspace);
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('CA files: stowage.certificateAuthorityFiles, else the old stowage.caCertificates (still read)', async () => {
    const root = () => vscode.workspace.getConfiguration();
    const here = vscode.ConfigurationTarget.Workspace;
    try {
      await root().update('stowage.caCertificates', ['/old/ca.pem'], here);
      assert.deepEqual(f.stowage.settings().caCertificates, ['/old/ca.pem']);
      await root().update('stowage.certificateAuthorityFiles', ['/new/ca.pem'], here);
      assert.deepEqual(f.stowage.settings().caCertificates, ['/new/ca.pem']);
    } finally {
      await root().update('stowage.caCertificates', undefined, here);
      await root().update('stowage.certificateAuthorityFiles', undefined, here);
    }
    assert.deepEqual(f.stowage.settings().caCertificates, []);
  });

  it('registers every command the manifest contributes', async () => {
    const ext = vscode.extensions.getExtension('stowage.stowage')!;
    const contributed: string[] = ext.packageJSON.contributes.commands.map(
      (c: { command: string }) => c.command,
    );
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !registered.has(c));
    assert.deepEqual(missing, []);
    for (const c of ext.packageJSON.contributes.commands) assert.equal(c.category, 'Stowage', c.command);
  });

  it('Workspace Images: the fixture Dockerfile and its image, not cached, with the line to open', async () => {
    const tree = new WorkspaceImagesTree(f);
    try {
      const roots = await tree.getChildren();
      const dockerfile = roots.find(
        (n) => n.kind === 'dockerfile' && n.entry.uri.path.endsWith('/Dockerfile'),
      );
      assert.ok(dockerfile, `the workspace Dockerfile is listed (${roots.length} roots)`);
      const item = tree.getTreeItem(dockerfile);
      assert.equal(item.contextValue, 'dockerfile');
      const images = (await tree.getChildren(dockerfile)) as Extract<WorkspaceNode, { kind: 'image' }>[];
      const alpine = images.find((n) => n.use.ref === 'docker.io/library/alpine:3.20');
      assert.ok(alpine, 'FROM alpine:3.20 is a child');
      const imageItem = tree.getTreeItem(alpine);
      assert.equal(imageItem.description, 'not cached');
      assert.equal(imageItem.contextValue, 'image.missing');
      assert.equal(imageItem.command?.command, 'stowage.openReference');
      assert.equal((imageItem.iconPath as vscode.ThemeIcon).id, 'cloud-download');
    } finally {
      tree.dispose();
    }
  });

  it('Workspace Images: a cached image shows cached with its size; an unresolvable one says why', async () => {
    const ws = vscode.workspace.workspaceFolders![0]!;
    const uri = vscode.Uri.joinPath(ws.uri, 'workbench-suite', 'cached.Dockerfile');
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(`FROM ${CACHED}\nFROM \${NOPE}\n`));
    const tree = new WorkspaceImagesTree(f);
    try {
      await f.index.rescan();
      const roots = await tree.getChildren();
      const node = roots.find(
        (n) => n.kind === 'dockerfile' && n.entry.uri.path.endsWith('/cached.Dockerfile'),
      );
      assert.ok(node);
      const [cached, broken] = (await tree.getChildren(node)).map((n) => tree.getTreeItem(n));
      assert.ok(cached && broken);
      assert.match(String(cached?.description), /^cached · \d+\.\d kB$/);
      assert.equal((cached.iconPath as vscode.ThemeIcon).id, 'pass-filled');
      assert.equal(broken?.contextValue, 'unresolved');
      assert.match(String(broken?.description), /^unresolvable: /);
    } finally {
      tree.dispose();
      await vscode.workspace.fs.delete(vscode.Uri.joinPath(ws.uri, 'workbench-suite'), { recursive: true });
    }
  });

  it('Export Images to Archive, then Import Images from Archive, round-trips a cached image', async () => {
    const archive = vscode.Uri.file(join(cacheDir, '..', `stowage-host-export-${process.pid}.tar`));
    try {
      const exported = (await vscode.commands.executeCommand(
        'stowage.exportImages',
        { reference: CACHED },
        archive,
      )) as {
        images: unknown[];
        archiveBytes: number;
      };
      assert.equal(exported.images.length, 1);
      assert.equal((await stat(archive.fsPath)).size, exported.archiveBytes);
      const store = await f.stowage.getStore();
      const before = await store.getReference(CACHED);
      assert.ok(before);
      await store.removeReference(CACHED);
      await store.gc();
      assert.equal((await store.diskUsage()).blobs, 0);
      const imported = (await vscode.commands.executeCommand('stowage.importArchive', archive)) as {
        images: { name: string }[];
      };
      assert.deepEqual(
        imported.images.map((i) => i.name),
        [CACHED],
      );
      assert.deepEqual(await store.getReference(CACHED), before, 'the same image is back, digest and all');
    } finally {
      await rm(archive.fsPath, { force: true });
    }
  });

  it('Push Image to a Registry copies a cached image to a real registry', async () => {
    const registry = await startRegistry();
    try {
      const destination = `${registry.host}/pushed/app:1.0`;
      const result = (await vscode.commands.executeCommand(
        'stowage.pushImage',
        { reference: CACHED },
        destination,
      )) as { destination: string; digest: string; uploaded: number; existing: number } | undefined;
      assert.ok(result, 'the push returned its result (an error would have been shown instead)');
      assert.equal(result.uploaded, 3, 'the config and two layers');
      const store = await f.stowage.getStore();
      assert.equal(result.digest, (await store.getReference(CACHED))?.digest);
      const client = new RegistryClient();
      try {
        const served = await client.head(parseReference(destination));
        assert.equal(served?.digest, result.digest, 'the registry serves the same manifest');
      } finally {
        await client.close();
      }
    } finally {
      await registry.stop();
    }
  });

  it('Push of an image pulled for one platform: Push linux/amd64 Only pushes that image; Pull All Platforms and Push completes the index, then pushes it', async () => {
    const registry = await startRegistry();
    const layouts = await mkdtemp(join(tmpdir(), 'stowage-partial-push-'));
    const source = `${registry.host}/multi/app:1.0`;
    const store = await f.stowage.getStore();
    try {
      const image = await buildImage(join(layouts, 'multi'), {
        platforms: ['linux/amd64', 'linux/arm64'],
        layers: 1,
        layerSize: 5_000,
        seed: 'workbench-partial-push',
      });
      const index = await pushLayout(image.layoutDir, 'latest', registry, 'multi/app:1.0');
      // As the editor pulls it (stowage.platforms is linux/amd64 here): one platform of the index.
      const client = new RegistryClient();
      try {
        await pull(store, client, source, { platforms: [parsePlatform('linux/amd64')] });
      } finally {
        await client.close();
      }
      type Pushed = { digest: string; platforms: string[] } | undefined;
      const push = (arg: PullImageArgs, to: string) =>
        vscode.commands.executeCommand<Pushed>('stowage.pushImage', arg, to);
      const whole = `${registry.host}/copy/whole:1.0`;
      // The whole index: a registry would refuse it with images missing, so it stops before any upload.
      assert.equal(await push({ reference: source }, whole), undefined, 'the partial push was refused');
      const amd64 = image.platforms.find((p) => p.platform === 'linux/amd64')!;
      const one = await push(
        { reference: source, platform: 'linux/amd64' },
        `${registry.host}/copy/amd64:1.0`,
      );
      assert.ok(one, 'Push linux/amd64 Only pushed (an error would have been shown instead)');
      assert.equal(one.digest, amd64.manifest.digest, 'that platform’s manifest, not the index');
      assert.deepEqual(one.platforms, ['linux/amd64']);
      const all = await push({ reference: source, allPlatforms: true }, whole);
      assert.ok(all, 'Pull All Platforms and Push pushed');
      assert.equal(all.digest, index, 'the registry’s own index, every platform of it');
      assert.deepEqual([...all.platforms].sort(), ['linux/amd64', 'linux/arm64']);
      const check = new RegistryClient();
      try {
        assert.equal((await check.head(parseReference(whole)))?.digest, index);
      } finally {
        await check.close();
      }
    } finally {
      await store.removeReference(source);
      await rm(layouts, { recursive: true, force: true });
      await registry.stop();
    }
  });

  it('Check for Newer Images Now: a moved tag is "newer on registry" in the views, with Pull the Newer Image; a tag the registry lacks is a Problem with Browse Tags…', async () => {
    const registry = await startRegistry();
    const ws = vscode.workspace.workspaceFolders?.[0];
    assert.ok(ws, 'a workspace folder is open');
    const dockerfile = vscode.Uri.joinPath(ws.uri, 'newer-check', 'Dockerfile');
    const layouts = await mkdtemp(join(tmpdir(), 'stowage-newer-'));
    const workspaceTree = new WorkspaceImagesTree(f);
    const cacheTree = new CacheTree(f);
    const tag = `${registry.host}/moved/app:1.0`;
    const absent = `${registry.host}/moved/app:nope`;
    try {
      // The cache holds moved/app:1.0 as it was; then the registry's tag moves to another image.
      await vscode.commands.executeCommand('stowage.pushImage', { reference: CACHED }, tag);
      const store = await f.stowage.getStore();
      await store.setReference(tag, (await store.getReference(CACHED))!);
      const other = await buildImage(join(layouts, 'other'), {
        platforms: ['linux/amd64'],
        index: false,
        layers: 1,
        layerSize: 5_000,
        seed: 'workbench-newer',
      });
      const p = other.platforms[0]!;
      for (const d of [p.manifest, p.config, ...p.layers]) {
        await store.putBlob(
          await readFile(join(other.layoutDir, 'blobs', 'sha256', d.digest.slice(7))),
          d.digest as `sha256:${string}`,
        );
      }
      await store.setReference('example.test/team/other:1', {
        mediaType: other.mediaType,
        digest: other.digest as `sha256:${string}`,
        size: other.size,
      });
      await vscode.commands.executeCommand(
        'stowage.pushImage',
        { reference: 'example.test/team/other:1' },
        tag,
      );
      await vscode.workspace.fs.writeFile(
        dockerfile,
        new TextEncoder().encode(`FROM ${tag}\nFROM ${absent}\n`),
      );
      await vscode.commands.executeCommand('stowage.refresh');

      // Offline, the command asks nothing.
      await config().update('offline', true, vscode.ConfigurationTarget.Workspace);
      try {
        assert.equal(await vscode.commands.executeCommand('stowage.checkForNewerImages'), undefined);
      } finally {
        await config().update('offline', undefined, vscode.ConfigurationTarget.Workspace);
      }
      // The setting says daily (or off): the command checks now all the same.
      const result = (await vscode.commands.executeCommand('stowage.checkForNewerImages')) as
        | { checked: number; newer: string[]; unknown: string[] }
        | undefined;
      assert.ok(result, 'the check ran');
      assert.ok(result.checked >= 2);
      assert.deepEqual(result.newer, [tag]);
      assert.deepEqual(
        result.unknown,
        [absent],
        'the tag the registry does not have, though nothing is cached',
      );

      // Workspace Images: the moved tag is still cached, and says it is newer on the registry.
      const root = (await workspaceTree.getChildren()).find(
        (n) => n.kind === 'dockerfile' && n.entry.uri.path.endsWith('/newer-check/Dockerfile'),
      );
      assert.ok(root);
      const [moved, missing] = (await workspaceTree.getChildren(root)).map((n) =>
        workspaceTree.getTreeItem(n),
      );
      assert.ok(moved && missing);
      assert.match(String(moved.description), /^cached · \d+\.\d kB · newer on registry$/);
      assert.equal(moved.contextValue, 'image.cached.newer');
      assert.equal((moved.iconPath as vscode.ThemeIcon).id, 'arrow-circle-up');
      assert.match((moved.tooltip as vscode.MarkdownString).value, /A newer image is available/);
      assert.equal(missing.description, 'not cached · tag not on registry');
      assert.equal((missing.iconPath as vscode.ThemeIcon).id, 'warning');

      // Registries: its tag is marked too, with Pull the Newer Image instead of Pull.
      const registriesTree = new RegistriesTree(f);
      try {
        const repo = (await registriesTree.getChildren({ kind: 'registry', registry: registry.host })).find(
          (n) => n.kind === 'repository' && n.repository === 'moved/app',
        );
        assert.ok(repo, 'the registry lists moved/app');
        const tags = (await registriesTree.getChildren(repo)).filter((n) => n.kind === 'tag');
        const item = registriesTree.getTreeItem(tags.find((n) => n.tag === '1.0')!);
        assert.equal(item.description, 'cached · newer on registry');
        assert.equal(item.contextValue, 'tag.newer');
        assert.equal((item.iconPath as vscode.ThemeIcon).id, 'arrow-circle-up');
      } finally {
        registriesTree.dispose();
      }

      // Cache: the same image, marked, with Pull the Newer Image in its context menu.
      const cachedNode = (await cacheTree.getChildren()).find((n) => n.kind === 'image' && n.name === tag);
      assert.ok(cachedNode);
      const cachedItem = cacheTree.getTreeItem(cachedNode);
      assert.match(String(cachedItem.description), / · newer on registry$/);
      assert.equal(cachedItem.contextValue, 'cachedImage.newer');
      assert.match(String(cachedItem.tooltip), /A newer image is available: .* now points to sha256:/);
      const menus = vscode.extensions.getExtension('stowage.stowage')!.packageJSON.contributes.menus[
        'view/item/context'
      ] as { command: string; when: string; group: string }[];
      const pullNewer = menus.filter((m) => m.command === 'stowage.pullNewerImage').map((m) => m.when);
      assert.ok(pullNewer.includes('view == stowage.cache && viewItem == cachedImage.newer'), `${pullNewer}`);
      assert.ok(pullNewer.includes('view == stowage.workspaceImages && viewItem == image.cached.newer'));
      assert.ok(pullNewer.includes('view == stowage.registries && viewItem == tag.newer'));
      // Remove, Inspect, Export… still apply to a marked image.
      const remove = menus.find((m) => m.command === 'stowage.removeImage' && m.group.startsWith('9_'));
      assert.ok(remove && /cachedImage\//.test(remove.when), remove?.when);

      // The editor: the unknown tag is a warning on its reference, with Browse Tags… to fix it.
      const doc = await vscode.workspace.openTextDocument(dockerfile);
      await vscode.window.showTextDocument(doc);
      const warning = await until('the unknown-tag warning', () =>
        vscode.languages.getDiagnostics(dockerfile).find((d) => d.code === 'unknown-tag'),
      );
      assert.equal(warning.severity, vscode.DiagnosticSeverity.Warning);
      assert.equal(doc.getText(warning.range), absent);
      assert.equal(
        warning.message,
        `The registry does not have ${absent}: ${registry.host} answered 404 Not Found for that tag when last checked.`,
      );
      const fixes = await quickFixes(dockerfile, warning.range);
      const browse = fixes.find((a) => a.title === 'Browse Tags…');
      assert.ok(browse?.command, `offered: ${fixes.map((a) => a.title)}`);
      assert.equal(browse.command.command, 'stowage.browseTags');
      assert.deepEqual(browse.command.arguments, [absent]);
      assert.ok(
        !(await quickFixes(dockerfile, new vscode.Range(0, 8, 0, 8))).some((a) => a.title === 'Browse Tags…'),
        'no Browse Tags… on a tag the registry has',
      );
      // Its CodeLens is Browse Tags…, not a Pull that could only fail.
      const absentLine = warning.range.start.line;
      const lenses = await until('the unknown tag’s CodeLens', async () => {
        const all = await vscode.commands.executeCommand<vscode.CodeLens[]>(
          'vscode.executeCodeLensProvider',
          dockerfile,
          10,
        );
        const here = all.filter((l) => l.range.start.line === absentLine && l.command);
        return here.some((l) => l.command?.command === 'stowage.browseTags') ? here : undefined;
      });
      assert.deepEqual(
        lenses.map((l) => [l.command?.title, l.command?.command, l.command?.arguments]),
        [['✗ tag not on registry · Browse Tags…', 'stowage.browseTags', [absent]]],
      );

      // Pull the Newer Image from the Cache view fetches it (the cache alone called its copy complete).
      const outcomes = (await vscode.commands.executeCommand('stowage.pullNewerImage', cachedNode)) as {
        ok: boolean;
      }[];
      assert.deepEqual(
        outcomes.map((o) => o.ok),
        [true],
      );
      assert.equal((await store.getReference(tag))?.digest, other.digest, 'the newer image is cached');
      const after = (await cacheTree.getChildren()).find((n) => n.kind === 'image' && n.name === tag);
      assert.ok(after);
      assert.equal(cacheTree.getTreeItem(after).contextValue, 'cachedImage');

      // The tag appears on the registry: the next check clears the warning.
      await vscode.commands.executeCommand('stowage.pushImage', { reference: CACHED }, absent);
      const again = (await vscode.commands.executeCommand('stowage.checkForNewerImages')) as {
        unknown: string[];
      };
      assert.deepEqual(again.unknown, []);
      await until('the warning gone', () =>
        vscode.languages.getDiagnostics(dockerfile).some((d) => d.code === 'unknown-tag') ? undefined : true,
      );
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    } finally {
      workspaceTree.dispose();
      cacheTree.dispose();
      // The suite's cache holds one image for the tests after this one.
      const store = await f.stowage.getStore();
      await store.removeReference(tag);
      await store.removeReference('example.test/team/other:1');
      await store.gc();
      await vscode.workspace.fs.delete(vscode.Uri.joinPath(ws.uri, 'newer-check'), { recursive: true });
      await rm(layouts, { recursive: true, force: true });
      await registry.stop();
    }
  });

  it("pulls through VS Code's http.proxy with http.proxyAuthorization; a proxy that wants credentials is named", async () => {
    const registry = await startRegistry();
    const proxy = await startTinyproxy({ user: 'alice', password: 'proxy-pass' });
    const http = () => vscode.workspace.getConfiguration('http');
    const destination = `${registry.host}/proxied/app:1.0`;
    const caches: string[] = [];
    const fresh = async () => {
      caches.push(await mkdtemp(join(tmpdir(), 'stowage-proxy-cache-')));
      return Store.open(caches[caches.length - 1]!);
    };
    /** The client after a settings change: the workbench makes a new one for the new settings. */
    const nextClient = async (old: RegistryClient) => {
      for (let i = 0; i < 100 && f.stowage.getClient() === old; i++)
        await new Promise((r) => setTimeout(r, 20));
      const client = f.stowage.getClient();
      assert.notEqual(client, old, 'a new client for the new http settings');
      return client;
    };
    try {
      // The image, pushed straight there before any proxy is set.
      await vscode.commands.executeCommand('stowage.pushImage', { reference: CACHED }, destination);
      let client = f.stowage.getClient();
      await http().update('proxy', proxy.url, vscode.ConfigurationTarget.Global);
      client = await nextClient(client);
      await assert.rejects(pull(await fresh(), client, destination), (e: unknown) => {
        // The extension's bundle has its own StowageError class: compare by code.
        const { code, message } = e as { code?: string; message: string };
        assert.equal(code, 'PROXY', message);
        assert.match(message, new RegExp(`proxy http://127\\.0\\.0\\.1:${proxy.port} wants credentials`));
        const actions = failureActions(new StowageError('PROXY', message), {
          registry: registry.host,
          trusted: true,
        });
        assert.deepEqual(actions[0]?.args, ['http.proxy']);
        return true;
      });
      const token = `Basic ${Buffer.from('alice:proxy-pass').toString('base64')}`;
      await http().update('proxyAuthorization', token, vscode.ConfigurationTarget.Global);
      client = await nextClient(client);
      const before = proxy.connects().length;
      const result = await pull(await fresh(), client, destination);
      assert.equal(result.fromCache, false);
      assert.ok(proxy.connects().slice(before).includes(registry.host), 'tunnelled through the proxy');
    } finally {
      await http().update('proxy', undefined, vscode.ConfigurationTarget.Global);
      await http().update('proxyAuthorization', undefined, vscode.ConfigurationTarget.Global);
      await proxy.stop();
      await registry.stop();
      for (const dir of caches) await rm(dir, { recursive: true, force: true });
    }
  });

  it('Inspect Image opens what the cache holds for an image as read-only JSON', async () => {
    const doc = (await vscode.commands.executeCommand('stowage.inspectImage', {
      reference: CACHED,
    })) as vscode.TextDocument | undefined;
    assert.ok(doc, 'the command returned the document');
    assert.equal(doc.uri.scheme, 'stowage-inspect');
    assert.equal(doc.languageId, 'json');
    assert.equal(vscode.window.activeTextEditor?.document.uri.toString(), doc.uri.toString());
    const info = JSON.parse(doc.getText()) as {
      name: string;
      digest: string;
      platforms: { complete: boolean; layers: { present: boolean }[]; config?: { digest: string } }[];
    };
    const store = await f.stowage.getStore();
    assert.equal(info.name, CACHED);
    assert.equal(info.digest, (await store.getReference(CACHED))?.digest);
    const complete = info.platforms.filter((p) => p.complete);
    assert.equal(complete.length, 1, JSON.stringify(info.platforms));
    assert.equal(complete[0]!.layers.length, 2);
    assert.ok(complete[0]!.layers.every((l) => l.present) && complete[0]!.config?.digest);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('Cache: references → platforms → layers with sizes; Remove Image from Cache empties it', async () => {
    const tree = new CacheTree(f);
    try {
      const roots = await tree.getChildren();
      assert.equal(roots.length, 1);
      const image = roots[0]!;
      const item = tree.getTreeItem(image);
      assert.equal(item.label, CACHED);
      assert.equal(item.contextValue, 'cachedImage');
      assert.match(String(item.description), /^\d+\.\d kB · linux\/amd64$/);
      const [platform] = await tree.getChildren(image);
      assert.ok(platform);
      assert.equal(tree.getTreeItem(platform).label, 'linux/amd64');
      const layers = await tree.getChildren(platform);
      assert.equal(layers.length, 2);
      assert.match(String(tree.getTreeItem(layers[0]!).description), /^\d+\.\d kB$/);

      // Copy Digest on each level: the image's digest, the platform's manifest, the layer's blob.
      assert.ok(image.kind === 'image' && image.inspection && platform.kind === 'platform');
      const layer = layers[0]!;
      assert.ok(layer.kind === 'layer');
      const expected = [image.inspection.digest, platform.platform.manifestDigest, layer.layer.digest];
      for (const [node, digest] of [image, platform, layer].map((n, i) => [n, expected[i]] as const)) {
        assert.equal(await vscode.commands.executeCommand('stowage.copyDigest', node), digest);
        assert.equal(await vscode.env.clipboard.readText(), digest);
      }
      // Remove is in the right-click menu of a cached image, not only its inline trash icon.
      const menus = vscode.extensions.getExtension('stowage.stowage')!.packageJSON.contributes.menus[
        'view/item/context'
      ] as { command: string; when: string; group: string }[];
      const onImage = (command: string) =>
        menus.filter(
          (m) =>
            m.command === command &&
            m.when.includes('view == stowage.cache') &&
            !m.group.startsWith('inline'),
        );
      assert.equal(onImage('stowage.removeImage').length, 1, 'Remove Image in the context menu');
      assert.match(
        onImage('stowage.copyDigest')[0]?.when ?? '',
        /cachedImage\(\\\.newer\)\?\|cachedPlatform\|layer/,
      );

      const removed = await vscode.commands.executeCommand('stowage.removeImage', { reference: CACHED });
      assert.equal(removed, 1);
      assert.deepEqual(await tree.getChildren(), []);
      const store = await f.stowage.getStore();
      assert.equal((await store.diskUsage()).blobs, 0, 'Remove also collected the unused blobs');
    } finally {
      tree.dispose();
    }
  });

  it('Use in FROM replaces the reference on the FROM line, or completes a bare FROM', async () => {
    const doc = await vscode.workspace.openTextDocument({
      language: 'dockerfile',
      content: 'FROM alpine:3.20 AS base\nRUN true\nFROM \n',
    });
    const editor = await vscode.window.showTextDocument(doc);
    const tag = { kind: 'tag', registry: 'docker.io', repository: 'library/alpine', tag: '3.21' };
    editor.selection = new vscode.Selection(1, 2, 1, 2);
    assert.equal(await vscode.commands.executeCommand('stowage.useInFrom', tag), 'alpine:3.21');
    assert.equal(doc.lineAt(0).text, 'FROM alpine:3.21 AS base', 'the nearest FROM above the cursor');
    editor.selection = new vscode.Selection(2, 5, 2, 5);
    await vscode.commands.executeCommand('stowage.useInFrom', {
      ...tag,
      registry: 'ghcr.io',
      repository: 'o/r',
    });
    assert.equal(doc.lineAt(2).text, 'FROM ghcr.io/o/r:3.21');
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });
});
