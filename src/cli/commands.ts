import { gcCommand, inspectCommand, lsCommand, rmCommand } from './cache';
import type { Command } from './command';
import { exportCommand } from './export';
import { importCommand } from './import';
import { pullCommand } from './pull';
import { pushCommand } from './push';
import { refsCommand } from './refs';
import { tagsCommand } from './tags';

/** Every CLI command by name. Add a command by importing it here. */
export const commands: Record<string, Command> = {
  pull: pullCommand,
  ls: lsCommand,
  inspect: inspectCommand,
  rm: rmCommand,
  gc: gcCommand,
  tags: tagsCommand,
  refs: refsCommand,
  export: exportCommand,
  import: importCommand,
  push: pushCommand,
};
