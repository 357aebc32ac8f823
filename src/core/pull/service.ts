import { StowageError } from '../errors';
import { formatPlatform, type Platform } from '../platform';
import { formatReference, parsePullableReference, type Reference } from '../reference';
import type { RegistryClient } from '../registry/client';
import type { Store } from '../store';
import { type PullEvent, type PullOptions, type PullProgress, type PullResult, pull } from './pull';

export interface ServicePullOptions {
  platforms?: readonly Platform[];
  allPlatforms?: boolean;
  alwaysPull?: boolean;
  /** Cancels this caller's interest; the transfer stops when every caller has cancelled. */
  signal?: AbortSignal;
  onEvent?: (event: PullEvent) => void;
}

export interface ActivePull {
  reference: string;
  progress?: PullProgress;
  /** True while waiting for a free slot. */
  queued: boolean;
}

export type ServiceEvent =
  | { type: 'started'; reference: string }
  | { type: 'progress'; reference: string; progress: PullProgress }
  | { type: 'finished'; reference: string; result?: PullResult; error?: unknown }
  /** The cache changed (a pull committed, a reference was removed, gc ran). */
  | { type: 'cacheChanged' };

interface Job {
  reference: string;
  promise: Promise<PullResult>;
  controller: AbortController;
  callers: number;
  listeners: Set<(e: PullEvent) => void>;
  state: ActivePull;
}

export interface PullServiceOptions {
  store: () => Promise<Store>;
  client: () => RegistryClient;
  /** Images pulled at once; further pulls wait in a queue. Default 2. */
  concurrency?: number;
  /** Blobs downloaded at once within one pull. Default 4. */
  blobConcurrency?: () => number;
}

/**
 * One per workspace: deduplicates concurrent pulls of the same reference (callers share one
 * transfer), queues pulls with bounded concurrency, and reports what happens to listeners (trees,
 * hovers, status bar). Free of VS Code so it can be tested against a real registry.
 */
export class PullService {
  private readonly jobs = new Map<string, Job>();
  private readonly listeners = new Set<(e: ServiceEvent) => void>();
  private readonly waiting: { wake: () => void; signal: AbortSignal }[] = [];
  private running = 0;
  private disposed = false;

  constructor(private readonly options: PullServiceOptions) {}

  onEvent(listener: (e: ServiceEvent) => void): { dispose(): void } {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  /** Pulls in flight or queued, for status bars and tests. */
  active(): ActivePull[] {
    return [...this.jobs.values()].map((j) => ({ ...j.state }));
  }

  /** Tells listeners the cache changed outside a pull (remove, gc, import). */
  notifyCacheChanged(): void {
    this.emit({ type: 'cacheChanged' });
  }

  pull(input: string | Reference, options: ServicePullOptions = {}): Promise<PullResult> {
    if (this.disposed) return Promise.reject(new StowageError('ABORTED', 'Stowage is shutting down.'));
    let ref: Reference;
    try {
      ref = typeof input === 'string' ? parsePullableReference(input) : input;
    } catch (e) {
      return Promise.reject(e);
    }
    const reference = formatReference(ref);
    const key = [
      reference,
      options.allPlatforms ? '*' : (options.platforms ?? []).map(formatPlatform).sort().join(','),
      options.alwaysPull ? 'always' : '',
    ].join('|');
    // A job every caller cancelled is winding down: a new request must not join it.
    const running = this.jobs.get(key);
    const job =
      running && !running.controller.signal.aborted ? running : this.start(key, ref, reference, options);
    return this.attach(job, options);
  }

  /** Cancels every pull and refuses new ones. */
  dispose(): void {
    this.disposed = true;
    for (const j of this.jobs.values())
      j.controller.abort(new StowageError('ABORTED', 'Stowage is shutting down.'));
    this.listeners.clear();
  }

  private start(key: string, ref: Reference, reference: string, options: ServicePullOptions): Job {
    const controller = new AbortController();
    const listeners = new Set<(e: PullEvent) => void>();
    const state: ActivePull = { reference, queued: true };
    const job: Job = { reference, controller, callers: 0, listeners, state, promise: undefined as never };
    const pullOptions: PullOptions = {
      platforms: options.platforms,
      allPlatforms: options.allPlatforms,
      alwaysPull: options.alwaysPull,
      signal: controller.signal,
      concurrency: this.options.blobConcurrency?.(),
      onEvent: (e) => {
        if (e.type === 'progress') {
          state.progress = { ...e };
          this.emit({ type: 'progress', reference, progress: state.progress });
        }
        for (const l of listeners) l(e);
      },
    };
    job.promise = (async () => {
      await this.slot(controller.signal);
      state.queued = false;
      this.emit({ type: 'started', reference });
      try {
        const store = await this.options.store();
        const result = await pull(store, this.options.client(), ref, pullOptions);
        this.emit({ type: 'finished', reference, result });
        if (!result.fromCache) this.emit({ type: 'cacheChanged' });
        return result;
      } catch (error) {
        this.emit({ type: 'finished', reference, error });
        throw error;
      } finally {
        this.release();
      }
    })().finally(() => {
      if (this.jobs.get(key) === job) this.jobs.delete(key);
    });
    // Callers see the rejection through attach(); this copy must not be reported as unhandled.
    job.promise.catch(() => {});
    this.jobs.set(key, job);
    return job;
  }

  private attach(job: Job, options: ServicePullOptions): Promise<PullResult> {
    job.callers++;
    if (options.onEvent) job.listeners.add(options.onEvent);
    const detach = () => {
      if (options.onEvent) job.listeners.delete(options.onEvent);
      job.callers--;
      if (job.callers === 0)
        job.controller.abort(new StowageError('ABORTED', `The pull of ${job.reference} was cancelled.`));
    };
    const signal = options.signal;
    if (!signal) return job.promise;
    if (signal.aborted) {
      detach();
      return Promise.reject(new StowageError('ABORTED', `The pull of ${job.reference} was cancelled.`));
    }
    return new Promise<PullResult>((resolve, reject) => {
      const onAbort = () => {
        detach();
        reject(new StowageError('ABORTED', `The pull of ${job.reference} was cancelled.`));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      job.promise.then(
        (r) => {
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  private async slot(signal: AbortSignal): Promise<void> {
    const limit = Math.max(1, this.options.concurrency ?? 2);
    while (this.running >= limit) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push({
          signal,
          wake: () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          },
        });
      });
    }
    this.running++;
  }

  private release(): void {
    this.running--;
    // Skip waiters that were cancelled while queued: they will never take the slot.
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) {
      if (!next.signal.aborted) {
        next.wake();
        return;
      }
    }
  }

  private emit(e: ServiceEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure must not break the pull.
      }
    }
  }
}
