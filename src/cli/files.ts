// File-system failures in words. A Node system error (code, syscall, path) is an ordinary failure
// (a missing file, a full disk, a read-only folder), not a bug: the CLI prints one line naming the
// path and what went wrong, and says what the path was for when the command told it (`explainPath`).
import { basename, dirname, resolve, sep } from 'node:path';

/** A file-system failure already put in words: one line, exit 1. */
export class FileError extends Error {}

export function isSystemError(e: unknown): e is NodeJS.ErrnoException & { syscall: string } {
  const x = e as NodeJS.ErrnoException | undefined;
  return typeof x?.code === 'string' && /^E[A-Z]+$/.test(x.code) && typeof x.syscall === 'string';
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EEXIST: 'it already exists',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the disk',
  EDQUOT: 'the disk quota is used up',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EBUSY: 'it is busy',
  EIO: 'input/output error',
};

const VERBS: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create the folder',
  rename: 'rename',
  unlink: 'remove',
  rmdir: 'remove',
  rm: 'remove',
  scandir: 'list',
  opendir: 'list',
  stat: 'access',
  lstat: 'access',
  access: 'access',
  copyfile: 'copy',
  fsync: 'write',
  ftruncate: 'write',
};

interface Explained {
  matches(path: string): boolean;
  /** What the command does with the path, e.g. "cannot use /x as the cache". */
  doing: string;
  /** Wording of this use for some codes (e.g. EEXIST on the cache: it is a file). */
  reasons: Record<string, string>;
}

/** Paths this run's command has explained (one command per process). */
const explained: Explained[] = [];

/**
 * Says what `path` is for: a system error about it (or a file under it, or one `matches` accepts)
 * then reads "`doing`: reason".
 */
export function explainPath(
  path: string,
  doing: string,
  reasons: Record<string, string> = {},
  matches: (p: string) => boolean = under(path),
): void {
  explained.unshift({ matches, doing, reasons });
}

function under(path: string): (p: string) => boolean {
  const root = resolve(path);
  return (p) => p === root || p.startsWith(root + sep);
}

/** The temporary files written next to `file` (.NAME.*.partial, then renamed into place) match too. */
export function besideFile(file: string): (p: string) => boolean {
  const full = resolve(file);
  const prefix = `${dirname(full)}${sep}.${basename(full)}.`;
  return (p) => p === full || (p.startsWith(prefix) && p.endsWith('.partial'));
}

/** One line for a system error (or a FileError's own message). */
export function systemErrorText(e: FileError | (NodeJS.ErrnoException & { syscall: string })): string {
  if (e instanceof FileError) return e.message;
  const code = e.code ?? '';
  const known = e.path === undefined ? undefined : explained.find((x) => x.matches(resolve(e.path!)));
  if (known) return `${known.doing}: ${known.reasons[code] ?? REASONS[code] ?? e.message}`;
  const why = REASONS[code] ?? e.message;
  return e.path === undefined
    ? `${e.syscall} failed: ${why}`
    : `cannot ${VERBS[e.syscall] ?? e.syscall} ${e.path}: ${why}`;
}
