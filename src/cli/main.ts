import { isStowageError } from '../core/errors';
import { VERSION } from '../core/version';
import { type Command, helpText, interruptExitCode, terminalText } from './command';
import { commands } from './commands';
import { FileError, isSystemError, systemErrorText } from './files';
import { closest } from './suggest';

/** Runs the CLI; returns the exit code: 0 ok, 1 error, 2 usage, 128 + N when signal N stopped it. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  // `stowage help pull` is `stowage pull --help`.
  if (name === 'help') return main([rest[0]!, '--help']);
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) return unknownCommand(name, rest);
  const command: Command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText(command));
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    // Ordinary file-system failures (a full disk, a read-only folder) are one line, not a bug.
    const message = isStowageError(e)
      ? e.detail
      : e instanceof FileError || isSystemError(e)
        ? systemErrorText(e)
        : undefined;
    if (message === undefined) throw e;
    process.stderr.write(`stowage ${name}: ${terminalText(message)}\n`);
    if (isStowageError(e, 'USAGE')) return 2;
    return (isStowageError(e, 'ABORTED') && interruptExitCode()) || 1;
  }
}

/** A typo gets a suggestion; an option before the command, where it goes. */
function unknownCommand(name: string, rest: string[]): number {
  const known = Object.keys(commands);
  let problem: string;
  if (name.startsWith('-')) {
    const command = rest.find((a) => known.includes(a));
    problem = command
      ? `options go after the command: stowage ${command} ${[name, ...rest.filter((a) => a !== command)].join(' ')}`
      : `unknown option ${name}`;
  } else {
    const near = closest(name, known);
    problem = `unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ''}`;
  }
  process.stderr.write(`stowage: ${problem}\nRun "stowage --help" for the list of commands.\n`);
  return 2;
}

function usage(): string {
  const list = Object.entries(commands)
    .map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`)
    .join('\n');
  return `usage: stowage <command> [options]\n\ncommands:\n${list}\n\nRun "stowage <command> --help" (or "stowage help <command>") for a command's options.`;
}
