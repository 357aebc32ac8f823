import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { StowageError } from '../core/errors';
import { type Platform, parsePlatform } from '../core/platform';
import { closest } from './suggest';

/** One option: node:util parseArgs' fields, and what `--help` says of it (one table for both). */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly multiple?: boolean;
  /** The value's placeholder in --help, e.g. DIR. */
  readonly value?: string;
  readonly help: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

/** One CLI command: `run` returns the exit code (0 ok, 1 error, 2 usage); its summary is in commands.ts. */
export interface Command {
  /** What follows `stowage`: the command and its arguments, e.g. `ls [OPTIONS]`. */
  readonly usage: string;
  /** What it does, for --help. */
  readonly description: string;
  /** Every option it accepts (the parser's table). */
  readonly options: OptionTable;
  run(args: string[]): Promise<number>;
}

/** `<cmd> --help`: usage, description, then one line per option, from the table the parser uses. */
export function helpText(command: Command): string {
  const rows = [
    ...Object.entries(command.options).map(([name, o]) => [
      `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`,
      `${o.help}${o.multiple ? ' (repeatable)' : ''}`,
    ]),
    ['-h, --help', 'show this help'],
  ];
  const width = Math.max(...rows.map(([flag]) => flag!.length));
  const options = rows.map(([flag, help]) => `  ${flag!.padEnd(width)}  ${help}`);
  return `usage: stowage ${command.usage}\n\n${command.description}\n\noptions:\n${options.join('\n')}\n`;
}

/** node:util parseArgs with usage errors as StowageError('USAGE'), worded for people. */
export function parseCommandArgs<O extends OptionTable>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(`${argumentProblem((e as Error).message, options)}\nusage: stowage ${usage}`);
  }
}

/** parseArgs' message (which suggests quoting the typo as a positional) in a line of our own. */
function argumentProblem(message: string, options: OptionTable): string {
  const unknown = /^Unknown option '([^']+)'/.exec(message)?.[1];
  if (unknown) {
    const near = unknown.startsWith('--') ? closest(unknown.slice(2), Object.keys(options)) : undefined;
    return `unknown option ${unknown}${near ? ` (did you mean --${near}?)` : ''}`;
  }
  const option = /^Option '(?:-\w, )?(--[^' ]+)/.exec(message)?.[1];
  if (option && message.endsWith('argument missing')) return `${option} needs a value`;
  if (option && message.endsWith('does not take an argument')) return `${option} takes no value`;
  return message;
}

export function writeJson(value: unknown, stream: NodeJS.WritableStream = process.stdout): void {
  // JSON.stringify escapes the C0 controls; DEL and the C1 ones (U+009B acts as ESC [) too.
  const json = JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  stream.write(`${json}\n`);
}

/** Output for a person, through terminalText: what it quotes of others cannot drive the terminal. */
export function writeText(text: string, stream: NodeJS.WritableStream = process.stdout): void {
  stream.write(terminalText(text));
}

/**
 * Text for a terminal: the control characters in names and messages others wrote (a registry, an
 * archive, a tool sharing the cache) shown as \xNN, not acted on (clear the screen, set the
 * window title, rewrite a line). Newlines and tabs stay.
 */
export function terminalText(text: string): string {
  return text.replace(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

export function usageError(message: string): StowageError {
  return new StowageError('USAGE', message);
}

/** `n blob` / `n blobs`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** A `--platform` option saying `help`; `multiple`: repeatable (each value may be a list). */
export function platformOption(help: string): { type: 'string'; value: string; help: string };
export function platformOption(
  help: string,
  multiple: true,
): { type: 'string'; value: string; help: string; multiple: true };
export function platformOption(help: string, multiple?: true): OptionSpec {
  return { type: 'string', value: 'OS/ARCH[/VARIANT]', help, ...(multiple ? { multiple } : {}) };
}

/** A `--platform` value; a malformed one is a usage error (exit 2), like any bad flag. */
export function platformFlag(text: string, usage: string): Platform {
  try {
    return parsePlatform(text);
  } catch (e) {
    throw usageError(`${(e as Error).message}\nusage: stowage ${usage}`);
  }
}

/** `--platform` values, each maybe a comma-separated list as buildx takes them (linux/amd64,linux/arm64). */
export function platformFlags(values: readonly string[] = [], usage: string): Platform[] {
  return values.flatMap((v) => v.split(',')).map((p) => platformFlag(p.trim(), usage));
}

/** The signal that interrupted this run, if any: its exit code is 128 + its number, as shells report. */
let interruptedBy: NodeJS.Signals | undefined;

export function interruptExitCode(): number | undefined {
  return interruptedBy && 128 + constants.signals[interruptedBy];
}

/**
 * A signal that Ctrl+C or a SIGTERM aborts (the command ends cleanly, partial downloads kept);
 * `release()` after. A second Ctrl+C finds Node's default handler: the process stops at once.
 */
export function interruptSignal(): { signal: AbortSignal; release(): void } {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    interruptedBy ??= signal;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
