// dist/cli.js, the `stowage` command: runs the CLI bundle (dist/cli-main.js) with V8's code cache,
// so that a run does not parse and compile the bundle from scratch (about 25 ms of a start that is
// otherwise a third of a warm pull). The cache is per user (under ~/.cache, mode 0700: compiled
// code is code), per Node version and per bundle; anything wrong with it only costs that time.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

const main = join(__dirname, 'cli-main.js');

function cacheFile(): string | undefined {
  try {
    const { size, mtimeMs } = statSync(main);
    const root = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
    const node = process.versions.node.replace(/\./g, '_');
    const key = `node${node}-${process.arch}-${size}-${Math.floor(mtimeMs)}`;
    // One per command: each compiles (and caches) different functions of the bundle.
    const command = /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : 'other';
    return join(root, 'stowage-cli', `${key}.${command}.v8`);
  } catch {
    return undefined;
  }
}

function readCache(file: string | undefined): Buffer | undefined {
  try {
    return file ? readFileSync(file) : undefined;
  } catch {
    return undefined;
  }
}

/** Written at exit (it then holds the functions this run compiled), atomically; stale ones go. */
function writeCache(file: string, data: Buffer): void {
  try {
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, data, { mode: 0o600 });
    renameSync(temp, file);
    // Caches of other bundles or Node versions are dead weight.
    const bundle = file.slice(dir.length + 1).split('.')[0]!;
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.v8') && name.split('.')[0] !== bundle) rmSync(join(dir, name), { force: true });
    }
  } catch {
    // A read-only or full disk: run without a cache.
  }
}

const file = cacheFile();
const cachedData = readCache(file);
const script = new Script(Module.wrap(readFileSync(main, 'utf8')), { filename: main, cachedData });
if (file && (!cachedData || script.cachedDataRejected)) {
  process.once('exit', () => writeCache(file, script.createCachedData()));
}
const bundle = new Module(main, module);
bundle.filename = main;
script.runInThisContext()(bundle.exports, createRequire(main), bundle, main, dirname(main));
