import { readFile } from 'node:fs/promises';
import { type ImageUse, resolveDockerfile } from '../core/dockerfile';
import { StowageError } from '../core/errors';
import type { Platform } from '../core/platform';
import { type Command, parseCommandArgs, platformFlag, usageError, writeJson } from './command';

const USAGE = 'refs FILE [--platform os/arch[/variant]] [--build-arg NAME[=VALUE]]... [--json]';

function usage(message: string): StowageError {
  return usageError(`${message}\nusage: stowage ${USAGE}`);
}

function targetPlatform(text: string | undefined): Platform | undefined {
  if (text === undefined) return undefined;
  return platformFlag(text, USAGE);
}

/** `NAME=VALUE`, or `NAME` alone to take the value from the environment, as docker does. */
function buildArgs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw usage(`--build-arg "${item}" is not NAME=VALUE`);
    const value = eq < 0 ? process.env[name] : item.slice(eq + 1);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

async function readDockerfile(file: string): Promise<string> {
  try {
    // VS Code hides a byte-order mark from documents; do the same so ranges agree.
    return (await readFile(file, 'utf8')).replace(/^\uFEFF/, '');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new StowageError('DOCKERFILE', `Cannot read Dockerfile ${file}: ${why}.`);
  }
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
      buildArgs: buildArgs(values['build-arg'] ?? []),
    };
    const uses = resolveDockerfile(await readDockerfile(file), options);
    if (values.json) writeJson(uses.map(json));
    else if (uses.length === 0) process.stdout.write(`${file}: no image references\n`);
    else process.stdout.write(`${table(uses)}\n`);
    return 0;
  },
};
