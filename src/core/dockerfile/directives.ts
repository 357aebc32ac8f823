/**
 * Parser directives (`# syntax=…`, `# escape=…`, `# check=…`) found the way BuildKit's
 * DirectiveParser finds them (frontend/dockerfile/parser/directives.go): only at the top of the
 * file, each line `#` + `key=value`; the first line that is anything else (a blank line, another
 * comment, an instruction, an unknown key) ends the search.
 */

export interface Directive {
  /** Lower-case name: syntax, escape or check. */
  readonly name: string;
  readonly value: string;
  /** 0-based line and the 0-based columns of the value. */
  readonly line: number;
  readonly start: number;
  readonly end: number;
}

const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const KNOWN = new Set(['syntax', 'escape', 'check']);
const BOM = '\uFEFF';

/**
 * @param stripLeadingSpace the Dockerfile parser trims a line before looking at it; syntax
 *   detection (DetectSyntax) does not, and skips a `#!` first line instead.
 */
function scan(lines: readonly string[], stripLeadingSpace: boolean, skipShebang: boolean): Directive[] {
  const out: Directive[] = [];
  const seen = new Set<string>();
  let i = 0;
  if (skipShebang && lines[0]?.replace(BOM, '').startsWith('#!')) i = 1;
  for (; i < lines.length; i++) {
    let line = (lines[i] as string).replace(/\r$/, '');
    let offset = 0;
    if (i === 0 && line.startsWith(BOM)) offset = 1;
    if (stripLeadingSpace) while (offset < line.length && /\s/.test(line[offset] as string)) offset++;
    if (line[offset] !== '#') break;
    offset++;
    while (offset < line.length && /\s/.test(line[offset] as string)) offset++;
    line = line.slice(offset);
    const m = DIRECTIVE.exec(line);
    if (!m) break;
    const name = (m[1] as string).toLowerCase();
    // An unknown key ends the directives; a repeated one is a parse error in BuildKit.
    if (!KNOWN.has(name) || seen.has(name)) break;
    seen.add(name);
    const value = m[2] as string;
    const start = offset + line.indexOf(value, (m[1] as string).length);
    out.push({ name, value, line: i, start, end: start + value.length });
  }
  return out;
}

/** The escape token the Dockerfile parser uses: `\` unless an `# escape=` directive says `` ` ``. */
export function escapeDirective(lines: readonly string[]): Directive | undefined {
  const d = scan(lines, true, false).find((x) => x.name === 'escape');
  return d && (d.value === '`' || d.value === '\\') ? d : undefined;
}

/** The `# syntax=` directive as BuildKit detects it; its image is the first word of the value. */
export function syntaxDirective(lines: readonly string[]): Directive | undefined {
  const d = scan(lines, false, true).find((x) => x.name === 'syntax');
  if (!d) return undefined;
  const word = d.value.split(' ')[0] as string;
  return { ...d, value: word, end: d.start + word.length };
}
