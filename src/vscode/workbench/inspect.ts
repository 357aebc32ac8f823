import * as vscode from 'vscode';
import { inspectImage } from '../../core/store/image';
import type { FeatureContext } from '../feature';

/** Read-only documents of what the cache holds for an image: `docker image inspect`, from the cache. */
export const INSPECT_SCHEME = 'stowage-inspect';

/** The document for a cached reference: the path names the tab, the query carries the reference. */
export function inspectUri(name: string): vscode.Uri {
  return vscode.Uri.from({ scheme: INSPECT_SCHEME, path: `/${name}.json`, query: name });
}

/**
 * Renders `inspectImage` (digest, platforms, config: entrypoint, env, labels…, layers and which are
 * present) as JSON, from the cache only; open documents follow the cache as it changes.
 */
export class InspectDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly f: FeatureContext) {
    this.subscription = f.stowage.onDidChangeCache(() => {
      for (const doc of vscode.workspace.textDocuments) {
        if (doc.uri.scheme === INSPECT_SCHEME) this.changed.fire(doc.uri);
      }
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const name = uri.query;
    const info = await inspectImage(await this.f.stowage.getStore(), name);
    const shown = info ?? {
      name,
      cached: false,
      hint: 'Not in the cache (any more): pull it to inspect it.',
    };
    return `${JSON.stringify(shown, null, 2)}\n`;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
