import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import { StowageError } from '../../core/errors';
import { tagName } from '../cache-facts';
import type { FeatureContext } from '../feature';
import type { Stowage } from '../stowage';
import { toRange, useOnLine, useUnder } from './documents';

/**
 * Why a use's reference cannot be rewritten in place, or undefined when it can: only literal
 * text (no ARG expansion, no quotes) on one line is rewritten, so the edit never breaks an ARG.
 */
export function notRewritable(use: ImageUse): string | undefined {
  if (!use.reference) return use.error ?? 'The reference cannot be resolved.';
  if (use.raw !== use.expanded) {
    return `"${use.raw}" is built from ARGs; pin the ARG's value instead.`;
  }
  if (use.range.start.line !== use.range.end.line) return 'The reference spans a line continuation.';
  return undefined;
}

/** `name:tag` → `name:tag@digest` (an existing pin is replaced). */
export function pinnedText(raw: string, digest: string): string {
  return `${unpinnedText(raw)}@${digest}`;
}

/** `name:tag@digest` → `name:tag`. */
export function unpinnedText(raw: string): string {
  const at = raw.indexOf('@');
  return at < 0 ? raw : raw.slice(0, at);
}

/**
 * The edit that pins a use to `digest`, or undefined when its text is not literal (ARGs) or the
 * document no longer holds it where the use says.
 */
export function pinEdit(
  document: vscode.TextDocument,
  use: ImageUse,
  digest: string,
): vscode.WorkspaceEdit | undefined {
  return replaceEdit(document, use, pinnedText(use.raw, digest));
}

/** The edit that removes a use's digest pin (only when a tag remains to name the image). */
export function unpinEdit(document: vscode.TextDocument, use: ImageUse): vscode.WorkspaceEdit | undefined {
  if (!use.reference?.digest || !use.reference.tag) return undefined;
  return replaceEdit(document, use, unpinnedText(use.raw));
}

function replaceEdit(
  document: vscode.TextDocument,
  use: ImageUse,
  text: string,
): vscode.WorkspaceEdit | undefined {
  if (notRewritable(use)) return undefined;
  const range = toRange(use.range);
  if (document.getText(range) !== use.raw) return undefined;
  const edit = new vscode.WorkspaceEdit();
  edit.replace(document.uri, range, text);
  return edit;
}

/** The digest the cache recorded for the use's tag (the top digest, the index for multi-platform images). */
export async function cachedTagDigest(stowage: Stowage, use: ImageUse): Promise<string | undefined> {
  const name = use.reference && tagName(use.reference);
  if (!name) return undefined;
  const store = await stowage.getStore();
  return (await store.getReference(name))?.digest;
}

/**
 * The digest to pin a use to: from the cache, else (when the network may be used) from a
 * manifest HEAD. Throws a StowageError saying why there is none.
 */
export async function digestToPin(stowage: Stowage, use: ImageUse): Promise<string> {
  const ref = use.reference;
  if (!ref?.tag) {
    throw new StowageError('USAGE', `"${use.raw}" has no tag to pin.`);
  }
  const cached = await cachedTagDigest(stowage, use).catch(() => undefined);
  if (cached) return cached;
  const name = tagName(ref) as string;
  if (!stowage.mayUseNetwork) {
    throw new StowageError(
      'NOT_CACHED',
      `${name} is not in the cache, and Stowage may not ask the registry (${vscode.workspace.isTrusted ? 'stowage.offline is on' : 'the workspace is not trusted'}).`,
      'Pull the image first, or allow network access.',
    );
  }
  await stowage.prepareNetwork();
  const head = await stowage
    .getClient()
    .head({ registry: ref.registry, repository: ref.repository, tag: ref.tag });
  if (!head) {
    throw new StowageError(
      'REGISTRY_ERROR',
      `${ref.registry} gave no digest for ${name}.`,
      'Pull the image, then pin it.',
    );
  }
  return head.digest;
}

/**
 * Pins the image reference at `position` (or on its line) of a Dockerfile to its digest and
 * applies the edit. Returns the new reference text; throws a StowageError saying why not.
 * For `stowage.pinDigest` and other callers outside the code actions.
 */
export async function pinToDigest(
  features: FeatureContext,
  document: vscode.TextDocument,
  position: vscode.Position,
): Promise<string> {
  const uses = features.index.get(document).uses;
  const use = useUnder(uses, position) ?? useOnLine(uses, position.line);
  if (!use) {
    throw new StowageError(
      'USAGE',
      `Line ${position.line + 1} of ${document.uri.path.split('/').pop()} has no image reference.`,
    );
  }
  const why = notRewritable(use);
  if (why) throw new StowageError('USAGE', `Cannot pin line ${use.line}: ${why}`);
  const digest = await digestToPin(features.stowage, use);
  const edit = pinEdit(document, use, digest);
  if (!edit || !(await vscode.workspace.applyEdit(edit))) {
    throw new StowageError('USAGE', `The Dockerfile changed while pinning line ${use.line}; try again.`);
  }
  features.log.info(`Pinned ${use.ref} on line ${use.line} of ${document.uri.path} to ${digest}`);
  return pinnedText(use.raw, digest);
}
