/** Retry policy: bounded attempts, jittered exponential backoff, Retry-After honoured. */
export interface RetryPolicy {
  /** Attempts per endpoint, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 };

/** Statuses worth another try: timeouts, rate limits, server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501);
}

const TRANSIENT = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Connection errors that may succeed on a new attempt (not refusals or TLS failures). */
export function isTransientNetworkError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return !!code && TRANSIENT.has(code);
}

const TIMEOUTS = new Set(['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);

/** No connection, or no answer on it, within the time allowed. */
export function isTimeout(e: unknown): boolean {
  return TIMEOUTS.has((e as { code?: string })?.code ?? '');
}

/** Seconds or an HTTP date → milliseconds, capped; undefined when absent or unparsable. */
export function parseRetryAfter(
  value: string | undefined,
  now = Date.now(),
  capMs = 60_000,
): number | undefined {
  if (!value) return undefined;
  const s = Number(value.trim());
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, ms), capMs);
}

/** Delay before attempt `n` (1-based retry number), full jitter around the exponential step. */
export function backoffDelay(n: number, policy: RetryPolicy, random = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/** Resolves after `ms`, or rejects early when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
