import * as vscode from 'vscode';
import { VERSION } from '../core/version';

/** The API the extension returns from activate(), used by tests and other extensions. */
export interface StowageApi {
  readonly version: string;
}

/** Registers commands and views. Cheap on purpose: no network, no cache scan here. */
export function activateStowage(context: vscode.ExtensionContext): StowageApi {
  const log = vscode.window.createOutputChannel('Stowage', { log: true });
  context.subscriptions.push(log);
  context.subscriptions.push(
    vscode.commands.registerCommand('stowage.showVersion', () => {
      const text = `Stowage ${VERSION}`;
      log.info(text);
      void vscode.window.showInformationMessage(text);
      return VERSION;
    }),
  );
  log.info(`Stowage ${VERSION} activated`);
  return { version: VERSION };
}
