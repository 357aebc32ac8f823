import type { StowageError } from '../../core/errors';
import { formatBytes } from '../../core/format';
import { familiarReference, parsePullableReference, type Reference } from '../../core/reference';
import type { ExportResult } from '../../core/transfer/export';
import type { PullImageArgs } from '../feature';
import { type FailureAction, notificationText } from './failure';

/** The short form users write (alpine:3.20); a name that does not parse (an archive's) as text. */
export function label(reference: string): string {
  try {
    return familiarReference(parsePullableReference(reference) as Reference);
  } catch {
    return notificationText(reference);
  }
}

/**
 * The Import dialog's file types: OCI and docker archives, gzip-compressed ones too (the engine
 * decompresses them as docker load does). The first is the one a desktop dialog starts with.
 * `gz`, not `tar.gz`: macOS's dialog matches a name's last extension only (microsoft/vscode#94277).
 */
export const ARCHIVE_FILTERS: Record<string, string[]> = {
  'Image archives (.tar, .tar.gz, .tgz)': ['tar', 'gz', 'tgz'],
  'All files': ['*'],
};

/** Whether a pull could fetch this cached name (an archive may have named an image otherwise). */
function pullable(name: string): boolean {
  try {
    parsePullableReference(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * The message after an export: where, how big, and per image what the CLI's summary says too —
 * the platforms in the archive and the one `docker load` takes (it loads one per name), and
 * those left out because the cache lacks them, with a button that pulls them.
 */
export function exportSummary(
  result: ExportResult,
  file: string,
): { text: string; actions: FailureAction[] } {
  const n = result.images.length;
  const parts = [
    `Exported ${n} image${n === 1 ? '' : 's'} to ${file} (${formatBytes(result.archiveBytes)}).`,
  ];
  for (const img of result.images) {
    const docker =
      img.platforms.length > 1 && img.dockerPlatform ? ` (docker load takes ${img.dockerPlatform})` : '';
    const left = img.missingPlatforms.length
      ? `; left out, not cached: ${img.missingPlatforms.join(', ')}`
      : '';
    if (docker || left) parts.push(`${label(img.name)} holds ${img.platforms.join(', ')}${docker}${left}.`);
  }
  const incomplete = result.images.filter((i) => i.missingPlatforms.length && pullable(i.name));
  if (result.images.some((i) => i.missingPlatforms.length)) {
    parts.push('For a complete archive, pull all platforms, then export again.');
  }
  const args: PullImageArgs[] = incomplete.map((i) => ({ reference: i.name, allPlatforms: true }));
  return {
    text: notificationText(parts.join(' ')),
    actions: args.length ? [{ title: 'Pull All Platforms', command: 'stowage.pullImage', args: [args] }] : [],
  };
}

/** A push the cache could not complete: the image named in the cache, where to, and what it holds whole. */
export interface PartialPush {
  source: string;
  destination: string;
  /** Platforms of the index the cache holds, any of which can be pushed alone. */
  cached: readonly string[];
}

/**
 * A push refused because the cache holds only part of an index (the core's NOT_CACHED, whose
 * hint names CLI flags): its message with what the editor can do instead, as buttons that run
 * stowage.pushImage again — after a pull of every platform, or for one platform.
 */
export function partialPushFailure(
  error: StowageError,
  push: PartialPush,
): { text: string; actions: FailureAction[] } {
  const { source, destination } = push;
  const one = push.cached[0];
  const actions: FailureAction[] = [];
  const ways: string[] = [];
  if (pullable(source)) {
    const args: [PullImageArgs, string] = [{ reference: source, allPlatforms: true }, destination];
    actions.push({ title: 'Pull All Platforms and Push', command: 'stowage.pushImage', args });
    ways.push(
      'Pull All Platforms and Push fetches the rest (every platform and attestation the index lists), then pushes',
    );
  }
  if (one) {
    const args: [PullImageArgs, string] = [{ reference: source, platform: one }, destination];
    actions.push({ title: `Push ${one} Only`, command: 'stowage.pushImage', args });
    ways.push(`Push ${one} Only pushes that platform’s image alone`);
  }
  actions.push({ title: 'Show Log', command: 'stowage.showLog' });
  let hint = ways.join('; ');
  if (!pullable(source))
    hint = hint
      ? `${hint}, or import an archive that holds all of it`
      : 'Import an archive that holds all of it';
  return { text: notificationText(`${error.message} ${hint}.`), actions };
}
