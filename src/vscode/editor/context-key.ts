import * as vscode from 'vscode';
import { type DocumentUses, isDockerfileDocument, useOnLine } from './documents';

export const LINE_HAS_IMAGE = 'stowage.lineHasImage';
const DELAY_MS = 50;

/**
 * Keeps the `stowage.lineHasImage` context key true while the active editor is a Dockerfile and
 * its cursor's line holds an image reference (the editor context menu's "Pull Image" needs it).
 */
export class LineHasImageKey implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[];
  private timer?: NodeJS.Timeout;
  private value?: boolean;

  constructor(private readonly uses: DocumentUses) {
    this.disposables = [
      vscode.window.onDidChangeActiveTextEditor(() => this.schedule()),
      vscode.window.onDidChangeTextEditorSelection((e) => {
        if (e.textEditor === vscode.window.activeTextEditor) this.schedule();
      }),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document === vscode.window.activeTextEditor?.document) this.schedule();
      }),
    ];
    this.update();
  }

  /** The current value, computed now. */
  compute(): boolean {
    const editor = vscode.window.activeTextEditor;
    if (!editor || !isDockerfileDocument(editor.document)) return false;
    const line = editor.selection.active.line;
    return (
      useOnLine(
        this.uses.get(editor.document).filter((u) => u.reference),
        line,
      ) !== undefined
    );
  }

  update(): void {
    const value = this.compute();
    if (value === this.value) return;
    this.value = value;
    void vscode.commands.executeCommand('setContext', LINE_HAS_IMAGE, value);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.update(), DELAY_MS);
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
