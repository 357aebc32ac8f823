import type * as vscode from 'vscode';
import { activateStowage } from './vscode/activate';

export function activate(context: vscode.ExtensionContext) {
  return activateStowage(context);
}

export function deactivate(): void {
  // Everything is registered on context.subscriptions and disposed by VS Code.
}
