import { type Argument, DockerfileParser, type Flag, type Instruction } from 'dockerfile-ast';
import { isStowageError } from '../errors';
import { formatPlatform, hostPlatform, type Platform, parsePlatform } from '../platform';
import { redactUserinfo } from '../redact';
import { formatReference, isScratch, parseReference, type Reference } from '../reference';
import { syntaxDirective } from './directives';
import { parseLines } from './parse';
import { type Expansion, expandWord, unquoteFlagValue } from './shell';

/** A 0-based editor position. */
export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export type ImageInstruction = 'FROM' | 'COPY' | 'RUN' | 'syntax';

export interface ResolveOptions {
  /** The platform being built for (default: the host's). */
  targetPlatform?: Platform;
  /** The platform the build runs on (default: the host's). */
  buildPlatform?: Platform;
  /** `--build-arg NAME=VALUE`: they override ARG defaults (and the automatic platform ARGs). */
  buildArgs?: Record<string, string>;
}

/** One image a build of the Dockerfile would pull. */
export interface ImageUse {
  /** 1-based line where the instruction (or the `# syntax=` directive) starts. */
  line: number;
  /** 0-based editor range of the reference text as written. */
  range: Range;
  instruction: ImageInstruction;
  /** The text as written (line continuations removed, nothing expanded). */
  raw: string;
  /** After ARG expansion (and quote removal). */
  expanded: string;
  /** The normalised reference, when valid. */
  reference?: Reference;
  /** formatReference(reference), or null when it cannot be resolved. */
  ref: string | null;
  /** os/arch[/variant] the image is pulled for. */
  platform: string;
  /** The (lower-case) stage name the use defines (FROM … AS name) or belongs to; null if unnamed. */
  stage: string | null;
  /** Why ref is null. */
  error?: string;
}

const INTEGER = /^[+-]?\d+$/;

interface Stage {
  readonly name: string | null;
  readonly from: Instruction;
}

/** The context one resolution runs in. */
interface Context {
  readonly escapeToken: string;
  readonly target: Platform;
  readonly build: Platform;
  readonly buildArgs: ReadonlyMap<string, string>;
  /** ARGs visible in FROM: automatic platform ARGs and meta ARGs. */
  readonly globals: Map<string, string>;
  /** Meta ARGs declared without a value (and without a build arg). */
  readonly metaNoValue: Set<string>;
  /** Meta ARGs whose default failed to expand, with why. */
  readonly metaErrors: Map<string, string>;
  /** Meta ARGs whose default read ARGs without a value or empty (at any depth), with why. */
  readonly metaDefaultReasons: Map<string, string[]>;
  /** ARGs declared inside stages (invisible in FROM). */
  readonly stageArgs: Set<string>;
  /** Every named stage, lower-case (COPY --from and RUN --mount from= may refer forward). */
  readonly stageNames: Set<string>;
  readonly stageCount: number;
}

/**
 * Lists every image reference a BuildKit build of `text` would pull, in file order, the way
 * BuildKit resolves them (frontend/dockerfile/dockerfile2llb/convert.go). Pure and synchronous;
 * never throws: text it cannot make sense of yields entries with an `error`, or none.
 */
export function resolveDockerfile(text: string, options: ResolveOptions = {}): ImageUse[] {
  // Line breaks as editors (and dockerfile-ast) count them: a lone \r ends a line too.
  const lines = text.split(/\r\n|\r|\n/);
  const target = options.targetPlatform ?? hostPlatform();
  const build = options.buildPlatform ?? hostPlatform();
  const buildArgs = new Map(Object.entries(options.buildArgs ?? {}));
  const uses: ImageUse[] = [];

  const syntax = resolveSyntax(lines, formatPlatform(build), buildArgs);
  if (syntax) uses.push(syntax);

  const { dockerfile, escapeToken } = parseLines(lines);
  if (!dockerfile) return uses;
  const instructions = dockerfile.getInstructions();

  // Meta ARGs are those before the first FROM; the rest belong to stages.
  const firstFrom = instructions.findIndex((i) => keyword(i) === 'FROM');
  const meta = firstFrom < 0 ? instructions : instructions.slice(0, firstFrom);
  const body = firstFrom < 0 ? [] : instructions.slice(firstFrom);
  const stages: Stage[] = body
    .filter((i) => keyword(i) === 'FROM')
    .map((from) => ({ from, name: stageName(from) }));
  const stageOf = new Map(stages.map((s) => [s.from, s]));
  const stageArgs = new Set<string>();
  for (const i of body)
    if (keyword(i) === 'ARG') for (const p of argProperties(i, escapeToken)) stageArgs.add(p.name);

  const ctx: Context = {
    escapeToken,
    target,
    build,
    buildArgs,
    globals: automaticArgs(build, target, stages.at(-1)?.name ?? null, buildArgs),
    metaNoValue: new Set(),
    metaErrors: new Map(),
    metaDefaultReasons: new Map(),
    stageArgs,
    stageNames: new Set(stages.flatMap((s) => (s.name ? [s.name] : []))),
    stageCount: stages.length,
  };
  for (const i of meta) if (keyword(i) === 'ARG') declareMetaArgs(ctx, i);

  // FROM <name> refers to a stage only when the name was defined above it: the stages so far,
  // each with its ONBUILD instructions.
  const triggers = new Map<string, Instruction[]>();
  const fired = new Set<Instruction>();
  let stage: Stage | undefined;
  for (const instruction of body) {
    const kw = keyword(instruction);
    if (kw === 'FROM') {
      stage = stageOf.get(instruction);
      const from = resolveFrom(ctx, instruction, stage?.name ?? null, triggers);
      if (from && 'use' in from) uses.push(from.use);
      // A stage built on another runs that stage's ONBUILD triggers (BuildKit's resolveStages);
      // what a trigger pulls is the same in every stage it fires in: listed once.
      if (from && 'base' in from) {
        for (const trigger of triggers.get(from.base) ?? []) {
          if (!fired.has(trigger)) uses.push(...triggerUses(ctx, trigger, stage));
          fired.add(trigger);
        }
      }
      if (stage?.name) triggers.set(stage.name, []);
    } else if (kw === 'ONBUILD') {
      if (stage?.name) triggers.get(stage.name)?.push(instruction);
    } else if (kw === 'COPY') {
      const use = resolveCopyFrom(ctx, instruction, stage?.name ?? null);
      if (use) uses.push(use);
    } else if (kw === 'RUN') {
      uses.push(...resolveMountsFrom(ctx, instruction, stage?.name ?? null));
    }
  }
  // Triggers are listed where they are written, among the other uses.
  return uses.sort((a, b) => a.line - b.line);
}

/** The images an ONBUILD COPY --from or RUN --mount from= pulls when it fires in `stage`. */
function triggerUses(ctx: Context, onbuild: Instruction, stage: Stage | undefined): ImageUse[] {
  const trigger = (
    onbuild as Instruction & { getTriggerInstruction?: () => Instruction | null }
  ).getTriggerInstruction?.();
  if (!trigger) return [];
  const kw = keyword(trigger);
  if (kw === 'COPY') {
    const use = resolveCopyFrom(ctx, trigger, stage?.name ?? null);
    return use ? [use] : [];
  }
  return kw === 'RUN' ? resolveMountsFrom(ctx, trigger, stage?.name ?? null) : [];
}

/** An ImageUse error without its "Line N: " prefix, for places that already show the position. */
export function errorReason(error: string): string {
  return error.replace(/^Line \d+: /, '');
}

/**
 * The ARGs a use's error says have no value or are empty (declared before the first FROM):
 * giving each a build argument would resolve it. Read from the reasons variableReasons writes.
 */
export function missingBuildArgs(error: string): string[] {
  const names = [...error.matchAll(/\bARG ([A-Za-z_][A-Za-z0-9_]*) (?:has no value|is empty)\b/g)].map(
    (m) => m[1]!,
  );
  return [...new Set(names)];
}

/** The use whose reference range contains the 0-based position, else the one on that line. */
export function useAt(uses: readonly ImageUse[], line: number, character: number): ImageUse | undefined {
  const inside = uses.find((u) => contains(u.range, line, character));
  return (
    inside ??
    uses.find((u) => u.line - 1 === line || (u.range.start.line <= line && line <= u.range.end.line))
  );
}

/** Whether a 0-based position is inside `r` (its ends included). */
export function contains(r: Range, line: number, character: number): boolean {
  const afterStart = line > r.start.line || (line === r.start.line && character >= r.start.character);
  const beforeEnd = line < r.end.line || (line === r.end.line && character <= r.end.character);
  return afterStart && beforeEnd;
}

/** dockerfile-ast recomputes arguments on every call, and that is most of the cost: keep them. */
const argumentCache = new WeakMap<Instruction, Argument[]>();

function argumentsOf(i: Instruction): Argument[] {
  let args = argumentCache.get(i);
  if (!args) {
    args = i.getArguments();
    argumentCache.set(i, args);
  }
  return args;
}

function keyword(i: Instruction): string {
  return i.getKeyword().toUpperCase();
}

interface ArgProperty {
  readonly name: string;
  /** The value as written (quotes and escapes kept), or null for `ARG NAME`. */
  readonly value: string | null;
}

type WithProperties = Instruction & {
  getProperties?: () => { getName(): string; getUnescapedValue(): string | null }[];
  getPropertyArguments?: () => Argument[];
};

/**
 * What an ARG declares, one ARG per word as BuildKit's parseArg reads it: `ARG A B=2` declares A
 * (no value) and B. dockerfile-ast reads a first word without "=" as ENV's old `KEY value` form
 * (A="B=2"): such words are parsed one by one instead.
 */
function argProperties(i: Instruction, escapeToken: string): ArgProperty[] {
  const words = (i as WithProperties).getPropertyArguments?.() ?? [];
  if (words.length < 2 || words[0]?.getValue().includes('=')) return propertiesOf(i);
  const directive = escapeToken === '\\' ? '' : `# escape=${escapeToken}\n`;
  return words.flatMap((w) => {
    const word = w.getValue();
    if (/^[A-Za-z0-9_]+$/.test(word)) return [{ name: word, value: null }];
    const [one] = DockerfileParser.parse(`${directive}ARG ${word}`).getInstructions();
    return one ? propertiesOf(one) : [];
  });
}

function propertiesOf(i: Instruction): ArgProperty[] {
  const arg = i as WithProperties;
  if (typeof arg.getProperties !== 'function') return [];
  return arg.getProperties().map((p) => ({ name: p.getName(), value: p.getUnescapedValue() }));
}

/** BuildKit's defaultArgs: the automatic platform ARGs, which build args may override. */
function automaticArgs(
  build: Platform,
  target: Platform,
  lastStage: string | null,
  buildArgs: ReadonlyMap<string, string>,
): Map<string, string> {
  const env = new Map<string, string>([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETSTAGE', lastStage ?? 'default'],
  ]);
  for (const key of env.keys()) {
    const override = buildArgs.get(key);
    if (override !== undefined) env.set(key, override);
  }
  return env;
}

/** BuildKit's buildMetaArgs: a build arg wins, else the default expanded with the ARGs so far. */
function declareMetaArgs(ctx: Context, instruction: Instruction): void {
  for (const { name, value } of argProperties(instruction, ctx.escapeToken)) {
    let result: string | undefined = ctx.buildArgs.get(name);
    if (result === undefined && value !== null) {
      const expansion = expandWord(value, ctx.globals, ctx.escapeToken);
      if (expansion.error) {
        ctx.metaErrors.set(name, `the default of ARG ${name} cannot be expanded (${expansion.error})`);
        continue;
      }
      result = expansion.result;
      ctx.metaDefaultReasons.set(name, defaultReasons(ctx, name, expansion));
    } else if (result !== undefined) {
      ctx.metaDefaultReasons.delete(name);
    }
    if (result === undefined) {
      ctx.metaNoValue.add(name);
      continue;
    }
    ctx.metaNoValue.delete(name);
    ctx.metaErrors.delete(name);
    ctx.globals.set(name, result);
  }
}

/** The lower-case name of `FROM image AS name` (line continuations joined), else null. */
export function stageName(from: Instruction): string | null {
  const args = argumentsOf(from);
  if (args.length === 3 && args[1]?.getValue().toLowerCase() === 'as')
    return (args[2] as Argument).getValue().toLowerCase();
  return null;
}

/** An instruction's `--name` flags (names are case-sensitive, as BuildKit's). */
export function flags(i: Instruction, name: string): Flag[] {
  const withFlags = i as Instruction & { getFlags?: () => Flag[] };
  return typeof withFlags.getFlags === 'function'
    ? withFlags.getFlags().filter((f) => f.getName() === name)
    : [];
}

function why(line: number, message: string, reasons: string[] = []): string {
  const sentences = [message, ...reasons].map((x) => x.replace(/\.$/, ''));
  return `Line ${line}: ${sentences.join('. ')}.`;
}

/**
 * Why a meta ARG's default may be wrong: the ARGs it put in that had no value or were empty when
 * it was declared (a build argument for them would reach it), and those of the ARGs it read.
 */
function defaultReasons(ctx: Context, name: string, expansion: Expansion): string[] {
  const reasons: string[] = [];
  const reads = `(the default of ARG ${name} reads it)`;
  // Only ARGs put in as they are: one read as ${V:-x} was given a value there.
  for (const dep of expansion.blank) {
    if (dep !== name && ctx.metaNoValue.has(dep) && !ctx.globals.has(dep)) {
      reasons.push(`ARG ${dep} has no value ${reads}: give it a default or pass --build-arg ${dep}=…`);
    } else if (ctx.globals.get(dep) === '') reasons.push(`ARG ${dep} is empty ${reads}`);
  }
  for (const dep of expansion.used) reasons.push(...(ctx.metaDefaultReasons.get(dep) ?? []));
  return reasons;
}

/** Why the variables an expansion read may have made it empty or wrong. */
function variableReasons(ctx: Context, expansion: Expansion): string[] {
  const reasons: string[] = [];
  for (const name of expansion.unset) {
    const error = ctx.metaErrors.get(name);
    if (error) reasons.push(error);
    else if (ctx.metaNoValue.has(name)) {
      reasons.push(`ARG ${name} has no value: give it a default or pass --build-arg ${name}=…`);
    } else if (ctx.stageArgs.has(name)) {
      reasons.push(
        `ARG ${name} is declared inside a stage; only ARGs declared before the first FROM are visible in FROM`,
      );
    } else if (ctx.buildArgs.has(name)) {
      reasons.push(`--build-arg ${name} is not used until ARG ${name} is declared before the first FROM`);
    } else {
      reasons.push(`ARG ${name} is not set: declare it before the first FROM`);
    }
  }
  for (const name of expansion.used) {
    if (ctx.globals.get(name) === '') reasons.push(`ARG ${name} is empty`);
    reasons.push(...(ctx.metaDefaultReasons.get(name) ?? []));
  }
  return [...new Set(reasons)];
}

function rangeOf(r: { start: Position; end: Position }): Range {
  return {
    start: { line: r.start.line, character: r.start.character },
    end: { line: r.end.line, character: r.end.character },
  };
}

/**
 * Builds an entry from the expanded name; `invalid` words the error from why the name is not a
 * valid reference and the hint that goes with it.
 */
function imageUse(
  line: number,
  range: Range,
  instruction: ImageInstruction,
  raw: string,
  expanded: string,
  platform: string,
  stage: string | null,
  invalid: (why: string, hint: string | undefined) => string,
): ImageUse {
  const base = { line, range, instruction, raw, expanded, platform, stage };
  try {
    const reference = parseReference(expanded);
    return { ...base, reference, ref: formatReference(reference) };
  } catch (e) {
    if (!isStowageError(e)) throw e;
    const prefix = `Invalid image reference "${redactUserinfo(expanded)}": `;
    const reason = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return { ...base, ref: null, error: invalid(reason.replace(/\.$/, ''), e.hint) };
  }
}

function failed(
  line: number,
  range: Range,
  instruction: ImageInstruction,
  raw: string,
  expanded: string,
  platform: string,
  stage: string | null,
  error: string,
): ImageUse {
  return { line, range, instruction, raw, expanded, ref: null, platform, stage, error };
}

/**
 * The frontend image the build runs (builder/build.go): `--build-arg BUILDKIT_SYNTAX=…` wins over
 * the `# syntax=` directive; either is pulled for the build platform.
 */
function resolveSyntax(
  lines: readonly string[],
  platform: string,
  buildArgs: ReadonlyMap<string, string>,
): ImageUse | undefined {
  const directive = syntaxDirective(lines);
  const override = buildArgs.get('BUILDKIT_SYNTAX');
  if (!directive && override === undefined) return undefined;
  const line = directive?.line ?? 0;
  const range = {
    start: { line, character: directive?.start ?? 0 },
    end: { line, character: directive?.end ?? 0 },
  };
  const raw = directive?.value ?? '';
  const expanded = override === undefined ? raw : (override.trim().split(' ')[0] as string);
  const what =
    override === undefined
      ? `# syntax=${redactUserinfo(raw)}`
      : `--build-arg BUILDKIT_SYNTAX=${redactUserinfo(override)}`;
  return imageUse(line + 1, range, 'syntax', raw, expanded, platform, null, (reason, hint) =>
    why(line + 1, `${what} is not a valid image reference: ${reason}`, hint ? [hint] : []),
  );
}

/** The platform a FROM pulls for: its expanded --platform, else the target platform. */
function fromPlatform(ctx: Context, from: Instruction, line: number): { platform: string; error?: string } {
  const flag = flags(from, 'platform')[0];
  if (!flag) return { platform: formatPlatform(ctx.target) };
  const raw = flag.getValue();
  if (raw === null)
    return {
      platform: formatPlatform(ctx.target),
      error: why(line, '--platform needs a value, e.g. --platform=$BUILDPLATFORM'),
    };
  const value = unquoteFlagValue(raw, ctx.escapeToken);
  // BuildKit takes an empty flag value for no flag; one that expands to nothing is an error.
  if (!value) return { platform: formatPlatform(ctx.target) };
  const expansion = expandWord(value, ctx.globals, ctx.escapeToken);
  if (expansion.error)
    return { platform: raw, error: why(line, `cannot expand --platform=${raw}: ${expansion.error}`) };
  const text = expansion.result;
  if (!text) {
    return {
      platform: raw,
      error: why(line, `--platform=${raw} expands to an empty platform`, variableReasons(ctx, expansion)),
    };
  }
  try {
    const parts = text.split('/');
    // containerd reads a lone OS name as that OS on the build machine's architecture.
    const platform =
      parts.length === 1 && ['linux', 'windows', 'darwin', 'freebsd'].includes(text.toLowerCase())
        ? parsePlatform(
            `${text}/${ctx.build.architecture}${ctx.build.variant ? `/${ctx.build.variant}` : ''}`,
          )
        : parsePlatform(text);
    return { platform: formatPlatform(platform) };
  } catch (e) {
    if (!isStowageError(e)) throw e;
    return {
      platform: text,
      error: why(
        line,
        `--platform=${raw} is not a valid platform: ${e.message}`,
        variableReasons(ctx, expansion),
      ),
    };
  }
}

/** The image a FROM pulls, or the stage above it that it builds on (undefined for scratch). */
function resolveFrom(
  ctx: Context,
  from: Instruction,
  stage: string | null,
  definedAbove: ReadonlyMap<string, unknown>,
): { use: ImageUse } | { base: string } | undefined {
  const line = from.getRange().start.line + 1;
  const args = argumentsOf(from);
  const first = args[0];
  if (!first) {
    const end = from.getInstructionRange().end;
    const range = { start: { ...end }, end: { ...end } };
    const platform = formatPlatform(ctx.target);
    return { use: failed(line, range, 'FROM', '', '', platform, null, why(line, 'FROM names no image')) };
  }
  const raw = first.getValue();
  const range = rangeOf(first.getRange());
  const { platform, error: platformError } = fromPlatform(ctx, from, line);
  const fail = (expanded: string, error: string) => ({
    use: failed(line, range, 'FROM', raw, expanded, platform, stage, error),
  });
  const shapeOk = args.length === 1 || (args.length === 3 && args[1]?.getValue().toLowerCase() === 'as');
  if (!shapeOk) {
    const comment = args.some((a) => a.getValue().startsWith('#'))
      ? '; comments must be on lines of their own'
      : '';
    return fail(
      raw,
      why(line, `FROM takes an image and optionally "AS name", not ${args.length} words${comment}`),
    );
  }

  const expansion = expandWord(raw, ctx.globals, ctx.escapeToken);
  const expanded = expansion.result;
  // The text is quoted back in messages: a reference holding credentials is shown without them.
  const said = redactUserinfo(raw);
  if (expansion.error) return fail(expanded, why(line, `cannot expand "${said}": ${expansion.error}`));
  if (!expanded) {
    const reasons = variableReasons(ctx, expansion);
    return fail(expanded, why(line, `"${said}" expands to an empty image name`, reasons));
  }
  if (definedAbove.has(expanded)) return { base: expanded };
  if (expanded === 'scratch') return undefined;
  if (platformError) return fail(expanded, platformError);

  const reasons = variableReasons(ctx, expansion);
  const lower = expanded.toLowerCase();
  if (isScratch(expanded)) reasons.push('the empty image is written "scratch", in lower case');
  else if (definedAbove.has(lower))
    reasons.push(`FROM finds a stage only by its lower-case name: write FROM ${lower}`);
  const shown =
    expanded === raw ? `"${said}" is` : `"${said}" expands to "${redactUserinfo(expanded)}", which is`;
  return {
    use: imageUse(line, range, 'FROM', raw, expanded, platform, stage, (reason, hint) =>
      // The hint on how to write a name helps less than the ARG that made it wrong.
      why(
        line,
        `${shown} not a valid image reference: ${reason}`,
        reasons.length || !hint ? reasons : [hint],
      ),
    ),
  };
}

function resolveCopyFrom(ctx: Context, copy: Instruction, stage: string | null): ImageUse | undefined {
  const flag = flags(copy, 'from')[0];
  const raw = flag?.getValue();
  const valueRange = flag?.getValueRange();
  if (!flag || !raw || !valueRange) return undefined;
  const line = copy.getRange().start.line + 1;
  const range = rangeOf(valueRange);
  const value = unquoteFlagValue(raw, ctx.escapeToken);
  if (!value) return undefined;
  const platform = formatPlatform(ctx.target);
  // BuildKit refuses --from values that expansion would change (toCommand in convert.go).
  const expansion = expandWord(value, new Map(), ctx.escapeToken);
  if (expansion.error || expansion.result !== value) {
    return failed(
      line,
      range,
      'COPY',
      raw,
      value,
      platform,
      stage,
      why(
        line,
        `COPY --from=${redactUserinfo(raw)}: BuildKit does not expand variables in --from; declare the ARG before the first FROM, add a stage "FROM \${…} AS name" and copy --from that stage`,
      ),
    );
  }
  if (INTEGER.test(value) && Number.isSafeInteger(Number(value))) {
    const index = Number(value);
    if (index >= 0 && index < ctx.stageCount) return undefined;
    const valid = ctx.stageCount ? `0 to ${ctx.stageCount - 1}` : 'none';
    return failed(
      line,
      range,
      'COPY',
      raw,
      value,
      platform,
      stage,
      why(line, `COPY --from=${value} is not a stage index (valid: ${valid})`),
    );
  }
  if (ctx.stageNames.has(value.toLowerCase()) || value === 'scratch') return undefined;
  // An image copied from is pulled for the target platform even in a --platform stage.
  return imageUse(line, range, 'COPY', raw, value, platform, stage, (reason, hint) =>
    why(
      line,
      `COPY --from=${redactUserinfo(raw)} names neither a stage nor a valid image reference: ${reason}`,
      hint ? [hint] : [],
    ),
  );
}

/** Splits a --mount value into fields like Go's encoding/csv (a field may be "quoted"). */
function csvFields(value: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= value.length) {
    let field = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += value[i++];
      }
      while (i < value.length && value[i] !== ',') field += value[i++];
    } else {
      while (i < value.length && value[i] !== ',') field += value[i++];
    }
    fields.push(field);
    i++;
  }
  return fields;
}

/** The from= option of a RUN --mount flag: the last, as in BuildKit's parseMount; a quote may open the field ("from=…"). */
export function mountFromOption(mount: Flag): ReturnType<Flag['getOptions']>[number] | undefined {
  return mount
    .getOptions()
    .filter((o) => o.getName().replace(/^["']/, '').toLowerCase() === 'from')
    .at(-1);
}

function resolveMountsFrom(ctx: Context, run: Instruction, stage: string | null): ImageUse[] {
  const uses: ImageUse[] = [];
  const line = run.getRange().start.line + 1;
  const platform = formatPlatform(ctx.target);
  for (const flag of flags(run, 'mount')) {
    const raw = flag.getValue();
    const valueRange = flag.getValueRange();
    if (!raw || !valueRange) continue;
    let from: string | undefined;
    for (const field of csvFields(unquoteFlagValue(raw, ctx.escapeToken))) {
      const eq = field.indexOf('=');
      if (eq >= 0 && field.slice(0, eq).toLowerCase() === 'from') from = field.slice(eq + 1);
    }
    if (!from) continue;
    const option = mountFromOption(flag);
    const range = rangeOf(option?.getValueRange() ?? valueRange);
    const written = option?.getValue() ?? from;
    const dollar = from.indexOf('$');
    if (dollar >= 0 && dollar !== from.length - 1) {
      uses.push(
        failed(
          line,
          range,
          'RUN',
          written,
          from,
          platform,
          stage,
          why(
            line,
            `--mount from=${redactUserinfo(from)}: BuildKit does not expand variables in a mount's from; define an alias stage with FROM instead`,
          ),
        ),
      );
      continue;
    }
    if (ctx.stageNames.has(from.toLowerCase()) || from === 'scratch') continue;
    uses.push(
      imageUse(line, range, 'RUN', written, from, platform, stage, (reason, hint) =>
        why(
          line,
          `--mount from=${redactUserinfo(from)} names neither a stage nor a valid image reference: ${reason}`,
          hint ? [hint] : [],
        ),
      ),
    );
  }
  return uses;
}
