import type { PullProgress } from '../../core/pull/pull';

/** "45.2/120.0 MB": both numbers in the unit of the total, as download dialogs show them. */
export function formatBytePair(done: number, total: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  let scale = 1;
  while (total / scale >= 1000 && i < units.length - 1) {
    scale *= 1000;
    i++;
  }
  const f = (n: number) => (i === 0 ? String(n) : (n / scale).toFixed(1));
  return `${f(done)}/${f(total)} ${units[i]}`;
}

/** "38 MB/s", "512 kB/s" (whole numbers: a rate that flickers decimals is unreadable). */
export function formatRate(bytesPerSecond: number): string {
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s'];
  let v = bytesPerSecond;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/**
 * "layer 3/7 · 45.2/120.0 MB · 38 MB/s" (layers done of all; the rate when known). Every byte in
 * and layers still to count: they are being flushed and verified ("· verifying").
 */
export function progressMessage(p: PullProgress, bytesPerSecond?: number): string {
  const parts = [`layer ${p.layersDone}/${p.layersTotal}`, formatBytePair(p.bytesDone, p.bytesTotal)];
  if (p.bytesDone >= p.bytesTotal && p.layersDone < p.layersTotal) parts.push('verifying');
  else if (bytesPerSecond !== undefined && bytesPerSecond > 0) parts.push(formatRate(bytesPerSecond));
  return parts.join(' · ');
}

/**
 * Transfer rate over the last few seconds (a whole-pull average hides stalls; an instant one
 * jumps). Feed it (time, bytes) samples; bytes may be summed over several pulls.
 */
export class RateMeter {
  private samples: { at: number; bytes: number }[] = [];

  constructor(private readonly windowMs = 3000) {}

  add(at: number, bytes: number): void {
    this.samples.push({ at, bytes });
    while (this.samples.length > 2 && at - this.samples[0]!.at > this.windowMs) this.samples.shift();
  }

  /** Bytes per second, or undefined before there are two samples apart in time. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at <= first.at) return undefined;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
}
