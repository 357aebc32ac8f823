import { readFile } from 'node:fs/promises';
import { StowageError } from '../core/errors';
import { redactUserinfo } from '../core/redact';
import { usageError } from './command';

/** `--build-arg NAME=VALUE`, or `NAME` alone to take the value from the environment, as docker does. */
export function parseBuildArgs(list: readonly string[], usage: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw usageError(`--build-arg "${redactUserinfo(item)}" is not NAME=VALUE\nusage: stowage ${usage}`);
    }
    const value = eq < 0 ? process.env[name] : item.slice(eq + 1);
    if (value !== undefined) out[name] = value;
  }
  return out;
}

export async function readDockerfile(file: string): Promise<string> {
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
