import { formatBytes, formatDuration } from '../core/format';
import { pushImage } from '../core/transfer/push';
import {
  type Command,
  interruptSignal,
  type OptionTable,
  parseCommandArgs,
  platformFlag,
  platformOption,
  plural,
  usageError,
  writeJson,
  writeText,
} from './command';
import { createClient, ENGINE_OPTIONS, JSON_OPTION, openStore } from './engine';

const USAGE = 'push [OPTIONS] REF DEST';

const OPTIONS = {
  platform: platformOption('push only this platform of a multi-platform image (default: every cached one)'),
  json: JSON_OPTION,
  ...ENGINE_OPTIONS,
} as const satisfies OptionTable;

export const pushCommand: Command = {
  usage: USAGE,
  description:
    'Copy a cached image to a registry (DEST: a full reference, e.g. registry.example/team/app:1).\nBlobs the registry has are not sent again; blobs of another repository there are mounted.',
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE);
    if (positionals.length !== 2)
      throw usageError(`push takes a cached reference and a destination\nusage: stowage ${USAGE}`);
    const store = await openStore(values);
    const client = await createClient(values);
    const interrupt = interruptSignal();
    const began = Date.now();
    try {
      const r = await pushImage(store, client, positionals[0]!, positionals[1]!, {
        ...(values.platform ? { platform: platformFlag(values.platform, USAGE) } : {}),
        signal: interrupt.signal,
      });
      if (values.json) writeJson({ ...r, ms: Date.now() - began });
      else {
        writeText(
          `pushed ${r.source} → ${r.destination}: ${plural(r.uploaded, 'blob')} uploaded (${formatBytes(r.bytesUploaded)}), ${r.mounted} mounted, ${r.existing} already there, ${plural(r.manifests, 'manifest')}, in ${formatDuration(Date.now() - began)}\n`,
        );
      }
      return 0;
    } finally {
      interrupt.release();
      await client.close();
    }
  },
};
