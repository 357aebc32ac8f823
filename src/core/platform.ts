import { StowageError } from './errors';

/** An OCI platform, normalised the way containerd does. */
export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
};

/** Normalises os/arch/variant: aliases, `arm64/v8` ≡ `arm64`, `arm` defaults to v7. */
export function normalizePlatform(p: { os: string; architecture: string; variant?: string }): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  const alias = ARCH_ALIASES[architecture];
  if (alias) {
    architecture = alias.architecture;
    variant = variant ?? alias.variant;
  }
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm') {
    if (!variant) variant = 'v7';
    else if (/^\d$/.test(variant)) variant = `v${variant}`;
  }
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** Parses `os/arch[/variant]` (or a bare `arch`, meaning linux). */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.some((x) => !x || !/^[A-Za-z0-9._-]+$/.test(x)) || parts.length > 3) {
    throw new StowageError(
      'INVALID_PLATFORM',
      `Invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7.`,
    );
  }
  if (parts.length === 1) return normalizePlatform({ os: 'linux', architecture: parts[0]! });
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** Architectures whose variants are CPU levels, and the level meant when none is written. */
const LEVELS: Record<string, number> = { amd64: 1, arm: 7, arm64: 8 };

/** `v3` → 3, `v8.2` → 8.2; undefined for other spellings. */
function level(variant: string | undefined, architecture: string): number | undefined {
  if (!variant) return LEVELS[architecture];
  const m = /^v(\d+(?:\.\d+)?)$/.exec(variant);
  return m ? Number(m[1]) : undefined;
}

/**
 * How well a candidate (an index entry's platform) serves the wanted platform: 0 is exact, more is
 * a fallback, undefined is no match. Where variants are CPU levels (amd64 v1–v4, arm v5–v8, arm64
 * v8, v8.x, v9) a machine runs its own level and the ones below, never above: `linux/amd64` (v1)
 * does not take an amd64/v3 build (it could crash on an older CPU), `linux/arm` (v7) takes v7,
 * else v6, else v5, as containerd's matcher does. Other architectures: a variant must be equal,
 * and no variant wanted takes any.
 */
export function platformRank(
  wanted: Platform,
  candidate: { os: string; architecture: string; variant?: string },
): number | undefined {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return undefined;
  if (w.architecture in LEVELS) {
    const want = level(w.variant, w.architecture);
    const have = level(c.variant, c.architecture);
    if (want === undefined || have === undefined) return w.variant === c.variant ? 0 : undefined;
    return have <= want ? want - have : undefined;
  }
  if (w.variant === c.variant) return 0;
  return w.variant ? undefined : 1;
}

/** The item whose platform serves `wanted` best (the first listed on a tie), if any does. */
export function closestPlatform<T>(
  wanted: Platform,
  items: readonly T[],
  platformOf: (item: T) => { os: string; architecture: string; variant?: string } | undefined,
): T | undefined {
  let hit: T | undefined;
  let best = Number.POSITIVE_INFINITY;
  for (const item of items) {
    const p = platformOf(item);
    const rank = p ? platformRank(wanted, p) : undefined;
    if (rank !== undefined && rank < best) {
      hit = item;
      best = rank;
    }
  }
  return hit;
}

/** True when a candidate (e.g. an index entry's platform) satisfies the wanted platform. */
export function platformMatches(
  wanted: Platform,
  candidate: { os: string; architecture: string; variant?: string },
): boolean {
  return platformRank(wanted, candidate) !== undefined;
}

/** The platform of the machine running Stowage, as a Linux image would need it. */
export function hostPlatform(): Platform {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
  // Containers run Linux even on macOS and Windows hosts (in a VM), so linux is the useful default.
  return normalizePlatform({ os: 'linux', architecture: arch });
}
