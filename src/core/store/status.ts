import { type Platform, platformMatches } from '../platform';
import { walkImage } from './image';
import type { Descriptor } from './manifest';
import { isJsonDocumentMediaType } from './media-types';
import type { Store } from './store';

export type CacheState = 'cached' | 'partial' | 'missing';

export interface ImageStatus {
  state: CacheState;
  /** What the cache records for the name. */
  descriptor?: Descriptor;
  /** Compressed bytes of configs and layers present for the platform. */
  bytes: number;
  /** Platforms complete in the cache for this name. */
  platforms: string[];
}

/**
 * Is `name` cached for `platform`? Reads only the local store (no network): cached when every
 * blob the platform needs is there, partial when the reference exists but some are missing.
 */
export async function imageStatus(store: Store, name: string, platform: Platform): Promise<ImageStatus> {
  const descriptor = await store.getReference(name);
  if (!descriptor) return { state: 'missing', bytes: 0, platforms: [] };
  try {
    const walk = await walkImage(store, descriptor, { platforms: [platform] });
    const present = walk.blobs.filter(
      (b) => !walk.missing.includes(b) && !isJsonDocumentMediaType(b.mediaType),
    );
    const bytes = present.reduce((n, b) => n + b.size, 0);
    const matched = walk.unmatchedPlatforms.length === 0;
    const forPlatform = walk.manifests.every((m) => !m.platform || platformMatches(platform, m.platform));
    const state: CacheState = walk.missing.length === 0 && matched && forPlatform ? 'cached' : 'partial';
    return { state, descriptor, bytes, platforms: walk.platforms };
  } catch {
    return { state: 'partial', descriptor, bytes: 0, platforms: [] };
  }
}
