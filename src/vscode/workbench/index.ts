import type * as vscode from 'vscode';
import type { FeatureContext } from '../feature';

/** Commands, tree views, progress and the status bar. */
export function registerWorkbench(_features: FeatureContext): vscode.Disposable[] {
  return [];
}
