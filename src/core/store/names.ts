import { isDigest } from '../digest';
import { pullCommand, StowageError } from '../errors';
import { formatReference, parseReference } from '../reference';
import type { Descriptor } from './manifest';
import type { Store } from './store';

/** Longest name the cache records (index.json is read whole: a name is not a place for data). */
const MAX_NAME = 1024;

/**
 * Whether the cache may record `name`: not blank, not huge, no white space and no control
 * characters (C0, DEL, C1: a terminal acts on them when the name is listed, and so may a log).
 */
export function isCacheName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= MAX_NAME &&
    !/[\s\0-\x1f\x7f-\x9f]/.test(name)
  );
}

/**
 * Finds the cached image a user means, as docker finds a local image: a name recorded verbatim
 * (an imported archive's `v1`); `alpine:3` → `docker.io/library/alpine:3`; `repo@digest` → any
 * reference to that digest (named as typed); a bare `sha256:…` digest → the reference to it.
 * Undefined when nothing matches.
 */
export async function findCached(
  store: Store,
  input: string,
): Promise<{ name: string; descriptor: Descriptor } | undefined> {
  const refs = await store.listReferences();
  const exact = refs.find((r) => r.name === input);
  if (exact) return exact;
  if (isDigest(input)) return refs.find((r) => r.descriptor.digest === input);
  try {
    const ref = parseReference(input);
    const normalised = formatReference(ref);
    const hit = refs.find((r) => r.name === normalised);
    if (hit) return hit;
    if (ref.digest) {
      const byDigest = refs.find((r) => r.descriptor.digest === ref.digest);
      if (byDigest) return { name: normalised, descriptor: byDigest.descriptor };
    }
  } catch {
    // Not a reference: only an exact name could have matched.
  }
  return undefined;
}

/** {@link findCached}, or NOT_CACHED saying what to do (INVALID_REFERENCE for what is no name). */
export async function resolveCached(
  store: Store,
  input: string,
): Promise<{ name: string; descriptor: Descriptor }> {
  const found = await findCached(store, input);
  if (found) return found;
  throw notCached(input, store.dir);
}

/**
 * The error for `input` (as the user typed it) not found in the cache at `dir`: NOT_CACHED with
 * the pull that brings it, or, for what no pull could bring (`bad ref!`), INVALID_REFERENCE.
 */
export function notCached(input: string, dir: string): StowageError {
  if (isDigest(input)) {
    return new StowageError(
      'NOT_CACHED',
      `No cached image has the digest ${input} (${dir}).`,
      'List what is cached with stowage ls.',
    );
  }
  const name = formatReference(parseReference(input));
  return new StowageError(
    'NOT_CACHED',
    `${name} is not in the cache (${dir}).`,
    `Pull it first (${pullCommand(input)}), or list what is cached with stowage ls.`,
  );
}
