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

/** True when a candidate (e.g. an index entry's platform) satisfies the wanted platform. */
export function platformMatches(
  wanted: Platform,
  candidate: { os: string; architecture: string; variant?: string },
): boolean {
  const w = normalizePlatform(wanted);
  const c = normalizePlatform(candidate);
  if (w.os !== c.os || w.architecture !== c.architecture) return false;
  // A wanted platform without a variant accepts any variant; with one, it must be equal.
  return !w.variant || w.variant === c.variant;
}

/** The platform of the machine running Stowage, as a Linux image would need it. */
export function hostPlatform(): Platform {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
  // Containers run Linux even on macOS and Windows hosts (in a VM), so linux is the useful default.
  return normalizePlatform({ os: 'linux', architecture: arch });
}
