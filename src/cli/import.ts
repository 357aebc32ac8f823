import { formatBytes, formatDuration } from '../core/format';
import { importArchive } from '../core/transfer/import';
import { type Command, interruptSignal, parseCommandArgs, usageError, writeJson } from './command';
import { ENGINE_OPTIONS, openStore } from './engine';

const USAGE = 'import FILE.tar|- [--cache DIR] [--json]';

export const importCommand: Command = {
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      { cache: ENGINE_OPTIONS.cache, offline: ENGINE_OPTIONS.offline, json: { type: 'boolean' } },
      USAGE,
    );
    if (positionals.length !== 1) throw usageError(`import takes one archive\nusage: stowage ${USAGE}`);
    const store = await openStore(values);
    const interrupt = interruptSignal();
    const began = Date.now();
    try {
      const file = positionals[0]!;
      // `-` reads the archive from standard input (e.g. ssh … stowage export … -o - | stowage import -).
      const r = await importArchive(store, file === '-' ? process.stdin : file, {
        signal: interrupt.signal,
      });
      if (values.json) writeJson({ ...r, ms: Date.now() - began });
      else {
        for (const img of r.images) {
          process.stdout.write(
            `${img.name}@${img.digest} (${img.platforms.join(', ')})${img.replaced ? ' (replaced an older entry)' : ''}\n`,
          );
        }
        process.stdout.write(
          `imported ${r.images.length} image(s): ${r.blobsAdded} new blobs (${formatBytes(r.bytesAdded)}), ${r.blobsPresent} already cached, in ${formatDuration(Date.now() - began)}\n`,
        );
        if (r.unnamed)
          process.stderr.write(`stowage import: skipped ${r.unnamed} index entries without a name\n`);
      }
      return 0;
    } finally {
      interrupt.release();
    }
  },
};
