import * as vscode from 'vscode';
import { isStowageError } from '../../core/errors';
import { DOCKER_HUB, familiarReference, parseReference, type Reference } from '../../core/reference';
import { availablePlatforms } from '../../core/store';
import { tagName } from '../cache-facts';
import type { FeatureContext } from '../feature';
import { errorText } from './failure';
import { Pager } from './pager';
import { naturalOrder } from './tag-list';

export const TAG_PAGE = 50;
const CATALOG_PAGE = 100;

export interface TagNode {
  kind: 'tag';
  registry: string;
  repository: string;
  tag: string;
  /** In the cache under this name, as last pulled; and the newer-image check saw it move since. */
  cached?: boolean;
  newer?: boolean;
}

export interface RepositoryNode {
  kind: 'repository';
  registry: string;
  repository: string;
  pager: Pager<string>;
  filter: string;
  error?: unknown;
}

export type RegistryNode =
  | { kind: 'registry'; registry: string }
  | RepositoryNode
  | TagNode
  | { kind: 'more'; repo: RepositoryNode }
  | {
      kind: 'info';
      id: string;
      label: string;
      description?: string;
      icon?: string;
      command?: vscode.Command;
    };

/** The reference a tag node names. */
export function tagReference(node: { registry: string; repository: string; tag: string }): Reference {
  return { registry: node.registry, repository: node.repository, tag: node.tag };
}

/**
 * Docker Hub, the registries the workspace uses and those the user added → repositories (the
 * catalog where the registry allows it, else referenced or added ones) → tags, one page at a time.
 * Network only on expansion, in trusted workspaces, never on its own.
 */
export class RegistriesTree implements vscode.TreeDataProvider<RegistryNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RegistryNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private readonly repos = new Map<string, RepositoryNode>();
  private readonly catalogs = new Map<string, Pager<string>>();

  constructor(private readonly f: FeatureContext) {
    this.disposables.push(
      f.index.onDidChange(() => this.changed.fire(undefined)),
      // A tag pulled or removed, or seen to move: its cached / newer marks.
      f.stowage.onDidChangeCache(() => this.changed.fire(undefined)),
      f.freshness.onDidChange(() => this.changed.fire(undefined)),
      // Rows that said "Trust this workspace…" load their tags and catalogs now.
      f.stowage.onDidGrantTrust(() => this.refresh()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('stowage')) this.refresh();
      }),
    );
  }

  /** Forgets loaded pages and draws again. */
  refresh(): void {
    this.repos.clear();
    this.catalogs.clear();
    this.changed.fire(undefined);
  }

  update(node?: RegistryNode): void {
    this.changed.fire(node);
  }

  async registries(): Promise<string[]> {
    const s = this.f.stowage.settings();
    const list = [DOCKER_HUB];
    for (const entry of await this.f.index.all()) {
      for (const u of entry.uses) if (u.reference) list.push(u.reference.registry);
    }
    list.push(...s.registries, ...this.f.stowage.credentials.registries());
    for (const r of s.repositories) {
      const ref = tryParse(r);
      if (ref) list.push(ref.registry);
    }
    return [...new Set(list)];
  }

  /** Repositories the workspace references or the user added, for a registry. */
  async knownRepositories(registry: string): Promise<string[]> {
    const out: string[] = [];
    for (const entry of await this.f.index.all()) {
      for (const u of entry.uses) if (u.reference?.registry === registry) out.push(u.reference.repository);
    }
    for (const r of this.f.stowage.settings().repositories) {
      const ref = tryParse(r);
      if (ref?.registry === registry) out.push(ref.repository);
    }
    return [...new Set(out)].sort();
  }

  repositoryNode(registry: string, repository: string): RepositoryNode {
    const key = `${registry}/${repository}`;
    let node = this.repos.get(key);
    if (!node) {
      const client = () => this.f.stowage.getClient();
      node = {
        kind: 'repository',
        registry,
        repository,
        filter: '',
        pager: new Pager(
          () => client().tags({ registry, repository }, { pageSize: TAG_PAGE }),
          TAG_PAGE,
          naturalOrder,
        ),
      };
      this.repos.set(key, node);
    }
    return node;
  }

  async getChildren(node?: RegistryNode): Promise<RegistryNode[]> {
    if (!node) return (await this.registries()).map((registry) => ({ kind: 'registry', registry }));
    switch (node.kind) {
      case 'registry':
        return this.repositories(node.registry);
      case 'repository':
        return this.tags(node);
      case 'tag':
        return this.details(node);
      default:
        return [];
    }
  }

  private blockedNode(id: string): RegistryNode | undefined {
    if (!vscode.workspace.isTrusted) {
      return {
        kind: 'info',
        id: `${id}:untrusted`,
        label: 'Trust this workspace to contact registries',
        icon: 'shield',
        command: { command: 'workbench.trust.manage', title: 'Manage Workspace Trust' },
      };
    }
    if (this.f.stowage.settings().offline) {
      return {
        kind: 'info',
        id: `${id}:offline`,
        label: 'Offline mode is on (stowage.offline)',
        icon: 'debug-disconnect',
      };
    }
    return undefined;
  }

  private async repositories(registry: string): Promise<RegistryNode[]> {
    const known = await this.knownRepositories(registry);
    const names = new Set(known);
    const extra: RegistryNode[] = [];
    // Docker Hub has no catalog; elsewhere list it when allowed, falling back to the known ones.
    if (registry !== DOCKER_HUB && this.f.stowage.mayUseNetwork) {
      await this.f.stowage.prepareNetwork();
      let pager = this.catalogs.get(registry);
      if (!pager) {
        const client = this.f.stowage.getClient();
        pager = new Pager(() => client.catalog(registry, { pageSize: CATALOG_PAGE }), CATALOG_PAGE);
        this.catalogs.set(registry, pager);
        try {
          await pager.more();
        } catch (e) {
          this.f.log.debug(`No catalog from ${registry}: ${errorText(e)}`);
        }
      }
      for (const r of pager.items()) names.add(r);
    }
    const repos: RegistryNode[] = [...names].sort().map((r) => this.repositoryNode(registry, r));
    if (repos.length === 0) {
      extra.push({
        kind: 'info',
        id: `${registry}:none`,
        label: 'Add a repository…',
        icon: 'add',
        command: { command: 'stowage.addRepository', title: 'Add Repository', arguments: [registry] },
      });
    }
    return [...repos, ...extra];
  }

  private async tags(node: RepositoryNode): Promise<RegistryNode[]> {
    const blocked = this.blockedNode(`${node.registry}/${node.repository}`);
    if (blocked) return [blocked];
    const accept = filterFn(node.filter);
    if (node.pager.items().length === 0 && node.pager.hasMore() && !node.error) {
      try {
        await this.f.stowage.prepareNetwork();
        await node.pager.more(accept);
      } catch (e) {
        node.error = e;
      }
      // No redraw of the repository here (for its tag count): a refresh fired while VS Code is
      // still showing these children drops their handles, and expanding a tag then found nothing
      // ("No tree item with id '1/tag:…'"). The "Load more…" row carries the count instead.
    }
    const out: RegistryNode[] = await Promise.all(
      node.pager
        .items()
        .filter(accept)
        .map((tag) =>
          this.tagNode({ kind: 'tag', registry: node.registry, repository: node.repository, tag }),
        ),
    );
    if (node.error) {
      const auth = isStowageError(node.error, 'UNAUTHORIZED') || isStowageError(node.error, 'DENIED');
      out.push({
        kind: 'info',
        id: `${node.registry}/${node.repository}:error`,
        label: errorText(node.error),
        icon: 'error',
        command: auth
          ? { command: 'stowage.signIn', title: 'Sign In', arguments: [node.registry] }
          : { command: 'stowage.showLog', title: 'Show Log' },
      });
    } else if (node.pager.hasMore()) {
      out.push({ kind: 'more', repo: node });
    } else if (out.length === 0) {
      out.push({
        kind: 'info',
        id: `${node.registry}/${node.repository}:empty`,
        label: node.filter ? `No tags match "${node.filter}"` : 'No tags',
      });
    }
    return out;
  }

  /** A tag with what the cache and the newer-image check know of it (from disk; no network). */
  private async tagNode(node: TagNode): Promise<TagNode> {
    const ref = tagReference(node);
    const name = tagName(ref);
    const cached = name ? await this.f.facts.recordedDigest(name).catch(() => undefined) : undefined;
    if (!cached) return node;
    const newer = await this.f.freshness.newer({ reference: ref }).catch(() => undefined);
    return { ...node, cached: true, ...(newer ? { newer: true } : {}) };
  }

  /** Loads one more page of a repository's tags. */
  async loadMore(node: RepositoryNode): Promise<void> {
    try {
      await node.pager.more(filterFn(node.filter));
    } catch (e) {
      node.error = e;
    }
    this.changed.fire(node);
  }

  /** Shows only tags containing `filter`, loading pages until one page of matches is shown. */
  async setFilter(node: RepositoryNode, filter: string): Promise<void> {
    node.filter = filter;
    const accept = filterFn(filter);
    const shown = node.pager.items().filter(accept).length;
    if (shown < TAG_PAGE && node.pager.hasMore() && this.f.stowage.mayUseNetwork) {
      try {
        await node.pager.more(accept);
      } catch (e) {
        node.error = e;
      }
    }
    this.changed.fire(node);
  }

  private async details(node: Extract<RegistryNode, { kind: 'tag' }>): Promise<RegistryNode[]> {
    const id = `${node.registry}/${node.repository}:${node.tag}`;
    const blocked = this.blockedNode(id);
    if (blocked) return [blocked];
    try {
      const client = this.f.stowage.getClient();
      const m = await client.manifest(tagReference(node));
      const out: RegistryNode[] = [
        {
          kind: 'info',
          id: `${id}:digest`,
          label: m.digest,
          description: shortMediaType(m.mediaType),
          icon: 'symbol-key',
        },
      ];
      if (m.document.kind === 'index') {
        for (const p of availablePlatforms(m.document)) {
          out.push({ kind: 'info', id: `${id}:platform:${p}`, label: p, icon: 'vm' });
        }
      }
      return out;
    } catch (e) {
      return [{ kind: 'info', id: `${id}:error`, label: errorText(e), icon: 'error' }];
    }
  }

  getTreeItem(node: RegistryNode): vscode.TreeItem {
    switch (node.kind) {
      case 'registry': {
        const item = new vscode.TreeItem(node.registry === DOCKER_HUB ? 'Docker Hub' : node.registry);
        item.collapsibleState = vscode.TreeItemCollapsibleState.Collapsed;
        item.id = `registry:${node.registry}`;
        const signedIn = this.f.stowage.credentials.registries().includes(node.registry);
        item.contextValue = signedIn ? 'registry.signedIn' : 'registry';
        item.description = [node.registry === DOCKER_HUB ? 'docker.io' : '', signedIn ? 'signed in' : '']
          .filter(Boolean)
          .join(' · ');
        item.iconPath = new vscode.ThemeIcon('server');
        return item;
      }
      case 'repository': {
        const item = new vscode.TreeItem(node.repository, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `repository:${node.registry}/${node.repository}`;
        item.contextValue = 'repository';
        item.iconPath = new vscode.ThemeIcon('repo');
        item.description = repositoryDescription(node);
        return item;
      }
      case 'tag': {
        const item = new vscode.TreeItem(node.tag, vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `tag:${node.registry}/${node.repository}:${node.tag}`;
        // tag.newer: "Pull the Newer Image" instead of a Pull the complete cached copy would answer.
        item.contextValue = node.newer ? 'tag.newer' : 'tag';
        item.iconPath = new vscode.ThemeIcon('tag');
        item.tooltip = familiarReference(tagReference(node));
        if (node.cached) {
          item.description = node.newer ? 'cached · newer on registry' : 'cached';
          // As in Workspace Images.
          item.iconPath = node.newer
            ? new vscode.ThemeIcon('arrow-circle-up', new vscode.ThemeColor('problemsInfoIcon.foreground'))
            : new vscode.ThemeIcon('pass-filled', new vscode.ThemeColor('testing.iconPassed'));
          item.tooltip += node.newer
            ? '\nIn the cache; the registry’s tag has moved since (Pull the Newer Image)'
            : '\nIn the cache';
        }
        return item;
      }
      case 'more': {
        const item = new vscode.TreeItem('Load more…', vscode.TreeItemCollapsibleState.None);
        item.id = `more:${node.repo.registry}/${node.repo.repository}:${node.repo.pager.items().length}`;
        item.description = repositoryDescription(node.repo);
        item.iconPath = new vscode.ThemeIcon('more');
        item.contextValue = 'loadMore';
        item.command = { command: 'stowage.loadMoreTags', title: 'Load More Tags', arguments: [node.repo] };
        return item;
      }
      case 'info': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.id = `info:${node.id}`;
        item.description = node.description;
        item.tooltip = node.label;
        if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
        item.command = node.command;
        item.contextValue = 'info';
        return item;
      }
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** "50 of 250 tags" once the total is known, "50 tags loaded" before; plus the filter. */
export function repositoryDescription(node: RepositoryNode): string {
  const loaded = node.pager.items().length;
  const parts: string[] = [];
  if (loaded > 0) {
    const total = node.pager.total();
    parts.push(total !== undefined ? `${loaded} of ${total} tags` : `${loaded} tags loaded`);
  }
  if (node.filter) parts.push(`filter: ${node.filter}`);
  return parts.join(' · ');
}

function filterFn(filter: string): (tag: string) => boolean {
  const f = filter.trim().toLowerCase();
  return f ? (tag) => tag.toLowerCase().includes(f) : () => true;
}

function shortMediaType(mediaType: string): string {
  if (mediaType.includes('index') || mediaType.includes('list')) return 'multi-platform index';
  return 'manifest';
}

function tryParse(text: string): Reference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}
