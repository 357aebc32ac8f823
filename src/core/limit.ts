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
  /** What a slot does once no item is left for it (all `limit` slots run, however few the items). */
  idle?: (signal: AbortSignal) => Promise<void>,
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
    if (idle && !failed) {
      try {
        await idle(inner.signal);
      } catch (e) {
        if (!failed) {
          failed = { error: e };
          inner.abort(e);
        }
      }
    }
  };
  const slots = idle ? Math.max(1, limit) : Math.max(1, Math.min(limit, items.length));
  try {
    await Promise.all(Array.from({ length: slots }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (failed) throw failed.error;
}
