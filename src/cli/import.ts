import { stat } from 'node:fs/promises';
import { formatBytes, formatDuration } from '../core/format';
import { importArchive } from '../core/transfer/import';
import {
  type Command,
  interruptSignal,
  parseCommandArgs,
  plural,
  usageError,
  writeJson,
  writeText,
} from './command';
import { ENGINE_OPTIONS, JSON_OPTION, OFFLINE_ACCEPTED, openStore } from './engine';
import { explainPath, FileError } from './files';

const USAGE = 'import [OPTIONS] FILE.tar|-';

const OPTIONS = {
  cache: ENGINE_OPTIONS.cache,
  json: JSON_OPTION,
  offline: OFFLINE_ACCEPTED,
} as const;

export const importCommand: Command = {
  usage: USAGE,
  description:
    "Add the images of an OCI layout tarball (stowage export, skopeo's oci-archive, docker save\nfrom Docker 25 on), plain or gzip-compressed, to the cache, every blob verified against its\ndigest first. - reads the archive from stdin. No network.",
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE);
    if (positionals.length !== 1) throw usageError(`import takes one archive\nusage: stowage ${USAGE}`);
    const file = positionals[0]!;
    // As docker load: an archive typed on a keyboard is a mistake (it would wait for ever).
    if (file === '-' && process.stdin.isTTY) {
      throw usageError(
        'refusing to read an archive from a terminal; pipe one in (… | stowage import -) or name the file',
      );
    }
    explainPath(file, `cannot read ${file}`);
    if (file !== '-' && (await stat(file).catch(() => undefined))?.isDirectory()) {
      // skopeo's oci:DIR, or an extracted archive: the same bytes as a tar stream.
      throw new FileError(
        `${file} is a folder; import reads an archive (an OCI layout folder imports as tar -C ${file} -cf - . | stowage import -)`,
      );
    }
    const store = await openStore(values);
    const interrupt = interruptSignal();
    const began = Date.now();
    try {
      // `-` reads the archive from standard input (e.g. ssh … stowage export … -o - | stowage import -).
      const r = await importArchive(store, file === '-' ? process.stdin : file, {
        signal: interrupt.signal,
      });
      if (values.json) writeJson({ ...r, ms: Date.now() - began });
      else {
        for (const img of r.images) {
          writeText(
            `${img.name}@${img.digest} (${img.platforms.join(', ')})${img.replaced ? ' (replaced an older entry)' : ''}\n`,
          );
        }
        process.stdout.write(
          `imported ${r.images.length} image(s): ${plural(r.blobsAdded, 'new blob')} (${formatBytes(r.bytesAdded)}), ${r.blobsPresent} already cached, in ${formatDuration(Date.now() - began)}\n`,
        );
        if (r.unnamed)
          process.stderr.write(`stowage import: skipped ${r.unnamed} index entries without a usable name\n`);
      }
      return 0;
    } finally {
      interrupt.release();
    }
  },
};
