import type { Digest } from '../digest';
import { isStowageError, pullCommand, StowageError } from '../errors';
import type { Descriptor, Lease, Store } from '../store';

/** The image an export or a push reads: its name and what the name pointed at when it began. */
export interface HeldImage {
  name: string;
  /** As typed, for the hint (`stowage pull INPUT`). */
  input: string;
  descriptor: Descriptor;
}

/**
 * Keeps the blobs an export or a push is about to read from a concurrent gc (a `stowage rm` then
 * `gc`, VS Code's Remove Image), as docker save keeps its layers: a lease, as a pull takes. A cache
 * Stowage may not write to (read-only) is read without one.
 */
export async function holdBlobs(store: Store, digests: Iterable<Digest>): Promise<Lease> {
  try {
    return await store.lease([...new Set(digests)]);
  } catch (e) {
    if (isStowageError(e, 'CACHE_WRITE')) return { release: async () => {} };
    throw e;
  }
}

/**
 * For a blob found missing after the plan was made: if no cached name points at its image any
 * more, the image was removed meanwhile (an rm + gc that ran before the lease), and that is the
 * error to report instead of a missing file. Undefined when every image is still named.
 */
export async function removedMeanwhile(
  store: Store,
  images: readonly HeldImage[],
  doing: string,
): Promise<StowageError | undefined> {
  const named = new Set((await store.listReferences()).map((r) => r.descriptor.digest));
  const gone = images.find((i) => !named.has(i.descriptor.digest));
  if (!gone) return undefined;
  return new StowageError(
    'NOT_CACHED',
    `${gone.name} was removed from the cache (${store.dir}) while it was being ${doing} (stowage rm and gc, or Remove Image in VS Code).`,
    `Pull it again (${pullCommand(gone.input)}) and retry.`,
  );
}
