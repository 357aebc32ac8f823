import * as vscode from 'vscode';
import type { FeatureContext } from '../feature';
import { BuildArgCodeActions, SET_BUILD_ARG, setBuildArg } from './build-args';
import { PinCodeActions } from './code-actions';
import { ImageCodeLenses } from './code-lens';
import { ImageDiagnostics } from './diagnostics';
import { DOCKERFILE_SELECTOR, DocumentUses } from './documents';
import { Freshness } from './freshness';
import { FreshnessStore } from './freshness-store';
import { ImageHoverProvider } from './hover';

export { pinEdit, pinToDigest, unpinEdit } from './pin';

/** Hover, CodeLens, diagnostics and code actions on Dockerfiles. */
export function registerEditorFeatures(features: FeatureContext): vscode.Disposable[] {
  const { stowage, index, log, extension, facts } = features;
  const uses = new DocumentUses(index);
  const freshness = new Freshness(stowage, facts, new FreshnessStore(extension.globalStorageUri.fsPath), log);
  const diagnostics = new ImageDiagnostics(uses, freshness, log);
  const lenses = new ImageCodeLenses(uses, facts, stowage);
  return [
    freshness,
    diagnostics,
    lenses,
    stowage.onDidChangeCache(() => diagnostics.refreshAll()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('stowage.platforms') || e.affectsConfiguration('stowage.buildArgs')) {
        uses.clear();
        diagnostics.refreshAll();
      }
    }),
    vscode.languages.registerHoverProvider(
      DOCKERFILE_SELECTOR,
      new ImageHoverProvider(uses, facts, (use) => freshness.newer(use)),
    ),
    vscode.languages.registerCodeActionsProvider(
      DOCKERFILE_SELECTOR,
      new PinCodeActions(uses, stowage, freshness, log),
      { providedCodeActionKinds: PinCodeActions.kinds },
    ),
    vscode.languages.registerCodeActionsProvider(DOCKERFILE_SELECTOR, new BuildArgCodeActions(uses), {
      providedCodeActionKinds: BuildArgCodeActions.kinds,
    }),
    vscode.commands.registerCommand(SET_BUILD_ARG, setBuildArg),
    vscode.languages.registerCodeLensProvider(DOCKERFILE_SELECTOR, lenses),
  ];
}
