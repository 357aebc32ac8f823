import * as vscode from 'vscode';
import { UNKNOWN_TAG } from './diagnostics';
import { type DocumentUses, toRange, useOnLine, useUnder } from './documents';
import type { Freshness } from './freshness';

/**
 * "Browse Tags…" on a reference whose tag the registry did not have when last checked: the tags
 * that do exist, to pull one or use it in FROM.
 */
export class BrowseTagsCodeActions implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  constructor(
    private readonly uses: DocumentUses,
    private readonly freshness: Freshness,
  ) {}

  async provideCodeActions(
    document: vscode.TextDocument,
    range: vscode.Range | vscode.Selection,
    context: vscode.CodeActionContext,
  ): Promise<vscode.CodeAction[]> {
    if (context.only && !vscode.CodeActionKind.QuickFix.intersects(context.only)) return [];
    const uses = this.uses.get(document);
    const use = useUnder(uses, range.start) ?? useOnLine(uses, range.start.line);
    if (!use?.ref || !(await this.freshness.unknownTag(use).catch(() => undefined))) return [];
    const action = new vscode.CodeAction('Browse Tags…', vscode.CodeActionKind.QuickFix);
    action.command = { command: 'stowage.browseTags', title: action.title, arguments: [use.ref] };
    action.diagnostics = context.diagnostics.filter(
      (d) => d.code === UNKNOWN_TAG && d.range.intersection(toRange(use.range)),
    );
    action.isPreferred = action.diagnostics.length > 0;
    return [action];
  }
}
