import { throwIfAborted } from './errors';

/**
 * Runs `fn` over items with at most `limit` in flight. The first failure cancels the transfers
 * still running (through the signal `fn` receives) and is the one reported.
 */
export async function forEachLimit<T>(
  items: readonly T[],
  limit: number,
  signal: AbortSignal | undefined,
  fn: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const inner = new AbortController();
  const onAbort = () => inner.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        throwIfAborted(inner.signal);
        await fn(item, inner.signal);
      } catch (e) {
        if (!failed) {
          failed = { error: e };
          inner.abort(e);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failed) throw failed.error;
}
