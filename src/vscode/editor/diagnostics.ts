import * as vscode from 'vscode';
import { errorReason, type ImageUse } from '../../core/dockerfile';
import { type DocumentUses, isDockerfileDocument, toRange } from './documents';
import type { Freshness } from './freshness';
import { type Newer, newerText, type UnknownTag, unknownTagText } from './verdicts';

export const UNRESOLVABLE = 'unresolvable-image';
export const NEWER_IMAGE = 'newer-image';
export const UNKNOWN_TAG = 'unknown-tag';

const EDIT_DELAY_MS = 300;
/** After a document opens, let the window settle before any background request. */
const CHECK_DELAY_MS = 1500;

function diagnostic(
  use: ImageUse,
  message: string,
  severity: vscode.DiagnosticSeverity,
  code: string,
): vscode.Diagnostic {
  const d = new vscode.Diagnostic(toRange(use.range), message, severity);
  d.source = 'stowage';
  d.code = code;
  return d;
}

export function unresolvableDiagnostic(use: ImageUse): vscode.Diagnostic {
  const message = use.error ? errorReason(use.error) : `"${use.raw}" is not a valid image reference.`;
  return diagnostic(use, message, vscode.DiagnosticSeverity.Warning, UNRESOLVABLE);
}

export function newerDiagnostic(use: ImageUse, newer: Newer): vscode.Diagnostic {
  return diagnostic(use, newerText(newer), vscode.DiagnosticSeverity.Information, NEWER_IMAGE);
}

/** A tag the registry did not have: the build would fail to pull it (Browse Tags… fixes it). */
export function unknownTagDiagnostic(use: ImageUse, unknown: UnknownTag): vscode.Diagnostic {
  return diagnostic(use, unknownTagText(unknown), vscode.DiagnosticSeverity.Warning, UNKNOWN_TAG);
}

/**
 * The "stowage" diagnostics: a warning on every reference that cannot be resolved or whose tag
 * the registry did not have when last checked, and an information when a tag is known to point
 * at a newer image. Computing them never touches the
 * network; the freshness check runs in the background after a document opens or is saved.
 */
export class ImageDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('stowage');
  private readonly disposables: vscode.Disposable[] = [this.collection];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly generation = new Map<string, number>();

  constructor(
    private readonly uses: DocumentUses,
    private readonly freshness: Freshness,
    private readonly log: vscode.LogOutputChannel,
    /** When the workspace is trusted (Stowage.onDidGrantTrust): the check may ask registries now. */
    trustGranted: vscode.Event<void>,
  ) {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.opened(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.schedule(e.document, EDIT_DELAY_MS)),
      vscode.workspace.onDidSaveTextDocument((d) => this.scheduleCheck(d, 0)),
      vscode.workspace.onDidCloseTextDocument((d) => this.closed(d)),
      freshness.onDidChange(() => this.refreshAll()),
      trustGranted(() => this.checkAll()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (
          e.affectsConfiguration('stowage.checkForNewerImages') ||
          e.affectsConfiguration('stowage.offline')
        ) {
          this.checkAll();
        }
        if (e.affectsConfiguration('stowage')) this.refreshAll();
      }),
    );
    for (const d of vscode.workspace.textDocuments) this.opened(d);
  }

  /** Recomputes every open Dockerfile's diagnostics (e.g. after the cache changed). */
  refreshAll(): void {
    for (const d of vscode.workspace.textDocuments) if (isDockerfileDocument(d)) void this.update(d);
  }

  /** Updates a document's diagnostics now; resolves when they are set. */
  async update(document: vscode.TextDocument): Promise<vscode.Diagnostic[]> {
    const key = document.uri.toString();
    const gen = (this.generation.get(key) ?? 0) + 1;
    this.generation.set(key, gen);
    const uses = this.uses.get(document);
    const out: vscode.Diagnostic[] = [];
    for (const use of uses) {
      if (!use.reference) {
        out.push(unresolvableDiagnostic(use));
        continue;
      }
      const [newer, unknown] = await Promise.all([
        this.freshness.newer(use).catch(() => undefined),
        this.freshness.unknownTag(use).catch(() => undefined),
      ]);
      if (newer) out.push(newerDiagnostic(use, newer));
      if (unknown) out.push(unknownTagDiagnostic(use, unknown));
    }
    // A later update (newer text) wins over a slower earlier one.
    if (this.generation.get(key) === gen && !document.isClosed) this.collection.set(document.uri, out);
    return out;
  }

  /** Runs the newer-image check for a document now (if allowed and due) and updates it. */
  async check(document: vscode.TextDocument): Promise<void> {
    try {
      await this.freshness.check(this.uses.get(document));
    } catch (e) {
      this.log.debug(`Newer-image check of ${document.uri.path} failed: ${(e as Error).message}`);
    }
    await this.update(document);
  }

  private opened(document: vscode.TextDocument): void {
    if (!isDockerfileDocument(document)) return;
    void this.update(document);
    this.scheduleCheck(document, CHECK_DELAY_MS);
  }

  private checkAll(): void {
    for (const d of vscode.workspace.textDocuments) if (isDockerfileDocument(d)) this.scheduleCheck(d, 0);
  }

  private schedule(document: vscode.TextDocument, delay: number): void {
    if (!isDockerfileDocument(document)) return;
    const key = `u:${document.uri.toString()}`;
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        void this.update(document);
      }, delay),
    );
  }

  private scheduleCheck(document: vscode.TextDocument, delay: number): void {
    if (!isDockerfileDocument(document) || !this.freshness.enabled) return;
    const key = `c:${document.uri.toString()}`;
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        if (!document.isClosed) void this.check(document);
      }, delay),
    );
  }

  private closed(document: vscode.TextDocument): void {
    const key = document.uri.toString();
    for (const k of [`u:${key}`, `c:${key}`]) {
      clearTimeout(this.timers.get(k));
      this.timers.delete(k);
    }
    this.uses.forget(document);
    // Files in the workspace keep no stale problems once closed.
    this.collection.delete(document.uri);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}
