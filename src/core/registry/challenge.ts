/**
 * `WWW-Authenticate` parsing (RFC 7235 §4.1) and the checks a Bearer challenge needs before we act
 * on it. Pure: no I/O.
 *
 * Malformed input never throws: the parser is lenient and returns what it could make sense of,
 * skipping what it could not (an unterminated quoted string drops that parameter). Callers look
 * for the scheme and parameters they need and report their absence themselves.
 */
import { StowageError } from '../errors';

export interface Challenge {
  /** Lowercased: 'bearer', 'basic', … */
  scheme: string;
  /** Parameter names lowercased; values unquoted and unescaped. */
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when a challenge carries one instead of parameters. */
  token68?: string;
}

// RFC 7230 tchar, and RFC 7235 token68.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /[A-Za-z0-9\-._~+/]/;
/** Headers longer than this are cut: no registry sends one, and the parse stays cheap. */
const MAX_HEADER = 64 * 1024;

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}

  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string | undefined {
    return this.s[this.pos];
  }
  skipSpace(): void {
    while (isSpace(this.peek())) this.pos++;
  }
  skipSpaceAndCommas(): void {
    while (isSpace(this.peek()) || this.peek() === ',') this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done && TCHAR.test(this.s[this.pos]!)) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** A quoted-string from the opening quote; undefined if it never closes. */
  quoted(): string | undefined {
    this.pos++; // opening quote
    let out = '';
    while (!this.done) {
      const c = this.s[this.pos++]!;
      if (c === '"') return out;
      if (c === '\\' && !this.done) out += this.s[this.pos++];
      else out += c;
    }
    return undefined;
  }
  /** An unquoted value. Lenient: anything up to a comma or white space (unquoted URLs occur). */
  bare(): string {
    const start = this.pos;
    while (!this.done && this.peek() !== ',' && !isSpace(this.peek()) && this.peek() !== '"') this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** Skips to the next comma (or the end): recovery from something unparseable. */
  skipItem(): void {
    while (!this.done && this.peek() !== ',') {
      if (this.peek() === '"') {
        if (this.quoted() === undefined) return;
      } else this.pos++;
    }
  }
}

/** If a token68 starts here and is all this list item holds, consume and return it. */
function token68At(sc: Scanner): string | undefined {
  let p = sc.pos;
  const s = sc.s;
  while (p < s.length && TOKEN68.test(s[p]!)) p++;
  if (p === sc.pos) return undefined;
  while (s[p] === '=') p++;
  let q = p;
  while (isSpace(s[q])) q++;
  if (q < s.length && s[q] !== ',') return undefined;
  // `name=value` has a token after '='; a token68 ends at its '='s.
  const value = s.slice(sc.pos, p);
  sc.pos = q;
  return value;
}

function addParam(params: Record<string, string>, name: string, value: string): void {
  // Own-property checks and defineProperty: `constructor` or `__proto__` are just names here.
  if (!Object.hasOwn(params, name)) {
    Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
  }
  // Several `scope` parameters mean several scopes; other duplicates are invalid: first wins.
  else if (name === 'scope' && value) params[name] = params[name] ? `${params[name]} ${value}` : value;
}

/** Cuts an over-long header at a list separator when there is one, so no half item is parsed. */
function cut(text: string): string {
  const comma = text.lastIndexOf(',', MAX_HEADER);
  return text.slice(0, comma > 0 ? comma : MAX_HEADER);
}

function parseOne(text: string, out: Challenge[]): void {
  const sc = new Scanner(text.length > MAX_HEADER ? cut(text) : text);
  let current: Challenge | undefined;
  while (true) {
    sc.skipSpaceAndCommas();
    if (sc.done) return;
    const start = sc.pos;
    const name = sc.token();
    if (!name) {
      // Not a token: garbage. Skip it (a quoted string whole) and carry on.
      if (sc.peek() === '"' && sc.quoted() === undefined) return;
      if (sc.pos === start) sc.pos++;
      continue;
    }
    const afterName = sc.pos;
    sc.skipSpace();
    if (sc.peek() === '=' && current) {
      // auth-param: name BWS "=" BWS ( token / quoted-string ); unless this is a token68.
      sc.pos = start;
      const t68 = Object.keys(current.params).length === 0 && !current.token68 ? token68At(sc) : undefined;
      if (t68 !== undefined) {
        current.token68 = t68;
        continue;
      }
      sc.pos = afterName;
      sc.skipSpace();
      sc.pos++; // '='
      sc.skipSpace();
      const value = sc.peek() === '"' ? sc.quoted() : sc.bare();
      if (value === undefined) return; // unterminated quote runs to the end: drop it
      addParam(current.params, name.toLowerCase(), value);
      sc.skipSpace();
      if (!sc.done && sc.peek() !== ',') sc.skipItem(); // trailing junk in this item
      continue;
    }
    if (sc.peek() === '=') {
      // A parameter before any scheme: nothing to attach it to.
      sc.skipItem();
      continue;
    }
    // A new challenge: auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    sc.pos = afterName;
    if (isSpace(sc.peek())) {
      sc.skipSpace();
      const t68 = token68At(sc);
      if (t68 !== undefined) current.token68 = t68;
    }
  }
}

/**
 * Parses one or several `WWW-Authenticate` header values into challenges, in order. Accepts any
 * parameter order, quoted strings with escapes (commas inside quotes are kept), unquoted values,
 * several challenges per header, and any case in scheme and parameter names. Never throws.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (header === undefined) return out;
  for (const h of Array.isArray(header) ? header : [header]) {
    if (typeof h === 'string') parseOne(h, out);
  }
  return out;
}

/** The first challenge of a scheme (case-insensitive), if any. */
export function findChallenge(challenges: Challenge[], scheme: string): Challenge | undefined {
  const s = scheme.toLowerCase();
  return challenges.find((c) => c.scheme === s);
}

/** The scopes a challenge asks for: its `scope` parameter split on white space. */
export function challengeScopes(challenge: Challenge): string[] {
  return (challenge.params.scope ?? '').split(/\s+/).filter(Boolean);
}

/**
 * The realm of a Bearer challenge as a URL we are willing to send credentials to: absolute,
 * http(s), no user info. Anything else (missing, relative, `file:`, `javascript:`, …) is the
 * registry's fault and is reported naming it.
 */
export function bearerRealm(challenge: Challenge, registry: string): URL {
  const realm = challenge.params.realm;
  const fail = (why: string) =>
    new StowageError(
      'REGISTRY_ERROR',
      `Registry ${registry} asked for a token from ${why}.`,
      'The registry is misconfigured (its auth realm); contact its operator.',
    );
  if (!realm) throw fail('no realm (its WWW-Authenticate challenge has no realm parameter)');
  const shown = JSON.stringify(realm.length > 200 ? `${realm.slice(0, 200)}…` : realm);
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw fail(`${shown}, which is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw fail(`${shown}, which is not an http(s) URL`);
  }
  if (url.username || url.password) throw fail('a realm URL that embeds credentials');
  if (!url.hostname) throw fail(`${shown}, which has no host`);
  return url;
}
