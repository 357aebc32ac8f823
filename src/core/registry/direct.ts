import { connect, isIP, type Socket } from 'node:net';
import type { ConnectionOptions, SecureContext } from 'node:tls';
import { splitHost } from './host';
import { tls as nodeTls } from './tls';

/**
 * A GET (or HEAD) over one HTTP/1.1 connection (plain or TLS) whose body is read into one reused
 * buffer: the blob download path, and the manifest requests before it (on the same connections).
 *
 * Why not undici here: it reads a socket 64 KiB at a time into a fresh buffer, copies each through
 * its parser and queues it in a stream. On a fast link that allocation churn (and the major GCs the
 * external memory triggers) costs more CPU than hashing the blob; `npm run bench` shows it. This
 * reader reads up to 1 MiB per call into one buffer and does not read again until the consumer asks
 * for the next chunk, so nothing is allocated per chunk and the consumer's pace is the backpressure.
 * Small reads (TLS hands out one 16 KiB record at a time) are gathered into a staging buffer and
 * handed over together, so the per-chunk work is paid per ~256 KiB, not per record.
 *
 * It handles only the plain case: one request at a time per connection (kept alive in a
 * {@link DirectPool} when the caller gives one, else `Connection: close`), a response head under
 * 16 KiB (undici's limit too), a body framed by Content-Length or by the close. Anything else
 * (chunked, a 1xx, a head that is not HTTP/1.x, header values we would not send) throws
 * {@link Unhandled} and the caller sends the request through undici instead.
 */

/** The request or response is outside what this reader handles: use the general path. */
export class Unhandled extends Error {}

export interface ResponseBody extends AsyncIterable<Uint8Array> {
  /** Discards the rest (closes the connection). */
  dump(): Promise<unknown>;
  destroy(): unknown;
}

export interface DirectResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  /** Chunks are views of a reused buffer: each is valid only until the next one is asked for. */
  body: ResponseBody;
  /** Sent on a connection from the pool (kept alive after an earlier response, or opened ahead). */
  reused: boolean;
}

export interface DirectOptions {
  /** GET (default), or HEAD: then no body follows whatever the head says. */
  method?: 'GET' | 'HEAD';
  signal?: AbortSignal;
  /** No bytes for this long while waiting for the head or a chunk is an error. */
  stallTimeoutMs: number;
  readBufferSize?: number;
  /** For https: URLs: what to trust (default: Node's CAs) and whether to verify at all. */
  tls?: { secureContext?: SecureContext; rejectUnauthorized: boolean };
  /** Where finished connections wait for the next request; without one, each serves one. */
  pool?: DirectPool;
}

const HEAD_LIMIT = 16 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
/** Reads at least this big are handed over as they are (a view of the read buffer). */
const DIRECT_READ = 64 * 1024;
/** Smaller reads are gathered until this much is staged, or the loop has nothing more to give. */
const STAGE_TARGET = 256 * 1024;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Header values we send: visible ASCII, space and tab only (no CR/LF injection). */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

/** An error shaped like undici's, so retries and messages treat both paths alike. */
function socketError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

export async function directGet(
  url: URL,
  headers: Record<string, string>,
  options: DirectOptions,
): Promise<DirectResponse> {
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') throw new Unhandled(`not HTTP: ${url.protocol}`);
  if (secure && !options.tls) throw new Unhandled('https needs TLS options');
  const pool = options.pool;
  let request = `${options.method ?? 'GET'} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  // Without a pool to return it to, the connection serves this one request.
  if (!pool) request += 'connection: close\r\n';
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value) || /^(host|connection)$/i.test(name)) {
      throw new Unhandled(`header ${name}`);
    }
    request += `${name}: ${value}\r\n`;
  }
  request += '\r\n';
  const key = poolKey(url, options);
  const send = (conn: Connection, reused: boolean) =>
    new Promise<DirectResponse>((resolve, reject) => {
      new Reader(options, conn, reused, resolve, reject).start(request);
    });
  if (options.signal?.aborted) throw options.signal.reason;
  const open = () => Connection.open(key, url, options);
  if (!pool) return send(open(), false);
  for (let attempt = 0; ; attempt++) {
    // After a stale one, a new connection if the limit allows (else the next that comes free).
    const { conn, reused } = await pool.acquire(key, open, options.signal, { fresh: attempt > 0 });
    try {
      return await send(conn, reused);
    } catch (e) {
      // The server closed the idle connection as we sent on it: again, at once.
      if (!(e instanceof Stale)) throw e;
      if (attempt >= pool.perOrigin) throw socketError('other side closed', 'UND_ERR_SOCKET');
    }
  }
}

/** Connections are shared by origin and by trust: a request never rides one verified otherwise. */
function poolKey(url: URL, options: DirectOptions): string {
  if (url.protocol !== 'https:') return `${url.protocol}//${url.host}`;
  const { secureContext, rejectUnauthorized } = options.tls ?? {};
  return `${url.protocol}//${url.host} ${rejectUnauthorized} ${secureContext ? trustId(secureContext) : 'default'}`;
}

const trustIds = new WeakMap<SecureContext, number>();
let trustCount = 0;
function trustId(context: SecureContext): number {
  let id = trustIds.get(context);
  if (id === undefined) {
    id = ++trustCount;
    trustIds.set(context, id);
  }
  return id;
}

/** A reused connection failed before any byte of the response: safe to send again on a new one. */
class Stale extends Error {}

/** Idle connections kept after a response, as undici keeps them, until the server closes them. */
const IDLE_MS = 4_000;
/** Connections per origin at most (idle, in use or connecting), as undici's `connections`. */
const PER_ORIGIN = 8;

/**
 * Keep-alive connections of one client, by origin and trust. A blob GET costs a connection (and a
 * TLS handshake) only when none is idle: on a distant registry that is two round trips per blob,
 * and a redirected GET (Docker Hub → its CDN) would pay them twice. At most `perOrigin` connections
 * to one origin at once, however many pulls share the client: a request past that waits for one.
 */
export class DirectPool {
  private readonly idle = new Map<string, Connection[]>();
  /** Connections alive per key: idle, in use or still connecting. */
  private readonly open = new Map<string, number>();
  /** Requests waiting for a connection per key, first come first served. */
  private readonly waiting = new Map<string, (() => void)[]>();
  private closed = false;

  constructor(readonly perOrigin = PER_ORIGIN) {}

  /**
   * A connection for the next request to `key`: an idle one (unless `fresh`), else a new one while
   * under the limit, else the first to come free. Rejects with the signal's reason on abort.
   */
  async acquire(
    key: string,
    open: () => Connection,
    signal?: AbortSignal,
    { fresh = false } = {},
  ): Promise<{ conn: Connection; reused: boolean }> {
    let woken = false;
    for (;;) {
      if (signal?.aborted) {
        // A wake-up this request can no longer use goes to the next one waiting.
        if (woken) this.wake(key);
        throw signal.reason;
      }
      const idle = fresh ? undefined : this.take(key);
      if (idle) return { conn: idle, reused: true };
      if (this.closed || this.count(key) < this.perOrigin) return { conn: this.track(open()), reused: false };
      // A fresh connection is what a stale retry wants: an idle one coming back would do as well.
      fresh = false;
      await this.vacancy(key, signal);
      woken = true;
    }
  }

  private count(key: string): number {
    return this.open.get(key) ?? 0;
  }

  /** Counts a connection until it closes; its close lets a waiting request open another. */
  private track(conn: Connection): Connection {
    this.open.set(conn.key, this.count(conn.key) + 1);
    conn.onGone(() => {
      const n = this.count(conn.key) - 1;
      if (n > 0) this.open.set(conn.key, n);
      else this.open.delete(conn.key);
      this.wake(conn.key);
    });
    return conn;
  }

  private vacancy(key: string, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const list = this.waiting.get(key) ?? [];
      this.waiting.set(key, list);
      const onAbort = () => {
        const at = list.indexOf(go);
        if (at >= 0) list.splice(at, 1);
        reject(signal!.reason);
      };
      const go = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      list.push(go);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private wake(key: string): void {
    const list = this.waiting.get(key);
    const next = list?.shift();
    if (list && list.length === 0) this.waiting.delete(key);
    next?.();
  }

  private take(key: string): Connection | undefined {
    const list = this.idle.get(key);
    while (list?.length) {
      // The most recently used connection that is up; else the oldest still connecting.
      let at = list.length - 1;
      while (at > 0 && !list[at]!.connected) at--;
      const conn = list.splice(at, 1)[0]!;
      conn.leavePool();
      // Still connecting (opened ahead by warm) is fine: the request goes out once it is up.
      const state = conn.socket.readyState;
      if (!conn.socket.destroyed && (state === 'open' || state === 'opening')) return conn;
      conn.socket.destroy();
    }
    return undefined;
  }

  /**
   * Opens connections to `url`'s origin ahead of the requests that will need them (up to `count`
   * idle or opening), so that their handshakes overlap what the caller is waiting for anyway. One
   * that fails just leaves the pool: the request itself then meets (and reports) the error.
   */
  warm(url: URL, options: DirectOptions, count: number): void {
    if (this.closed || (url.protocol !== 'http:' && url.protocol !== 'https:')) return;
    if (url.protocol === 'https:' && !options.tls) return;
    const key = poolKey(url, options);
    for (let n = this.idle.get(key)?.length ?? 0; n < count && this.count(key) < this.perOrigin; n++) {
      this.give(this.track(Connection.open(key, url, options)));
    }
  }

  /** Takes back a connection whose response is done: for a waiting request, else idle. */
  give(conn: Connection): void {
    const list = this.idle.get(conn.key) ?? [];
    if (this.closed || conn.socket.destroyed) {
      conn.socket.destroy();
      return;
    }
    list.push(conn);
    this.idle.set(conn.key, list);
    conn.enterPool(() => {
      const at = list.indexOf(conn);
      if (at >= 0) list.splice(at, 1);
    });
    this.wake(conn.key);
  }

  /** Closes the idle connections; ones in use close when their response is done. */
  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const conn of list.splice(0)) conn.socket.destroy();
    this.idle.clear();
    // Waiting requests go ahead on connections of their own.
    for (const key of [...this.waiting.keys()]) while (this.waiting.has(key)) this.wake(key);
  }

  /** Connections alive (idle, in use, connecting), idle, and requests waiting, over all origins (for tests). */
  counts(): { open: number; idle: number; waiting: number } {
    let open = 0;
    for (const n of this.open.values()) open += n;
    let waiting = 0;
    for (const list of this.waiting.values()) waiting += list.length;
    return { open, idle: this.size, waiting };
  }

  /** Idle connections now (for tests). */
  get size(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }
}

/** One socket with its read buffer; events go to the reader of the response in progress. */
class Connection {
  static open(key: string, url: URL, options: DirectOptions): Connection {
    const secure = url.protocol === 'https:';
    const { hostname } = splitHost(url.host);
    return new Connection(key, hostname, Number(url.port || (secure ? 443 : 80)), secure, options);
  }

  readonly socket: Socket;
  reader: Reader | undefined;
  connected = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private dropIdle: (() => void) | undefined;
  private gone: (() => void) | undefined;

  constructor(
    readonly key: string,
    host: string,
    port: number,
    readonly secure: boolean,
    options: DirectOptions,
  ) {
    const onread = {
      buffer: Buffer.allocUnsafe(onreadSize(options)),
      callback: (n: number, buf: Uint8Array) => {
        // Bytes on an idle connection belong to no request: it cannot be used again.
        if (!this.reader) {
          this.socket.destroy();
          return false;
        }
        return this.reader.onRead(Buffer.from(buf.buffer, buf.byteOffset, n));
      },
    };
    const { tls } = options;
    this.socket = secure
      ? nodeTls().connect({
          host,
          port,
          // SNI takes names only; an address is checked against the certificate's IP entries.
          ...(isIP(host) ? {} : { servername: host }),
          ALPNProtocols: ['http/1.1'],
          ...(tls?.secureContext ? { secureContext: tls.secureContext } : {}),
          rejectUnauthorized: tls?.rejectUnauthorized ?? true,
          // Documented for tls.connect too (node's types omit it there).
          onread,
        } as ConnectionOptions)
      : connect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.socket.once(secure ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      this.reader?.onConnect();
    });
    this.socket.on('timeout', () => this.reader?.onTimeout());
    this.socket.on('error', (e) => {
      if (this.reader) this.reader.fail(e);
      else this.socket.destroy();
    });
    const closed = () => {
      this.dropIdle?.();
      this.reader?.onClose();
    };
    this.socket.on('end', closed);
    this.socket.on('close', closed);
    this.socket.once('close', () => this.gone?.());
  }

  /** Called once, when the socket has closed. */
  onGone(callback: () => void): void {
    this.gone = callback;
  }

  enterPool(drop: () => void): void {
    this.dropIdle = () => {
      this.leavePool();
      drop();
      this.socket.destroy();
    };
    this.socket.setTimeout(0);
    this.socket.unref();
    // Reading while idle, to notice the server's close (or stray bytes: then it is dropped).
    this.socket.resume();
    this.idleTimer = setTimeout(() => this.dropIdle?.(), IDLE_MS);
    this.idleTimer.unref();
  }

  leavePool(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.dropIdle = undefined;
    this.socket.ref();
  }
}

type Waiter = { resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: unknown) => void };

class Reader implements ResponseBody {
  private readonly socket: Socket;
  private head: Buffer | undefined = Buffer.alloc(0);
  /** Body bytes still expected; Infinity when the close ends the body. */
  private remaining = 0;
  /** A chunk delivered while nobody waited (only the head's leftover). */
  private pending: Uint8Array | undefined;
  /** Small reads gathered for the consumer (allocated on the first small read). */
  private stage: Buffer | undefined;
  private staged = 0;
  private flushing = false;
  /** The consumer has a chunk that is a view of our buffers (until it asks for the next). */
  private held = false;
  /** Reads that came while our buffers were in use, as copies, in order. */
  private readonly queue: Buffer[] = [];
  private readonly secure: boolean;
  private waiter: Waiter | undefined;
  private error: unknown;
  private ended = false;
  /** Any byte of the response has arrived. */
  private received = false;
  /** The connection may serve another request once this body is done. */
  private reusable = false;
  private released = false;
  private request = '';
  /** The request has been written: bytes before that belong to an earlier response. */
  private sent = false;
  private readonly onAbort = () =>
    this.fail(this.options.signal?.reason ?? socketError('This operation was aborted', 'ABORT_ERR'));

  constructor(
    private readonly options: DirectOptions,
    private readonly conn: Connection,
    private readonly reused: boolean,
    private readonly resolveHead: (r: DirectResponse) => void,
    private readonly rejectHead: (e: unknown) => void,
  ) {
    this.socket = conn.socket;
    this.secure = conn.secure;
  }

  start(request: string): void {
    const { signal } = this.options;
    this.conn.reader = this;
    if (signal?.aborted) {
      this.fail(signal.reason);
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.request = request;
    if (this.conn.connected && this.reused) {
      // Reading was stopped while the last consumer held its final chunk: bytes the server sent
      // after that response, or its close, may still be unread. One pass of the loop's poll phase
      // with reading on and nothing sent lets them show, and fail this attempt as stale.
      this.socket.resume();
      setImmediate(() =>
        setImmediate(() => {
          if (this.head && this.conn.reader === this) this.onConnect();
        }),
      );
    } else if (this.conn.connected) this.onConnect();
    else this.socket.setTimeout(Math.min(CONNECT_TIMEOUT_MS, this.options.stallTimeoutMs));
  }

  onConnect(): void {
    this.armTimer();
    this.sent = true;
    this.socket.write(this.request);
    // A reused connection was left paused after its last response.
    this.socket.resume();
  }

  onTimeout(): void {
    this.fail(
      !this.conn.connected
        ? socketError('Connect Timeout Error', 'UND_ERR_CONNECT_TIMEOUT')
        : this.head
          ? socketError('Headers Timeout Error', 'UND_ERR_HEADERS_TIMEOUT')
          : socketError('Body Timeout Error', 'UND_ERR_BODY_TIMEOUT'),
    );
  }

  /**
   * The stall timer runs only while we wait for the server: not while a chunk is with the
   * consumer (reading is stopped then, and a slow disk is not a stalled registry).
   */
  private armTimer(): void {
    this.socket.setTimeout(this.options.stallTimeoutMs);
  }

  /** Returns false to stop reading until the consumer asks for more. */
  onRead(bytes: Buffer): boolean {
    if (!this.sent) {
      // Not an answer to our request: the connection is out of step (the close fails us as stale).
      this.socket.destroy();
      return false;
    }
    this.received = true;
    if (this.head) return this.onHeadBytes(bytes);
    if (this.ended) {
      // More than the response declared: the connection is out of step.
      this.reusable = false;
      return false;
    }
    if (bytes.length > this.remaining) this.reusable = false;
    const chunk = bytes.length > this.remaining ? bytes.subarray(0, this.remaining) : bytes;
    this.remaining -= chunk.length;
    if (this.held || this.pending) {
      // TLS goes on handing over records it had decrypted after we asked it to stop: our
      // buffers are with the consumer, so these are kept as copies.
      this.queue.push(Buffer.from(chunk));
      if (this.remaining === 0) this.finish();
      return false;
    }
    // A view of the read buffer only over plain TCP, where no callback comes after a stop.
    if (!this.secure && this.staged === 0 && chunk.length >= DIRECT_READ) {
      this.deliver(chunk);
    } else {
      // Never more than the body still holds (a manifest is a few KiB).
      this.stage ??= Buffer.allocUnsafe(
        Math.min(onreadSize(this.options) + STAGE_TARGET, chunk.length + this.remaining),
      );
      chunk.copy(this.stage, this.staged);
      this.staged += chunk.length;
      if (this.staged < STAGE_TARGET && this.remaining > 0) {
        // Keep reading; what this turn of the loop brings is handed over when it ends.
        if (!this.flushing) {
          this.flushing = true;
          setImmediate(() => this.flushStaged());
        }
        return true;
      }
      this.deliverStaged();
    }
    if (this.remaining === 0) this.finish();
    return false;
  }

  private flushStaged(): void {
    this.flushing = false;
    if (this.staged === 0 || this.ended) return;
    this.deliverStaged();
    this.socket.pause();
  }

  /** Hands the staged bytes over; reading stays stopped until the consumer asks for more. */
  private deliverStaged(): void {
    const chunk = this.stage!.subarray(0, this.staged);
    this.staged = 0;
    this.deliver(chunk);
  }

  private onHeadBytes(bytes: Buffer): boolean {
    const before = this.head!.length;
    const head = Buffer.concat([this.head!, bytes]);
    const end = head.indexOf('\r\n\r\n', Math.max(0, before - 3));
    if (end < 0 || end > HEAD_LIMIT) {
      if (head.length > HEAD_LIMIT) {
        this.failHead(socketError('Response head too large', 'UND_ERR_HEADERS_OVERFLOW'));
      } else this.head = head;
      return end < 0;
    }
    this.head = undefined;
    this.socket.setTimeout(0);
    let parsed: { statusCode: number; headers: Record<string, string | string[]>; keepAlive: boolean };
    try {
      parsed = parseHead(head.subarray(0, end).toString('latin1'));
      this.remaining = this.options.method === 'HEAD' ? 0 : bodyLength(parsed.statusCode, parsed.headers);
    } catch (e) {
      this.failHead(e);
      return false;
    }
    const after = head.length - (end + 4);
    this.reusable =
      this.options.pool !== undefined &&
      parsed.keepAlive &&
      Number.isFinite(this.remaining) &&
      after <= this.remaining;
    const rest = head.subarray(end + 4, end + 4 + Math.min(this.remaining, after));
    this.remaining -= rest.length;
    if (rest.length > 0) this.pending = rest;
    if (this.remaining === 0) this.finish();
    this.resolveHead({
      statusCode: parsed.statusCode,
      headers: parsed.headers,
      body: this,
      reused: this.reused,
    });
    return false;
  }

  private failHead(e: unknown): void {
    this.head = undefined;
    this.ended = true;
    this.reusable = false;
    this.cleanup();
    // A reused connection the server had closed: the caller sends again on a new one.
    this.rejectHead(
      this.reused && !this.received && !(e instanceof Unhandled) && !aborted(this.options) && !timedOut(e)
        ? new Stale()
        : e,
    );
  }

  private deliver(chunk: Uint8Array): void {
    this.socket.setTimeout(0);
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      this.held = true;
      w.resolve({ value: chunk, done: false });
    } else this.pending = chunk;
  }

  /** The body is complete: the connection stays (paused) until the consumer is done with it. */
  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.socket.setTimeout(0);
    if (!this.reusable) this.cleanup();
    // Nothing of ours keeps the process alive any more.
    else this.socket.unref();
    if (!this.pending && this.queue.length === 0) {
      const w = this.waiter;
      this.waiter = undefined;
      if (w) {
        this.release();
        w.resolve({ value: undefined, done: true });
      }
    }
  }

  /** Hands the connection back once no chunk of ours is with the consumer. */
  private release(): void {
    if (this.released) return;
    this.released = true;
    if (this.conn.reader === this) this.conn.reader = undefined;
    if (this.reusable && this.error === undefined) this.options.pool?.give(this.conn);
    else this.socket.destroy();
  }

  onClose(): void {
    if (this.head) {
      // Bytes that are not an HTTP response at all: let undici name the protocol error.
      const notHttp = this.head.length > 0 && !'HTTP/'.startsWith(this.head.toString('latin1', 0, 5));
      this.fail(
        notHttp ? new Unhandled('not an HTTP response') : socketError('other side closed', 'UND_ERR_SOCKET'),
      );
      return;
    }
    this.reusable = false;
    if (this.ended) return;
    // A close ends a body only when no length was declared.
    if (this.remaining === Number.POSITIVE_INFINITY) {
      if (this.staged > 0) this.deliverStaged();
      this.finish();
    } else this.fail(socketError('other side closed', 'UND_ERR_SOCKET'));
  }

  fail(e: unknown): void {
    if (this.head) {
      this.failHead(e);
      return;
    }
    this.reusable = false;
    if (this.ended && this.error === undefined && this.remaining === 0) {
      this.cleanup();
      return;
    }
    this.error ??= e;
    this.ended = true;
    this.cleanup();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.error);
  }

  private cleanup(): void {
    this.options.signal?.removeEventListener('abort', this.onAbort);
    if (this.conn.reader === this) this.conn.reader = undefined;
    this.released = true;
    this.socket.destroy();
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        // Asking for the next chunk hands the last one back.
        this.held = false;
        if (this.pending) {
          const value = this.pending;
          this.pending = undefined;
          this.held = true;
          return Promise.resolve({ value, done: false });
        }
        const queued = this.queue.shift();
        if (queued) return Promise.resolve({ value: queued, done: false });
        if (this.error !== undefined) return Promise.reject(this.error);
        if (this.ended) {
          this.release();
          return Promise.resolve({ value: undefined, done: true });
        }
        if (this.waiter) return Promise.reject(new Error('The body is already being read.'));
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
          this.armTimer();
          this.socket.resume();
        });
      },
      return: () => {
        this.destroy();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /** Discards the rest: a body already read whole leaves its connection reusable. */
  async dump(): Promise<void> {
    if (!this.ended) this.destroy();
    else this.release();
  }

  /** Stops the download: a read in progress, or a later one, fails as aborted (never a short body). */
  destroy(): void {
    if (this.ended) {
      // Done already: nothing left to stop, and the connection is not handed back.
      this.reusable = false;
      this.release();
      return;
    }
    this.fail(socketError('Request aborted', 'UND_ERR_ABORTED'));
    this.pending = undefined;
    this.queue.length = 0;
  }
}

/** A timeout is a server (or link) that does not answer, not one that closed: not worth a resend. */
function timedOut(e: unknown): boolean {
  return /^UND_ERR_(CONNECT|HEADERS)_TIMEOUT$/.test(String((e as { code?: string })?.code));
}

function aborted(options: DirectOptions): boolean {
  return options.signal?.aborted === true;
}

/**
 * Status line and fields; lower-cased names, repeated fields as arrays. `keepAlive`: HTTP/1.1
 * without `Connection: close`, so the connection may carry another request.
 */
export function parseHead(text: string): {
  statusCode: number;
  headers: Record<string, string | string[]>;
  keepAlive: boolean;
} {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [^\r\n]*)?$/.exec(lines[0]!);
  if (!status) throw new Unhandled('status line');
  const statusCode = Number(status[2]);
  if (statusCode < 200) throw new Unhandled('interim response');
  const headers: Record<string, string | string[]> = {};
  for (const line of lines.slice(1)) {
    const m = /^([^:\s]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m || !TOKEN.test(m[1]!)) throw new Unhandled('header line');
    const name = m[1]!.toLowerCase();
    const prev = headers[name];
    if (prev === undefined) headers[name] = m[2]!;
    else if (Array.isArray(prev)) prev.push(m[2]!);
    else headers[name] = [prev, m[2]!];
  }
  const connection = [headers.connection ?? []].flat().flatMap((v) => v.toLowerCase().split(','));
  const keepAlive = status[1] === '1' && !connection.some((t) => t.trim() === 'close');
  return { statusCode, headers, keepAlive };
}

/** RFC 9112 §6.3 for a GET: how many body bytes follow, Infinity when the close ends it. */
export function bodyLength(statusCode: number, headers: Record<string, string | string[]>): number {
  if (statusCode === 204 || statusCode === 304) return 0;
  if (headers['transfer-encoding'] !== undefined) throw new Unhandled('transfer-encoding');
  const declared = headers['content-length'];
  if (declared === undefined) return Number.POSITIVE_INFINITY;
  const values = (Array.isArray(declared) ? declared : [declared]).flatMap((v) => v.split(','));
  const lengths = new Set(values.map((v) => v.trim()));
  const [only] = lengths;
  if (lengths.size !== 1 || !/^\d{1,15}$/.test(only!)) throw new Unhandled('content-length');
  return Number(only);
}

function onreadSize(options: DirectOptions): number {
  return options.readBufferSize ?? 1024 * 1024;
}
