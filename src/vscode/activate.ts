import * as vscode from 'vscode';
import { VERSION } from '../core/version';
import { CacheFacts } from './cache-facts';
import { registerEditorFeatures } from './editor';
import { Freshness } from './editor/freshness';
import { FreshnessStore } from './editor/freshness-store';
import type { FeatureContext } from './feature';
import { Stowage } from './stowage';
import { registerWorkbench } from './workbench';
import { WorkspaceIndex } from './workspace-index';

/** The API the extension returns from activate(), used by tests and other extensions. */
export interface StowageApi {
  readonly version: string;
  readonly stowage: Stowage;
  readonly index: WorkspaceIndex;
  readonly facts: CacheFacts;
  readonly freshness: Freshness;
}

/**
 * Registers commands, views and editor features over one workspace-scoped Stowage. Cheap on
 * purpose: no network and no cache scan here; everything is created on first use.
 */
export function activateStowage(context: vscode.ExtensionContext): StowageApi {
  const log = vscode.window.createOutputChannel('Stowage', { log: true });
  const stowage = new Stowage(context, log);
  const index = new WorkspaceIndex(() => stowage.settings());
  const facts = new CacheFacts(stowage);
  const freshness = new Freshness(stowage, facts, new FreshnessStore(context.globalStorageUri.fsPath), log);
  context.subscriptions.push(log, stowage, index, facts, freshness);
  const features: FeatureContext = { stowage, index, facts, freshness, log };
  context.subscriptions.push(
    vscode.commands.registerCommand('stowage.showVersion', () => {
      const text = `Stowage ${VERSION}`;
      log.info(text);
      void vscode.window.showInformationMessage(text);
      return VERSION;
    }),
    vscode.commands.registerCommand('stowage.showLog', () => log.show()),
    ...registerWorkbench(features),
    ...registerEditorFeatures(features),
  );
  log.info(`Stowage ${VERSION} activated`);
  return { version: VERSION, stowage, index, facts, freshness };
}
