import * as vscode from 'vscode';
import { familiarReference } from '../../core/reference';
import { type DocumentUses, toRange } from './documents';
import { stageAt, stageHoverMarkdown, stageLocations } from './stages';

/**
 * Hovers over build stage names: `FROM build`, `COPY --from=build` (or `--from=0`), `RUN
 * --mount=from=build` and `AS build` itself say which stage it is, its line and its image.
 */
export class StageHoverProvider implements vscode.HoverProvider {
  constructor(private readonly uses: DocumentUses) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const mention = stageAt(document.getText(), position.line, position.character);
    if (!mention) return undefined;
    // The stage's image as the build resolves it (ARGs expanded), from the same resolution as hovers.
    const use = this.uses
      .get(document)
      .find((u) => u.instruction === 'FROM' && u.line === mention.stage.line);
    const image = use?.reference ? familiarReference(use.reference) : undefined;
    const md = new vscode.MarkdownString(stageHoverMarkdown(mention, image));
    md.supportHtml = false;
    return new vscode.Hover(md, toRange(mention.range));
  }
}

/** Go to Definition (F12) and Find All References on build stage names, as in a language server. */
export class StageNavigation implements vscode.DefinitionProvider, vscode.ReferenceProvider {
  provideDefinition(document: vscode.TextDocument, position: vscode.Position): vscode.Location | undefined {
    const found = stageLocations(document.getText(), position.line, position.character);
    return found && new vscode.Location(document.uri, toRange(found.definition));
  }

  provideReferences(
    document: vscode.TextDocument,
    position: vscode.Position,
    context: vscode.ReferenceContext,
  ): vscode.Location[] {
    const found = stageLocations(document.getText(), position.line, position.character);
    if (!found) return [];
    const ranges = context.includeDeclaration ? found.references : found.references.slice(1);
    return ranges.map((r) => new vscode.Location(document.uri, toRange(r)));
  }
}
