const collator = new Intl.Collator(undefined, { numeric: true });
/** v2 before v10: the order people expect of version tags. */
export function naturalOrder(a: string, b: string): number {
  return collator.compare(a, b);
}

/**
 * Appends `items` to `list`. Never `list.push(...items)`: that passes every item as an argument,
 * and a registry that ignores `n` (Distribution's tags/list) answers with every tag in one page;
 * about 130,000 of them overflow the stack (RangeError).
 */
export function append<T>(list: T[], items: readonly T[]): void {
  for (const item of items) list.push(item);
}

/**
 * The tags Browse Tags has fetched. All of them are kept and searched, but a picker is handed at
 * most a bounded number (VS Code's quick pick and its filter slow down on hundreds of thousands).
 */
export class TagList {
  private readonly all: string[] = [];
  private readonly seen = new Set<string>();
  private sorted = true;

  get size(): number {
    return this.all.length;
  }

  add(page: readonly string[]): void {
    for (const tag of page) {
      if (this.seen.has(tag)) continue;
      this.seen.add(tag);
      this.all.push(tag);
      this.sorted = false;
    }
  }

  /** Up to `limit` tags containing `filter` (trimmed, any case), in natural order. */
  matching(filter: string, limit: number): string[] {
    if (!this.sorted) {
      this.all.sort(naturalOrder);
      this.sorted = true;
    }
    const f = filter.trim().toLowerCase();
    const out: string[] = [];
    for (const tag of this.all) {
      if (out.length >= limit) break;
      if (!f || tag.toLowerCase().includes(f)) out.push(tag);
    }
    return out;
  }
}
