// What the newer-image check found, and how it is said (diagnostics, hovers, tree tooltips).
// No vscode import: unit-tested.
import { familiarReference, parseReference } from '../../core/reference';

/** A newer digest for a tag than the one pinned or cached. */
export interface Newer {
  /** `registry/repository:tag` */
  tag: string;
  /** What the tag points at now (as last checked). */
  current: string;
  /** The pinned digest, else the cached one. */
  known: string;
  pinned: boolean;
}

/** A tag the registry answered 404 for when last checked, and nothing pinned or cached for it. */
export interface UnknownTag {
  /** `registry/repository:tag` */
  tag: string;
  checkedAt: number;
}

/** sha256:0123456789ab… */
export function shortDigest(digest: string): string {
  return digest.replace(/^(sha256:[0-9a-f]{12})[0-9a-f]+$/, '$1…');
}

/** "A newer image is available: docker.io/library/alpine:3.20 now points to sha256:… (the cached one is sha256:…)." */
export function newerText(newer: Newer): string {
  const what = newer.pinned ? 'the pinned' : 'the cached';
  return `A newer image is available: ${newer.tag} now points to ${shortDigest(newer.current)} (${what} one is ${shortDigest(newer.known)}).`;
}

/** "The registry does not have alpine:3.99: docker.io answered 404 Not Found for that tag when last checked." */
export function unknownTagText(unknown: UnknownTag): string {
  let name = unknown.tag;
  let registry = 'it';
  try {
    const ref = parseReference(unknown.tag);
    name = familiarReference(ref);
    registry = ref.registry;
  } catch {
    // Recorded from a parsed reference, so it parses; the raw name reads well enough otherwise.
  }
  return `The registry does not have ${name}: ${registry} answered 404 Not Found for that tag when last checked.`;
}

/** What Check for Newer Images Now says it found. */
export function checkSummary(checked: number, newer: readonly string[], unknown: readonly string[]): string {
  const tags = `Checked ${checked} tag${checked === 1 ? '' : 's'}`;
  if (!newer.length && !unknown.length) return `${tags}: the cached and pinned images are current.`;
  const parts = [`${tags}.`];
  if (newer.length) {
    parts.push(
      `A newer image is in the registry for ${newer.join(', ')}: "Pull the newer image" is offered on ${newer.length === 1 ? 'its FROM line' : 'their FROM lines'}.`,
    );
  }
  if (unknown.length) {
    parts.push(
      `The registry does not have ${unknown.join(', ')}: see Problems, where "Browse Tags…" lists the tags it has.`,
    );
  }
  return parts.join(' ');
}
