import { StowageError } from '../core/errors';
import { formatBytes } from '../core/format';
import { formatPlatform } from '../core/platform';
import { formatReference, parseReference } from '../core/reference';
import { inspectImage, walkImage } from '../core/store';
import { type Command, parseCommandArgs, usageError, writeJson } from './command';
import { ENGINE_OPTIONS, openStore } from './engine';

/** Cache commands never touch the network; --offline is accepted so scripts can pass it everywhere. */
const CACHE_OPTIONS = {
  cache: ENGINE_OPTIONS.cache,
  offline: ENGINE_OPTIONS.offline,
  json: { type: 'boolean' },
} as const;

/** Accepts what users type (`alpine:3`) and finds the cached name (`docker.io/library/alpine:3`). */
function cachedName(input: string): string {
  return formatReference(parseReference(input));
}

export const lsCommand: Command = {
  usage: 'ls [--cache DIR] [--json]',
  async run(args) {
    const { values } = parseCommandArgs(args, CACHE_OPTIONS, this.usage);
    const store = await openStore(values);
    const rows = [];
    for (const { name, descriptor } of await store.listReferences()) {
      const walk = await walkImage(store, descriptor).catch(() => undefined);
      const size = walk?.blobs.filter((b) => !walk.missing.includes(b)).reduce((n, b) => n + b.size, 0) ?? 0;
      rows.push({ name, digest: descriptor.digest, mediaType: descriptor.mediaType, size });
    }
    if (values.json) writeJson(rows);
    else {
      const w = Math.max(10, ...rows.map((r) => r.name.length));
      process.stdout.write(`${'REFERENCE'.padEnd(w)}  ${'DIGEST'.padEnd(19)}  SIZE\n`);
      for (const r of rows) {
        process.stdout.write(`${r.name.padEnd(w)}  ${r.digest.slice(0, 19)}  ${formatBytes(r.size)}\n`);
      }
    }
    return 0;
  },
};

export const inspectCommand: Command = {
  usage: 'inspect REF [--cache DIR] [--json]',
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, CACHE_OPTIONS, this.usage);
    if (positionals.length !== 1)
      throw usageError(`inspect takes one reference\nusage: stowage ${this.usage}`);
    const store = await openStore(values);
    const name = cachedName(positionals[0]!);
    const info = await inspectImage(store, name);
    if (!info) {
      throw new StowageError(
        'NOT_CACHED',
        `${name} is not in the cache (${store.dir}).`,
        `Pull it: stowage pull ${positionals[0]}`,
      );
    }
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
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};

export const rmCommand: Command = {
  usage: 'rm REF... [--cache DIR]',
  async run(args) {
    const { values, positionals } = parseCommandArgs(
      args,
      { cache: ENGINE_OPTIONS.cache, offline: ENGINE_OPTIONS.offline },
      this.usage,
    );
    if (positionals.length === 0)
      throw usageError(`rm takes at least one reference\nusage: stowage ${this.usage}`);
    const store = await openStore(values);
    let missing = 0;
    for (const p of positionals) {
      const name = cachedName(p);
      if (await store.removeReference(name)) process.stdout.write(`removed ${name}\n`);
      else {
        process.stderr.write(`stowage rm: ${name} is not in the cache\n`);
        missing++;
      }
    }
    return missing ? 1 : 0;
  },
};

export const gcCommand: Command = {
  usage: 'gc [--cache DIR] [--json]',
  async run(args) {
    const { values } = parseCommandArgs(args, CACHE_OPTIONS, this.usage);
    const store = await openStore(values);
    const r = await store.gc();
    if (values.json) writeJson(r);
    else
      process.stdout.write(
        `removed ${r.removedBlobs} blobs (${formatBytes(r.freedBytes)}) and ${r.removedIngests} partial downloads\n`,
      );
    return 0;
  },
};
