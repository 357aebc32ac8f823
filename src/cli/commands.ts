import type { Command } from './command';

/** Every CLI command by name. Add a command by importing it here. */
export const commands: Record<string, Command> = {};
