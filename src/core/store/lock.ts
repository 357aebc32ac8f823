import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { abortError, StowageError, throwIfAborted } from '../errors';
import { makeDir, readUpTo } from './fsutil';

/**
 * A cross-process lock: an exclusive file (`open(…, 'wx')`) holding who took it. Works between
 * VS Code windows and CLI runs sharing one cache. A holder refreshes the file's mtime while it
 * holds the lock, so a lock is stale when its process is gone from this host (kill -9; its pid
 * free, or taken by a process started since: Linux tells) or when it has not been refreshed for
 * `staleMs` (another host, a frozen process). On a full disk the file is created empty (see
 * createWithContent).
 */
export interface LockOptions {
  signal?: AbortSignal;
  /** Give up with LOCK_TIMEOUT after this long; undefined waits until the signal aborts. */
  timeoutMs?: number;
  /** A lock not refreshed for this long is stale. Default 2 minutes. */
  staleMs?: number;
  /** What the lock protects, for error messages ("the cache index", "blob sha256:…"). */
  what?: string;
}

export interface LockOwner {
  pid: number;
  hostname: string;
  createdAt: string;
  token: string;
  /** Which process had the pid (Linux: boot id and start time): pids are reused. */
  start?: string;
}

export const DEFAULT_STALE_MS = 120_000;
/** An owner record is a few hundred bytes: anything larger is not one. */
const MAX_OWNER_BYTES = 64 * 1024;
const MIN_POLL_MS = 10;
const MAX_POLL_MS = 500;

/**
 * Tokens of the locks and leases this process holds: a file naming this pid with any other token
 * was left by an earlier process that had the same pid (a container restarted, a reboot).
 */
const held = new Set<string>();

/** A new owner record for a lock or a lease, its token counted as held until {@link forgetOwner}. */
export async function newOwner(): Promise<LockOwner> {
  const token = randomBytes(12).toString('hex');
  held.add(token);
  ownStart ??= processStart(process.pid);
  const start = await ownStart;
  return {
    pid: process.pid,
    hostname: hostname(),
    createdAt: new Date().toISOString(),
    token,
    ...(start ? { start } : {}),
  };
}

export function forgetOwner(token: string): void {
  held.delete(token);
}

export class FileLock {
  private heartbeat?: NodeJS.Timeout;
  private released = false;

  private constructor(
    readonly path: string,
    readonly token: string,
    /** Created empty (full disk): recognised by its inode, as it holds no token. */
    private readonly bareIno: number | undefined,
    staleMs: number,
  ) {
    // Refresh well inside the stale window (an empty lock's is short); unref'd so a held lock never
    // keeps node alive.
    this.heartbeat = setInterval(
      () => {
        const now = new Date();
        fs.utimes(this.path, now, now).catch(() => {});
      },
      Math.max(50, Math.floor(Math.min(staleMs, ORPHAN_MS) / 4)),
    );
    this.heartbeat.unref();
  }

  /** Waits (polling with backoff) until the lock is ours. */
  static async acquire(path: string, options: LockOptions = {}): Promise<FileLock> {
    const staleMs = options.staleMs ?? DEFAULT_STALE_MS;
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    let delay = MIN_POLL_MS;
    for (;;) {
      throwIfAborted(options.signal);
      const owner = await newOwner();
      try {
        const bareIno = await createWithContent(path, JSON.stringify(owner));
        return new FileLock(path, owner.token, bareIno, staleMs);
      } catch (e) {
        forgetOwner(owner.token);
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          // The folder holding the lock was removed (a finished ingest cleans up): recreate it.
          await makeDir(dirname(path), 0o700);
          continue;
        }
        if (code !== 'EEXIST') throw e;
      }
      if (await breakIfStale(path, staleMs)) continue;
      if (deadline !== undefined && Date.now() >= deadline) {
        const holder = await readOwner(path);
        throw new StowageError(
          'LOCK_TIMEOUT',
          `Timed out waiting for the lock on ${options.what ?? path}` +
            (holder ? ` held by process ${holder.pid} on ${holder.hostname}.` : '.'),
          `If no other Stowage process is running, delete ${path}.`,
        );
      }
      const wait = Math.min(delay, deadline === undefined ? delay : Math.max(1, deadline - Date.now()));
      await sleep(wait * (0.75 + Math.random() * 0.5), options.signal);
      delay = Math.min(MAX_POLL_MS, delay * 1.5);
    }
  }

  /** Releases the lock if it is still ours (a peer may have broken it as stale). Idempotent. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.heartbeat);
    const ours =
      this.bareIno === undefined
        ? (await readOwner(this.path))?.token === this.token
        : await fs.stat(this.path).then(
            (st) => st.ino === this.bareIno && st.size === 0,
            () => false,
          );
    try {
      if (ours) await fs.rm(this.path, { force: true });
    } finally {
      // Only once the file is gone: until then a waiter here must still see it as held.
      forgetOwner(this.token);
    }
  }
}

export async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const bytes = await readUpTo(path, MAX_OWNER_BYTES);
    const parsed = JSON.parse(bytes?.toString('utf8') ?? '') as Partial<LockOwner>;
    if (
      typeof parsed.pid === 'number' &&
      typeof parsed.hostname === 'string' &&
      typeof parsed.token === 'string'
    ) {
      return parsed as LockOwner;
    }
  } catch {
    // Missing, or caught between create and write: treated as held until it ages out.
  }
  return undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when a lock file's holder is gone: dead on this host, or not refreshed for staleMs. */
export async function isStale(path: string, staleMs: number): Promise<boolean> {
  let mtimeMs: number;
  try {
    mtimeMs = (await fs.stat(path)).mtimeMs;
  } catch {
    return false; // gone: the caller simply retries
  }
  if (Date.now() - mtimeMs > staleMs) return true;
  const owner = await readOwner(path);
  // Ownerless (empty: written by an older version, or where hard links are missing, and killed
  // mid-create): nobody refreshes it, and it is never that old while being written. One created
  // empty on a full disk is refreshed more often than that while held.
  if (!owner) return Date.now() - mtimeMs > Math.min(staleMs, ORPHAN_MS);
  if (owner.hostname !== hostname()) return false;
  if (owner.pid === process.pid) return !held.has(owner.token);
  if (!processAlive(owner.pid)) return true;
  // Alive, but perhaps another process that got the pid since: then its start differs.
  if (owner.start === undefined) return false;
  const start = await processStart(owner.pid);
  return start !== undefined && start !== owner.start;
}

const ORPHAN_MS = 10_000;

let bootId: Promise<string> | undefined;
let ownStart: Promise<string | undefined> | undefined;

/**
 * What tells a process from a later one with the same pid: on Linux the boot id and the start
 * time in /proc (clock ticks since boot); elsewhere nothing (undefined), and a lock whose pid was
 * reused goes stale only when it is no longer refreshed.
 */
async function processStart(pid: number): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  bootId ??= fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
    (s) => s.trim(),
    () => '',
  );
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command (which may hold spaces): the 22nd field is the start.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start && /^\d+$/.test(start) ? `${await bootId}/${start}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates `path` holding `text`, failing with EEXIST when it exists, and never leaves it empty:
 * an exclusive create followed by a write left an ownerless lock when the process was killed in
 * between, and that blocked every later pull until it aged out (2 minutes; found by the SIGKILL
 * crash suite). So the owner is written aside and hard-linked into place, which is atomic.
 *
 * On a full disk, where no byte can be written, the lock is created empty instead (an inode, no
 * data): gc must still be able to run there to free space. Returns that file's inode then. Others
 * take an empty lock for an orphan once its mtime is ORPHAN_MS old, so the holder refreshes it sooner.
 */
async function createWithContent(path: string, text: string): Promise<number | undefined> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(aside, text, { flag: 'wx', mode: 0o600 });
  } catch (e) {
    await fs.rm(aside, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw e;
    const fh = await fs.open(path, 'wx', 0o600);
    try {
      return (await fh.stat()).ino;
    } finally {
      await fh.close();
    }
  }
  try {
    await fs.link(aside, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw e;
    // No hard links on this file system: an exclusive create (a tiny window remains).
    await fs.writeFile(path, text, { flag: 'wx', mode: 0o600 });
  } finally {
    await fs.rm(aside, { force: true });
  }
  return undefined;
}

/**
 * Removes a stale lock. Breaking is itself serialised by a short-lived `.break` lock so that two
 * waiters who both saw the same stale lock cannot delete a fresh lock the faster one just took.
 */
async function breakIfStale(path: string, staleMs: number): Promise<boolean> {
  if (!(await isStale(path, staleMs))) return false;
  const breaker = `${path}.break`;
  try {
    // Empty: only its age is read, and it must be possible on a full disk.
    await fs.writeFile(breaker, '', { flag: 'wx', mode: 0o600 });
  } catch (e) {
    // Its folder is gone (a finished ingest cleans up), and the lock with it: try again.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Breaking takes milliseconds; a breaker left behind by a killed process ages out quickly.
    const age = await fs.stat(breaker).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    if (age > Math.min(staleMs, 10_000)) await fs.rm(breaker, { force: true });
    return false;
  }
  try {
    // Re-check under the breaker: the lock may have been released and re-taken meanwhile.
    if (await isStale(path, staleMs)) await fs.rm(path, { force: true });
    return true;
  } finally {
    await fs.rm(breaker, { force: true });
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
