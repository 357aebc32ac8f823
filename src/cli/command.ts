import { type ParseArgsConfig, parseArgs } from 'node:util';
import { StowageError } from '../core/errors';
import { type Platform, parsePlatform } from '../core/platform';

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

/** A `--platform` value; a malformed one is a usage error (exit 2), like any bad flag. */
export function platformFlag(text: string, usage: string): Platform {
  try {
    return parsePlatform(text);
  } catch (e) {
    throw usageError(`${(e as Error).message}\nusage: stowage ${usage}`);
  }
}

/** A signal that Ctrl+C aborts (the command ends cleanly, partial downloads kept); `release()` after. */
export function interruptSignal(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  return { signal: controller.signal, release: () => process.off('SIGINT', onSignal) };
}
