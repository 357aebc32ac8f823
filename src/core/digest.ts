import { StowageError } from './errors';

/** Digest algorithms the store accepts, with the hex length each must have. */
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export type Digest = `${'sha256' | 'sha512'}:${string}`;

const SHAPE = /^([a-z0-9]+):([a-f0-9]+)$/;

/**
 * Validates a digest string strictly: a known algorithm and lowercase hex of the right length.
 * This is what keeps a hostile manifest from naming a path outside the store (`sha256:../x`).
 */
export function parseDigest(
  value: unknown,
  context = 'digest',
): { algorithm: 'sha256' | 'sha512'; hex: string } {
  if (typeof value !== 'string') {
    throw new StowageError('INVALID_DIGEST', `Invalid ${context}: expected a string like sha256:<64 hex>.`);
  }
  const m = SHAPE.exec(value);
  const algorithm = m?.[1];
  const expected = algorithm ? HEX_LENGTH[algorithm] : undefined;
  if (!m || !algorithm || expected === undefined || m[2]!.length !== expected) {
    const shown = value.length > 100 ? `${value.slice(0, 100)}…` : value;
    throw new StowageError(
      'INVALID_DIGEST',
      `Invalid ${context} "${shown}": expected sha256:<64 hex> or sha512:<128 hex>.`,
    );
  }
  return { algorithm: algorithm as 'sha256' | 'sha512', hex: m[2]! };
}

export function isDigest(value: unknown): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function assertDigest(value: unknown, context?: string): Digest {
  parseDigest(value, context);
  return value as Digest;
}
