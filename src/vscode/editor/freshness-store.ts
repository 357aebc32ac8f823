import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The last check of one tag: when, and the digest the registry answered, or that it answered
 * 404 (it has no such tag, or no such repository).
 */
export type FreshnessRecord = { checkedAt: number; digest: string } | { checkedAt: number; unknown: true };

/** What the remembered check says of a tag, against the digest pinned or cached for it. */
export type TagVerdict =
  | { kind: 'newer'; tag: string; current: string; known: string; pinned: boolean }
  | { kind: 'unknown'; tag: string; checkedAt: number };

/**
 * The verdict on `tag` from its last check and the digest known for it (pinned, else cached):
 * newer when the registry's digest differs from that one; unknown when the registry did not have
 * the tag and nothing is known for it (a pinned digest is pulled without the tag; a cached copy
 * is used without asking); else nothing to say.
 */
export function tagVerdict(
  tag: string,
  record: FreshnessRecord | undefined,
  known: { digest: string; pinned: boolean } | undefined,
): TagVerdict | undefined {
  if (!record) return undefined;
  if ('unknown' in record) return known ? undefined : { kind: 'unknown', tag, checkedAt: record.checkedAt };
  if (!known || known.digest === record.digest) return undefined;
  return { kind: 'newer', tag, current: record.digest, known: known.digest, pinned: known.pinned };
}

const FILE = 'freshness.json';

/**
 * Remembers, per tag (`registry/repository:tag`), when its digest was last checked and what it
 * was, in a small JSON file under the extension's global storage: throttling holds across
 * windows and restarts, and a known newer digest is shown without asking the registry again.
 */
export class FreshnessStore {
  private records?: Promise<Map<string, FreshnessRecord>>;
  private saving = Promise.resolve();

  constructor(private readonly dir: string) {}

  get path(): string {
    return join(this.dir, FILE);
  }

  async get(name: string): Promise<FreshnessRecord | undefined> {
    return (await this.load()).get(name);
  }

  async set(name: string, record: FreshnessRecord): Promise<void> {
    const map = await this.load();
    map.set(name, record);
    const text = `${JSON.stringify(Object.fromEntries(map), null, 1)}\n`;
    // Serialised, and atomic (temp file + rename), so a reader never sees half a file.
    this.saving = this.saving.then(async () => {
      await mkdir(this.dir, { recursive: true });
      const tmp = `${this.path}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, this.path);
    });
    await this.saving;
  }

  private load(): Promise<Map<string, FreshnessRecord>> {
    this.records ??= readFile(this.path, 'utf8').then(
      (text) => parseRecords(text),
      () => new Map(),
    );
    return this.records;
  }
}

function parseRecords(text: string): Map<string, FreshnessRecord> {
  const out = new Map<string, FreshnessRecord>();
  try {
    const json = JSON.parse(text) as unknown;
    if (!json || typeof json !== 'object') return out;
    for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
      const r = v as { checkedAt?: unknown; digest?: unknown; unknown?: unknown } | null;
      if (!r || typeof r.checkedAt !== 'number') continue;
      if (typeof r.digest === 'string') out.set(name, { checkedAt: r.checkedAt, digest: r.digest });
      else if (r.unknown === true) out.set(name, { checkedAt: r.checkedAt, unknown: true });
    }
  } catch {
    // A damaged file only costs one more check per tag.
  }
  return out;
}

/** Milliseconds between checks of one tag for the setting's value; undefined when off. */
export function checkInterval(setting: 'off' | 'daily' | 'hourly'): number | undefined {
  if (setting === 'hourly') return 60 * 60 * 1000;
  if (setting === 'daily') return 24 * 60 * 60 * 1000;
  return undefined;
}
