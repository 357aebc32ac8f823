// Build stages of a Dockerfile and the places that name them (FROM stage, COPY --from=stage,
// RUN --mount=from=stage), for hovers. No vscode import: unit-tested.
import {
  contains,
  flags,
  mountFromOption,
  parseDockerfile,
  type Range,
  stageName,
  unquoteFlagValue,
} from '../../core/dockerfile';
import { code } from './markdown';

/** One `FROM`: a build stage, named or not. */
export interface Stage {
  /** 0-based, as COPY --from=N counts. */
  index: number;
  /** The lower-case name (FROM … AS name), or null. */
  name: string | null;
  /** 1-based line of its FROM. */
  line: number;
  /** The image as written (`golang:${GO}`, `scratch`, another stage's name). */
  image: string;
  /** The earlier stage this one is built on, when its FROM names one. */
  base?: Stage;
}

/** A stage name (or index) under the cursor: where it is, the stage it means, and how it is used. */
export interface StageMention {
  stage: Stage;
  range: Range;
  /** `AS name` of the stage's own FROM; else a use (FROM, COPY --from, RUN --mount from=). */
  definition: boolean;
  /** 1-based lines that refer to the stage. */
  usedOn: number[];
  /** How many stages the Dockerfile has (the last is what a build produces by default). */
  stages: number;
}

interface Mention {
  stage: Stage;
  range: Range;
  definition: boolean;
  line: number;
}

interface Mentions {
  mentions: Mention[];
  stages: number;
}

const INTEGER = /^\d+$/;

/** The stage named or numbered at a 0-based position of `text`, if any (never throws). */
export function stageAt(text: string, line: number, character: number): StageMention | undefined {
  const { mentions, stages } = stageMentions(text);
  const hit = mentions.find((m) => contains(m.range, line, character));
  if (!hit) return undefined;
  const usedOn = mentions.filter((m) => m.stage === hit.stage && !m.definition).map((m) => m.line);
  return {
    stage: hit.stage,
    range: hit.range,
    definition: hit.definition,
    usedOn: [...new Set(usedOn)],
    stages,
  };
}

/**
 * Where the stage named or numbered at a position is defined (its `AS name`, else the start of its
 * FROM line) and every place that names it, the definition first (for Go to Definition and Find
 * All References). Undefined off stage names.
 */
export function stageLocations(
  text: string,
  line: number,
  character: number,
): { definition: Range; references: Range[] } | undefined {
  const { mentions } = stageMentions(text);
  const hit = mentions.find((m) => contains(m.range, line, character));
  if (!hit) return undefined;
  const named = mentions.filter((m) => m.stage === hit.stage);
  const at = { line: hit.stage.line - 1, character: 0 };
  const definition = named.find((m) => m.definition)?.range ?? { start: at, end: at };
  return {
    definition,
    references: [definition, ...named.filter((m) => !m.definition).map((m) => m.range)],
  };
}

/** Every mention of a stage, in file order; as BuildKit resolves them (see core/dockerfile/resolve.ts). */
export function stageMentions(text: string): Mentions {
  // As the resolver reads it (BuildKit's heredocs, line ends and escape); undefined if it threw.
  const dockerfile = parseDockerfile(text);
  if (!dockerfile) return { mentions: [], stages: 0 };
  const escapeToken = dockerfile.getEscapeCharacter();
  const froms = dockerfile.getFROMs();
  const all: Stage[] = froms.map((f, index) => ({
    index,
    name: stageName(f),
    line: f.getRange().start.line + 1,
    image: f.getImage() ?? '',
  }));
  // COPY --from and RUN --mount from= find a stage by name anywhere in the file, case-insensitively.
  const named = (name: string) => all.find((s) => s.name === name.toLowerCase());
  const out: Mention[] = [];
  let fromIndex = -1;
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword().toUpperCase();
    const line = instruction.getRange().start.line + 1;
    if (keyword === 'FROM') {
      fromIndex++;
      const from = froms[fromIndex];
      const stage = all[fromIndex];
      if (!from || !stage) continue;
      // FROM <name> is a stage only when defined above, and only by its lower-case name.
      const base = all.slice(0, fromIndex).find((s) => s.name === stage.image);
      const imageRange = from.getImageRange();
      if (base && imageRange) {
        stage.base = base;
        out.push({ stage: base, range: imageRange, definition: false, line });
      }
      const nameRange = from.getBuildStageRange();
      if (stage.name && nameRange) out.push({ stage, range: nameRange, definition: true, line });
    } else if (keyword === 'COPY') {
      const flag = flags(instruction, 'from')[0];
      const value = flag?.getValue();
      const range = flag?.getValueRange();
      if (!value || !range) continue;
      const name = unquoteFlagValue(value, escapeToken);
      const stage = INTEGER.test(name) ? all[Number(name)] : named(name);
      if (stage) out.push({ stage, range, definition: false, line });
    } else if (keyword === 'RUN') {
      for (const mount of flags(instruction, 'mount')) {
        const option = mountFromOption(mount);
        const value = option?.getValue();
        const range = option?.getValueRange();
        const stage = value ? named(value) : undefined;
        if (stage && range) out.push({ stage, range, definition: false, line });
      }
    }
  }
  return { mentions: out, stages: all.length };
}

function lines(numbers: readonly number[]): string {
  return numbers.length === 1 ? `line ${numbers[0]}` : `lines ${numbers.join(', ')}`;
}

/**
 * The hover's Markdown for a stage mention. `image` is the stage's image as the build resolves it
 * (ARGs expanded, the full name), when it is one.
 */
export function stageHoverMarkdown(mention: StageMention, image?: string): string {
  const { stage } = mention;
  const title = stage.name
    ? `**${code(stage.name)}** · build stage ${stage.index}`
    : `**Build stage ${stage.index}**`;
  const where = mention.definition ? `Defined here, on line ${stage.line}` : `Defined on line ${stage.line}`;
  let from: string;
  if (stage.base) {
    from = `the stage ${code(stage.base.name ?? String(stage.base.index))} (line ${stage.base.line})`;
  } else if (stage.image === 'scratch') {
    from = `${code('scratch')} (an empty image)`;
  } else {
    from = code(stage.image);
    if (image && image !== stage.image) from += ` → ${code(image)}`;
  }
  const out = [title, '', `${where}, from ${from}.`];
  if (mention.definition) {
    const last = stage.index === mention.stages - 1;
    const used = mention.usedOn.length
      ? `Used on ${lines(mention.usedOn)}.`
      : 'Not used by another instruction.';
    out.push('', last ? `${used} The last stage: what a build produces by default.` : used);
  }
  return out.join('\n');
}
