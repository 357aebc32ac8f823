import * as vscode from 'vscode';
import { isStowageError } from '../../core/errors';
import { formatBytes, formatDuration } from '../../core/format';
import { parsePlatform } from '../../core/platform';
import type { PullProgress, PullResult } from '../../core/pull/pull';
import { parsePullableReference, parseReference } from '../../core/reference';
import type { FeatureContext, PullImageArgs } from '../feature';
import { errorText, failureActions, isCancellation, notificationText } from './failure';
import { showWithActions } from './notify';
import { formatBytePair, formatRate, progressMessage, RateMeter } from './progress-text';
import { label } from './transfer-text';

/** One image to pull: a reference and, optionally, the one platform to pull it for. */
export interface PullTarget {
  reference: string;
  platform?: string;
  /** Re-resolve the tag even when the cache holds the image. */
  always?: boolean;
  /** Every platform the index lists, and its attestations (not only stowage.platforms). */
  allPlatforms?: boolean;
}

export type PullOutcome =
  | { target: PullTarget; ok: true; result: PullResult }
  | { target: PullTarget; ok: false; error: unknown; cancelled: boolean };

/** A reference a batch could not even try (an ARG without a value, a malformed name), with why. */
export interface Unresolved {
  ref: string | null;
  error?: string;
}

/** Shown when an untrusted workspace keeps a pull from the network. */
export const UNTRUSTED_TEXT =
  'Stowage does not contact registries in an untrusted workspace (Restricted Mode). Trust the workspace to pull.';

/**
 * Runs pulls through the workspace's pull service with the editor's feedback: one cancellable
 * progress notification per request (one for a whole batch), a status bar item while any pull is
 * in flight, a short success message and error messages whose buttons fit the cause.
 */
export class PullRunner implements vscode.Disposable {
  private readonly status: vscode.StatusBarItem;
  private readonly subscription: { dispose(): void };

  constructor(private readonly f: FeatureContext) {
    this.status = vscode.window.createStatusBarItem('stowage.pulls', vscode.StatusBarAlignment.Left, 10);
    this.status.name = 'Stowage Pulls';
    this.status.command = 'stowage.showLog';
    this.subscription = f.stowage.service.onEvent((e) => {
      // The service forgets a finished job just after telling: look once it has.
      if (e.type === 'started') this.updateStatus();
      if (e.type === 'finished') setTimeout(() => this.updateStatus(), 0);
    });
  }

  /**
   * Pulls every target (deduplicated) under one notification; never rejects. `skipped` are the
   * batch's references that could not be resolved: the closing message counts them as not pulled.
   */
  async pull(targets: readonly PullTarget[], skipped: readonly Unresolved[] = []): Promise<PullOutcome[]> {
    const unique = dedupe(targets);
    if (unique.length === 0) return [];
    const { stowage, log } = this.f;
    await stowage.prepareNetwork();
    const names = unique.map((t) => label(t.reference));
    const title = unique.length === 1 ? `Pulling ${names[0]}` : `Pulling ${unique.length} images`;
    const began = Date.now();
    const outcomes = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        const cancel = token.onCancellationRequested(() => controller.abort());
        const perTarget = new Map<PullTarget, PullProgress>();
        const meter = new RateMeter();
        let finished = 0;
        let reported = 0;
        let lastReport = 0;
        const report = (force = false) => {
          const now = Date.now();
          if (!force && now - lastReport < 250) return;
          lastReport = now;
          const all = [...perTarget.values()];
          const done = all.reduce((n, p) => n + p.bytesDone, 0);
          const total = all.reduce((n, p) => n + p.bytesTotal, 0);
          meter.add(now, done);
          let message: string;
          if (unique.length === 1) {
            const p = all[0];
            message = p ? progressMessage(p, meter.rate()) : 'resolving…';
          } else {
            const parts = [`${finished}/${unique.length} images`];
            if (total > 0) parts.push(formatBytePair(done, total));
            const rate = meter.rate();
            if (rate) parts.push(formatRate(rate));
            message = parts.join(' · ');
          }
          // Increments add up; only a growing share is reported (batch totals grow as images resolve).
          const percent =
            unique.length === 1 && total > 0 ? (done / total) * 100 : (finished / unique.length) * 100;
          const increment = Math.max(0, percent - reported);
          reported += increment;
          progress.report({ message, increment });
        };
        report(true);
        try {
          return await Promise.all(
            unique.map(async (target): Promise<PullOutcome> => {
              try {
                const platforms = target.platform
                  ? [parsePlatform(target.platform)]
                  : stowage.settings().platforms;
                const which = target.allPlatforms ? 'every platform' : target.platform;
                log.info(`Pulling ${target.reference}${which ? ` for ${which}` : ''}`);
                const pending = stowage.service.pull(target.reference, {
                  platforms,
                  allPlatforms: target.allPlatforms,
                  alwaysPull: target.always,
                  signal: controller.signal,
                  onEvent: (e) => {
                    if (e.type !== 'progress') return;
                    perTarget.set(target, e);
                    report();
                  },
                });
                this.updateStatus();
                const result = await pending;
                log.info(
                  result.fromCache
                    ? `${result.reference} is already cached (${result.platforms.join(', ')})`
                    : `Pulled ${result.reference}: ${result.blobsDownloaded} blobs, ${formatBytes(result.bytesDownloaded)}`,
                );
                // Docker Hub says how much of its pull quota is left; worth knowing before it runs out.
                const quota = result.fromCache
                  ? undefined
                  : stowage.getClient().rateLimit(parseReference(result.reference).registry);
                if (quota?.remaining)
                  log.info(`Pull quota left: ${quota.remaining} (limit ${quota.limit ?? '?'})`);
                return { target, ok: true, result };
              } catch (error) {
                const cancelled = controller.signal.aborted && isCancellation(error);
                if (cancelled) log.info(`Pull of ${target.reference} cancelled`);
                else log.error(`Pull of ${target.reference} failed: ${errorText(error)}`);
                return { target, ok: false, error, cancelled };
              } finally {
                finished++;
                report(true);
              }
            }),
          );
        } finally {
          cancel.dispose();
          this.updateStatus();
        }
      },
    );
    this.announce(outcomes, Date.now() - began, skipped);
    return outcomes;
  }

  /**
   * The messages after a pull: cancellation, then either success (if wanted) or, when any image
   * was not pulled, one error or warning that counts them (a success toast beside it read as if
   * all went well, and pushed the error out of the toast corner).
   */
  private announce(outcomes: PullOutcome[], ms: number, skipped: readonly Unresolved[]): void {
    const ok = outcomes.filter((o): o is Extract<PullOutcome, { ok: true }> => o.ok);
    const cancelled = outcomes.filter((o) => !o.ok && o.cancelled);
    const failed = outcomes.filter((o): o is Extract<PullOutcome, { ok: false }> => !o.ok && !o.cancelled);
    if (cancelled.length) {
      const what =
        cancelled.length === 1
          ? `The pull of ${label(cancelled[0]!.target.reference)} was`
          : `${cancelled.length} pulls were`;
      void vscode.window.showInformationMessage(
        `${what} cancelled. What was downloaded stays in the cache; pulling again resumes from there.`,
      );
    }
    if (failed.length === 0 && skipped.length === 0) {
      if (ok.length && this.f.stowage.settings().notifyOnSuccess) {
        void vscode.window.showInformationMessage(
          successText(
            ok.map((o) => o.result),
            ms,
          ),
        );
      }
      return;
    }
    for (const u of skipped)
      this.f.log.warn(`Skipped ${u.ref ?? 'a reference'}: ${u.error ?? 'it cannot be resolved'}`);
    const first = failed[0];
    const trusted = vscode.workspace.isTrusted;
    let registry: string | undefined;
    try {
      registry = first ? parsePullableReference(first.target.reference).registry : undefined;
    } catch {
      registry = undefined;
    }
    // Retry pulls again what failed (stowage.pullImage takes a list), not what was pulled.
    const retry = { command: 'stowage.pullImage', args: [failed.map((o) => pullArgs(o.target))] };
    const actions = first
      ? failureActions(first.error, { registry, trusted, reference: first.target.reference, retry })
      : [{ title: 'Show Log', command: 'stowage.showLog' }];
    if (skipped.length) {
      actions.splice(actions.length - 1, 0, {
        title: 'Show Workspace Images',
        command: 'stowage.workspaceImages.focus',
      });
    }
    const reason = (e: unknown) => (!trusted && isStowageError(e, 'OFFLINE') ? UNTRUSTED_TEXT : errorText(e));
    const text = problemText(outcomes, skipped, ms, reason);
    showWithActions(
      failed.length ? vscode.window.showErrorMessage : vscode.window.showWarningMessage,
      text,
      actions,
    );
  }

  private updateStatus(): void {
    const active = this.f.stowage.service.active();
    if (active.length === 0) {
      this.status.hide();
      return;
    }
    const running = active.filter((a) => !a.queued);
    const queued = active.length - running.length;
    this.status.text =
      active.length === 1
        ? `$(sync~spin) Pulling ${label(active[0]!.reference)}`
        : `$(sync~spin) Pulling ${active.length} images`;
    this.status.tooltip = [
      ...running.map((a) => `Pulling ${label(a.reference)}`),
      ...(queued ? [`${queued} waiting`] : []),
      'Click to show the log',
    ].join('\n');
    this.status.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.status.dispose();
  }
}

/** A target as stowage.pullImage takes it. */
function pullArgs(target: PullTarget): PullImageArgs {
  return {
    reference: target.reference,
    ...(target.platform ? { platform: target.platform } : {}),
    ...(target.allPlatforms ? { allPlatforms: true } : {}),
    ...(target.always ? { always: true } : {}),
  };
}

function dedupe(targets: readonly PullTarget[]): PullTarget[] {
  const seen = new Map<string, PullTarget>();
  for (const t of targets) seen.set(`${t.reference}|${t.allPlatforms ? '*' : (t.platform ?? '')}`, t);
  return [...seen.values()];
}

/** "Pulled alpine:3.20 · 3.4 MB in 1.2 s", "alpine:3.20 is already cached", batch summaries. */
export function successText(results: readonly PullResult[], ms: number): string {
  const downloaded = results.filter((r) => !r.fromCache);
  const bytes = downloaded.reduce((n, r) => n + r.bytesDownloaded, 0);
  if (results.length === 1) {
    const r = results[0]!;
    return r.fromCache
      ? `${label(r.reference)} is already cached (${formatBytes(r.totalBytes)}).`
      : `Pulled ${label(r.reference)} · ${formatBytes(bytes)} in ${formatDuration(ms)}.`;
  }
  const cached = results.length - downloaded.length;
  // Count what was pulled, not what was asked for: "Pulled 4 images" after one download misleads.
  if (downloaded.length === 0) return `All ${results.length} images are already cached.`;
  const images = downloaded.length === 1 ? '1 image' : `${downloaded.length} images`;
  const tail = cached ? ` (${cached} more already cached)` : '';
  return `Pulled ${images} · ${formatBytes(bytes)} in ${formatDuration(ms)}${tail}.`;
}

/**
 * The closing message of a pull in which some images were not pulled: how many of how many, the
 * first reason, then what did succeed. "Could not pull alpine:3.20: …" for a single image.
 */
export function problemText(
  outcomes: readonly PullOutcome[],
  skipped: readonly Unresolved[],
  ms: number,
  reason: (error: unknown) => string = errorText,
): string {
  const failed = outcomes.filter((o): o is Extract<PullOutcome, { ok: false }> => !o.ok && !o.cancelled);
  const ok = outcomes.filter((o): o is Extract<PullOutcome, { ok: true }> => o.ok);
  const first = failed[0];
  if (first && outcomes.length === 1 && skipped.length === 0) {
    return `Could not pull ${label(first.target.reference)}: ${reason(first.error)}`;
  }
  const bad = failed.length + skipped.length;
  const total = outcomes.length + skipped.length;
  const unresolved = failed.length && skipped.length ? ` (${skipped.length} cannot be resolved)` : '';
  const why = first
    ? `${label(first.target.reference)}: ${reason(first.error)}`
    : notificationText(skipped[0]?.error ?? 'The reference cannot be resolved.');
  const more = bad > 1 ? ` (and ${bad - 1} more, listed in the log)` : '';
  const pulled = ok.length
    ? ` ${successText(
        ok.map((o) => o.result),
        ms,
      )}`
    : '';
  return `${bad} of ${total} image${total === 1 ? '' : 's'} could not be pulled${unresolved}. ${why.replace(/\.$/, '')}${more}.${pulled}`;
}
