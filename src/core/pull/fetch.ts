import { type Digest, parseDigest } from '../digest';
import { abortError, StowageError, throwIfAborted } from '../errors';
import { formatReference, type Reference } from '../reference';
import type { BlobStream, RegistryClient } from '../registry/client';
import { backoffDelay, DEFAULT_RETRY, isTransientNetworkError, sleep } from '../registry/retry';
import type { Descriptor, Ingest, Store } from '../store';

/** Bytes an attempt must bring for the next one to count as a first try again. */
const PROGRESS_RESETS = 256 * 1024;
/** Tries of one blob at most, however much each brought. */
const MAX_TRIES = 50;

/** A range is split only while both halves would be at least this big. */
export const MIN_PART = 8 * 1024 * 1024;
/** Split points fall on these boundaries (whole buffers for the writers). */
const ALIGN = 1024 * 1024;
/** How often an owner waiting for a part checks whether to take its range back. */
const CHECK_MS = 250;
/** A part without a byte, or without a new one, for this long is taken back by its owner. */
const PATIENCE_MS = 1000;

export interface FetchOptions {
  signal?: AbortSignal;
  attempts: number;
  onStart: (offset: number) => void;
  /** Bytes of this blob held so far, and bytes newly downloaded by this call. */
  onHeld: (held: number, downloaded: number) => void;
  /** Where download slots with nothing else to do take ranges of this blob. */
  splitter?: Splitter;
}

/**
 * Downloads one blob into the store, resuming a partial ingest, retrying broken transfers.
 * Returns false when the blob was already there (or another process committed it meanwhile).
 */
export async function fetchBlob(
  store: Store,
  client: RegistryClient,
  ref: Reference,
  descriptor: Descriptor,
  opts: FetchOptions,
): Promise<boolean> {
  // Before any await: a slot with nothing left to start waits for this fetch's ranges.
  opts.splitter?.begin();
  try {
    return await fetchInto(store, client, ref, descriptor, opts);
  } finally {
    opts.splitter?.end();
  }
}

async function fetchInto(
  store: Store,
  client: RegistryClient,
  ref: Reference,
  descriptor: Descriptor,
  opts: FetchOptions,
): Promise<boolean> {
  const { digest, size } = descriptor;
  parseDigest(digest, `blob digest in ${formatReference(ref)}`);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new StowageError(
      'MANIFEST_INVALID',
      `${formatReference(ref)} lists blob ${digest} with an invalid size.`,
    );
  }
  if (await store.has(digest, size)) {
    opts.onHeld(size, 0);
    return false;
  }
  let held = -1;
  for (let attempt = 1, tries = 1; ; attempt++, tries++) {
    throwIfAborted(opts.signal);
    const ingest = await store.ingest(digest, size, { signal: opts.signal });
    if (ingest.present) {
      await ingest.close();
      opts.onHeld(size, 0);
      return false;
    }
    // `attempts` counts tries in a row that got nowhere: one that brought a good part of the
    // blob starts the count again (a link that drops every few MB still finishes), within a cap.
    if (held >= 0 && ingest.offset - held >= PROGRESS_RESETS && tries <= MAX_TRIES) attempt = 1;
    held = ingest.offset;
    opts.onHeld(ingest.offset, 0);
    opts.onStart(ingest.offset);
    const download = new Download(client, ref, digest, size, ingest, opts);
    opts.splitter?.add(download);
    try {
      await download.run();
      await ingest.commit();
      return true;
    } catch (e) {
      await download.stop();
      await ingest.close().catch(() => {});
      if (opts.signal?.aborted) {
        const r = opts.signal.reason;
        throw r instanceof StowageError ? r : new StowageError('ABORTED', 'The pull was cancelled.');
      }
      const transient =
        isTransientNetworkError(e) ||
        isTransientNetworkError((e as { cause?: unknown }).cause) ||
        /premature close|terminated|other side closed/i.test(String((e as Error)?.message)) ||
        e instanceof ShortBody;
      const bodyTimeout = (e as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT';
      if (transient && attempt < opts.attempts) {
        // A cancel during the wait rejects with the signal's bare reason: report it typed.
        await sleep(backoffDelay(attempt, DEFAULT_RETRY), opts.signal).catch(() => {
          throw abortError(opts.signal);
        });
        continue;
      }
      if (bodyTimeout) {
        throw new StowageError(
          'STALLED',
          `Download of ${digest} from ${ref.registry} stalled: no data arrived for too long.`,
          'Try again; the partial download is kept and resumes.',
          { cause: e },
        );
      }
      const urls = Array.isArray(descriptor.urls) ? descriptor.urls.filter((u) => typeof u === 'string') : [];
      if (e instanceof StowageError && e.code === 'NOT_FOUND' && urls.length > 0) {
        // A foreign (non-distributable) layer, as old Windows images have: it is not in the registry.
        throw new StowageError(
          'NOT_FOUND',
          `Layer ${digest} of ${formatReference(ref)} is non-distributable: ${ref.registry} does not serve it, its publisher does (${urls[0]}).`,
          'Stowage does not fetch layers from outside the registry (docker and containerd do); most Windows images have had no foreign layers since 2022.',
          { cause: e },
        );
      }
      if (e instanceof StowageError) throw e;
      throw new StowageError(
        'NETWORK',
        `Download of ${digest} from ${ref.registry} failed: ${(e as Error)?.message ?? e}.`,
        'Try again; the partial download is kept and resumes.',
        { cause: e },
      );
    } finally {
      opts.splitter?.remove(download);
    }
  }
}

/** Bytes [pos, end) of a blob still to come on one connection; `end` moves down when split. */
interface Range {
  pos: number;
  end: number;
}

/** A range taken by another download slot; the owner adopts its bytes once it has settled. */
class Part implements Range {
  pos: number;
  done = false;
  readonly began = performance.now();
  firstByteAt: number | undefined;
  lastByteAt: number | undefined;
  /** The owner takes the range back (the part is behind). */
  readonly recall = new AbortController();
  private resolve!: () => void;
  readonly settled = new Promise<void>((r) => {
    this.resolve = r;
  });
  constructor(
    readonly start: number,
    public end: number,
  ) {
    this.pos = start;
  }
  received(bytes: number): void {
    this.pos += bytes;
    this.lastByteAt = performance.now();
    this.firstByteAt ??= this.lastByteAt;
  }
  settle(): void {
    this.done = true;
    this.resolve();
  }
}

/**
 * One blob on its way into an ingest. The owner streams it in order into the ingest; a download
 * slot that has nothing else to do may take the upper half of the largest range still to come
 * (the owner's or another part's), which its own connection writes at its place in the file. A
 * large layer then arrives over several connections, as containerd's parallel layer fetch does:
 * each connection of a long or shaped path is limited on its own.
 */
class Download {
  /** The owner's range: up to the first part. */
  private readonly owner: Range;
  /** Ranges taken by other slots, in order; they and the owner's tile the rest of the blob. */
  private readonly parts: Part[] = [];
  private streaming = false;
  /** The registry takes Range requests: only then is anything split. */
  private ranges = false;
  /** A part failed or fell behind: this blob is not split again. */
  private noMoreParts = false;
  private readonly stopper = new AbortController();
  private held: number;
  /** The owner's rate on its current or last stream, bytes per ms (0 before any). */
  private ownerRate = 0;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: Reference,
    private readonly digest: Digest,
    private readonly size: number,
    private readonly ingest: Ingest,
    private readonly opts: FetchOptions,
  ) {
    this.owner = { pos: ingest.offset, end: size };
    this.held = ingest.offset;
  }

  /** Bytes of the largest range that could be split now (0 when none). */
  splittableBytes(): number {
    const range = this.largest();
    return range ? range.end - range.pos : 0;
  }

  /** Takes the upper half of the largest range still to come, as a part to download. */
  split(): Part | undefined {
    const range = this.largest();
    if (!range) return undefined;
    const mid = range.pos + Math.floor((range.end - range.pos) / 2 / ALIGN) * ALIGN;
    const part = new Part(mid, range.end);
    range.end = mid;
    const at = this.parts.findIndex((p) => p.start > mid);
    this.parts.splice(at < 0 ? this.parts.length : at, 0, part);
    return part;
  }

  private largest(): Range | undefined {
    if (!this.ranges || this.noMoreParts || this.stopper.signal.aborted) return undefined;
    let best: Range | undefined;
    for (const r of [...(this.streaming ? [this.owner] : []), ...this.parts.filter((p) => !p.done)]) {
      if (r.end - r.pos >= 2 * MIN_PART && (!best || r.end - r.pos > best.end - best.pos)) best = r;
    }
    return best;
  }

  /** Downloads a part into the ingest's file. Never throws: what it got, it got; the owner fetches the rest. */
  async fetchPart(part: Part, slot: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([
      slot,
      this.stopper.signal,
      part.recall.signal,
      ...(this.opts.signal ? [this.opts.signal] : []),
    ]);
    let written = 0;
    try {
      const writer = await this.ingest.part(part.start);
      try {
        const stream = await this.client.blobRange(this.ref, this.digest, part.start, part.end, signal);
        if (!stream) {
          this.noMoreParts = true;
          return;
        }
        try {
          for await (const chunk of stream.body) {
            const piece =
              chunk.byteLength > part.end - part.pos ? chunk.subarray(0, part.end - part.pos) : chunk;
            await writer.write(piece);
            part.received(piece.byteLength);
            this.count(piece.byteLength);
            if (part.pos >= part.end) break;
          }
        } finally {
          stream.destroy();
        }
      } finally {
        await writer.close().catch(() => {});
        written = writer.written;
      }
    } catch {
      // A broken or refused part: the owner fetches what it lacks, and this blob is not split
      // again (a registry that fails ranges, or a path too flaky for more connections).
      this.noMoreParts = true;
    } finally {
      // Only what reached the file counts; the rest goes back to the owner.
      this.count(part.start + written - part.pos);
      part.pos = part.start + written;
      part.settle();
    }
  }

  /** The owner: streams its range, adopts each part after it, and fetches what a part lacked. */
  async run(): Promise<void> {
    const { size, ingest } = this;
    // An empty blob is still asked for: a registry that sends bytes for it is caught.
    if (size === 0) {
      await this.stream(0);
      return;
    }
    let counted = ingest.offset;
    while (counted < size) {
      const part = this.parts[0];
      if (part?.start === counted) {
        await this.awaitPart(part);
        throwIfAborted(this.opts.signal);
        await ingest.adopt(part.pos);
        this.parts.shift();
        counted = part.pos;
        // What the part did not get, the owner fetches.
        if (part.pos === part.end) continue;
        this.owner.end = part.end;
      } else {
        this.owner.end = part?.start ?? size;
      }
      this.owner.pos = counted;
      counted = await this.stream(counted);
    }
  }

  /**
   * Waits for the part the owner has reached, unless it is behind: no byte (or no new one) for
   * {@link PATIENCE_MS}, or at half the owner's rate. Then the owner takes its range back (what
   * the part wrote is kept) and nothing of this blob is split again: parts are slower here.
   */
  private async awaitPart(part: Part): Promise<void> {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const settled = await Promise.race([
        part.settled.then(() => true),
        new Promise<false>((r) => {
          timer = setTimeout(() => r(false), CHECK_MS);
        }),
      ]);
      clearTimeout(timer);
      if (settled) return;
      const now = performance.now();
      const since = part.lastByteAt ?? part.began;
      const rate =
        part.firstByteAt === undefined ? 0 : (part.pos - part.start) / Math.max(1, now - part.firstByteAt);
      if (now - since > PATIENCE_MS || (part.firstByteAt !== undefined && rate * 2 < this.ownerRate)) {
        this.noMoreParts = true;
        part.recall.abort();
        await part.settled;
        return;
      }
    }
  }

  /** Streams [from, owner.end) into the ingest (the end may move down meanwhile). */
  private async stream(from: number): Promise<number> {
    const { size, ingest } = this;
    let counted = from;
    const stream: BlobStream = await this.client.blob(this.ref, this.digest, from, this.opts.signal);
    this.ranges ||= stream.ranges;
    this.streaming = true;
    this.opts.splitter?.changed();
    let firstByteAt: number | undefined;
    try {
      for await (const chunk of stream.body) {
        firstByteAt ??= performance.now();
        if (counted + chunk.byteLength > size && this.owner.end === size) {
          throw new StowageError(
            'SIZE_MISMATCH',
            `Blob ${this.digest} of ${formatReference(this.ref)} is larger than the ${size} bytes its manifest says.`,
            'The registry served other content; nothing was stored.',
          );
        }
        const room = this.owner.end - counted;
        const piece = chunk.byteLength > room ? chunk.subarray(0, room) : chunk;
        await ingest.write(piece);
        counted += piece.byteLength;
        this.owner.pos = counted;
        this.count(piece.byteLength);
        this.ownerRate = (counted - from) / Math.max(1, performance.now() - firstByteAt);
        if (counted >= this.owner.end && this.owner.end < size) break;
      }
    } finally {
      this.streaming = false;
      stream.destroy();
    }
    // A body that ends early (truncated, or a Content-Length that lied) is a broken transfer:
    // keep the prefix and resume, instead of committing a short blob that can only fail.
    if (counted < this.owner.end) throw new ShortBody(this.digest, counted, size, this.ref);
    return counted;
  }

  /** Stops the parts (the owner failed) and waits for them to let go of the file. */
  async stop(): Promise<void> {
    this.stopper.abort();
    await Promise.all(this.parts.map((p) => p.settled));
  }

  private count(bytes: number): void {
    this.held += bytes;
    this.opts.onHeld(this.held, Math.max(0, bytes));
  }
}

/**
 * Hands ranges of the blobs being downloaded to the download slots that have run out of blobs:
 * the largest range still to come is halved, while both halves stay at least {@link MIN_PART}.
 */
export class Splitter {
  private readonly downloads = new Set<Download>();
  private waiting: (() => void)[] = [];
  /** Blob fetches started and not finished (some not yet past their ingest lock). */
  private active = 0;

  /** A blob fetch begins: slots wait for it while it may still offer ranges. */
  begin(): void {
    this.active++;
  }

  end(): void {
    this.active--;
    this.changed();
  }

  add(download: Download): void {
    this.downloads.add(download);
  }

  remove(download: Download): void {
    this.downloads.delete(download);
    this.changed();
  }

  /** Something may have become splittable (or everything is done): waiting slots look again. */
  changed(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }

  /**
   * For a slot with no blob left: takes ranges and downloads them, until no fetch is left that
   * could offer one.
   */
  async help(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let best: Download | undefined;
      for (const d of this.downloads) if (d.splittableBytes() > (best?.splittableBytes() ?? 0)) best = d;
      const part = best?.split();
      if (best && part) {
        await best.fetchPart(part, signal);
        continue;
      }
      if (this.active === 0) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.waiting.push(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }
}

/** The server ended a blob's body before all its bytes arrived. */
class ShortBody extends StowageError {
  constructor(digest: Digest, received: number, size: number, ref: Reference) {
    super(
      'SIZE_MISMATCH',
      `Download of blob ${digest} from ${ref.registry} ended after ${received} of its ${size} bytes.`,
      'Try again; the partial download is kept and resumes.',
    );
  }
}
