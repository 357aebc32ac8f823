import { formatBytes, formatDuration } from '../core/format';
import { pushImage } from '../core/transfer/push';
import {
  type Command,
  interruptSignal,
  parseCommandArgs,
  platformFlag,
  usageError,
  writeJson,
} from './command';
import { createClient, ENGINE_OPTIONS, openStore } from './engine';

const USAGE =
  'push REF DEST [--platform os/arch[/variant]] [--cache DIR] [--insecure-registry HOST[:PORT]]... [--ca-file PEM]... [--json]';

export const pushCommand: Command = {
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      { ...ENGINE_OPTIONS, platform: { type: 'string' }, json: { type: 'boolean' } },
      USAGE,
    );
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
        process.stdout.write(
          `pushed ${r.source} → ${r.destination}: ${r.uploaded} blobs uploaded (${formatBytes(r.bytesUploaded)}), ${r.mounted} mounted, ${r.existing} already there, ${r.manifests} manifests, in ${formatDuration(Date.now() - began)}\n`,
        );
      }
      return 0;
    } finally {
      interrupt.release();
      await client.close();
    }
  },
};
