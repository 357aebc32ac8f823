import { append } from './tag-list';

/**
 * Hands out a long list a page at a time from an async source of pages. Registries differ: some
 * honour `n` and page with Link headers, others (Distribution 2.8's tags/list) ignore `n` and
 * return everything at once; buffering here makes both look the same to the tree, which never
 * shows more than one more page per "Load more…".
 */
export class Pager<T> {
  /** Fetched, not yet handed out from `next` on (a cursor: shift() copies a large array each time). */
  private buffer: T[] = [];
  private next = 0;
  private readonly shown: T[] = [];
  private source?: AsyncIterator<T[]>;
  private exhausted = false;
  private loading?: Promise<void>;

  constructor(
    private readonly open: () => AsyncIterator<T[]>,
    readonly pageSize: number,
    /** Orders the list when it arrived whole in the first response (nothing handed out yet). */
    private readonly compare?: (a: T, b: T) => number,
  ) {}

  /** What has been handed out so far, in order. */
  items(): readonly T[] {
    return this.shown;
  }

  /** How many items there are in all, once the source is exhausted (undefined before). */
  total(): number | undefined {
    return this.exhausted ? this.shown.length + this.buffered() : undefined;
  }

  /** True when the source may still hold items not yet handed out. */
  hasMore(): boolean {
    return this.buffered() > 0 || !this.exhausted;
  }

  private buffered(): number {
    return this.buffer.length - this.next;
  }

  /**
   * Hands out up to one page more of the items `accept` keeps (all by default), fetching pages
   * from the source only as needed. Returns what was added.
   */
  async more(accept: (item: T) => boolean = () => true): Promise<T[]> {
    const added: T[] = [];
    while (added.length < this.pageSize) {
      if (this.next < this.buffer.length) {
        const item = this.buffer[this.next++] as T;
        this.shown.push(item);
        if (accept(item)) added.push(item);
        continue;
      }
      if (this.exhausted) break;
      await this.fill();
    }
    return added;
  }

  /** Forgets everything; the next more() starts from the first page again. */
  reset(): void {
    void this.source?.return?.();
    this.source = undefined;
    this.buffer = [];
    this.next = 0;
    this.shown.length = 0;
    this.exhausted = false;
  }

  private fill(): Promise<void> {
    this.loading ??= (async () => {
      try {
        this.source ??= this.open();
        const r = await this.source.next();
        if (r.done) this.exhausted = true;
        else {
          this.take(r.value);
          // A page larger than asked for: the server ignores `n` (Distribution's tags/list) and
          // most likely sent everything; a shorter one is the last page or the whole (short) list.
          // Either way asking once more costs no request (no Link) and tells the total, so a
          // list that arrived whole is sorted before any of it is shown.
          if (r.value.length !== this.pageSize) {
            const after = await this.source.next();
            if (after.done) this.exhausted = true;
            else this.take(after.value);
          }
          if (this.exhausted && this.shown.length === 0 && this.compare) this.buffer.sort(this.compare);
        }
      } catch (e) {
        // The source is spent; the caller shows the error and reset()s to try again.
        this.exhausted = true;
        throw e;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  /** Adds a fetched page to the buffer, first dropping what was handed out of it already. */
  private take(page: readonly T[]): void {
    if (this.next > 0) {
      this.buffer = this.buffer.slice(this.next);
      this.next = 0;
    }
    append(this.buffer, page);
  }
}
