import { isStowageError } from '../core/errors';
import { formatBytes, formatDuration } from '../core/format';
import { formatPlatform, type Platform, parsePlatform } from '../core/platform';
import { type PullEvent, type PullResult, pull } from '../core/pull/pull';
import {
  type Command,
  interruptSignal,
  parseCommandArgs,
  platformFlag,
  usageError,
  writeJson,
} from './command';
import { parseBuildArgs, readDockerfile } from './dockerfile';
import { createClient, ENGINE_OPTIONS, openStore } from './engine';

const USAGE =
  'pull REF... | -f DOCKERFILE... [--build-arg NAME[=VALUE]]... [--platform os/arch[/variant]]... [--all-platforms] [--always] [--cache DIR] [--insecure-registry HOST[:PORT]]... [--mirror REGISTRY=URL]... [--ca-file PEM]... [--daemon-config FILE] [--offline] [--json]';

/** One image to pull, and the platforms wanted of it. */
interface Target {
  reference: string;
  platforms: Platform[];
}

export const pullCommand: Command = {
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      {
        ...ENGINE_OPTIONS,
        file: { type: 'string', short: 'f', multiple: true },
        'build-arg': { type: 'string', multiple: true },
        platform: { type: 'string', multiple: true },
        'all-platforms': { type: 'boolean' },
        always: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      USAGE,
    );
    const files = values.file ?? [];
    if (positionals.length === 0 && files.length === 0) {
      throw usageError(`pull takes a reference or -f DOCKERFILE\nusage: stowage ${USAGE}`);
    }
    if (values['build-arg'] && files.length === 0) {
      throw usageError(`--build-arg goes with -f DOCKERFILE\nusage: stowage ${USAGE}`);
    }
    const platforms = (values.platform ?? []).map((p) => platformFlag(p, USAGE));
    const targets: Target[] = positionals.map((reference) => ({ reference, platforms }));
    const buildArgs = parseBuildArgs(values['build-arg'] ?? [], USAGE);
    const unresolved = files.length ? await addDockerfileTargets(targets, files, platforms, buildArgs) : [];
    const store = await openStore(values);
    const client = await createClient(values);
    const interrupt = interruptSignal();
    const view = values.json ? undefined : progressView();
    const pullOne = async (t: Target): Promise<PullResult & { ms: number }> => {
      const began = Date.now();
      const result = await pull(store, client, t.reference, {
        platforms: t.platforms,
        allPlatforms: values['all-platforms'],
        alwaysPull: values.always,
        signal: interrupt.signal,
        onEvent: view,
      });
      view?.(undefined);
      if (!values.json) {
        const how = result.fromCache
          ? 'already cached'
          : `${result.blobsDownloaded} blobs, ${formatBytes(result.bytesDownloaded)} downloaded`;
        process.stdout.write(
          `${result.reference}@${result.digest} (${result.platforms.join(', ')}): ${how} in ${formatDuration(Date.now() - began)}\n`,
        );
      }
      return { ...result, ms: Date.now() - began };
    };
    try {
      // One reference: its error is the command's (one line, exit 1), its JSON an object.
      if (positionals.length === 1 && files.length === 0) {
        const result = await pullOne(targets[0]!);
        if (values.json) writeJson(result);
        return 0;
      }
      // Several: each is tried; every failure is reported, and the exit code says if any failed.
      const report: unknown[] = unresolved.map((u) => ({
        ...u,
        error: { code: 'DOCKERFILE', message: u.error },
      }));
      for (const u of unresolved) process.stderr.write(`stowage pull: ${u.file}:${u.line}: ${u.error}\n`);
      let failed = unresolved.length;
      for (const t of targets) {
        try {
          report.push(await pullOne(t));
        } catch (e) {
          view?.(undefined);
          if (!isStowageError(e) || e.code === 'ABORTED') throw e;
          failed++;
          report.push({ reference: t.reference, error: { code: e.code, message: e.detail } });
          process.stderr.write(`stowage pull: ${t.reference}: ${e.detail}\n`);
        }
      }
      if (values.json) writeJson(report);
      else if (failed > 0) {
        process.stderr.write(
          `stowage pull: ${failed} of ${targets.length + unresolved.length} could not be pulled\n`,
        );
      }
      return failed > 0 ? 1 : 0;
    } finally {
      view?.(undefined);
      interrupt.release();
      await client.close();
    }
  },
};

/**
 * Adds every image the Dockerfiles need to `targets`; returns the references that cannot be
 * resolved. With -f, --platform is the build's target platform (several: one build each), as for
 * docker build. The Dockerfile parser is loaded only here: it is not part of a plain pull's start.
 */
async function addDockerfileTargets(
  targets: Target[],
  files: readonly string[],
  platforms: readonly Platform[],
  buildArgs: Record<string, string>,
): Promise<{ file: string; line: number; error: string }[]> {
  const { errorReason, resolveDockerfile } = await import('../core/dockerfile');
  const unresolved: { file: string; line: number; error: string }[] = [];
  for (const file of files) {
    const text = await readDockerfile(file);
    for (const targetPlatform of platforms.length ? platforms : [undefined]) {
      for (const use of resolveDockerfile(text, { targetPlatform, buildArgs })) {
        if (use.ref) addTarget(targets, use.ref, parsePlatform(use.platform));
        else if (!unresolved.some((u) => u.file === file && u.line === use.line)) {
          unresolved.push({
            file,
            line: use.line,
            error: errorReason(use.error ?? 'not an image reference'),
          });
        }
      }
    }
  }
  return unresolved;
}

/** Adds a platform to the reference's target (one pull per reference, all its platforms at once). */
function addTarget(targets: Target[], reference: string, platform: Platform): void {
  const t = targets.find((x) => x.reference === reference);
  if (!t) targets.push({ reference, platforms: [platform] });
  else if (!t.platforms.some((p) => formatPlatform(p) === formatPlatform(platform))) {
    t.platforms = [...t.platforms, platform];
  }
}

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
