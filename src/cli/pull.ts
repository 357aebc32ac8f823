import { formatBytes, formatDuration } from '../core/format';
import { type PullEvent, pull } from '../core/pull/pull';
import { type Command, parseCommandArgs, platformFlag, usageError, writeJson } from './command';
import { createClient, ENGINE_OPTIONS, openStore } from './engine';

const USAGE =
  'pull REF [--platform os/arch[/variant]]... [--all-platforms] [--always] [--cache DIR] [--insecure-registry HOST[:PORT]]... [--mirror REGISTRY=URL]... [--ca-file PEM]... [--daemon-config FILE] [--offline] [--json]';

export const pullCommand: Command = {
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        ...ENGINE_OPTIONS,
        platform: { type: 'string', multiple: true },
        'all-platforms': { type: 'boolean' },
        always: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      USAGE,
    );
    if (positionals.length !== 1) throw usageError(`pull takes one reference\nusage: stowage ${USAGE}`);
    const platforms = (values.platform ?? []).map((p) => platformFlag(p, USAGE));
    const store = await openStore(values);
    const client = await createClient(values);
    const controller = new AbortController();
    const onSignal = () => controller.abort();
    process.once('SIGINT', onSignal);
    const began = Date.now();
    const view = values.json ? undefined : progressView();
    try {
      const result = await pull(store, client, positionals[0]!, {
        platforms,
        allPlatforms: values['all-platforms'],
        alwaysPull: values.always,
        signal: controller.signal,
        onEvent: view,
      });
      view?.(undefined);
      if (values.json) writeJson({ ...result, ms: Date.now() - began });
      else {
        const how = result.fromCache
          ? 'already cached'
          : `${result.blobsDownloaded} blobs, ${formatBytes(result.bytesDownloaded)} downloaded`;
        process.stdout.write(
          `${result.reference}@${result.digest} (${result.platforms.join(', ')}): ${how} in ${formatDuration(Date.now() - began)}\n`,
        );
      }
      return 0;
    } finally {
      view?.(undefined);
      process.off('SIGINT', onSignal);
      await client.close();
    }
  },
};

/** A one-line progress bar on a terminal; one line per blob otherwise (logs, CI). */
function progressView(): (e: PullEvent | undefined) => void {
  const tty = process.stderr.isTTY;
  let drawn = false;
  return (e) => {
    if (!e) {
      if (drawn) process.stderr.write('\n');
      drawn = false;
      return;
    }
    if (e.type === 'resolved') {
      process.stderr.write(
        `resolved ${e.reference} → ${e.digest}${e.platforms.length ? ` (${e.platforms.join(', ')})` : ''}\n`,
      );
    } else if (e.type === 'blob' && !tty && e.state !== 'start') {
      process.stderr.write(
        `${e.state === 'cached' ? 'cached' : 'pulled'} ${e.kind} ${e.digest} ${formatBytes(e.size)}\n`,
      );
    } else if (e.type === 'progress' && tty) {
      const width = 30;
      const ratio = e.bytesTotal ? e.bytesDone / e.bytesTotal : 1;
      const bar = '█'.repeat(Math.round(ratio * width)).padEnd(width, '░');
      process.stderr.write(
        `\r${bar} layer ${e.layersDone}/${e.layersTotal} · ${formatBytes(e.bytesDone)}/${formatBytes(e.bytesTotal)}   `,
      );
      drawn = true;
    }
  };
}
