import { isDigest } from '../core/digest';
import { StowageError } from '../core/errors';
import { formatBytes } from '../core/format';
import { formatPlatform } from '../core/platform';
import { formatReference, parseReference } from '../core/reference';
import { findCached, inspectImage, notCached, walkImage } from '../core/store';
import { type Command, parseCommandArgs, plural, usageError, writeJson, writeText } from './command';
import { cacheFolder, ENGINE_OPTIONS, JSON_OPTION, OFFLINE_ACCEPTED, openExistingStore } from './engine';

/** Cache commands never touch the network. */
const CACHE_OPTIONS = {
  cache: ENGINE_OPTIONS.cache,
  json: JSON_OPTION,
  offline: OFFLINE_ACCEPTED,
} as const;
const RM_OPTIONS = { cache: ENGINE_OPTIONS.cache, offline: OFFLINE_ACCEPTED } as const;

/** A usage error unless the command got exactly `count` positionals (`what` says what they are). */
function expectPositionals(positionals: string[], count: number, what: string, usage: string): void {
  if (positionals.length !== count) throw usageError(`${what}\nusage: stowage ${usage}`);
}

/** Accepts what users type (`alpine:3`) and finds the cached name (`docker.io/library/alpine:3`). */
function cachedName(input: string): string {
  return formatReference(parseReference(input));
}

export const lsCommand: Command = {
  usage: 'ls [OPTIONS]',
  description: 'List the images in the cache: reference, digest and the size of their cached blobs.',
  options: CACHE_OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, CACHE_OPTIONS, this.usage);
    expectPositionals(positionals, 0, 'ls takes no arguments', this.usage);
    const store = await openExistingStore(values);
    const rows = [];
    for (const { name, descriptor } of store ? await store.listReferences() : []) {
      const walk = await walkImage(store!, descriptor).catch(() => undefined);
      const size = walk?.blobs.filter((b) => !walk.missing.includes(b)).reduce((n, b) => n + b.size, 0) ?? 0;
      rows.push({ name, digest: descriptor.digest, mediaType: descriptor.mediaType, size });
    }
    if (values.json) writeJson(rows);
    else {
      const w = Math.max(10, ...rows.map((r) => r.name.length));
      process.stdout.write(`${'REFERENCE'.padEnd(w)}  ${'DIGEST'.padEnd(19)}  SIZE\n`);
      for (const r of rows) {
        writeText(`${r.name.padEnd(w)}  ${r.digest.slice(0, 19)}  ${formatBytes(r.size)}\n`);
      }
    }
    return 0;
  },
};

export const inspectCommand: Command = {
  usage: 'inspect [OPTIONS] REF',
  description:
    "Show what the cache holds for an image: its platforms, each one's manifest, config and layers\n(and which are missing). Reads the cache only: no network.",
  options: CACHE_OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, CACHE_OPTIONS, this.usage);
    expectPositionals(positionals, 1, 'inspect takes one reference', this.usage);
    const store = await openExistingStore(values);
    const found = store && (await findCached(store, positionals[0]!));
    const info = found && (await inspectImage(store, found.name, found.descriptor));
    if (!info) throw notCached(positionals[0]!, cacheFolder(values));
    if (values.json) {
      writeJson(info);
      return 0;
    }
    const out = [`${info.name}`, `  digest     ${info.digest}`, `  media type ${info.mediaType}`];
    for (const p of info.platforms) {
      const plat = p.platform ? formatPlatform(p.platform) : 'unknown';
      if (!p.cached) {
        out.push(`  ${plat.padEnd(16)} not pulled (${p.manifestDigest})`);
        continue;
      }
      out.push(
        `  ${plat.padEnd(16)} ${p.manifestDigest} · ${formatBytes(p.compressedSize)} · ${p.layers.length} layers${p.complete ? '' : ' · incomplete'}`,
      );
      if (p.config?.created) out.push(`    created    ${p.config.created}`);
      if (p.config?.entrypoint) out.push(`    entrypoint ${JSON.stringify(p.config.entrypoint)}`);
      if (p.config?.cmd) out.push(`    cmd        ${JSON.stringify(p.config.cmd)}`);
      for (const l of p.layers)
        out.push(`    layer ${l.digest} ${formatBytes(l.size)}${l.present ? '' : ' (missing)'}`);
    }
    writeText(`${out.join('\n')}\n`);
    return 0;
  },
};

export const rmCommand: Command = {
  usage: 'rm [OPTIONS] REF...',
  description:
    'Remove image references from the cache. Their blobs stay until `stowage gc` (another reference may\nshare them). Exits 1 if a reference was not cached.',
  options: RM_OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, RM_OPTIONS, this.usage);
    if (positionals.length === 0)
      throw usageError(`rm takes at least one reference\nusage: stowage ${this.usage}`);
    const store = await openExistingStore(values);
    let missing = 0;
    for (const p of positionals) {
      // A recorded name as typed or normalised, or a digest one reference points at (not a
      // `repo@digest` standing for another name: that would remove a name the user did not type).
      const refs = isDigest(p)
        ? ((await store?.listReferences()) ?? []).filter((r) => r.descriptor.digest === p)
        : [];
      if (refs.length > 1) {
        throw new StowageError(
          'USAGE',
          `${p} is cached under several names (${refs.map((r) => r.name).join(', ')}); remove them by name.`,
        );
      }
      const name = refs[0]?.name ?? (store && (await findCached(store, p)))?.name ?? cachedName(p);
      if (await store?.removeReference(name)) writeText(`removed ${name}\n`);
      else {
        writeText(`stowage rm: ${name} is not in the cache\n`, process.stderr);
        missing++;
      }
    }
    return missing ? 1 : 0;
  },
};

export const gcCommand: Command = {
  usage: 'gc [OPTIONS]',
  description:
    'Delete the blobs no cached reference needs, and partial downloads left for a day or more.\nSafe while pulls run: blobs a pull in progress holds are kept.',
  options: CACHE_OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, CACHE_OPTIONS, this.usage);
    expectPositionals(positionals, 0, 'gc takes no arguments', this.usage);
    const store = await openExistingStore(values);
    const r = (await store?.gc()) ?? { removedBlobs: 0, freedBytes: 0, removedIngests: 0 };
    if (values.json) writeJson(r);
    else
      process.stdout.write(
        `removed ${plural(r.removedBlobs, 'blob')} (${formatBytes(r.freedBytes)}) and ${plural(r.removedIngests, 'partial download')}\n`,
      );
    return 0;
  },
};
