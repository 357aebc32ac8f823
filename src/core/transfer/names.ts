import { StowageError } from '../errors';
import { formatReference, parseReference } from '../reference';
import type { Descriptor, Store } from '../store';

/**
 * Finds the cached reference a user means: `alpine:3` → `docker.io/library/alpine:3`; a name
 * recorded verbatim (an imported archive's `v1`) also matches; `repo@digest` matches any
 * reference to that digest.
 */
export async function resolveCached(
  store: Store,
  input: string,
): Promise<{ name: string; descriptor: Descriptor }> {
  const refs = await store.listReferences();
  const exact = refs.find((r) => r.name === input);
  if (exact) return exact;
  let normalised: string | undefined;
  try {
    const ref = parseReference(input);
    normalised = formatReference(ref);
    const hit = refs.find((r) => r.name === normalised);
    if (hit) return hit;
    if (ref.digest) {
      const byDigest = refs.find((r) => r.descriptor.digest === ref.digest);
      if (byDigest) return { name: normalised, descriptor: byDigest.descriptor };
    }
  } catch {
    // Not a reference: only an exact name could have matched.
  }
  throw new StowageError(
    'NOT_CACHED',
    `${normalised ?? input} is not in the cache (${store.dir}).`,
    `Pull it first (stowage pull ${input}), or list what is cached with stowage ls.`,
  );
}
