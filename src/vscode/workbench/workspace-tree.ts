import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import { formatBytes } from '../../core/format';
import type { ImageStatus } from '../../core/store';
import { code, escapeMarkdown } from '../editor/markdown';
import { type Newer, newerText, type UnknownTag } from '../editor/verdicts';
import type { FeatureContext } from '../feature';
import type { DockerfileEntry } from '../workspace-index';

export type WorkspaceNode =
  | { kind: 'dockerfile'; entry: DockerfileEntry }
  | {
      kind: 'image';
      uri: vscode.Uri;
      use: ImageUse;
      status?: ImageStatus;
      pulling: boolean;
      /** The last newer-image check found the tag pointing at another image than the cached one. */
      newer?: Newer;
      /** The last check found the registry without the tag (and nothing is cached for it). */
      unknown?: UnknownTag;
    };

/** Dockerfiles → the images they pull, with what the cache holds for each (no network). */
export class WorkspaceImagesTree implements vscode.TreeDataProvider<WorkspaceNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<WorkspaceNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly f: FeatureContext) {
    const refresh = () => this.refresh();
    const sub = f.stowage.service.onEvent((e) => {
      if (e.type === 'started') refresh();
      if (e.type === 'finished') setTimeout(refresh, 0);
    });
    this.disposables.push(
      f.index.onDidChange(refresh),
      f.stowage.onDidChangeCache(refresh),
      f.freshness.onDidChange(refresh),
      { dispose: () => sub.dispose() },
    );
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  async getChildren(node?: WorkspaceNode): Promise<WorkspaceNode[]> {
    if (!node) {
      const entries = await this.f.index.all();
      return entries.map((entry) => ({ kind: 'dockerfile', entry }));
    }
    if (node.kind !== 'dockerfile') return [];
    const active = new Set(this.f.stowage.service.active().map((a) => a.reference));
    return Promise.all(
      node.entry.uses.map(async (use): Promise<WorkspaceNode> => {
        // The same facts as hovers and CodeLens: a pinned `name:tag@digest` counts as cached too.
        const [facts, newer, unknown] = await Promise.all([
          this.f.facts.forUse(use)?.catch(() => undefined),
          this.f.freshness.newer(use).catch(() => undefined),
          this.f.freshness.unknownTag(use).catch(() => undefined),
        ]);
        return {
          kind: 'image',
          uri: node.entry.uri,
          use,
          status: facts?.status,
          pulling: !!use.ref && active.has(use.ref),
          ...(newer ? { newer } : {}),
          ...(unknown ? { unknown } : {}),
        };
      }),
    );
  }

  getTreeItem(node: WorkspaceNode): vscode.TreeItem {
    if (node.kind === 'dockerfile') {
      const item = new vscode.TreeItem(node.entry.uri, vscode.TreeItemCollapsibleState.Expanded);
      item.label = vscode.workspace.asRelativePath(node.entry.uri);
      item.iconPath = vscode.ThemeIcon.File;
      const n = node.entry.uses.length;
      item.description = `${n} image${n === 1 ? '' : 's'}`;
      item.contextValue = 'dockerfile';
      item.id = `dockerfile:${node.entry.uri.toString()}`;
      return item;
    }
    const { use, status } = node;
    const item = new vscode.TreeItem(use.expanded || use.raw, vscode.TreeItemCollapsibleState.None);
    const shown = imageState(node);
    item.iconPath = shown.icon;
    item.description = shown.description;
    item.contextValue = shown.context;
    item.id = `image:${node.uri.toString()}#${use.range.start.line}:${use.range.start.character}`;
    const tip = new vscode.MarkdownString();
    tip.appendMarkdown(`**${use.instruction}** on line ${use.line}: ${code(use.raw)}\n\n`);
    if (use.ref) tip.appendMarkdown(`${code(use.ref)} for ${escapeMarkdown(use.platform)}\n\n`);
    tip.appendMarkdown(escapeMarkdown(shown.description));
    if (status?.descriptor) tip.appendMarkdown(`\n\n\`${status.descriptor.digest}\``);
    if (node.newer) tip.appendMarkdown(`\n\n${newerText(node.newer)}`);
    item.tooltip = tip;
    item.command = {
      command: 'stowage.openReference',
      title: 'Go to Reference',
      arguments: [node.uri, use.range],
    };
    return item;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** Icon, description and context value of an image line: what the cache holds, or why nothing can be. */
export function imageState(node: Extract<WorkspaceNode, { kind: 'image' }>): {
  icon: vscode.ThemeIcon;
  description: string;
  context: string;
} {
  const { use, status } = node;
  if (!use.ref) {
    return {
      icon: new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground')),
      description: `unresolvable: ${use.error ?? 'not a valid image reference'}`,
      context: 'unresolved',
    };
  }
  if (node.pulling)
    return { icon: new vscode.ThemeIcon('sync~spin'), description: 'pulling…', context: 'image.pulling' };
  switch (status?.state) {
    case 'cached':
      // A tag that moved on: still cached, but "Pull the Newer Image" is what to do next.
      return node.newer
        ? {
            icon: new vscode.ThemeIcon(
              'arrow-circle-up',
              new vscode.ThemeColor('problemsInfoIcon.foreground'),
            ),
            description: `cached · ${formatBytes(status.bytes)} · newer on registry`,
            context: 'image.cached.newer',
          }
        : {
            icon: new vscode.ThemeIcon('pass-filled', new vscode.ThemeColor('testing.iconPassed')),
            description: `cached · ${formatBytes(status.bytes)}`,
            context: 'image.cached',
          };
    case 'partial':
      return {
        icon: new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground')),
        description: `partly cached for ${use.platform}`,
        context: 'image.partial',
      };
    case 'missing':
      return node.unknown
        ? {
            icon: new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground')),
            description: 'not cached · tag not on registry',
            context: 'image.missing',
          }
        : {
            icon: new vscode.ThemeIcon('cloud-download'),
            description: 'not cached',
            context: 'image.missing',
          };
    default:
      return {
        icon: new vscode.ThemeIcon('question'),
        description: 'cache unavailable',
        context: 'image.unknown',
      };
  }
}
