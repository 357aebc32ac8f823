import { parseReference } from '../core/reference';
import { type Command, type OptionTable, parseCommandArgs, usageError, writeJson } from './command';
import { createClient, ENGINE_OPTIONS } from './engine';

const USAGE = 'tags [OPTIONS] REPO';

const OPTIONS = {
  limit: { type: 'string', value: 'N', help: 'stop after N tags' },
  'page-size': { type: 'string', value: 'N', help: 'tags asked for per request (default 100)' },
  json: { type: 'boolean', help: 'print the tags as a JSON array' },
  ...ENGINE_OPTIONS,
} as const satisfies OptionTable;

export const tagsCommand: Command = {
  usage: USAGE,
  description: "List a repository's tags, one a line, as the registry pages them (e.g. stowage tags alpine).",
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE);
    if (positionals.length !== 1) throw usageError(`tags takes one repository\nusage: stowage ${USAGE}`);
    const limit = values.limit === undefined ? Number.POSITIVE_INFINITY : Number(values.limit);
    const pageSize = values['page-size'] === undefined ? 100 : Number(values['page-size']);
    if (!(limit > 0) || !Number.isInteger(pageSize) || pageSize <= 0) {
      throw usageError('--limit and --page-size take positive whole numbers');
    }
    const ref = parseReference(positionals[0]!);
    const client = await createClient(values);
    const tags: string[] = [];
    try {
      for await (const page of client.tags(ref, { pageSize })) {
        for (const t of page) {
          if (tags.length >= limit) break;
          tags.push(t);
          if (!values.json) process.stdout.write(`${t}\n`);
        }
        if (tags.length >= limit) break;
      }
    } finally {
      await client.close();
    }
    if (values.json) writeJson(tags);
    return 0;
  },
};
