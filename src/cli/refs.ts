import { type ImageUse, resolveDockerfile } from '../core/dockerfile';
import type { StowageError } from '../core/errors';
import type { Platform } from '../core/platform';
import { type Command, parseCommandArgs, platformFlag, usageError, writeJson } from './command';
import { parseBuildArgs, readDockerfile } from './dockerfile';

const USAGE = 'refs FILE [--platform os/arch[/variant]] [--build-arg NAME[=VALUE]]... [--json]';

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
    raw: u.raw,
    expanded: u.expanded,
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
      ? [String(u.line), u.instruction, `error: ${u.error ?? 'unresolved'}`]
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
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        platform: { type: 'string' },
        'build-arg': { type: 'string', multiple: true },
        json: { type: 'boolean' },
      },
      USAGE,
    );
    if (positionals.length !== 1) throw usage('refs takes one Dockerfile');
    const file = positionals[0] as string;
    const options = {
      targetPlatform: targetPlatform(values.platform),
      buildArgs: parseBuildArgs(values['build-arg'] ?? [], USAGE),
    };
    const uses = resolveDockerfile(await readDockerfile(file), options);
    if (values.json) writeJson(uses.map(json));
    else if (uses.length === 0) process.stdout.write(`${file}: no image references\n`);
    else process.stdout.write(`${table(uses)}\n`);
    return 0;
  },
};
