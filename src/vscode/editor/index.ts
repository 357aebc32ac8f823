import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import type { FeatureContext } from '../feature';
import { BrowseTagsCodeActions } from './browse-tags';
import { BuildArgCodeActions, SET_BUILD_ARG, setBuildArg } from './build-args';
import { PinCodeActions } from './code-actions';
import { ImageCodeLenses } from './code-lens';
import { ImageDiagnostics } from './diagnostics';
import { DOCKERFILE_SELECTOR, DocumentUses } from './documents';
import type { Freshness } from './freshness';
import { ImageHoverProvider } from './hover';
import { StageHoverProvider, StageNavigation } from './stage-hover';
import { checkSummary } from './verdicts';

export { pinEdit, pinToDigest, unpinEdit } from './pin';

/** Hover, CodeLens, diagnostics and code actions on Dockerfiles. */
export function registerEditorFeatures(features: FeatureContext): vscode.Disposable[] {
  const { stowage, index, log, facts, freshness } = features;
  const uses = new DocumentUses(index);
  const diagnostics = new ImageDiagnostics(uses, freshness, log, stowage.onDidGrantTrust);
  const lenses = new ImageCodeLenses(uses, facts, stowage, freshness);
  const stageNavigation = new StageNavigation();
  return [
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
    vscode.languages.registerHoverProvider(DOCKERFILE_SELECTOR, new StageHoverProvider(uses)),
    vscode.languages.registerDefinitionProvider(DOCKERFILE_SELECTOR, stageNavigation),
    vscode.languages.registerReferenceProvider(DOCKERFILE_SELECTOR, stageNavigation),
    vscode.languages.registerCodeActionsProvider(
      DOCKERFILE_SELECTOR,
      new PinCodeActions(uses, stowage, freshness, log),
      { providedCodeActionKinds: PinCodeActions.kinds },
    ),
    vscode.languages.registerCodeActionsProvider(DOCKERFILE_SELECTOR, new BuildArgCodeActions(uses), {
      providedCodeActionKinds: BuildArgCodeActions.kinds,
    }),
    vscode.languages.registerCodeActionsProvider(
      DOCKERFILE_SELECTOR,
      new BrowseTagsCodeActions(uses, freshness),
      { providedCodeActionKinds: BrowseTagsCodeActions.kinds },
    ),
    vscode.commands.registerCommand(SET_BUILD_ARG, setBuildArg),
    vscode.commands.registerCommand(CHECK_NEWER, () => checkNow(features, freshness, diagnostics)),
    vscode.languages.registerCodeLensProvider(DOCKERFILE_SELECTOR, lenses),
  ];
}

const CHECK_NEWER = 'stowage.checkForNewerImages';

/**
 * The newer-image check of every workspace Dockerfile's tags, now, whatever the setting's
 * interval (a tag that moved an hour ago should not wait a day to show). Returns what it found:
 * tags that moved, and tags the registry does not have.
 */
async function checkNow(
  features: FeatureContext,
  freshness: Freshness,
  diagnostics: ImageDiagnostics,
): Promise<{ checked: number; newer: string[]; unknown: string[] } | undefined> {
  const { stowage, index } = features;
  if (!vscode.workspace.isTrusted || !stowage.mayUseNetwork) {
    void vscode.window.showInformationMessage(
      'Stowage does not ask registries for newer images while offline (stowage.offline) or in an untrusted workspace.',
    );
    return undefined;
  }
  const uses = (await index.all()).flatMap((entry) => entry.uses);
  const checked = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Stowage: checking for newer images…' },
    () => freshness.check(uses, { force: true }),
  );
  const tags = async (verdict: (use: ImageUse) => Promise<{ tag: string } | undefined>) => {
    const found = await Promise.all(uses.map((use) => verdict(use).catch(() => undefined)));
    return [...new Set(found.flatMap((n) => (n ? [n.tag] : [])))];
  };
  const newer = await tags((use) => freshness.newer(use));
  const unknown = await tags((use) => freshness.unknownTag(use));
  diagnostics.refreshAll();
  void vscode.window.showInformationMessage(checkSummary(checked, newer, unknown));
  return { checked, newer, unknown };
}
