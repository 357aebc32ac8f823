import { formatBytes, formatDuration } from '../core/format';
import { exportImages } from '../core/transfer/export';
import { type Command, interruptSignal, parseCommandArgs, usageError, writeJson } from './command';
import { ENGINE_OPTIONS, openStore } from './engine';

const USAGE = 'export REF... -o FILE.tar|- [--cache DIR] [--json]';

export const exportCommand: Command = {
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        cache: ENGINE_OPTIONS.cache,
        offline: ENGINE_OPTIONS.offline,
        output: { type: 'string', short: 'o' },
        json: { type: 'boolean' },
      },
      USAGE,
    );
    if (positionals.length === 0)
      throw usageError(`export takes at least one reference\nusage: stowage ${USAGE}`);
    if (!values.output) throw usageError(`export needs -o FILE.tar\nusage: stowage ${USAGE}`);
    const store = await openStore(values);
    const interrupt = interruptSignal();
    const began = Date.now();
    try {
      const toStdout = values.output === '-';
      const r = await exportImages(store, positionals, toStdout ? process.stdout : values.output, {
        signal: interrupt.signal,
      });
      if (toStdout) {
        // The archive went to stdout: the summary goes to stderr.
        process.stderr.write(
          `exported ${r.images.map((i) => i.name).join(', ')}: ${r.blobs} blobs, ${formatBytes(r.archiveBytes)}\n`,
        );
        return 0;
      }
      if (values.json) writeJson({ ...r, file: values.output, ms: Date.now() - began });
      else {
        for (const img of r.images) {
          const left = img.missingPlatforms.length
            ? ` (not cached, left out: ${img.missingPlatforms.join(', ')})`
            : '';
          process.stdout.write(`${img.name}@${img.digest} (${img.platforms.join(', ')})${left}\n`);
        }
        process.stdout.write(
          `wrote ${values.output}: ${r.images.length} image(s), ${r.blobs} blobs, ${formatBytes(r.archiveBytes)} in ${formatDuration(Date.now() - began)}\n`,
        );
      }
      return 0;
    } finally {
      interrupt.release();
    }
  },
};
