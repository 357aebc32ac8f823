import { type Dockerfile, DockerfileParser } from 'dockerfile-ast';
import { type Directive, escapeDirective } from './directives';
import { linesForDockerfileAst } from './lines';

/** dockerfile-ast's parse, with the instructions BuildKit sees, and BuildKit's escape token. */
export interface Parsed {
  /** Undefined when dockerfile-ast threw. */
  readonly dockerfile?: Dockerfile;
  readonly escapeToken: string;
}

/**
 * Parses a Dockerfile with dockerfile-ast so that its instructions are BuildKit's: heredoc
 * bodies, line ends and leading blanks as BuildKit reads them (lines.ts), and the `# escape=`
 * BuildKit honours. Positions are those of `text`. Never throws.
 */
export function parseDockerfile(text: string): Dockerfile | undefined {
  return parseLines(text.split(/\r\n|\r|\n/)).dockerfile;
}

/** parseDockerfile of text split into lines as editors count them (a lone \r ends one too). */
export function parseLines(lines: readonly string[]): Parsed {
  const directive = escapeDirective(lines);
  const escapeToken = directive?.value ?? '\\';
  return { dockerfile: parse(linesForDockerfileAst(lines, escapeToken), directive), escapeToken };
}

/** @param escaped the `# escape=` directive BuildKit honours, if any */
function parse(lines: string[], escaped: Directive | undefined): Dockerfile | undefined {
  try {
    const dockerfile = DockerfileParser.parse(lines.join('\n'));
    if (dockerfile.getEscapeCharacter() === (escaped?.value ?? '\\')) return dockerfile;
    const copy = [...lines];
    if (escaped) {
      // dockerfile-ast missed an `# escape=` BuildKit honours (after `# syntax=image args`): the
      // directives are comments to it; it finds this one first.
      copy[escaped.line] = '#';
      copy[0] = `# escape=${escaped.value}`;
    } else {
      // dockerfile-ast honours an `# escape=` that BuildKit ignores (after an unknown directive):
      // blank that comment out, keeping every offset, and parse again.
      const directive = dockerfile.getDirectives().find((d) => d.getName().toLowerCase() === 'escape');
      if (!directive) return dockerfile;
      const n = directive.getRange().start.line;
      copy[n] = `#${' '.repeat(Math.max(0, (copy[n] as string).length - 1))}`;
    }
    return DockerfileParser.parse(copy.join('\n'));
  } catch {
    // dockerfile-ast is not ours; whatever it trips over must not break an editor.
    return undefined;
  }
}
