// Shared by the reliability suites: counts (reduced in `npm test`, full with STOWAGE_SOAK=1), a
// per-operation guard that turns a hang into a test failure, and cache checks.
import { StowageError } from '../../src/core/errors';
import { type Platform, parsePlatform } from '../../src/core/platform';
import { type Store, walkImage } from '../../src/core/store';
import { HangError } from '../support/cli';
import { verifyAllBlobs } from '../support/engine';

export const SOAK = process.env.STOWAGE_SOAK === '1';

/** `soak` under STOWAGE_SOAK=1, else `env` override, else `reduced`. */
export function count(name: string, reduced: number, soak: number): number {
  const override = Number(process.env[name]);
  if (Number.isSafeInteger(override) && override > 0) return override;
  return SOAK ? soak : reduced;
}

/** Rejects with a plain Error (not a StowageError) when `p` takes longer than `ms`: a hang. */
export async function guard<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

export function isTyped(e: unknown): e is StowageError {
  return e instanceof StowageError;
}

/**
 * The cache invariants: every blob hashes to its name, and every reference in index.json reaches
 * only blobs that are present (for the platforms pulled). Returns problems found (empty: consistent) and the blob count.
 */
export async function checkCache(
  store: Store,
  platforms: readonly Platform[] = [parsePlatform('linux/amd64')],
): Promise<{ problems: string[]; blobs: number }> {
  const problems: string[] = [];
  let blobs = 0;
  try {
    blobs = await verifyAllBlobs(store);
  } catch (e) {
    problems.push(String((e as Error).message));
  }
  for (const { name, descriptor } of await store.listReferences()) {
    try {
      const walk = await walkImage(store, descriptor, { platforms });
      for (const b of walk.missing) problems.push(`${name}: ${b.mediaType} ${b.digest} is missing`);
    } catch (e) {
      problems.push(`${name}: ${(e as Error).message}`);
    }
  }
  return { problems, blobs };
}
