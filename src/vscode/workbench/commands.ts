import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import { isStowageError, StowageError } from '../../core/errors';
import { formatBytes } from '../../core/format';
import { formatPlatform, parsePlatform } from '../../core/platform';
import {
  familiarReference,
  formatReference,
  parsePullableReference,
  type Reference,
  registryName,
} from '../../core/reference';
import { isIndexMediaType, type Store, walkImage } from '../../core/store';
import { exportImages, type TransferProgress } from '../../core/transfer/export';
import { importArchive } from '../../core/transfer/import';
import { type PushResult, pushImage } from '../../core/transfer/push';
import { pinToDigest } from '../editor';
import type { FeatureContext, PullImageArgs } from '../feature';
import type { CacheNode, CacheTree } from './cache-tree';
import { dockerfileEditor, fromEdit, toRange, useAtCursor } from './edits';
import { errorText, type FailureContext, failureActions, notificationText } from './failure';
import { INSPECT_SCHEME, InspectDocuments, inspectUri } from './inspect';
import { showWithActions } from './notify';
import { type PullRunner, type PullTarget, UNTRUSTED_TEXT, type Unresolved } from './pulls';
import { type RegistriesTree, type RegistryNode, type RepositoryNode, tagReference } from './registries-tree';
import { signIn, signOut } from './sign-in';
import { TagList } from './tag-list';
import { ARCHIVE_FILTERS, exportSummary, label, partialPushFailure } from './transfer-text';
import type { WorkspaceImagesTree, WorkspaceNode } from './workspace-tree';

export interface WorkbenchParts {
  runner: PullRunner;
  workspaceTree: WorkspaceImagesTree;
  cacheTree: CacheTree;
  registriesTree: RegistriesTree;
}

type Node = WorkspaceNode | CacheNode | RegistryNode;
type TagNode = Extract<RegistryNode, { kind: 'tag' }>;

/** Tags a Browse Tags picker is handed at most (its own filter then works on them). */
const MAX_PICKS = 10_000;

function isNode(x: unknown): x is Node {
  return typeof x === 'object' && x !== null && 'kind' in x;
}

function isPullArgs(x: unknown): x is PullImageArgs {
  return typeof x === 'object' && x !== null && typeof (x as PullImageArgs).reference === 'string';
}

/** The image a command was invoked on: hover/CodeLens args, a tree item, or nothing. */
/** Cached references picked from a quick pick (one, or several); undefined when none or cancelled. */
async function pickCached(store: Store, title: string, many: boolean): Promise<string[] | undefined> {
  const refs = await store.listReferences();
  if (refs.length === 0) {
    void vscode.window.showInformationMessage('The cache is empty.');
    return undefined;
  }
  const items = refs.map((r) => ({ label: label(r.name), description: r.name, name: r.name }));
  const picked = many
    ? await vscode.window.showQuickPick(items, { title, canPickMany: true })
    : await vscode.window
        .showQuickPick(items, { title, placeHolder: 'A cached image' })
        .then((p) => (p ? [p] : []));
  return picked?.length ? picked.map((p) => p.name) : undefined;
}

/** The digest a Cache view row stands for, if it is one. */
function cacheDigest(node: Node): string | undefined {
  if (node.kind === 'image' && 'name' in node) return node.inspection?.digest;
  if (node.kind === 'platform') return node.platform.manifestDigest;
  if (node.kind === 'layer') return node.layer.digest;
  return undefined;
}

function targetOf(arg: unknown): PullTarget | undefined {
  if (typeof arg === 'string') return { reference: arg };
  if (isPullArgs(arg)) {
    const { reference, platform, always, allPlatforms } = arg;
    return { reference, platform, always, allPlatforms };
  }
  if (!isNode(arg)) return undefined;
  if (arg.kind === 'image' && 'use' in arg)
    return arg.use.ref ? { reference: arg.use.ref, platform: arg.use.platform } : undefined;
  if (arg.kind === 'image' && 'name' in arg) return { reference: arg.name };
  if (arg.kind === 'tag') return { reference: formatReference(tagReference(arg)) };
  return undefined;
}

/**
 * The platforms a cached index holds when the cache lacks some of what it lists (a pull for
 * stowage.platforms keeps those alone); undefined when the image is whole or no index.
 */
async function partlyCached(store: Store, name: string): Promise<string[] | undefined> {
  const descriptor = await store.getReference(name);
  if (!descriptor || !isIndexMediaType(descriptor.mediaType)) return undefined;
  const walk = await walkImage(store, descriptor).catch(() => undefined);
  return walk?.missing.length ? walk.platforms : undefined;
}

/** The references of a batch that do not resolve (and so are not pulled). */
function unresolvedOf(uses: readonly { ref: string | null; error?: string }[]): Unresolved[] {
  return uses.filter((u) => !u.ref).map((u) => ({ ref: u.ref, error: u.error }));
}

/** A batch with nothing to pull may still skip references that do not resolve: say so. */
function reportUnresolved(uses: readonly { ref: string | null; error?: string }[]): void {
  const bad = uses.filter((u) => !u.ref);
  if (bad.length === 0) return;
  const first = notificationText(bad[0]?.error ?? 'it cannot be resolved');
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more)` : '';
  showWithActions(
    vscode.window.showWarningMessage,
    `Skipped ${bad.length} image reference${bad.length === 1 ? '' : 's'} that cannot be pulled: ${first}${more}`,
    [{ title: 'Show Workspace Images', command: 'stowage.workspaceImages.focus' }],
  );
}

function showError(e: unknown, context: Omit<FailureContext, 'trusted'> = {}): void {
  const actions = failureActions(e, { ...context, trusted: vscode.workspace.isTrusted });
  showWithActions(vscode.window.showErrorMessage, errorText(e), actions);
}

/** Wraps a command: errors become messages (with fitting actions), not unhandled rejections. */
function safe<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): (...args: A) => Promise<R | undefined> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (e) {
      showError(e);
      return undefined;
    }
  };
}

/** An export's or a push's progress in a notification: blobs, bytes, and the bar's share. */
function reportTransfer(
  progress: vscode.Progress<{ message?: string; increment?: number }>,
): (p: TransferProgress) => void {
  let reported = 0;
  return (p) => {
    const pct = p.bytesTotal ? (p.bytesDone / p.bytesTotal) * 100 : 0;
    progress.report({
      message: `${p.blobsDone}/${p.blobsTotal} blobs · ${formatBytes(p.bytesDone)}`,
      increment: Math.max(0, pct - reported),
    });
    reported = Math.max(reported, pct);
  };
}

/** False (after saying why and how to change it) when the network may not be used now. */
function networkAllowed(f: FeatureContext, what: string): boolean {
  if (!vscode.workspace.isTrusted) {
    void vscode.window
      .showWarningMessage(`${what}: ${UNTRUSTED_TEXT}`, 'Manage Workspace Trust')
      .then((a) => a && vscode.commands.executeCommand('workbench.trust.manage'));
    return false;
  }
  if (f.stowage.settings().offline) {
    void vscode.window
      .showWarningMessage(`${what}: offline mode is on (stowage.offline).`, 'Open Settings')
      .then((a) => a && vscode.commands.executeCommand('workbench.action.openSettings', 'stowage.offline'));
    return false;
  }
  return true;
}

function relativeLine(uri: vscode.Uri, use: ImageUse): string {
  return `${vscode.workspace.asRelativePath(uri)}:${use.line}`;
}

/** A quick pick of the workspace's image references (this Dockerfile's first). */
async function pickWorkspaceReference(f: FeatureContext): Promise<PullTarget | undefined> {
  const entries = await f.index.all();
  const current = dockerfileEditor()?.document.uri.toString();
  entries.sort((a, b) => Number(b.uri.toString() === current) - Number(a.uri.toString() === current));
  const seen = new Set<string>();
  const items: (vscode.QuickPickItem & { target: PullTarget })[] = [];
  for (const e of entries) {
    for (const u of e.uses) {
      if (!u.ref || seen.has(`${u.ref}|${u.platform}`)) continue;
      seen.add(`${u.ref}|${u.platform}`);
      items.push({
        label: label(u.ref),
        description: u.platform,
        detail: relativeLine(e.uri, u),
        target: { reference: u.ref, platform: u.platform },
      });
    }
  }
  if (items.length === 0) {
    void vscode.window.showInformationMessage('No image references found in the workspace’s Dockerfiles.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Pull Image',
    placeHolder: 'Image to pull',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  return picked?.target;
}

export function registerCommands(f: FeatureContext, parts: WorkbenchParts): vscode.Disposable[] {
  const { runner, workspaceTree, cacheTree, registriesTree } = parts;
  const reg = (id: string, fn: (...args: never[]) => unknown) => vscode.commands.registerCommand(id, fn);

  const pullImage = safe(async (arg?: unknown) => {
    // A list (a failed batch's Retry): those images, under one notification.
    if (Array.isArray(arg)) return runner.pull(arg.flatMap((a) => targetOf(a) ?? []));
    let target = targetOf(arg);
    if (!target) {
      // From the editor's context menu (it passes the document's URI; the right-click has moved
      // the cursor to the clicked line by now) or the palette.
      const editor = dockerfileEditor();
      const use = editor ? useAtCursor(f, editor) : undefined;
      if (use && !use.ref) {
        throw new StowageError('INVALID_REFERENCE', use.error ?? `Line ${use.line}: not a pullable image.`);
      }
      if (!use && editor && arg instanceof vscode.Uri) {
        // The menu item shows on every line (a per-line context key updates too late for a
        // right-click), so a line without an image is answered here.
        const line = editor.selection.active.line + 1;
        throw new StowageError(
          'USAGE',
          `Line ${line} of ${vscode.workspace.asRelativePath(editor.document.uri)} has no image to pull.`,
          'Right-click a FROM line (or COPY --from=image), or use "Pull All Images in This Dockerfile".',
        );
      }
      target = use?.ref ? { reference: use.ref, platform: use.platform } : await pickWorkspaceReference(f);
    }
    if (!target) return undefined;
    return runner.pull([target]);
  });

  // A tag that moved on: the cache alone would call its copy complete, so the registry is asked.
  const pullNewerImage = safe(async (arg?: unknown) => {
    const target = targetOf(arg);
    if (!target) {
      throw new StowageError(
        'USAGE',
        'Pick an image marked "newer on registry" in Workspace Images or the Cache view.',
        'In a Dockerfile, the quick fix "Pull the newer image" on its FROM line does the same.',
      );
    }
    return runner.pull([{ ...target, always: true }]);
  });

  const dockerfileUses = async (
    arg?: unknown,
  ): Promise<{ uri: vscode.Uri; uses: ImageUse[] } | undefined> => {
    if (isNode(arg) && arg.kind === 'dockerfile') return arg.entry;
    const uri = arg instanceof vscode.Uri ? arg : dockerfileEditor()?.document.uri;
    if (!uri) {
      const entries = await f.index.all();
      const picked = await vscode.window.showQuickPick(
        entries.map((e) => ({ label: vscode.workspace.asRelativePath(e.uri), entry: e })),
        { title: 'Pull All Images in This Dockerfile', placeHolder: 'Dockerfile' },
      );
      return picked?.entry;
    }
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    const doc = open ?? (await vscode.workspace.openTextDocument(uri));
    return f.index.get(doc);
  };

  const targetsOf = (uses: readonly ImageUse[]): PullTarget[] =>
    uses.filter((u) => u.ref).map((u) => ({ reference: u.ref!, platform: u.platform }));

  const useInFrom = safe(async (arg?: unknown) => {
    let reference: string | undefined;
    if (isNode(arg) && arg.kind === 'tag') reference = familiarReference(tagReference(arg));
    else if (isPullArgs(arg)) reference = familiarReference(parsePullableReference(arg.reference));
    else if (typeof arg === 'string') reference = familiarReference(parsePullableReference(arg));
    if (!reference) throw new StowageError('USAGE', 'Pick a tag in the Registries view to use in FROM.');
    const editor = dockerfileEditor();
    if (!editor) {
      throw new StowageError(
        'USAGE',
        `Open a Dockerfile and put the cursor on its FROM line to use ${reference}.`,
      );
    }
    const edit = fromEdit(f, editor.document, editor.selection.active, reference);
    const ok = await editor.edit((b) => b.replace(edit.range, edit.text));
    if (!ok)
      throw new StowageError(
        'USAGE',
        `Could not edit ${vscode.workspace.asRelativePath(editor.document.uri)}.`,
      );
    await vscode.window.showTextDocument(editor.document, editor.viewColumn);
    return reference;
  });

  const pinDigest = safe(async (arg?: unknown) => {
    // The editor feature owns pinning (code actions use it too); this picks where.
    if (isNode(arg) && arg.kind === 'image' && 'use' in arg) {
      const editor = await vscode.window.showTextDocument(arg.uri, { selection: toRange(arg.use.range) });
      return pinToDigest(f, editor.document, toRange(arg.use.range).start);
    }
    const editor = dockerfileEditor();
    if (!editor)
      throw new StowageError('USAGE', 'Put the cursor on an image reference in a Dockerfile to pin it.');
    return pinToDigest(f, editor.document, editor.selection.active);
  });

  /** Inspect Image: what the cache holds for it, as a read-only JSON document (no network). */
  const inspect = safe(async (arg?: unknown) => {
    const store = await f.stowage.getStore();
    const t = targetOf(arg);
    let name: string;
    if (t) name = formatReference(parsePullableReference(t.reference));
    else {
      const picked = await pickCached(store, 'Inspect Image', false);
      if (!picked) return undefined;
      name = picked[0]!;
    }
    if (!(await store.getReference(name))) {
      const choice = await vscode.window.showInformationMessage(
        `${label(name)} is not in the cache.`,
        'Pull Image',
      );
      if (choice === 'Pull Image') await vscode.commands.executeCommand('stowage.pullImage', name);
      return undefined;
    }
    const doc = await vscode.workspace.openTextDocument(inspectUri(name));
    await vscode.window.showTextDocument(doc, { preview: true });
    return doc;
  });

  const removeImage = safe(async (arg?: unknown) => {
    const store = await f.stowage.getStore();
    let names: string[];
    const t = targetOf(arg);
    if (t) {
      names = [formatReference(parsePullableReference(t.reference))];
      // A click on a tree item's trash icon is easy to make by mistake: ask, as the Docker extension does.
      if (isNode(arg)) {
        const ok = await vscode.window.showWarningMessage(
          `Remove ${label(names[0]!)} from the cache? Its blobs are deleted unless another image uses them; it can be pulled again.`,
          { modal: true },
          'Remove',
        );
        if (ok !== 'Remove') return undefined;
      }
    } else {
      const picked = await pickCached(store, 'Remove Image from Cache', true);
      if (!picked) return undefined;
      names = picked;
    }
    let removed = 0;
    for (const n of names) if (await store.removeReference(n)) removed++;
    const gc = await store.gc();
    f.stowage.fireCacheChanged();
    const what = names.length === 1 ? label(names[0]!) : `${removed} images`;
    if (removed === 0) void vscode.window.showInformationMessage(`${what} was not in the cache.`);
    else
      void vscode.window.showInformationMessage(
        `Removed ${what} from the cache (freed ${formatBytes(gc.freedBytes)}).`,
      );
    f.log.info(`Removed ${names.join(', ')}; gc freed ${gc.freedBytes} bytes in ${gc.removedBlobs} blobs`);
    return removed;
  });

  /** Copy Digest on a Cache view row: the image's top digest, a platform's manifest, a layer's blob. */
  const copyDigest = safe(async (arg?: unknown) => {
    const digest = isNode(arg) ? cacheDigest(arg) : undefined;
    if (!digest)
      throw new StowageError(
        'USAGE',
        'Pick an image, platform or layer in the Cache view to copy its digest.',
      );
    await vscode.env.clipboard.writeText(digest);
    vscode.window.setStatusBarMessage(`Copied ${digest}`, 3000);
    return digest;
  });

  const cleanCache = safe(async () => {
    const store = await f.stowage.getStore();
    const gc = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Cleaning up the image cache…' },
      () => store.gc(),
    );
    f.stowage.fireCacheChanged();
    const partial = gc.removedIngests
      ? `, ${gc.removedIngests} stale partial download${gc.removedIngests === 1 ? '' : 's'}`
      : '';
    void vscode.window.showInformationMessage(
      `Cache cleaned up: freed ${formatBytes(gc.freedBytes)} (${gc.removedBlobs} unused blob${gc.removedBlobs === 1 ? '' : 's'}${partial}).`,
    );
    return gc;
  });

  const revealCache = safe(async () => {
    const dir = f.stowage.settings().cacheDirectory;
    await f.stowage.getStore();
    const uri = vscode.Uri.file(dir);
    if (vscode.env.remoteName === undefined && vscode.env.uiKind === vscode.UIKind.Desktop) {
      await vscode.commands.executeCommand('revealFileInOS', uri);
    } else {
      const a = await vscode.window.showInformationMessage(
        `The image cache is in ${dir}.`,
        'Copy Path',
        'Open in New Window',
      );
      if (a === 'Copy Path') await vscode.env.clipboard.writeText(dir);
      if (a === 'Open in New Window')
        await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
    }
    return dir;
  });

  const browseTags = safe(async (arg?: unknown) => {
    let ref: Pick<Reference, 'registry' | 'repository'> | undefined;
    if (isNode(arg) && arg.kind === 'repository') ref = arg;
    else {
      const t = targetOf(arg);
      const editor = dockerfileEditor();
      const use = !t && editor ? useAtCursor(f, editor) : undefined;
      const text = t?.reference ?? use?.ref;
      if (text) ref = parsePullableReference(text);
      else {
        const input = await vscode.window.showInputBox({
          title: 'Browse Tags',
          prompt: 'Repository, e.g. alpine or ghcr.io/owner/name',
          validateInput: (v) => {
            try {
              parsePullableReference(v);
              return undefined;
            } catch (e) {
              return errorText(e);
            }
          },
        });
        if (!input) return undefined;
        ref = parsePullableReference(input);
      }
    }
    const repo = familiarReference({ ...ref, tag: undefined } as Reference);
    if (!networkAllowed(f, `Browse tags of ${repo}`)) return undefined;
    await f.stowage.prepareNetwork();
    const qp = vscode.window.createQuickPick<vscode.QuickPickItem>();
    qp.title = `Tags of ${repo}`;
    qp.placeholder = 'Type to filter; pick a tag to pull it or use it in FROM';
    qp.busy = true;
    qp.show();
    const controller = new AbortController();
    qp.onDidHide(() => controller.abort());
    // Up to MAX_PICKS tags go to the picker, which filters them itself. A registry that ignores
    // `n` sends every tag at once (200,000 is seen): then the typed text picks which to show.
    const tags = new TagList();
    const show = () => {
      const whole = tags.size <= MAX_PICKS;
      const picks = tags.matching(whole ? '' : qp.value, MAX_PICKS);
      qp.items = picks.map((t) => ({ label: t }));
      qp.title = whole
        ? `Tags of ${repo}`
        : `Tags of ${repo} (${picks.length.toLocaleString('en-US')} of ${tags.size.toLocaleString('en-US')}: type to find others)`;
    };
    qp.onDidChangeValue(() => {
      if (tags.size > MAX_PICKS) show();
    });
    // Pages arrive while the picker is open; no more are asked for after MAX_PICKS tags.
    void (async () => {
      try {
        for await (const page of f.stowage
          .getClient()
          .tags(ref, { pageSize: 100, signal: controller.signal })) {
          tags.add(page);
          show();
          if (tags.size >= MAX_PICKS) break;
        }
      } catch (e) {
        if (!controller.signal.aborted) {
          qp.hide();
          showError(e, {
            registry: ref.registry,
            retry: { command: 'stowage.browseTags', args: [repo] },
          });
        }
      } finally {
        qp.busy = false;
      }
    })();
    const tag = await new Promise<string | undefined>((resolve) => {
      qp.onDidAccept(() => {
        resolve(qp.selectedItems[0]?.label);
        qp.hide();
      });
      qp.onDidHide(() => resolve(undefined));
    });
    qp.dispose();
    if (!tag) return undefined;
    const node: TagNode = { kind: 'tag', registry: ref.registry, repository: ref.repository, tag };
    const actions = dockerfileEditor() ? ['Pull', 'Use in FROM'] : ['Pull'];
    const action = await vscode.window.showQuickPick(actions, {
      title: familiarReference(tagReference(node)),
    });
    if (action === 'Pull') return vscode.commands.executeCommand('stowage.pullImage', node);
    if (action === 'Use in FROM') return vscode.commands.executeCommand('stowage.useInFrom', node);
    return undefined;
  });

  const addRegistry = safe(async () => {
    const input = await vscode.window.showInputBox({
      title: 'Add Registry',
      prompt: 'Registry host, e.g. ghcr.io or registry.example.com:5000',
      validateInput: (v) =>
        registryName(v) ? undefined : 'Enter a registry host name, optionally with :port',
    });
    if (!input) return undefined;
    const registry = registryName(input)!;
    const config = vscode.workspace.getConfiguration('stowage');
    const list = config.get<string[]>('registries', []);
    if (!list.includes(registry))
      await config.update('registries', [...list, registry], vscode.ConfigurationTarget.Global);
    registriesTree.refresh();
    return registry;
  });

  const addRepository = safe(async (arg?: unknown) => {
    const registry =
      isNode(arg) && arg.kind === 'registry' ? arg.registry : typeof arg === 'string' ? arg : undefined;
    const input = await vscode.window.showInputBox({
      title: 'Add Repository',
      prompt: 'Repository as registry/name, e.g. ghcr.io/owner/app',
      value: registry ? `${registry}/` : '',
      valueSelection: registry ? [registry.length + 1, registry.length + 1] : undefined,
      validateInput: (v) => {
        try {
          const r = parsePullableReference(v);
          return r.tag && v.includes(':') && v.lastIndexOf(':') > v.lastIndexOf('/')
            ? 'Leave out the tag'
            : undefined;
        } catch (e) {
          return errorText(e);
        }
      },
    });
    if (!input) return undefined;
    const r = parsePullableReference(input);
    const name = `${r.registry}/${r.repository}`;
    const config = vscode.workspace.getConfiguration('stowage');
    const list = config.get<string[]>('repositories', []);
    if (!list.includes(name))
      await config.update('repositories', [...list, name], vscode.ConfigurationTarget.Global);
    registriesTree.refresh();
    return name;
  });

  const filterTags = safe(async (arg?: unknown) => {
    if (!isNode(arg) || arg.kind !== 'repository')
      throw new StowageError('USAGE', 'Filter tags from a repository in the Registries view.');
    const node = arg as RepositoryNode;
    const filter = await vscode.window.showInputBox({
      title: `Filter Tags of ${node.repository}`,
      prompt: 'Show tags containing this text (empty: all)',
      value: node.filter,
    });
    if (filter === undefined) return undefined;
    await registriesTree.setFilter(node, filter);
    return filter;
  });

  // (image?, file?): with both (a script, a test, another extension) it asks nothing.
  const exportCommand = safe(async (arg?: unknown, file?: unknown) => {
    const store = await f.stowage.getStore();
    const refs = await store.listReferences();
    if (refs.length === 0)
      throw new StowageError('NOT_CACHED', 'The cache is empty: pull images before exporting them.');
    const preset = targetOf(arg)?.reference;
    const given = preset && file instanceof vscode.Uri ? refs.find((r) => r.name === preset) : undefined;
    const picked = given
      ? [{ name: given.name }]
      : await vscode.window.showQuickPick(
          refs.map((r) => ({
            label: label(r.name),
            description: r.name,
            name: r.name,
            picked: r.name === preset,
          })),
          {
            title: 'Export Images to Archive',
            canPickMany: true,
            placeHolder: 'Images to put in the archive',
          },
        );
    if (!picked?.length) return undefined;
    const target = given
      ? (file as vscode.Uri)
      : await vscode.window.showSaveDialog({
          title: 'Export Images to Archive',
          filters: { 'OCI archive': ['tar'] },
          defaultUri: vscode.Uri.file(
            `${vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? f.stowage.settings().cacheDirectory}/images.tar`,
          ),
        });
    if (!target) return undefined;
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Exporting ${picked.length} image${picked.length === 1 ? '' : 's'}`,
        cancellable: true,
      },
      (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        return exportImages(
          store,
          picked.map((p) => p.name),
          target.fsPath,
          { signal: controller.signal, onProgress: reportTransfer(progress) },
        );
      },
    );
    const summary = exportSummary(result, vscode.workspace.asRelativePath(target));
    showWithActions(vscode.window.showInformationMessage, summary.text, summary.actions);
    return result;
  });

  // (image?, destination?): from the Cache view or the palette; with both it asks nothing.
  const pushCommand = safe(async (arg?: unknown, destination?: unknown) => {
    if (!networkAllowed(f, 'Push')) return undefined;
    const store = await f.stowage.getStore();
    const refs = await store.listReferences();
    if (refs.length === 0)
      throw new StowageError('NOT_CACHED', 'The cache is empty: pull an image before pushing it.');
    const given = targetOf(arg);
    const preset = given?.reference;
    const source = refs.some((r) => r.name === preset)
      ? preset
      : (
          await vscode.window.showQuickPick(
            refs.map((r) => ({ label: label(r.name), description: r.name, name: r.name })),
            { title: 'Push Image to a Registry', placeHolder: 'The cached image to push' },
          )
        )?.name;
    if (!source) return undefined;
    const to =
      typeof destination === 'string'
        ? destination
        : await vscode.window.showInputBox({
            title: `Push ${label(source)}`,
            prompt:
              'Where to, e.g. registry.lan/team/app:1.0 (credentials: Stowage: Sign In, or docker login)',
            validateInput: (v) => {
              try {
                parsePullableReference(v);
                return undefined;
              } catch (e) {
                return (e as Error).message;
              }
            },
          });
    if (!to) return undefined;
    // A partial push's buttons: "Pull All Platforms and Push" (the rest of the image first) and
    // "Push linux/amd64 Only" (one platform's manifest, as the CLI's --platform).
    const wanted = source === preset ? given : undefined;
    if (wanted?.allPlatforms) {
      const [pulled] = await runner.pull([{ reference: source, allPlatforms: true }]);
      if (!pulled?.ok) return undefined; // the runner said why
    }
    const platform = wanted?.platform ? parsePlatform(wanted.platform) : undefined;
    await f.stowage.prepareNetwork();
    const client = f.stowage.getClient();
    const what = `${label(source)}${platform ? ` (${formatPlatform(platform)})` : ''}`;
    let result: PushResult;
    try {
      result = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `Pushing ${what} to ${to}`,
          cancellable: true,
        },
        (progress, token) => {
          const controller = new AbortController();
          token.onCancellationRequested(() => controller.abort());
          return pushImage(store, client, source, to, {
            platform,
            signal: controller.signal,
            onProgress: reportTransfer(progress),
          });
        },
      );
    } catch (e) {
      // Part of an index missing: the core's hint names CLI flags; offer what the editor does.
      const cached = isStowageError(e, 'NOT_CACHED') && !platform && (await partlyCached(store, source));
      if (!cached) throw e;
      f.log.error(`Push of ${source} to ${to} failed: ${errorText(e)}`);
      const failure = partialPushFailure(e as StowageError, { source, destination: to, cached });
      showWithActions(vscode.window.showErrorMessage, failure.text, failure.actions);
      return undefined;
    }
    const there = result.existing + result.mounted;
    void vscode.window.showInformationMessage(
      `Pushed ${what} to ${result.destination}: ${result.uploaded} blob${result.uploaded === 1 ? '' : 's'} uploaded (${formatBytes(result.bytesUploaded)})${there ? `, ${there} already there` : ''}.`,
    );
    return result;
  });

  // (file?): from the Explorer's context menu on a .tar, .tar.gz or .tgz, or a dialog.
  const importCommand = safe(async (arg?: unknown) => {
    const picked =
      arg instanceof vscode.Uri
        ? [arg]
        : await vscode.window.showOpenDialog({
            title: 'Import Images from Archive',
            canSelectMany: false,
            filters: ARCHIVE_FILTERS,
          });
    const file = picked?.[0];
    if (!file) return undefined;
    const store = await f.stowage.getStore();
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Importing ${vscode.workspace.asRelativePath(file)}`,
        cancellable: true,
      },
      (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        return importArchive(store, file.fsPath, {
          signal: controller.signal,
          onProgress: (p) =>
            progress.report({ message: `${p.blobsDone} blobs · ${formatBytes(p.bytesDone)}` }),
        });
      },
    );
    f.stowage.fireCacheChanged();
    const names = result.images.map((i) => label(i.name)).join(', ');
    void vscode.window.showInformationMessage(
      `Imported ${result.images.length} image${result.images.length === 1 ? '' : 's'}${names ? ` (${names})` : ''}; ${formatBytes(result.bytesAdded)} added to the cache.`,
    );
    return result;
  });

  const inspectDocuments = new InspectDocuments(f);
  return [
    inspectDocuments,
    vscode.workspace.registerTextDocumentContentProvider(INSPECT_SCHEME, inspectDocuments),
    reg('stowage.pullImage', pullImage),
    reg('stowage.pullNewerImage', pullNewerImage),
    reg(
      'stowage.pullDockerfile',
      safe(async (arg?: unknown) => {
        const entry = await dockerfileUses(arg);
        if (!entry) return undefined;
        const targets = targetsOf(entry.uses);
        if (targets.length === 0) {
          reportUnresolved(entry.uses);
          void vscode.window.showInformationMessage(
            notificationText(`${vscode.workspace.asRelativePath(entry.uri)} pulls no images.`),
          );
          return [];
        }
        // The references that cannot be resolved are counted in the closing message.
        return runner.pull(targets, unresolvedOf(entry.uses));
      }),
    ),
    reg(
      'stowage.pullWorkspace',
      safe(async () => {
        const entries = await f.index.all();
        const targets = entries.flatMap((e) => targetsOf(e.uses));
        const uses = entries.flatMap((e) => e.uses);
        if (targets.length === 0) {
          reportUnresolved(uses);
          void vscode.window.showInformationMessage('The workspace’s Dockerfiles pull no images.');
          return [];
        }
        return runner.pull(targets, unresolvedOf(uses));
      }),
    ),
    reg('stowage.browseTags', browseTags),
    reg('stowage.pinDigest', pinDigest),
    reg('stowage.inspectImage', inspect),
    reg('stowage.removeImage', removeImage),
    reg('stowage.copyDigest', copyDigest),
    reg('stowage.cleanCache', cleanCache),
    reg('stowage.revealCache', revealCache),
    reg(
      'stowage.signIn',
      safe(async (arg?: unknown) => {
        const preset =
          isNode(arg) && arg.kind === 'registry' ? arg.registry : typeof arg === 'string' ? arg : undefined;
        const ok = await signIn(f, preset);
        if (ok) registriesTree.update();
        return ok;
      }),
    ),
    reg(
      'stowage.signOut',
      safe(async (arg?: unknown) => {
        const preset =
          isNode(arg) && arg.kind === 'registry' ? arg.registry : typeof arg === 'string' ? arg : undefined;
        const ok = await signOut(f, preset);
        if (ok) registriesTree.update();
        return ok;
      }),
    ),
    reg(
      'stowage.refresh',
      safe(async () => {
        registriesTree.refresh();
        cacheTree.refresh();
        await f.index.rescan();
        workspaceTree.refresh();
      }),
    ),
    reg('stowage.addRegistry', addRegistry),
    reg('stowage.addRepository', addRepository),
    reg('stowage.filterTags', filterTags),
    reg(
      'stowage.loadMoreTags',
      safe(async (arg?: unknown) => {
        if (isNode(arg) && arg.kind === 'repository') await registriesTree.loadMore(arg);
      }),
    ),
    reg('stowage.useInFrom', useInFrom),
    reg(
      'stowage.openReference',
      safe(async (uri: vscode.Uri, range?: ImageUse['range']) => {
        const selection = range ? toRange(range) : undefined;
        await vscode.window.showTextDocument(uri, { selection, preserveFocus: false });
      }),
    ),
    reg('stowage.exportImages', exportCommand),
    reg('stowage.pushImage', pushCommand),
    reg('stowage.importArchive', importCommand),
  ];
}
