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
    vscode.commands.registerCommand(CHECK_NEWER, () => checkNow(features, freshness, diagnostics)),
    vscode.languages.registerCodeLensProvider(DOCKERFILE_SELECTOR, lenses),
  ];
}

const CHECK_NEWER = 'stowage.checkForNewerImages';

/**
 * The newer-image check of every workspace Dockerfile's tags, now, whatever the setting's
 * interval (a tag that moved an hour ago should not wait a day to show). Returns what it found.
 */
async function checkNow(
  features: FeatureContext,
  freshness: Freshness,
  diagnostics: ImageDiagnostics,
): Promise<{ checked: number; newer: string[] } | undefined> {
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
  const found = await Promise.all(uses.map((use) => freshness.newer(use).catch(() => undefined)));
  const newer = [...new Set(found.flatMap((n) => (n ? [n.tag] : [])))];
  diagnostics.refreshAll();
  const tags = `${checked} tag${checked === 1 ? '' : 's'}`;
  void vscode.window.showInformationMessage(
    newer.length
      ? `A newer image is in the registry for ${newer.join(', ')} (${tags} checked). "Pull the newer image" is offered on their FROM lines.`
      : `Checked ${tags}: the cached and pinned images are current.`,
  );
  return { checked, newer };
}
