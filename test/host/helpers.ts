import * as vscode from 'vscode';
import type { StowageApi } from '../../src/vscode/activate';
import type { FeatureContext } from '../../src/vscode/feature';

/**
 * Polls `fn` until it gives a value (not undefined or false): for what the extension does after
 * an event (diagnostics after a check, a redraw). The deadline only bounds a hung test.
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The quick fixes VS Code gets for a range of a document (every provider's, the API's view). */
export function quickFixes(uri: vscode.Uri, range: vscode.Range): Thenable<vscode.CodeAction[]> {
  return vscode.commands.executeCommand<vscode.CodeAction[]>(
    'vscode.executeCodeActionProvider',
    uri,
    range,
    vscode.CodeActionKind.QuickFix.value,
  );
}

/** The features the extension registered with, over its API, for calling a feature directly. */
export function featuresOf(api: StowageApi, log: vscode.LogOutputChannel): FeatureContext {
  return {
    stowage: api.stowage,
    index: api.index,
    facts: api.facts,
    freshness: api.freshness,
    log,
  };
}
