import type * as vscode from 'vscode';
import type { FeatureContext } from '../feature';

/** Hover, CodeLens, diagnostics and code actions on Dockerfiles. */
export function registerEditorFeatures(_features: FeatureContext): vscode.Disposable[] {
  return [];
}
