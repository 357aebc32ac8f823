import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import type { Reference } from '../../core/reference';
import { type CacheFacts, tagName } from '../cache-facts';
import type { Stowage } from '../stowage';
import { checkInterval, type FreshnessStore, type TagVerdict, tagVerdict } from './freshness-store';
import type { Newer, UnknownTag } from './verdicts';

export type { Newer, UnknownTag } from './verdicts';

const RETRY_AFTER_FAILURE_MS = 10 * 60 * 1000;
const PARALLEL_CHECKS = 4;

/**
 * Checks in the background, with a manifest HEAD (no pull quota on Docker Hub), whether a tag now
 * points at another image than the one pinned or cached, or is not on the registry at all.
 * Throttled per tag by the setting and remembered on disk; never in untrusted workspaces, offline,
 * or for digest-only references.
 */
export class Freshness implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly running = new Map<string, Promise<void>>();
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly stowage: Stowage,
    private readonly facts: CacheFacts,
    readonly store: FreshnessStore,
    private readonly log: vscode.LogOutputChannel,
    private readonly now: () => number = Date.now,
  ) {}

  /** The digest this use is compared against: pinned, else what the cache recorded for the tag. */
  async knownDigest(ref: Reference): Promise<{ digest: string; pinned: boolean } | undefined> {
    if (ref.digest) return { digest: ref.digest, pinned: true };
    const name = tagName(ref);
    const cached = name ? await this.facts.recordedDigest(name).catch(() => undefined) : undefined;
    return cached ? { digest: cached, pinned: false } : undefined;
  }

  /** What is known to be newer, from the remembered checks only (no network). */
  async newer(use: Pick<ImageUse, 'reference'>): Promise<Newer | undefined> {
    const v = await this.verdict(use.reference);
    return v?.kind === 'newer'
      ? { tag: v.tag, current: v.current, known: v.known, pinned: v.pinned }
      : undefined;
  }

  /** Whether the registry lacked this use's tag when last checked (no network). */
  async unknownTag(use: Pick<ImageUse, 'reference'>): Promise<UnknownTag | undefined> {
    const v = await this.verdict(use.reference);
    return v?.kind === 'unknown' ? { tag: v.tag, checkedAt: v.checkedAt } : undefined;
  }

  private async verdict(ref: Reference | undefined): Promise<TagVerdict | undefined> {
    const tag = ref && tagName(ref);
    if (!ref || !tag) return undefined;
    const record = await this.store.get(tag);
    return record && tagVerdict(tag, record, await this.knownDigest(ref));
  }

  /** Whether a background check may run at all now. */
  get enabled(): boolean {
    return (
      vscode.workspace.isTrusted &&
      this.stowage.mayUseNetwork &&
      checkInterval(this.stowage.settings().checkForNewerImages) !== undefined
    );
  }

  /**
   * Checks the tags of these uses that are due (all of them when `force`: the user asked, whatever
   * the setting's interval); fires onDidChange when a digest changed. Returns the tags checked.
   */
  async check(uses: readonly ImageUse[], options: { force?: boolean } = {}): Promise<number> {
    const force = options.force === true && vscode.workspace.isTrusted && this.stowage.mayUseNetwork;
    if (!force && !this.enabled) return 0;
    const interval = force ? 0 : checkInterval(this.stowage.settings().checkForNewerImages);
    if (interval === undefined) return 0;
    const due: Reference[] = [];
    const seen = new Set<string>();
    for (const use of uses) {
      const ref = use.reference;
      const tag = ref && tagName(ref);
      if (!ref || !tag || seen.has(tag)) continue;
      seen.add(tag);
      const record = await this.store.get(tag);
      if (record && this.now() - record.checkedAt < interval) continue;
      if (!force && this.now() - (this.failedAt.get(tag) ?? 0) < RETRY_AFTER_FAILURE_MS) continue;
      // Also when nothing is pinned or cached: the answer says whether the registry has the tag.
      due.push(ref);
    }
    if (!due.length) return 0;
    await this.stowage.prepareNetwork();
    let changed = false;
    const queue = [...due];
    const worker = async () => {
      for (let ref = queue.shift(); ref; ref = queue.shift()) {
        if (await this.checkOne(ref)) changed = true;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_CHECKS, due.length) }, worker));
    if (changed) this.changed.fire();
    return due.length;
  }

  /** One HEAD, shared by concurrent callers; true when the remembered answer changed. */
  private async checkOne(ref: Reference): Promise<boolean> {
    const tag = tagName(ref) as string;
    let changed = false;
    let run = this.running.get(tag);
    if (!run) {
      run = (async () => {
        const bare = { registry: ref.registry, repository: ref.repository, tag: ref.tag };
        try {
          const head = await this.stowage.getClient().lookup(bare);
          const before = await this.store.get(tag);
          if (head && head !== 'not-found') {
            await this.store.set(tag, { checkedAt: this.now(), digest: head.digest });
            changed = !before || !('digest' in before) || before.digest !== head.digest;
            this.log.debug(`Newer-image check of ${tag}: ${head.digest}`);
          } else if (head === 'not-found') {
            await this.store.set(tag, { checkedAt: this.now(), unknown: true });
            changed = !before || !('unknown' in before);
            this.log.debug(`Newer-image check of ${tag}: the registry has no such tag (HTTP 404)`);
          } else {
            this.failedAt.set(tag, this.now());
            this.log.debug(`Newer-image check of ${tag}: the registry gave no digest for a HEAD`);
          }
        } catch (e) {
          this.failedAt.set(tag, this.now());
          this.log.debug(`Newer-image check of ${tag} failed: ${(e as Error).message}`);
        }
      })().finally(() => this.running.delete(tag));
      this.running.set(tag, run);
      await run;
      return changed;
    }
    await run;
    return false;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
