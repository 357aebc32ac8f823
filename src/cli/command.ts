import { type ParseArgsConfig, parseArgs } from 'node:util';
import { StowageError } from '../core/errors';

/** One CLI command: `run` returns the exit code (0 ok, 1 error, 2 usage); its summary is in commands.ts. */
export interface Command {
  readonly usage: string;
  run(args: string[]): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with usage errors as StowageError('USAGE'). */
export function parseCommandArgs<O extends Options>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new StowageError('USAGE', `${(e as Error).message}\nusage: stowage ${usage}`);
  }
}

export function writeJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function usageError(message: string): StowageError {
  return new StowageError('USAGE', message);
}
