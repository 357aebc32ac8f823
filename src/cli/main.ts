import { isStowageError } from '../core/errors';
import { VERSION } from '../core/version';
import type { Command } from './command';
import { commands } from './commands';

/** Runs the CLI; returns the exit code: 0 ok, 1 error, 2 usage. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const entry = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!entry) {
    process.stderr.write(`stowage: unknown command "${name}"\n${usage()}\n`);
    return 2;
  }
  const command: Command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: stowage ${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (isStowageError(e)) {
      process.stderr.write(`stowage ${name}: ${e.detail}\n`);
      return e.code === 'USAGE' ? 2 : 1;
    }
    throw e;
  }
}

function usage(): string {
  const list = Object.entries(commands)
    .map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`)
    .join('\n');
  return `usage: stowage <command> [options]\n\ncommands:\n${list}\n\nRun "stowage <command> --help" for a command's options.`;
}
