/**
 * Where BuildKit's Dockerfile parser (frontend/dockerfile/parser/parser.go) sees instructions,
 * continuations and heredoc bodies, and the text to give dockerfile-ast so that it sees the same.
 * dockerfile-ast finds heredocs by its own rules (`<<EOF` as a word of its own, quotes only
 * around the whole name), takes any escape at the end of a line for a continuation and knows
 * only ASCII blanks: where BuildKit differs, lines would be lost to a body or bodies read as
 * instructions (a phantom FROM, or a real one missed).
 */

/** `<<EOF`, `<<-EOF`, `3<<EOF`, `<< EOF`: BuildKit's reHeredoc, applied to one lexed word. */
const HEREDOC = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;
/** Instructions that take heredocs (also as ONBUILD's trigger). */
const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);
/** Leading blanks, Unicode ones included, as Go's unicode.IsSpace (a BOM is not one). */
const LEADING_BLANKS = /^[^\S\uFEFF]+/;
/** Leading blanks that dockerfile-ast does not take for blanks. */
const UNICODE_BLANK_FIRST = /^[ \t]*[^\S \t\uFEFF]/;
/** A comment line, for BuildKit's isComment. */
const COMMENT = /^[^\S\uFEFF]*#/;

interface Heredoc {
  readonly name: string;
  readonly chomp: boolean;
}

/**
 * The lines for dockerfile-ast: heredoc bodies (terminators included) emptied, `<<` blanked in
 * the instructions that open them, a line-ending escaped escape (`C:\\`, which BuildKit does
 * not take for a continuation) defused, leading Unicode blanks made spaces. Every other line,
 * and every column, stays where it was.
 */
export function linesForDockerfileAst(lines: readonly string[], escapeToken: string): string[] {
  const out = lines.map((l) =>
    UNICODE_BLANK_FIRST.test(l) ? l.replace(LEADING_BLANKS, (m) => ' '.repeat(m.length)) : l,
  );
  const continued = continuation(escapeToken);
  let i = 0;
  while (i < lines.length) {
    const first = i;
    let line = lines[i++] as string;
    if (first === 0) line = line.replace(/^\uFEFF/, '');
    if (COMMENT.test(line)) continue;
    let [logical, ends] = trimContinuation(line.replace(LEADING_BLANKS, ''), continued);
    defuseEscapedEscape(out, first, ends, escapeToken);
    if (ends && !logical) continue;
    while (!ends && i < lines.length) {
      const next = lines[i++] as string;
      if (COMMENT.test(next) || !next.trim()) continue;
      let part: string;
      [part, ends] = trimContinuation(next, continued);
      defuseEscapedEscape(out, i - 1, ends, escapeToken);
      logical += part;
    }
    if (!logical.includes('<<') || !takesHeredocs(logical, escapeToken)) continue;
    for (let l = first; l < i; l++) out[l] = (out[l] as string).replaceAll('<<', '  ');
    for (const heredoc of heredocsOf(logical)) {
      while (i < lines.length && !terminates(lines[i] as string, heredoc)) out[i++] = '';
      if (i < lines.length) out[i++] = '';
    }
  }
  return out;
}

/** BuildKit's lineContinuationRegex: the escape token last on a line, not itself escaped. */
function continuation(escapeToken: string): RegExp {
  const e = escapeToken === '\\' ? '\\\\' : escapeToken;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function trimContinuation(line: string, continued: RegExp): [string, boolean] {
  return continued.test(line) ? [line.replace(continued, '$1'), false] : [line, true];
}

/**
 * A line that ends the instruction for BuildKit but ends with an escape (an escaped escape,
 * `RUN copy a C:\\`) is a continuation for dockerfile-ast: that last escape becomes `#`, which
 * dockerfile-ast reads as an escaped character.
 */
function defuseEscapedEscape(out: string[], line: number, ends: boolean, escapeToken: string): void {
  if (!ends) return;
  const text = out[line] as string;
  let at = text.length - 1;
  while (at > 0 && (text[at] === ' ' || text[at] === '\t')) at--;
  if (at > 0 && text[at] === escapeToken) out[line] = `${text.slice(0, at)}#${text.slice(at + 1)}`;
}

/** BuildKit's canContainHeredoc: ADD, COPY, RUN (also under ONBUILD), not in JSON form. */
function takesHeredocs(logical: string, escapeToken: string): boolean {
  let [keyword = '', rest = ''] = splitKeyword(logical);
  if (keyword.toLowerCase() === 'onbuild') [keyword = '', rest = ''] = splitKeyword(rest);
  return HEREDOC_KEYWORDS.has(keyword.toLowerCase()) && !isJsonArray(afterFlags(rest, escapeToken));
}

function splitKeyword(logical: string): string[] {
  const trimmed = logical.trim();
  const blank = /[\t\v\f\r ]+/.exec(trimmed);
  return blank ? [trimmed.slice(0, blank.index), trimmed.slice(blank.index + blank[0].length)] : [trimmed];
}

/** What extractBuilderFlags leaves: the text after the leading `--flag` words (and after `--`). */
function afterFlags(rest: string, escapeToken: string): string {
  let pos = 0;
  for (;;) {
    while (pos < rest.length && /\s/.test(rest[pos] as string)) pos++;
    if (!rest.startsWith('--', pos)) return rest.slice(pos);
    const start = pos;
    let quote: string | undefined;
    for (; pos < rest.length; pos++) {
      const ch = rest[pos] as string;
      if (quote) {
        if (ch === quote) quote = undefined;
        else if (ch === escapeToken) pos++;
      } else if (/\s/.test(ch)) break;
      else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === escapeToken) pos++;
    }
    if (rest.slice(start, pos) === '--') return rest.slice(pos);
  }
}

/** parseJSON: a JSON array of strings (the exec form). */
function isJsonArray(text: string): boolean {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('[')) return false;
  try {
    const value: unknown = JSON.parse(trimmed);
    return Array.isArray(value) && value.every((v) => typeof v === 'string');
  } catch {
    return false;
  }
}

/** heredocsFromLine: the words of the line, quotes and escapes kept, that are heredoc openers. */
function heredocsOf(logical: string): Heredoc[] {
  const out: Heredoc[] = [];
  for (const word of shellWords(logical, true) ?? []) {
    const m = HEREDOC.exec(word);
    if (!m?.[3]) continue;
    // The name is the rest as one shell word, quotes and escapes removed.
    const name = shellWords(m[3], false);
    if (name?.length === 1) out.push({ name: name[0] as string, chomp: m[2] === '-' });
  }
  return out;
}

function terminates(line: string, heredoc: Heredoc): boolean {
  return (heredoc.chomp ? line.replace(/^\t+/, '') : line) === heredoc.name;
}

/**
 * Splits text into words as BuildKit's shell lexer does with no variables (`$X` stays as
 * written) and `\` as the escape, whatever `# escape=` says: quotes group, `<<` takes the blanks
 * after it into its word. `raw` keeps quotes and escapes. Null for a quote left open (BuildKit
 * then finds no heredoc on the line).
 */
function shellWords(text: string, raw: boolean): string[] | null {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  const end = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i++] as string;
    if (ch === "'" || ch === '"') {
      const close = text.indexOf(ch, i);
      let body = '';
      if (ch === "'") {
        if (close < 0) return null;
        body = text.slice(i, close);
        i = close + 1;
      } else {
        for (;;) {
          if (i >= text.length) return null;
          const c = text[i++] as string;
          if (c === '"') break;
          if (c === '\\' && i < text.length && '"$\\'.includes(text[i] as string)) {
            body += raw ? `\\${text[i++]}` : text[i++];
          } else body += c;
        }
      }
      word += raw ? `${ch}${body}${ch}` : body;
      inWord = true;
    } else if (ch === '\\') {
      if (i >= text.length) break;
      word += raw ? `\\${text[i++]}` : text[i++];
      inWord = true;
    } else if (ch === '<' && text[i] === '<') {
      const blanks = /^[\t\r ]*/.exec(text.slice(i + 1))?.[0] ?? '';
      word += `<<${blanks}`;
      i += 1 + blanks.length;
      inWord = true;
    } else if (/\s/.test(ch)) end();
    else {
      word += ch;
      inWord = true;
    }
  }
  end();
  return words;
}
