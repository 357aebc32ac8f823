import * as vscode from 'vscode';
import { type ImageUse, useAt } from '../../core/dockerfile';
import { StowageError } from '../../core/errors';
import type { FeatureContext } from '../feature';

/** The Dockerfile editor a command acts on: the active one, else the one visible Dockerfile editor. */
export function dockerfileEditor(): vscode.TextEditor | undefined {
  const isDockerfile = (e?: vscode.TextEditor) =>
    !!e &&
    (e.document.languageId === 'dockerfile' ||
      /(^|[\\/])(Dockerfile|Containerfile)[^\\/]*$|\.[Dd]ockerfile$/.test(e.document.fileName));
  const active = vscode.window.activeTextEditor;
  if (isDockerfile(active)) return active;
  const visible = vscode.window.visibleTextEditors.filter(isDockerfile);
  return visible.length === 1 ? visible[0] : undefined;
}

/** The image use under the editor's cursor (or on its line). */
export function useAtCursor(f: FeatureContext, editor: vscode.TextEditor): ImageUse | undefined {
  const pos = editor.selection.active;
  return useAt(f.index.get(editor.document).uses, pos.line, pos.character);
}

/**
 * Where "Use in FROM" writes `reference` in the editor: replaces the image of the FROM on the
 * cursor's line, completes a bare `FROM` there, or else replaces the nearest FROM above the cursor.
 */
export function fromEdit(
  f: FeatureContext,
  document: vscode.TextDocument,
  cursor: vscode.Position,
  reference: string,
): { range: vscode.Range; text: string } {
  const line = document.lineAt(cursor.line);
  const bare = /^(\s*FROM)(\s*)$/i.exec(line.text);
  if (bare) {
    const start = new vscode.Position(cursor.line, bare[1]!.length);
    return { range: new vscode.Range(start, line.range.end), text: ` ${reference}` };
  }
  const froms = f.index
    .get(document)
    .uses.filter((u) => u.instruction === 'FROM' && u.range.start.line <= cursor.line)
    .sort((a, b) => b.range.start.line - a.range.start.line);
  const onLine = froms.find((u) => u.range.start.line <= cursor.line && cursor.line <= u.range.end.line);
  const use = onLine ?? froms[0];
  if (!use) {
    throw new StowageError(
      'USAGE',
      `There is no FROM line at or above line ${cursor.line + 1} of ${vscode.workspace.asRelativePath(document.uri)}.`,
      'Put the cursor on a FROM line (or an empty "FROM") and try again.',
    );
  }
  return { range: toRange(use.range), text: reference };
}

export function toRange(r: ImageUse['range']): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}
