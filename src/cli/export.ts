import { dirname } from 'node:path';
import { formatBytes, formatDuration } from '../core/format';
import { notCached } from '../core/store';
import { exportImages } from '../core/transfer/export';
import {
  type Command,
  interruptSignal,
  type OptionTable,
  parseCommandArgs,
  plural,
  usageError,
  writeJson,
  writeText,
} from './command';
import { cacheFolder, ENGINE_OPTIONS, OFFLINE_ACCEPTED, openExistingStore } from './engine';
import { besideFile, explainPath, FileError } from './files';

const USAGE = 'export [OPTIONS] REF... -o FILE.tar|-';

const OPTIONS = {
  output: {
    type: 'string',
    short: 'o',
    value: 'FILE.tar|-',
    help: 'the archive to write; - writes it to stdout (not a terminal)',
  },
  cache: ENGINE_OPTIONS.cache,
  json: { type: 'boolean', help: 'print the summary as JSON (on stderr when the archive goes to stdout)' },
  offline: OFFLINE_ACCEPTED,
} as const satisfies OptionTable;

export const exportCommand: Command = {
  usage: USAGE,
  description:
    "Write cached images to an OCI layout tarball, for a machine without network access\n(`stowage import` there, skopeo copy oci-archive:FILE, or docker load, which takes one platform\nof each image: this machine's when cached). Reads the cache only: no network.\nA platform that was not pulled is left out and named in the summary.",
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE);
    if (positionals.length === 0)
      throw usageError(`export takes at least one reference\nusage: stowage ${USAGE}`);
    if (!values.output) throw usageError(`export needs -o FILE.tar\nusage: stowage ${USAGE}`);
    const toStdout = values.output === '-';
    // As docker save: tar bytes on a screen help nobody (and can upset the terminal).
    if (toStdout && process.stdout.isTTY) {
      throw usageError('refusing to write an archive to a terminal; use -o FILE or redirect');
    }
    const store = await openExistingStore(values);
    if (!store) throw notCached(positionals[0]!, cacheFolder(values));
    if (!toStdout) {
      const why = { ENOENT: `the folder ${dirname(values.output)} does not exist` };
      explainPath(values.output, `cannot write ${values.output}`, why, besideFile(values.output));
    }
    const interrupt = interruptSignal();
    const began = Date.now();
    try {
      const r = await exportImages(store, positionals, toStdout ? process.stdout : values.output, {
        signal: interrupt.signal,
      }).catch((e: unknown) => {
        // `stowage export … -o - | head`: the reader went away; its own output is what matters.
        if (toStdout && (e as NodeJS.ErrnoException).code === 'EPIPE') {
          throw new FileError(
            'the program reading standard output closed the pipe before the end: the archive it got is incomplete',
          );
        }
        throw e;
      });
      // The archive on stdout: the summary, JSON too, goes to stderr.
      const out = toStdout ? process.stderr : process.stdout;
      if (values.json) {
        writeJson({ ...r, file: values.output, ms: Date.now() - began }, out);
      } else if (toStdout) {
        writeText(
          `exported ${r.images.map((i) => i.name).join(', ')}: ${plural(r.blobs, 'blob')}, ${formatBytes(r.archiveBytes)}\n`,
          out,
        );
      } else {
        for (const img of r.images) {
          // The index still lists them (its digest is the registry's): a whole-index copy of the
          // archive (skopeo copy --all) fails on them; one platform, or stowage import, does not.
          const left = img.missingPlatforms.length
            ? ` (not cached, left out: ${img.missingPlatforms.join(', ')}; for a complete archive pull with --all-platforms first)`
            : '';
          // docker load takes one platform per name: which one, when there is a choice.
          const docker =
            img.platforms.length > 1 && img.dockerPlatform ? `; docker load takes ${img.dockerPlatform}` : '';
          writeText(`${img.name}@${img.digest} (${img.platforms.join(', ')}${docker})${left}\n`, out);
        }
        out.write(
          `wrote ${values.output}: ${r.images.length} image(s), ${plural(r.blobs, 'blob')}, ${formatBytes(r.archiveBytes)} in ${formatDuration(Date.now() - began)}\n`,
        );
      }
      return 0;
    } finally {
      interrupt.release();
    }
  },
};
