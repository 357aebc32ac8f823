import { isStowageError, type StowageError } from '../core/errors';
import { formatBytes, formatDuration } from '../core/format';
import { forEachLimit } from '../core/limit';
import { formatPlatform, type Platform, parsePlatform } from '../core/platform';
import { type PullEvent, type PullProgress, type PullResult, pull } from '../core/pull/pull';
import { redactUserinfo } from '../core/redact';
import {
  type Command,
  interruptSignal,
  type OptionTable,
  parseCommandArgs,
  platformFlags,
  platformOption,
  plural,
  usageError,
  writeJson,
  writeText,
} from './command';
import { parseBuildArgs, readDockerfile } from './dockerfile';
import { createClient, ENGINE_OPTIONS, openStore } from './engine';

const USAGE = 'pull [OPTIONS] REF... | pull [OPTIONS] -f DOCKERFILE...';

const OPTIONS = {
  file: {
    type: 'string',
    short: 'f',
    multiple: true,
    value: 'DOCKERFILE',
    help: 'pull every image this Dockerfile uses (FROM, COPY --from, RUN --mount from, # syntax)',
  },
  'build-arg': {
    type: 'string',
    multiple: true,
    value: 'NAME[=VALUE]',
    help: "a Dockerfile ARG's value for -f (NAME alone: from the environment)",
  },
  platform: platformOption(
    "the platforms to pull, comma-separated or repeated (default: this machine's); with -f, the build's targets",
    true,
  ),
  'all-platforms': { type: 'boolean', help: 'pull every platform of a multi-platform image' },
  always: { type: 'boolean', help: 'ask the registry even when the cache holds the image' },
  json: { type: 'boolean', help: 'print the result as JSON (an array for several images)' },
  ...ENGINE_OPTIONS,
} as const satisfies OptionTable;

/** Images pulled at once by `pull -f` or several REFs (each with its own blob downloads). */
const IMAGES_AT_ONCE = 3;

/** One image to pull, and the platforms wanted of it. */
interface Target {
  reference: string;
  platforms: Platform[];
  /** Where a Dockerfile (-f) names it first: its failures are reported there. */
  source?: { file: string; line: number };
}

export const pullCommand: Command = {
  usage: USAGE,
  description:
    'Pull images into the cache, downloading only the blobs it is missing; an image the cache already\nholds needs no network (unless --always). Several images are pulled a few at a time; every\nfailure is reported, and the exit code is 1 if any failed. Ctrl+C stops (exit 130) and keeps\npartial downloads: the next pull resumes them.',
  options: OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, OPTIONS, USAGE);
    const files = values.file ?? [];
    if (positionals.length === 0 && files.length === 0) {
      throw usageError(`pull takes a reference or -f DOCKERFILE\nusage: stowage ${USAGE}`);
    }
    if (values['build-arg'] && files.length === 0) {
      throw usageError(`--build-arg goes with -f DOCKERFILE\nusage: stowage ${USAGE}`);
    }
    const platforms = platformFlags(values.platform, USAGE);
    const targets: Target[] = positionals.map((reference) => ({ reference, platforms }));
    const buildArgs = parseBuildArgs(values['build-arg'] ?? [], USAGE);
    const unresolved = files.length ? await addDockerfileTargets(targets, files, platforms, buildArgs) : [];
    const store = await openStore(values);
    const client = await createClient(values);
    const interrupt = interruptSignal();
    const view = values.json ? undefined : new ProgressView(targets.length);
    const pullOne = async (t: Target): Promise<PullResult & { ms: number }> => {
      const began = Date.now();
      const progress = view?.start();
      try {
        const result = await pull(store, client, t.reference, {
          platforms: t.platforms,
          allPlatforms: values['all-platforms'],
          alwaysPull: values.always,
          signal: interrupt.signal,
          ...(progress ? { onEvent: progress.event } : {}),
        });
        if (view) {
          const how = result.fromCache
            ? 'already cached'
            : `${plural(result.blobsDownloaded, 'blob')}, ${formatBytes(result.bytesDownloaded)} downloaded`;
          // A reference by digest already shows it.
          const image = result.reference.includes('@')
            ? result.reference
            : `${result.reference}@${result.digest}`;
          view.write(
            process.stdout,
            `${image} (${result.platforms.join(', ')}): ${how} in ${formatDuration(Date.now() - began)}\n`,
          );
        }
        return { ...result, ms: Date.now() - began };
      } finally {
        progress?.end();
      }
    };
    try {
      // One reference: its error is the command's (one line, exit 1), its JSON an object (the
      // error's too, as an entry of several would be: scripts always get JSON).
      if (positionals.length === 1 && files.length === 0) {
        const result = await pullOne(targets[0]!).catch((e: unknown) => {
          if (values.json && isStowageError(e) && e.code !== 'ABORTED') writeJson(failure(targets[0]!, e));
          throw e;
        });
        if (values.json) writeJson(result);
        return 0;
      }
      // Several: each is tried, a few at a time (as a build pulls its stages); every failure is
      // reported, and the exit code says if any failed. The JSON keeps the order given.
      const report: unknown[] = unresolved.map((u) => ({
        ...u,
        error: { code: 'DOCKERFILE', message: u.error },
      }));
      const problem = (text: string) =>
        view ? view.write(process.stderr, `${text}\n`) : writeText(`${text}\n`, process.stderr);
      for (const u of unresolved) problem(`stowage pull: ${u.file}:${u.line}: ${u.error}`);
      let failed = unresolved.length;
      const results: unknown[] = [];
      await forEachLimit(targets, IMAGES_AT_ONCE, interrupt.signal, async (t) => {
        const at = targets.indexOf(t);
        try {
          results[at] = await pullOne(t);
        } catch (e) {
          if (!isStowageError(e) || e.code === 'ABORTED') throw e;
          failed++;
          results[at] = failure(t, e);
          const where = t.source ? `${t.source.file}:${t.source.line}: ` : '';
          problem(`stowage pull: ${where}${redactUserinfo(t.reference)}: ${e.detail}`);
        }
      });
      report.push(...results);
      if (values.json) writeJson(report);
      else if (failed > 0) {
        process.stderr.write(
          `stowage pull: ${failed} of ${targets.length + unresolved.length} could not be pulled\n`,
        );
      }
      return failed > 0 ? 1 : 0;
    } finally {
      view?.clear();
      interrupt.release();
      await client.close();
    }
  },
};

/** A failed pull's JSON entry (the reference as given, credentials hidden: it could not be pulled). */
function failure(t: Target, e: StowageError) {
  return {
    reference: redactUserinfo(t.reference),
    ...t.source,
    error: { code: e.code, message: e.detail },
  };
}

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
        if (use.ref) addTarget(targets, use.ref, parsePlatform(use.platform), { file, line: use.line });
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
function addTarget(targets: Target[], reference: string, platform: Platform, source: Target['source']): void {
  const t = targets.find((x) => x.reference === reference);
  if (!t) targets.push({ reference, platforms: [platform], source });
  else if (!t.platforms.some((p) => formatPlatform(p) === formatPlatform(platform))) {
    t.platforms = [...t.platforms, platform];
  }
}

/**
 * Progress on stderr: on a terminal one bar for every pull running (bytes and layers summed, and
 * how many images are done when there are several); one line per blob otherwise (logs, CI).
 */
class ProgressView {
  private readonly tty = process.stderr.isTTY === true;
  private drawn = false;
  private finished = 0;
  private readonly running = new Set<{ progress?: PullProgress }>();
  /** What the pulls already over brought: the bar's totals never shrink. */
  private readonly over = { bytesDone: 0, bytesTotal: 0, layersDone: 0, layersTotal: 0 };

  constructor(private readonly images: number) {}

  /** One pull's events, and its end. */
  start(): { event: (e: PullEvent) => void; end: () => void } {
    const slot: { progress?: PullProgress } = {};
    this.running.add(slot);
    return {
      event: (e) => {
        if (e.type === 'resolved') {
          const platforms = e.platforms.length ? ` (${e.platforms.join(', ')})` : '';
          this.write(process.stderr, `resolved ${e.reference} → ${e.digest}${platforms}\n`);
        } else if (e.type === 'blob' && !this.tty && e.state !== 'start') {
          this.write(
            process.stderr,
            `${e.state === 'cached' ? 'cached' : 'pulled'} ${e.kind} ${e.digest} ${formatBytes(e.size)}\n`,
          );
        } else if (e.type === 'progress' && this.tty) {
          slot.progress = e;
          this.draw();
        }
      },
      end: () => {
        this.running.delete(slot);
        this.finished++;
        const p = slot.progress;
        if (p) {
          this.over.bytesDone += p.bytesDone;
          this.over.bytesTotal += p.bytesTotal;
          this.over.layersDone += p.layersDone;
          this.over.layersTotal += p.layersTotal;
        }
      },
    };
  }

  /** A line of output, above the bar (which the next progress event draws again). */
  write(stream: NodeJS.WriteStream, text: string): void {
    this.clear();
    writeText(text, stream);
  }

  clear(): void {
    if (this.drawn) process.stderr.write('\r\x1b[K');
    this.drawn = false;
  }

  private draw(): void {
    const sum = { ...this.over };
    for (const { progress: p } of this.running) {
      if (!p) continue;
      sum.bytesDone += p.bytesDone;
      sum.bytesTotal += p.bytesTotal;
      sum.layersDone += p.layersDone;
      sum.layersTotal += p.layersTotal;
    }
    const width = 30;
    const ratio = sum.bytesTotal ? sum.bytesDone / sum.bytesTotal : 1;
    const bar = '█'.repeat(Math.round(ratio * width)).padEnd(width, '░');
    const images = this.images > 1 ? `image ${this.finished}/${this.images} · ` : '';
    // Every byte in, layers still to count: they are being flushed and verified.
    const verifying =
      sum.bytesDone >= sum.bytesTotal && sum.layersDone < sum.layersTotal ? ' · verifying' : '';
    process.stderr.write(
      `\r${bar} ${images}layer ${sum.layersDone}/${sum.layersTotal} · ${formatBytes(sum.bytesDone)}/${formatBytes(sum.bytesTotal)}${verifying}\x1b[K`,
    );
    this.drawn = true;
  }
}
