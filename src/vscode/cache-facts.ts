import type * as vscode from 'vscode';
import type { ImageUse } from '../core/dockerfile';
import { closestPlatform, parsePlatform } from '../core/platform';
import { formatReference, type Reference } from '../core/reference';
import {
  type ImageInspection,
  type ImageStatus,
  imageStatus,
  inspectImage,
  type PlatformInspection,
  type Store,
} from '../core/store';
import type { Stowage } from './stowage';

/** What the cache holds for one image use: its status for the platform, and the inspection. */
export interface ImageFacts {
  /** The name the cache records (the reference as written, else one naming the same digest). */
  name: string;
  status: ImageStatus;
  inspection?: ImageInspection;
  /** The inspection's entry for the use's platform (or the only one of a single-platform image). */
  platform?: PlatformInspection;
}

/** The reference without its digest: the name a tag's cached digest is recorded under. */
export function tagName(ref: Reference): string | undefined {
  return ref.tag
    ? formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag })
    : undefined;
}

/**
 * Reads what the cache holds (no network), memoised per (name, platform) and dropped whenever the
 * cache changes, so a warm hover or CodeLens costs a map lookup.
 */
export class CacheFacts implements vscode.Disposable {
  private facts = new Map<string, Promise<ImageFacts>>();
  private digests = new Map<string, Promise<string | undefined>>();
  private readonly sub: vscode.Disposable;

  constructor(private readonly stowage: Stowage) {
    this.sub = stowage.onDidChangeCache(() => this.clear());
  }

  clear(): void {
    this.facts = new Map();
    this.digests = new Map();
  }

  /** Cache facts for a resolved use; undefined when it has no reference. */
  forUse(use: ImageUse): Promise<ImageFacts> | undefined {
    if (!use.reference || !use.ref) return undefined;
    const key = `${use.ref}\0${use.platform}`;
    let p = this.facts.get(key);
    if (!p) {
      p = this.read(use.reference, use.platform);
      this.facts.set(key, p);
      // A failed read (cache folder unreadable) is retried on the next request.
      p.catch(() => this.facts.delete(key));
    }
    return p;
  }

  /** The top digest the cache records for `name` (a tag's current digest, as last pulled). */
  recordedDigest(name: string): Promise<string | undefined> {
    let p = this.digests.get(name);
    if (!p) {
      p = this.stowage
        .getStore()
        .then((s) => s.getReference(name))
        .then((d) => d?.digest);
      this.digests.set(name, p);
      p.catch(() => this.digests.delete(name));
    }
    return p;
  }

  dispose(): void {
    this.sub.dispose();
    this.clear();
  }

  private async read(ref: Reference, platformText: string): Promise<ImageFacts> {
    const store = await this.stowage.getStore();
    const name = await cachedName(store, ref);
    const platform = parsePlatform(platformText);
    const status = await imageStatus(store, name, platform);
    if (status.state === 'missing') return { name, status };
    const inspection = await inspectImage(store, name).catch(() => undefined);
    const entries = inspection?.platforms ?? [];
    const match =
      closestPlatform(platform, entries, (p) => p.platform) ??
      (entries.length === 1 && !entries[0]?.platform ? entries[0] : undefined);
    return { name, status, ...(inspection ? { inspection } : {}), ...(match ? { platform: match } : {}) };
  }
}

/**
 * The name under which the cache holds a reference: as written; for `name:tag@digest` also any
 * name recorded with that digest (a pull by tag that later got pinned names the same image).
 */
async function cachedName(store: Store, ref: Reference): Promise<string> {
  const name = formatReference(ref);
  if (!ref.digest || (await store.getReference(name))) return name;
  const same = (await store.listReferences()).find((r) => r.descriptor.digest === ref.digest);
  return same?.name ?? name;
}
