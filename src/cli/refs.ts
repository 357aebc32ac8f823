import { errorReason, type ImageUse, resolveDockerfile } from '../core/dockerfile';
import type { StowageError } from '../core/errors';
import type { Platform } from '../core/platform';
import { redactUserinfo } from '../core/redact';
import {
  type Command,
  type OptionTable,
  parseCommandArgs,
  platformFlag,
  platformOption,
  usageError,
  writeJson,
  writeText,
} from './command';
import { parseBuildArgs, readDockerfile } from './dockerfile';

const USAGE = 'refs [OPTIONS] DOCKERFILE  (or -f DOCKERFILE)';

const OPTIONS = {
  file: { type: 'string', short: 'f', value: 'DOCKERFILE', help: 'the Dockerfile (as pull -f takes it)' },
  platform: platformOption("the build's target platform (default: this machine's)"),
  'build-arg': {
    type: 'string',
    multiple: true,
    value: 'NAME[=VALUE]',
    help: "an ARG's value (NAME alone: from the environment)",
  },
  json: {
    type: 'boolean',
    help: 'print the rows as JSON, with source ranges (an error row has ref null and an error)',
  },
} as const satisfies OptionTable;

function usage(message: string): StowageError {
  return usageError(`${message}\nusage: stowage ${USAGE}`);
}

function targetPlatform(text: string | undefined): Platform | undefined {
  if (text === undefined) return undefined;
  return platformFlag(text, USAGE);
}

function json(u: ImageUse) {
  return {
    line: u.line,
    instruction: u.instruction,
    // As written, with any credentials in a reference hidden.
    raw: redactUserinfo(u.raw),
    expanded: redactUserinfo(u.expanded),
    ref: u.ref,
    platform: u.platform,
    stage: u.stage,
    ...(u.error !== undefined ? { error: u.error } : {}),
    range: u.range,
  };
}

/** An aligned table; an error takes the place of the reference and ends its row. */
function table(uses: ImageUse[]): string {
  const header = ['LINE', 'INSTRUCTION', 'REFERENCE', 'PLATFORM', 'STAGE'];
  const rows = uses.map((u) =>
    u.ref === null
      ? [String(u.line), u.instruction, `error: ${errorReason(u.error ?? 'unresolved')}`]
      : [String(u.line), u.instruction, u.ref, u.platform, u.stage ?? '-'],
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter((row) => row.length > i + 1).map((row) => (row[i] as string).length)),
  );
  const format = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
  return [header, ...rows].map(format).join('\n');
}

export const refsCommand: Command = {
  usage: USAGE,
  description:
    'List the images a Dockerfile uses (FROM, COPY --from, RUN --mount from, # syntax), with ARGs and\nbuild args expanded, as a build would pull them. Exits 1 if a reference cannot be resolved or\nthe Dockerfile has an error (every row is still printed), as a linter does.',
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE);
    const files = [...positionals, ...(values.file === undefined ? [] : [values.file])];
    if (files.length !== 1) throw usage('refs takes one Dockerfile');
    const file = files[0] as string;
    const options = {
      targetPlatform: targetPlatform(values.platform),
      buildArgs: parseBuildArgs(values['build-arg'] ?? [], USAGE),
    };
    const uses = resolveDockerfile(await readDockerfile(file), options);
    if (values.json) writeJson(uses.map(json));
    else if (uses.length === 0) process.stdout.write(`${file}: no image references\n`);
    else writeText(`${table(uses)}\n`);
    return uses.some((u) => u.ref === null) ? 1 : 0;
  },
};
