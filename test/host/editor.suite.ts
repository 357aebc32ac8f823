// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
// Editor features inside the real extension host: hover, CodeLens, code actions and diagnostics
// on a Dockerfile whose images are seeded into a throw-away cache (real OCI blobs, no registry:
// everything here is served from the cache, as the hover must be).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { ImageUse } from '../../src/core/dockerfile';
import { formatBytes } from '../../src/core/format';
import { Store } from '../../src/core/store';
import type { StowageApi } from '../../src/vscode/activate';
import { PinCodeActions } from '../../src/vscode/editor/code-actions';
import { DocumentUses } from '../../src/vscode/editor/documents';
import type { Freshness } from '../../src/vscode/editor/freshness';
import { pinToDigest } from '../../src/vscode/editor/pin';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { featuresOf, quickFixes, until } from './helpers';

// Nothing listens here: a request to it would fail, and none is expected (hover is cache-only).
const REGISTRY = '127.0.0.1:9';
const CACHED = `${REGISTRY}/fixture/app:1.0`;
const PARTIAL = `${REGISTRY}/fixture/partial:2.0`;
const MISSING = `${REGISTRY}/fixture/missing:3.0`;

const DOCKERFILE = [
  'ARG BASE=alpine:3.20', //                      0
  `FROM ${CACHED} AS app`, //                    1
  `FROM ${PARTIAL}`, //                          2
  `FROM ${MISSING} AS other`, //                 3
  'FROM ${UNSET_ARG}', //                        4
  'FROM ${BASE}', //                             5
  `COPY --from=${CACHED} /etc/x /x`, //          6
  'FROM Fixture/Upper:1', //                     7
  '',
].join('\n');

interface Seeded {
  dir: string;
  app: BuiltImage;
  partial: BuiltImage;
}

/**
 * Writes images into a Store: app (amd64 cached, arm64's manifest only, arm/v7 only listed in the
 * index), partial (a layer missing).
 */
async function seedCache(): Promise<Seeded> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-editor-cache-'));
  const layouts = await mkdtemp(join(tmpdir(), 'stowage-editor-layout-'));
  try {
    const app = await buildImage(join(layouts, 'app'), {
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
      layers: 3,
      layerSize: [40_000, 20_000, 5_000],
      seed: 'editor-app',
      entrypoint: ['/docker-entrypoint.sh'],
      cmd: ['nginx', '-g', 'daemon off;'],
      exposedPorts: ['80/tcp', '443/tcp'],
      labels: { 'org.opencontainers.image.version': '1.0', maintainer: 'stowage tests' },
      created: '2024-05-06T07:08:09Z',
    });
    const partial = await buildImage(join(layouts, 'partial'), {
      platforms: ['linux/amd64'],
      index: false,
      layers: 2,
      seed: 'editor-partial',
    });
    const store = await Store.open(dir);
    const put = async (layout: string, digest: string) =>
      store.putBlob(
        await readFile(join(layout, 'blobs', 'sha256', digest.slice(7))),
        digest as `sha256:${string}`,
      );
    const amd64 = app.platforms.find((p) => p.platform === 'linux/amd64')!;
    const arm64 = app.platforms.find((p) => p.platform === 'linux/arm64')!;
    await put(app.layoutDir, app.digest);
    for (const d of [amd64.manifest, amd64.config, ...amd64.layers, arm64.manifest])
      await put(app.layoutDir, d.digest);
    await store.setReference(`${CACHED}`, {
      mediaType: app.mediaType,
      digest: app.digest as `sha256:${string}`,
      size: app.size,
    });
    const p = partial.platforms[0]!;
    for (const d of [p.manifest, p.config, p.layers[0]!]) await put(partial.layoutDir, d.digest);
    await store.setReference(`${PARTIAL}`, {
      mediaType: partial.mediaType,
      digest: partial.digest as `sha256:${string}`,
      size: partial.size,
    });
    return { dir, app, partial };
  } finally {
    await rm(layouts, { recursive: true, force: true });
  }
}

function hoverText(hovers: vscode.Hover[]): string {
  return hovers
    .flatMap((h) => h.contents)
    .map((c) => (typeof c === 'string' ? c : c.value))
    .join('\n')
    .replace(/\\([\\`*_[\]|<>$])/g, '$1');
}

function at(line: number, text: string, document: vscode.TextDocument): vscode.Position {
  const col = document.lineAt(line).text.indexOf(text);
  assert.ok(col >= 0, `"${text}" on line ${line + 1}`);
  return new vscode.Position(line, col + 2);
}

describe('editor features', function () {
  this.timeout(60_000);
  let seeded: Seeded;
  let doc: vscode.TextDocument;
  let folder: vscode.Uri;
  const config = () => vscode.workspace.getConfiguration('stowage');

  before(async () => {
    const ext = vscode.extensions.getExtension('stowage.stowage');
    assert.ok(ext);
    await ext.activate();
    seeded = await seedCache();
    const ws = vscode.workspace.workspaceFolders?.[0];
    assert.ok(ws, 'a workspace folder is open');
    await config().update('cacheDirectory', seeded.dir, vscode.ConfigurationTarget.Workspace);
    await config().update('platforms', ['linux/amd64'], vscode.ConfigurationTarget.Workspace);
    await config().update('checkForNewerImages', 'off', vscode.ConfigurationTarget.Workspace);
    folder = vscode.Uri.joinPath(ws.uri, 'editor-suite');
    await vscode.workspace.fs.createDirectory(folder);
    const uri = vscode.Uri.joinPath(folder, 'Dockerfile');
    await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode(DOCKERFILE));
    doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
  });

  after(async () => {
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
    for (const key of ['cacheDirectory', 'platforms', 'checkForNewerImages', 'codeLens']) {
      await config().update(key, undefined, vscode.ConfigurationTarget.Workspace);
    }
    if (folder) await vscode.workspace.fs.delete(folder, { recursive: true });
    if (seeded) await rm(seeded.dir, { recursive: true, force: true });
  });

  const hover = async (pos: vscode.Position) =>
    hoverText(
      await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', doc.uri, pos),
    );

  it('hover over a cached FROM shows digests, size, layers, config and platforms', async () => {
    const text = await hover(at(1, 'fixture/app', doc));
    const amd64 = seeded.app.platforms.find((p) => p.platform === 'linux/amd64')!;
    assert.match(text, /127\.0\.0\.1:9\/fixture\/app:1\.0/);
    assert.match(text, /linux\/amd64/);
    assert.match(text, /Cached/);
    assert.ok(text.includes(`Index digest: \`${seeded.app.digest}\``), text);
    assert.ok(text.includes(`Manifest digest: \`${amd64.manifest.digest}\``), text);
    const size = amd64.config.size + amd64.layers.reduce((n, l) => n + l.size, 0);
    assert.ok(text.includes(`${formatBytes(size)} compressed · 3 layers`), text);
    for (const l of amd64.layers)
      assert.ok(text.includes(formatBytes(l.size)), `layer size ${l.size} in ${text}`);
    assert.match(text, /Created: 2024-05-06 07:08:09 UTC/);
    assert.match(text, /Entrypoint: `\["\/docker-entrypoint\.sh"\]`/);
    assert.match(text, /Cmd: `\["nginx","-g","daemon off;"\]`/);
    assert.match(text, /Exposed ports: `80\/tcp`, `443\/tcp`/);
    assert.match(text, /`maintainer`=`stowage tests`/);
    assert.match(text, /Platforms: \*\*linux\/amd64\*\* ✓, linux\/arm64, linux\/arm\/v7 /);
    assert.doesNotMatch(text, /Not in cache/);
  });

  it('hover over an uncached FROM says so and links the pull command', async () => {
    const text = await hover(at(3, 'fixture/missing', doc));
    assert.match(text, /127\.0\.0\.1:9\/fixture\/missing:3\.0/);
    assert.match(text, /Not in cache/);
    const link = text.match(/\(command:stowage\.pullImage\?([^)]+)\)/);
    assert.ok(link, text);
    assert.deepEqual(JSON.parse(decodeURIComponent(link[1]!)), [
      { reference: `${REGISTRY}/fixture/missing:3.0`, platform: 'linux/amd64' },
    ]);
  });

  it('hover over a partly cached FROM says which layers are there', async () => {
    const text = await hover(at(2, 'fixture/partial', doc));
    assert.match(text, /Partly cached \(1 of 2 layers\)/);
    assert.match(text, /command:stowage\.pullImage/);
  });

  it('a platform the cached index lists but nobody pulled: no made-up size in hover or CodeLens', async () => {
    const uri = vscode.Uri.joinPath(folder, 'arm.Dockerfile');
    await vscode.workspace.fs.writeFile(
      uri,
      new TextEncoder().encode(`FROM --platform=linux/arm/v7 ${CACHED}\n`),
    );
    const arm = await vscode.workspace.openTextDocument(uri);
    const pos = at(0, 'fixture/app', arm);
    const text = await until('a hover on arm.Dockerfile', async () =>
      hoverText(
        await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', uri, pos),
      ),
    );
    assert.match(text, /Cached for other platforms, not `linux\/arm\/v7`/);
    assert.match(text, /command:stowage\.pullImage/);
    assert.doesNotMatch(
      text,
      /compressed|layers|Created:/,
      'no size, layers or config for an unpulled platform',
    );
    const lenses = await until('CodeLens', async () => {
      const l = await vscode.commands.executeCommand<vscode.CodeLens[]>(
        'vscode.executeCodeLensProvider',
        uri,
        10,
      );
      return l.length ? l : undefined;
    });
    assert.deepEqual(
      lenses.map((l) => l.command?.title),
      ['◐ cached for other platforms', 'Pull'],
    );
  });

  it('hover over COPY --from and unresolvable references', async () => {
    assert.match(await hover(at(6, 'fixture/app', doc)), /Cached/);
    // The reason is the diagnostic's (shown in the same hover by VS Code), not repeated here.
    const unset = await hover(at(4, 'UNSET_ARG', doc));
    assert.match(unset, /\$\{UNSET_ARG\}[\s\S]*Not pullable as written/);
    assert.doesNotMatch(unset, /not set/);
    const upper = await hover(at(7, 'Fixture', doc));
    assert.match(upper, /Fixture\/Upper:1[\s\S]*Not pullable as written/);
    assert.doesNotMatch(upper, /lowercase/);
    assert.equal((await hover(new vscode.Position(1, 1))).length, 0, 'no hover over the FROM keyword');
  });

  it('hover over a stage name (FROM stage, COPY --from=stage, AS name) says which stage and from which image', async () => {
    const uri = vscode.Uri.joinPath(folder, 'stages.Dockerfile');
    await vscode.workspace.fs.writeFile(
      uri,
      new TextEncoder().encode(
        [
          'ARG BASE=127.0.0.1:9/fixture/app',
          'FROM ${BASE}:1.0 AS build',
          'FROM build AS test',
          'COPY --from=build /a /b',
          'COPY --from=0 /a /b',
          '',
        ].join('\n'),
      ),
    );
    const stages = await vscode.workspace.openTextDocument(uri);
    const hoverAt = async (pos: vscode.Position) =>
      hoverText(
        await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', uri, pos),
      );
    const from = await until(
      'a hover on FROM build',
      async () => (await hoverAt(at(2, 'build', stages))) || undefined,
    );
    assert.equal(
      from,
      [
        '**`build`** · build stage 0',
        '',
        'Defined on line 2, from `${BASE}:1.0` → `127.0.0.1:9/fixture/app:1.0`.',
      ].join('\n'),
    );
    assert.match(
      await hoverAt(at(3, 'build', stages)),
      /^\*\*`build`\*\* · build stage 0\n\nDefined on line 2/,
    );
    // COPY --from=0: the stage by its index.
    assert.match(await hoverAt(new vscode.Position(4, 12)), /Defined on line 2, from/);
    const definition = await hoverAt(at(1, 'build', stages));
    assert.match(definition, /Defined here, on line 2/);
    assert.match(definition, /Used on lines 3, 4, 5\./);
    // The stage's image keeps its own (image) hover.
    assert.match(await hoverAt(at(1, 'BASE', stages)), /Cached/);

    // F12 on a use goes to AS build; Find All References lists the definition and the uses.
    const asBuild = new vscode.Position(1, stages.lineAt(1).text.indexOf('build'));
    const definitions = await vscode.commands.executeCommand<vscode.Location[]>(
      'vscode.executeDefinitionProvider',
      uri,
      at(3, 'build', stages),
    );
    assert.deepEqual(
      definitions.map((l) => [l.uri.toString(), l.range.start.line, l.range.start.character]),
      [[uri.toString(), asBuild.line, asBuild.character]],
    );
    const references = await vscode.commands.executeCommand<vscode.Location[]>(
      'vscode.executeReferenceProvider',
      uri,
      new vscode.Position(4, 12),
    );
    assert.deepEqual(
      references.map((l) => l.range.start.line).sort(),
      [1, 2, 3, 4],
      'AS build, FROM build, COPY --from=build, COPY --from=0',
    );
  });

  it('a warm hover is served from memory (timing reported, not asserted)', async () => {
    const pos = at(1, 'fixture/app', doc);
    const times: number[] = [];
    for (let i = 0; i < 25; i++) {
      const t0 = performance.now();
      const text = await hover(pos);
      times.push(performance.now() - t0);
      assert.match(text, /Cached/);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    console.log(
      `    warm hover via vscode.executeHoverProvider: median ${median.toFixed(1)} ms, ` +
        `max ${sorted.at(-1)!.toFixed(1)} ms over ${times.length}`,
    );
  });

  it('warns on unresolvable references, with the reason, on the reference text', async () => {
    const diags = await until('two warnings', () => {
      const d = vscode.languages.getDiagnostics(doc.uri).filter((x) => x.source === 'stowage');
      return d.length >= 2 ? d : undefined;
    });
    const warnings = diags.filter((d) => d.severity === vscode.DiagnosticSeverity.Warning);
    assert.deepEqual(
      warnings.map((d) => [d.range.start.line, doc.getText(d.range)]),
      [
        [4, '${UNSET_ARG}'],
        [7, 'Fixture/Upper:1'],
      ],
    );
    assert.match(warnings[0]!.message, /UNSET_ARG/);
    assert.match(warnings[1]!.message, /lowercase/);
    // The Problems panel shows the position already: no "Line N:" in front of the reason.
    for (const w of warnings) assert.doesNotMatch(w.message, /^Line \d+:/);
    assert.ok(!diags.some((d) => d.code === 'newer-image'), 'no newer-image diagnostic without a check');
  });

  it('CodeLens shows cached size, partly cached + Pull, and Pull', async () => {
    const lenses = await vscode.commands.executeCommand<vscode.CodeLens[]>(
      'vscode.executeCodeLensProvider',
      doc.uri,
      100,
    );
    const byLine = new Map<number, string[]>();
    for (const l of lenses)
      byLine.set(l.range.start.line, [...(byLine.get(l.range.start.line) ?? []), l.command?.title ?? '']);
    assert.match(byLine.get(1)?.[0] ?? '', /^✓ cached · \d+(\.\d)? kB$/);
    assert.deepEqual(
      byLine.get(2)?.map((t) => t.replace(/ · .*/, '')),
      ['◐ partly cached', 'Pull'],
    );
    assert.deepEqual(byLine.get(3), ['Pull']);
    assert.equal(byLine.get(4), undefined, 'no lens on an unresolvable reference');
    assert.match(byLine.get(6)?.[0] ?? '', /^✓ cached/);
    const pull = lenses.find((l) => l.range.start.line === 3)!.command!;
    assert.equal(pull.command, 'stowage.pullImage');
    assert.deepEqual(pull.arguments, [
      { reference: `${REGISTRY}/fixture/missing:3.0`, platform: 'linux/amd64' },
    ]);

    await config().update('codeLens', false, vscode.ConfigurationTarget.Workspace);
    const none = await vscode.commands.executeCommand<vscode.CodeLens[]>(
      'vscode.executeCodeLensProvider',
      doc.uri,
    );
    assert.equal(
      none.filter((l) => l.command?.command === 'stowage.pullImage' || l.command?.title.includes('cached'))
        .length,
      0,
    );
    await config().update('codeLens', undefined, vscode.ConfigurationTarget.Workspace);
  });

  const actions = async (line: number, kind?: vscode.CodeActionKind) =>
    vscode.commands.executeCommand<vscode.CodeAction[]>(
      'vscode.executeCodeActionProvider',
      doc.uri,
      new vscode.Range(line, 8, line, 8),
      kind?.value,
      5,
    );

  it('an ARG without a value: "Set build argument" (quick fix and hover link) resolves the FROM', async () => {
    const uri = vscode.Uri.joinPath(folder, 'args.Dockerfile');
    await vscode.workspace.fs.writeFile(
      uri,
      new TextEncoder().encode('ARG TAG\nFROM 127.0.0.1:9/fixture/app:${TAG}\nFROM ${NEVER_DECLARED}\n'),
    );
    const args = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(args);
    try {
      const warning = await until('the unresolvable warning', () =>
        vscode.languages.getDiagnostics(uri).find((d) => d.range.start.line === 1 && d.source === 'stowage'),
      );
      assert.match(warning.message, /ARG TAG has no value/);
      const fixes = await quickFixes(uri, warning.range);
      const fix = fixes.find((a) => a.title === 'Set build argument TAG…');
      assert.ok(fix?.command, `offered: ${fixes.map((a) => a.title)}`);
      assert.deepEqual(fix.command.arguments, ['TAG']);
      const undeclared = await quickFixes(uri, new vscode.Range(2, 6, 2, 6));
      assert.ok(!undeclared.some((a) => /build argument/.test(a.title)), 'an undeclared ARG gets no fix');
      const hovered = hoverText(
        await vscode.commands.executeCommand<vscode.Hover[]>(
          'vscode.executeHoverProvider',
          uri,
          at(1, 'fixture', args),
        ),
      );
      assert.match(hovered, /\(command:stowage\.setBuildArg\?/);
      // The command with the value given (the quick fix asks for it in an input box).
      assert.equal(await vscode.commands.executeCommand('stowage.setBuildArg', 'TAG', '1.0'), true);
      assert.deepEqual(config().inspect('buildArgs')?.workspaceValue, { TAG: '1.0' });
      await until('the warning gone', () =>
        vscode.languages.getDiagnostics(uri).some((d) => d.range.start.line === 1) ? undefined : true,
      );
      const text = await until('a hover on the resolved FROM', async () => {
        const h = hoverText(
          await vscode.commands.executeCommand<vscode.Hover[]>(
            'vscode.executeHoverProvider',
            uri,
            at(1, 'fixture', args),
          ),
        );
        return /Cached/.test(h) ? h : undefined;
      });
      assert.match(text, /127\.0\.0\.1:9\/fixture\/app:1\.0/);
    } finally {
      await config().update('buildArgs', undefined, vscode.ConfigurationTarget.Workspace);
      await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    }
  });

  it('offers no pin for ARG-built or unresolvable references', async () => {
    const titles = (line: number) =>
      actions(line).then((a) => a.filter((x) => /digest/i.test(x.title)).map((x) => x.title));
    assert.deepEqual(await titles(5), []);
    assert.deepEqual(await titles(4), []);
  });

  it('"Pull the newer image" is offered on an ARG-built FROM whose tag moved (pinning is not)', async () => {
    const api = vscode.extensions.getExtension('stowage.stowage')!.exports as StowageApi;
    const log = vscode.window.createOutputChannel('Stowage code actions suite', { log: true });
    // The newer-image check's verdict, as the background HEAD would have left it.
    const moved = {
      newer: async (use: ImageUse) =>
        use.reference?.tag
          ? {
              tag: use.ref!,
              current: `sha256:${'b'.repeat(64)}`,
              known: `sha256:${'a'.repeat(64)}`,
              pinned: false,
            }
          : undefined,
      unknownTag: async () => undefined,
    } as unknown as Freshness;
    try {
      const provider = new PinCodeActions(new DocumentUses(api.index), api.stowage, moved, log);
      const context = { diagnostics: [], only: undefined, triggerKind: vscode.CodeActionTriggerKind.Invoke };
      const onArgLine = await provider.provideCodeActions(doc, new vscode.Range(5, 7, 5, 7), context);
      assert.deepEqual(
        onArgLine.map((a) => a.title),
        ['Pull the newer image'],
      );
      const [args] = (onArgLine[0]!.command?.arguments ?? []) as { reference: string; always?: boolean }[];
      assert.equal(args?.reference, 'docker.io/library/alpine:3.20', 'the reference the ARG expands to');
      assert.equal(args?.always, true, 'asks the registry, not the complete cached copy');
      const literal = await provider.provideCodeActions(doc, new vscode.Range(1, 8, 1, 8), context);
      assert.ok(literal.some((a) => a.title === 'Pull the newer image'));
      assert.ok(literal.some((a) => a.title === 'Pin to digest'));
    } finally {
      log.dispose();
    }
  });

  it('"Pin to digest" on a cached reference pins it to the recorded digest; "Remove digest pin" undoes it', async () => {
    const quick = await actions(1);
    const pin = quick.find((a) => a.title === 'Pin to digest');
    assert.ok(pin?.edit, `Pin to digest offered: ${quick.map((a) => a.title)}`);
    assert.equal(pin.kind?.value, vscode.CodeActionKind.QuickFix.value);
    const rewrite = await actions(1, vscode.CodeActionKind.RefactorRewrite);
    assert.ok(rewrite.some((a) => a.title === 'Pin to digest' && a.kind?.value === 'refactor.rewrite'));

    assert.ok(await vscode.workspace.applyEdit(pin.edit));
    assert.equal(doc.lineAt(1).text, `FROM ${CACHED}@${seeded.app.digest} AS app`);

    const pinned = await actions(1);
    assert.ok(!pinned.some((a) => a.title === 'Pin to digest'));
    const remove = pinned.find((a) => a.title === 'Remove digest pin');
    assert.ok(remove?.edit, `Remove digest pin offered: ${pinned.map((a) => a.title)}`);
    // Still a cache hit when pinned: the digest names the same image.
    assert.match(await hover(at(1, 'fixture/app', doc)), /Cached/);
    assert.ok(await vscode.workspace.applyEdit(remove.edit));
    assert.equal(doc.lineAt(1).text, `FROM ${CACHED} AS app`);
  });

  it('"Pin to digest" on an uncached reference needs the registry: offered online (resolved lazily), not offline', async () => {
    // Unresolved (itemResolveCount 0): resolving would send the HEAD.
    const online = await vscode.commands.executeCommand<vscode.CodeAction[]>(
      'vscode.executeCodeActionProvider',
      doc.uri,
      new vscode.Range(3, 8, 3, 8),
      undefined,
      0,
    );
    const lazy = online.find((a) => a.title === 'Pin to digest');
    assert.ok(lazy, `offered online: ${online.map((a) => a.title)}`);
    assert.equal(lazy.edit, undefined, 'no edit before it is picked');
    await config().update('offline', true, vscode.ConfigurationTarget.Workspace);
    try {
      // Disabled actions (with their reason) show in the menu; the API command leaves them out.
      const offline = await actions(3);
      assert.deepEqual(
        offline.filter((a) => a.title === 'Pin to digest'),
        [],
      );
      const cached = await actions(1);
      assert.ok(
        cached.some((a) => a.title === 'Pin to digest' && a.edit),
        'a cached image is pinned offline',
      );
    } finally {
      await config().update('offline', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  it('pinToDigest (for stowage.pinDigest) pins the reference at a position, and explains refusals', async () => {
    const api = vscode.extensions.getExtension('stowage.stowage')!.exports as StowageApi;
    const log = vscode.window.createOutputChannel('Stowage editor suite', { log: true });
    const features = featuresOf(api, log);
    try {
      const text = await pinToDigest(features, doc, new vscode.Position(6, 3));
      assert.equal(text, `${CACHED}@${seeded.app.digest}`);
      assert.equal(doc.lineAt(6).text, `COPY --from=${CACHED}@${seeded.app.digest} /etc/x /x`);
      await assert.rejects(pinToDigest(features, doc, new vscode.Position(5, 6)), /built from ARGs/);
      await assert.rejects(pinToDigest(features, doc, new vscode.Position(8, 0)), /has no image reference/);
    } finally {
      log.dispose();
    }
  });
});
