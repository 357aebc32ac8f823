import * as vscode from 'vscode';
import { formatBytes } from '../../core/format';
import type { CacheFacts } from '../cache-facts';
import type { PullImageArgs } from '../feature';
import type { Stowage } from '../stowage';
import type { DocumentUses } from './documents';
import type { Freshness } from './freshness';

/**
 * Above each image line: `✓ cached · 45.2 MB`, `◐ partly cached · …` with Pull, `Pull`, or, for a
 * tag the registry answered 404 for at the last check, `✗ tag not on registry` with Browse Tags…
 * (a Pull would only fail).
 */
export class ImageCodeLenses implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly uses: DocumentUses,
    private readonly facts: CacheFacts,
    private readonly stowage: Stowage,
    private readonly freshness: Pick<Freshness, 'unknownTag' | 'onDidChange'>,
  ) {
    this.disposables = [
      this.changed,
      stowage.onDidChangeCache(() => this.changed.fire()),
      freshness.onDidChange(() => this.changed.fire()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('stowage')) this.changed.fire();
      }),
    ];
  }

  async provideCodeLenses(
    document: vscode.TextDocument,
    token: vscode.CancellationToken,
  ): Promise<vscode.CodeLens[]> {
    if (!this.stowage.settings().codeLens) return [];
    const out: vscode.CodeLens[] = [];
    for (const use of this.uses.get(document)) {
      const facts = this.facts.forUse(use);
      if (!facts) continue;
      const known = await facts.catch(() => undefined);
      const status = known?.status;
      if (token.isCancellationRequested) return [];
      const range = new vscode.Range(use.range.start.line, 0, use.range.start.line, 0);
      const args: PullImageArgs = { reference: use.ref as string, platform: use.platform };
      const pull: vscode.Command = {
        title: 'Pull',
        command: 'stowage.pullImage',
        arguments: [args],
        tooltip: `Pull ${use.ref} for ${use.platform} into the cache`,
      };
      if (status?.state === 'cached') {
        out.push(
          new vscode.CodeLens(range, {
            title: `✓ cached · ${formatBytes(status.bytes)}`,
            command: '',
            tooltip: `${use.ref} (${use.platform}) is in the cache`,
          }),
        );
      } else if (status?.state === 'partial') {
        // The index is cached but not this platform's manifest: nothing of it to size.
        const otherPlatforms = known?.platform?.cached === false;
        out.push(
          new vscode.CodeLens(range, {
            title: otherPlatforms
              ? '◐ cached for other platforms'
              : `◐ partly cached · ${formatBytes(status.bytes)}`,
            command: '',
            tooltip: otherPlatforms
              ? `${use.ref} is in the cache, but not for ${use.platform}`
              : `Some of ${use.ref} (${use.platform}) is missing from the cache`,
          }),
          new vscode.CodeLens(range, pull),
        );
      } else if (use.ref && (await this.freshness.unknownTag(use).catch(() => undefined))) {
        out.push(
          new vscode.CodeLens(range, {
            title: '✗ tag not on registry · Browse Tags…',
            command: 'stowage.browseTags',
            arguments: [use.ref],
            tooltip: `The registry answered 404 for ${use.ref} at the last check: see the tags it has`,
          }),
        );
      } else {
        out.push(new vscode.CodeLens(range, pull));
      }
    }
    return out;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
