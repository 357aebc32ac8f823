/**
 * Typed errors. Every error Stowage raises on purpose is a StowageError: a stable `code` for
 * programs (the extension picks actions by it) and a message a user can act on.
 */
export type ErrorCode =
  | 'INVALID_REFERENCE'
  | 'INVALID_DIGEST'
  | 'INVALID_PLATFORM'
  | 'RESERVED_NAME'
  | 'UNAUTHORIZED'
  /** A credential source failed: malformed docker config.json, a broken credential helper. */
  | 'CREDENTIALS'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'TOO_MANY_REQUESTS'
  | 'REGISTRY_ERROR'
  | 'NETWORK'
  | 'TLS'
  /** The proxy in between refused, asked for credentials, could not be reached or is misconfigured. */
  | 'PROXY'
  | 'INSECURE_REFUSED'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'MANIFEST_INVALID'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TOO_LARGE'
  | 'NO_MATCHING_PLATFORM'
  | 'NOT_CACHED'
  | 'CACHE_CORRUPT'
  /** The cache's disk refused a write: full, read-only, no permission, failing. */
  | 'CACHE_WRITE'
  | 'LOCK_TIMEOUT'
  | 'ABORTED'
  | 'STALLED'
  | 'OFFLINE'
  | 'DOCKERFILE'
  | 'USAGE';

export class StowageError extends Error {
  override name = 'StowageError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** What the user can do about it, when there is something useful to say. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Message plus hint, for one-line reporting (CLI stderr, notifications). */
  get detail(): string {
    return this.hint ? `${this.message} ${this.hint}` : this.message;
  }
}

/**
 * The commands hints name, for both front ends: the CLI's, then the editor's (the same core errors
 * reach a terminal and a VS Code notification).
 */
export function pullCommand(input: string): string {
  return `stowage pull ${input}, or Pull Image in VS Code`;
}
export const GC_COMMAND = 'stowage gc, or Stowage: Clean Up Cache in VS Code';

export function isStowageError(e: unknown, code?: ErrorCode): e is StowageError {
  return e instanceof StowageError && (code === undefined || e.code === code);
}

/** The error an AbortSignal carries, as a StowageError. */
export function abortError(signal?: AbortSignal): StowageError {
  const reason = signal?.reason;
  if (reason instanceof StowageError) return reason;
  return new StowageError('ABORTED', 'The operation was cancelled.', undefined, { cause: reason });
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * `work`, or the abort as soon as `signal` fires: for operations that only notice a cancel late
 * (undici's request while its connection is still being made: up to the connect timeout). What
 * `work` yields after the abort goes to `late` (to release it).
 */
export function abortable<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  late?: (value: T) => void,
): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) late?.(value);
        else resolve(value);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
