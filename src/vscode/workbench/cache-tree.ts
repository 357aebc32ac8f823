import * as vscode from 'vscode';
import { formatBytes } from '../../core/format';
import { formatPlatform } from '../../core/platform';
import { familiarReference, parseReference } from '../../core/reference';
import { type ImageInspection, inspectImage, type PlatformInspection } from '../../core/store';
import { type Newer, newerText } from '../editor/verdicts';
import type { FeatureContext } from '../feature';

export type CacheNode =
  | {
      kind: 'image';
      name: string;
      inspection?: ImageInspection;
      error?: string;
      /** The last newer-image check found this tag pointing at another image on the registry. */
      newer?: Newer;
    }
  | { kind: 'platform'; name: string; platform: PlatformInspection }
  | { kind: 'layer'; layer: PlatformInspection['layers'][number] };

/** Cached references → their platforms → layers with sizes; the view's description is the disk usage. */
export class CacheTree implements vscode.TreeDataProvider<CacheNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<CacheNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  view?: vscode.TreeView<CacheNode>;

  constructor(private readonly f: FeatureContext) {
    this.disposables.push(
      f.stowage.onDidChangeCache(() => this.refresh()),
      f.freshness.onDidChange(() => this.refresh()),
    );
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(node?: CacheNode): Promise<CacheNode[]> {
    if (!node) return this.roots();
    if (node.kind === 'image') {
      return (node.inspection?.platforms ?? [])
        .filter((p) => p.cached)
        .map((platform) => ({ kind: 'platform', name: node.name, platform }));
    }
    if (node.kind === 'platform') return node.platform.layers.map((layer) => ({ kind: 'layer', layer }));
    return [];
  }

  private async roots(): Promise<CacheNode[]> {
    let store: Awaited<ReturnType<FeatureContext['stowage']['getStore']>>;
    try {
      store = await this.f.stowage.getStore();
    } catch (e) {
      if (this.view) this.view.description = 'cache unavailable';
      this.f.log.error(`Cannot open the cache: ${(e as Error).message}`);
      return [];
    }
    void store.diskUsage().then(
      (u) => {
        if (!this.view) return;
        const partial = u.ingestBytes ? ` · ${formatBytes(u.ingestBytes)} partial` : '';
        this.view.description = `${formatBytes(u.bytes)} on disk${partial}`;
      },
      () => undefined,
    );
    const refs = (await store.listReferences()).sort((a, b) => a.name.localeCompare(b.name));
    return Promise.all(
      refs.map(async ({ name }): Promise<CacheNode> => {
        const newer = await this.newer(name);
        try {
          return { kind: 'image', name, inspection: await inspectImage(store, name), ...newer };
        } catch (e) {
          return { kind: 'image', name, error: (e as Error).message, ...newer };
        }
      }),
    );
  }

  /** What the newer-image check knows of a cached name's tag (from disk; no network). */
  private async newer(name: string): Promise<{ newer?: Newer }> {
    try {
      const newer = await this.f.freshness.newer({ reference: parseReference(name) });
      return newer ? { newer } : {};
    } catch {
      // A name recorded verbatim (an imported archive's) that does not parse: nothing to check.
      return {};
    }
  }

  getTreeItem(node: CacheNode): vscode.TreeItem {
    if (node.kind === 'image') {
      const item = new vscode.TreeItem(shortName(node.name), vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `cached:${node.name}`;
      // cachedImage.newer adds "Pull the Newer Image" to the context menu.
      item.contextValue = node.newer ? 'cachedImage.newer' : 'cachedImage';
      const i = node.inspection;
      const complete = i?.platforms.filter((p) => p.complete) ?? [];
      const bytes = complete.reduce((n, p) => n + p.compressedSize, 0);
      item.description = node.error
        ? `unreadable: ${node.error}`
        : complete.length
          ? `${formatBytes(bytes)} · ${complete.map((p) => (p.platform ? formatPlatform(p.platform) : '?')).join(', ')}`
          : 'incomplete';
      if (node.newer) item.description += ' · newer on registry';
      item.iconPath = new vscode.ThemeIcon(complete.length ? 'package' : 'warning');
      item.tooltip = [node.name, i?.digest, node.newer && newerText(node.newer)].filter(Boolean).join('\n');
      return item;
    }
    if (node.kind === 'platform') {
      const p = node.platform;
      const label = p.platform ? formatPlatform(p.platform) : 'image';
      const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = `cached:${node.name}:${p.manifestDigest}`;
      item.contextValue = 'cachedPlatform';
      item.description = `${formatBytes(p.compressedSize)} · ${p.layers.length} layer${p.layers.length === 1 ? '' : 's'}${p.complete ? '' : ' · incomplete'}`;
      item.iconPath = new vscode.ThemeIcon('vm');
      item.tooltip = `${p.manifestDigest}${p.config?.created ? `\ncreated ${p.config.created}` : ''}`;
      return item;
    }
    const l = node.layer;
    const item = new vscode.TreeItem(
      l.digest.replace(/^(sha\d+:)(.{12}).*$/, '$1$2'),
      vscode.TreeItemCollapsibleState.None,
    );
    item.description = `${formatBytes(l.size)}${l.present ? '' : ' · missing'}`;
    item.iconPath = new vscode.ThemeIcon(l.present ? 'layers' : 'warning');
    item.tooltip = `${l.digest}\n${l.mediaType}`;
    item.contextValue = 'layer';
    return item;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** alpine:3.20 for Docker Hub images, the full name elsewhere. */
function shortName(name: string): string {
  try {
    return familiarReference(parseReference(name));
  } catch {
    return name;
  }
}
