/**
 * Word expansion the way BuildKit's Dockerfile shell lexer does it (frontend/dockerfile/shell/lex.go):
 * quotes, the escape token, `$V`, `${V}`, `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?x}`,
 * `${V?x}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`. Pure; never throws.
 */

export interface Expansion {
  readonly result: string;
  /** Variables read while unset (they expanded to nothing or to their default). */
  readonly unset: readonly string[];
  /** Variables read while set, whatever their value. */
  readonly used: readonly string[];
  /** Variables put in as they are while unset or empty (`$V`, `${V}`, `${V#p}`; not `${V:-x}`). */
  readonly blank: readonly string[];
  /** A syntax error (BuildKit fails the build on it); `result` is then empty. */
  readonly error?: string;
}

class LexError extends Error {}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
/**
 * Dockerfiles come from untrusted workspaces and the resolver runs synchronously in the extension
 * host: ARGs that double each other would grow exponentially, so longer results are an error.
 */
const MAX_EXPANSION = 1 << 20;
/** `${V/p/r}` is quadratic in V at worst; no image reference comes near this. */
const MAX_REPLACE_SUBJECT = 2048;

function capped(text: string): string {
  if (text.length > MAX_EXPANSION) {
    throw new LexError(`expansion longer than ${MAX_EXPANSION} characters`);
  }
  return text;
}
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;

class Lexer {
  private pos = 0;
  readonly unset = new Set<string>();
  readonly used = new Set<string>();
  readonly blank = new Set<string>();

  constructor(
    private readonly src: string,
    private readonly env: ReadonlyMap<string, string>,
    private readonly escapeToken: string,
  ) {}

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private next(): string | undefined {
    return this.src[this.pos++];
  }

  /** The value put in as it is. */
  private substitute(name: string): string {
    const { value } = this.getEnv(name);
    if (!value) this.blank.add(name);
    return value;
  }

  private getEnv(name: string): { value: string; set: boolean } {
    const value = this.env.get(name);
    if (value === undefined) {
      this.unset.add(name);
      return { value: '', set: false };
    }
    this.used.add(name);
    return { value, set: true };
  }

  /** Reads up to `stop` (consumed) or the end; `rawEscapes` keeps escape tokens (for patterns). */
  processStopOn(stop: string | undefined, rawEscapes: boolean): string {
    let result = '';
    while (this.pos < this.src.length) {
      let ch = this.peek() as string;
      if (stop !== undefined && ch === stop) {
        this.pos++;
        return result;
      }
      if (ch === '$') {
        result = capped(result + this.processDollar());
      } else if (ch === "'") {
        result += this.processSingleQuote();
      } else if (ch === '"') {
        result += this.processDoubleQuote(rawEscapes);
      } else {
        this.pos++;
        if (ch === this.escapeToken) {
          if (rawEscapes) result += ch;
          const escaped = this.next();
          if (escaped === undefined) break;
          ch = escaped;
        }
        result += ch;
      }
    }
    if (stop !== undefined)
      throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
    return result;
  }

  private processSingleQuote(): string {
    this.pos++;
    let result = '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined)
        throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return result;
      result += ch;
    }
  }

  private processDoubleQuote(rawEscapes: boolean): string {
    this.pos++;
    let result = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined)
        throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.pos++;
        return result;
      }
      if (ch === '$') {
        result = capped(result + this.processDollar());
        continue;
      }
      this.pos++;
      if (ch === this.escapeToken) {
        if (rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue;
        // Only ", $ and the escape token itself can be escaped inside double quotes.
        if (after === '"' || after === '$' || after === this.escapeToken) {
          this.pos++;
          result += after;
          continue;
        }
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) break;
      if (!name && DIGIT.test(ch)) {
        while (this.peek() !== undefined && DIGIT.test(this.peek() as string)) name += this.next();
        return name;
      }
      if (!name && SPECIAL_PARAMS.has(ch)) {
        this.pos++;
        return ch;
      }
      if (!LETTER.test(ch) && !DIGIT.test(ch) && ch !== '_') break;
      name += ch;
      this.pos++;
    }
    return name;
  }

  private processDollar(): string {
    this.pos++;
    if (this.peek() !== '{') {
      const name = this.processName();
      return name ? this.substitute(name) : '$';
    }
    this.pos++;
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    if (ch === undefined) throw new LexError("syntax error: missing '}'");
    let modifier = ch;
    if (ch === '}') return this.substitute(name);
    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      if (ch === undefined) throw new LexError("syntax error: missing '}'");
      modifier += ch;
    }
    if (ch === '/' && !nullIsUnset) return this.processReplace(name);
    if (!['+', '-', '?', '#', '%'].includes(ch)) {
      throw new LexError(`unsupported modifier (${modifier}) in substitution`);
    }
    const rawEscapes = ch === '#' || ch === '%';
    if (nullIsUnset && rawEscapes) throw new LexError(`unsupported modifier (${modifier}) in substitution`);
    let word: string;
    try {
      word = this.processStopOn('}', rawEscapes);
    } catch (e) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
    const { value, set } = this.getEnv(name);
    const missing = !set || (nullIsUnset && value === '');
    // The value goes in as it is unless ${V-x} gives x or ${V+x} gives x or nothing.
    if (!value && ch !== '+' && !(ch === '-' && missing)) this.blank.add(name);
    switch (ch) {
      case '-':
        return missing ? word : value;
      case '+':
        return missing ? '' : word;
      case '?':
        if (!set) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '')
          throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        // #/% trim the shortest match, ##/%% the longest.
        const greedy = word.startsWith(ch);
        const pattern = greedy ? word.slice(1) : word;
        return ch === '%' ? trimSuffix(pattern, value, greedy) : trimPrefix(pattern, value, greedy);
      }
    }
  }

  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.pos++;
    let pattern: string;
    let replacement: string;
    try {
      pattern = this.processStopOn('/', true);
    } catch (e) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '/' in $" + '{}');
      throw e;
    }
    try {
      replacement = this.processStopOn('}', true);
    } catch (e) {
      if (this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
    const value = this.substitute(name);
    return replaceGlob(compileGlob(pattern), value, replacement, all);
  }
}

/** A shell wildcard pattern, one token per code point: `*`, `?` or a literal character. */
type Glob = ({ kind: 'star' } | { kind: 'any' } | { kind: 'lit'; ch: string })[];

/** Parses a shell wildcard pattern (`*`, `?`, escapes; no brackets). */
function compileGlob(pattern: string): Glob {
  const out: Glob = [];
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i] as string;
    if (tok === '*') out.push({ kind: 'star' });
    else if (tok === '?') out.push({ kind: 'any' });
    else if (tok === '\\') {
      const next = chars[i + 1];
      // `}` and `/` are escaped only to get them into ${…}; the escape is not part of the pattern.
      if (next === '}' || next === '/') continue;
      if (next !== '*' && next !== '?' && next !== '\\') {
        throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${next ?? ''}'`);
      }
      out.push({ kind: 'lit', ch: next });
      i++;
    } else out.push({ kind: 'lit', ch: tok });
  }
  return out;
}

/**
 * Where a match of `glob` starting at `from` ends: the shortest or the longest, -1 when none.
 * An NFA walk, O(value × pattern): regular expressions would backtrack exponentially on
 * patterns like `*a*a*a*b`, and a hostile Dockerfile must not freeze the editor.
 */
function matchEnd(glob: Glob, chars: readonly string[], from: number, longest: boolean): number {
  const m = glob.length;
  const close = (s: Uint8Array) => {
    for (let i = 0; i < m; i++) if (s[i] && glob[i]!.kind === 'star') s[i + 1] = 1;
  };
  let states = new Uint8Array(m + 1);
  states[0] = 1;
  close(states);
  let found = states[m] ? from : -1;
  if (found >= 0 && !longest) return found;
  for (let p = from; p < chars.length; p++) {
    const next = new Uint8Array(m + 1);
    let alive = false;
    for (let i = 0; i < m; i++) {
      if (!states[i]) continue;
      const t = glob[i]!;
      if (t.kind === 'star') next[i] = 1;
      else if (t.kind === 'any' || t.ch === chars[p]) next[i + 1] = 1;
      else continue;
      alive = true;
    }
    if (!alive) break;
    close(next);
    states = next;
    if (states[m]) {
      found = p + 1;
      if (!longest) return found;
    }
  }
  return found;
}

/** `${V/p/r}` and `${V//p/r}`: leftmost, longest matches (as BuildKit's greedy regexp does). */
function replaceGlob(glob: Glob, value: string, replacement: string, all: boolean): string {
  const chars = [...value];
  if (chars.length > MAX_REPLACE_SUBJECT) {
    throw new LexError(`value too long (${chars.length} characters) for a pattern substitution`);
  }
  let out = '';
  let p = 0;
  let replaced = false;
  while (p <= chars.length) {
    const end = replaced && !all ? -1 : matchEnd(glob, chars, p, true);
    if (end < 0 && glob[0]?.kind === 'star') {
      // `*…` failing here fails at every later start too (the star would have absorbed the gap).
      out += chars.slice(p).join('');
      break;
    }
    if (end < 0) {
      if (p < chars.length) out += chars[p];
      p++;
      continue;
    }
    replaced = true;
    out = capped(out + replacement);
    if (end === p) {
      // An empty match: keep the character and move on, as a global regexp replace does.
      if (p < chars.length) out += chars[p];
      p++;
    } else p = end;
  }
  return out;
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const chars = [...value];
  const end = matchEnd(compileGlob(pattern), chars, 0, greedy);
  return end < 0 ? value : chars.slice(end).join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // A suffix of the value is a prefix of it reversed, matched by the pattern reversed.
  const chars = [...value].reverse();
  const end = matchEnd(compileGlob(pattern).reverse(), chars, 0, greedy);
  return end < 0 ? value : chars.slice(end).reverse().join('');
}

/** Expands one word with `env` (BuildKit's ProcessWordWithMatches); unset variables expand to nothing. */
export function expandWord(word: string, env: ReadonlyMap<string, string>, escapeToken = '\\'): Expansion {
  const lexer = new Lexer(word, env, escapeToken);
  try {
    const result = lexer.processStopOn(undefined, false);
    return { result, unset: [...lexer.unset], used: [...lexer.used], blank: [...lexer.blank] };
  } catch (e) {
    if (!(e instanceof LexError) && !(e instanceof SyntaxError)) throw e;
    const { unset, used, blank } = lexer;
    return { result: '', unset: [...unset], used: [...used], blank: [...blank], error: e.message };
  }
}

/**
 * Removes quotes and escapes from a builder flag value the way BuildKit's extractBuilderFlags
 * does (`--from="a b"` → `a b`), without expanding variables.
 */
export function unquoteFlagValue(value: string, escapeToken = '\\'): string {
  let out = '';
  let quote: string | undefined;
  for (let i = 0; i < value.length; i++) {
    let ch = value[i] as string;
    if (!quote && (ch === '"' || ch === "'")) {
      quote = ch;
      continue;
    }
    if (quote && ch === quote) {
      quote = undefined;
      continue;
    }
    if (ch === escapeToken) {
      if (i + 1 === value.length) continue;
      ch = value[++i] as string;
    }
    out += ch;
  }
  return out;
}
