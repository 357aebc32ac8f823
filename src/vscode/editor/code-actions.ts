import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import type { PullImageArgs } from '../feature';
import type { Stowage } from '../stowage';
import { errorText } from '../workbench/failure';
import { NEWER_IMAGE } from './diagnostics';
import { type DocumentUses, toRange, useOnLine, useUnder } from './documents';
import type { Freshness } from './freshness';
import { cachedTagDigest, digestToPin, notRewritable, pinEdit, unpinEdit } from './pin';

/** A pin whose digest comes from a HEAD request, fetched only when the user picks it. */
class LazyPin extends vscode.CodeAction {
  constructor(
    title: string,
    kind: vscode.CodeActionKind,
    readonly document: vscode.TextDocument,
    readonly use: ImageUse,
  ) {
    super(title, kind);
  }
}

/**
 * "Pin to digest", "Update pinned digest" and "Remove digest pin" on image references. They are
 * offered as quick fixes, and as rewrites (refactor.rewrite) when that kind is asked for, so they
 * show in the light bulb with or without a diagnostic. Only literal references are rewritten;
 * "Pull the newer image" (no edit) is offered on any reference whose tag moved.
 */
export class PinCodeActions implements vscode.CodeActionProvider<vscode.CodeAction> {
  static readonly kinds = [vscode.CodeActionKind.QuickFix, vscode.CodeActionKind.RefactorRewrite];

  constructor(
    private readonly uses: DocumentUses,
    private readonly stowage: Stowage,
    private readonly freshness: Freshness,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  async provideCodeActions(
    document: vscode.TextDocument,
    range: vscode.Range | vscode.Selection,
    context: vscode.CodeActionContext,
  ): Promise<vscode.CodeAction[]> {
    const uses = this.uses.get(document);
    const use = useUnder(uses, range.start) ?? useOnLine(uses, range.start.line);
    if (!use?.reference) return [];
    const kind = pickKind(context);
    if (!kind) return [];
    const ref = use.reference;
    // Pulling leaves the text alone, so it is offered on ARG-built references too; edits are not.
    const rewritable = !notRewritable(use);
    const diagnostics = context.diagnostics.filter(
      (d) => d.code === NEWER_IMAGE && d.range.intersection(toRange(use.range)),
    );
    const out: vscode.CodeAction[] = [];
    // A tag the registry did not have has no digest to pin: Browse Tags… is the fix there.
    const unknown = await this.freshness.unknownTag(use).catch(() => undefined);
    if (rewritable && !ref.digest && ref.tag && !unknown) {
      const digest = await cachedTagDigest(this.stowage, use).catch(() => undefined);
      const action = digest
        ? withEdit(new vscode.CodeAction('Pin to digest', kind), pinEdit(document, use, digest))
        : this.stowage.mayUseNetwork
          ? new LazyPin('Pin to digest', kind, document, use)
          : disabled(
              new vscode.CodeAction('Pin to digest', kind),
              `${use.ref} is not in the cache; pull it first (the registry is not asked ${vscode.workspace.isTrusted ? 'while offline' : 'in an untrusted workspace'}).`,
            );
      if (action) out.push(action);
    }
    if (!ref.digest && ref.tag) {
      // The tag moved on: pulling again must ask the registry, not stop at the complete cached copy.
      const newer = await this.freshness.newer(use).catch(() => undefined);
      if (newer && !newer.pinned) {
        const pullNewer = new vscode.CodeAction('Pull the newer image', kind);
        const args: PullImageArgs = { reference: use.ref as string, platform: use.platform, always: true };
        pullNewer.command = {
          command: 'stowage.pullImage',
          title: 'Pull the newer image',
          arguments: [args],
        };
        pullNewer.isPreferred = true;
        if (diagnostics.length) pullNewer.diagnostics = diagnostics;
        out.push(pullNewer);
      }
    }
    if (rewritable && ref.digest) {
      const newer = await this.freshness.newer(use).catch(() => undefined);
      if (newer?.pinned) {
        const update = withEdit(
          new vscode.CodeAction('Update pinned digest', kind),
          pinEdit(document, use, newer.current),
        );
        if (update) {
          update.isPreferred = true;
          if (diagnostics.length) update.diagnostics = diagnostics;
          out.push(update);
        }
      }
      const remove = withEdit(new vscode.CodeAction('Remove digest pin', kind), unpinEdit(document, use));
      if (remove) out.push(remove);
    }
    return out;
  }

  async resolveCodeAction(
    action: vscode.CodeAction,
    token: vscode.CancellationToken,
  ): Promise<vscode.CodeAction> {
    if (!(action instanceof LazyPin) || action.edit) return action;
    try {
      const digest = await digestToPin(this.stowage, action.use);
      if (token.isCancellationRequested) return action;
      const edit = pinEdit(action.document, action.use, digest);
      if (edit) action.edit = edit;
    } catch (e) {
      const message = errorText(e);
      this.log.warn(`Pin to digest: ${message}`);
      void vscode.window.showWarningMessage(`Cannot pin ${action.use.ref}: ${message}`);
    }
    return action;
  }
}

/** QuickFix unless only refactorings are asked for; undefined when neither kind is wanted. */
function pickKind(context: vscode.CodeActionContext): vscode.CodeActionKind | undefined {
  const only = context.only;
  if (
    !only ||
    only.contains(vscode.CodeActionKind.QuickFix) ||
    vscode.CodeActionKind.QuickFix.contains(only)
  ) {
    return vscode.CodeActionKind.QuickFix;
  }
  if (
    only.contains(vscode.CodeActionKind.RefactorRewrite) ||
    vscode.CodeActionKind.RefactorRewrite.contains(only)
  ) {
    return vscode.CodeActionKind.RefactorRewrite;
  }
  return undefined;
}

function withEdit(
  action: vscode.CodeAction,
  edit: vscode.WorkspaceEdit | undefined,
): vscode.CodeAction | undefined {
  if (!edit) return undefined;
  action.edit = edit;
  return action;
}

function disabled(action: vscode.CodeAction, reason: string): vscode.CodeAction {
  action.disabled = { reason };
  return action;
}
