import { homedir } from 'node:os';
import { join } from 'node:path';

/** The cache shared by the CLI and every VS Code window: $STOWAGE_CACHE, else the user cache folder. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STOWAGE_CACHE) return env.STOWAGE_CACHE;
  if (process.platform === 'win32' && env.LOCALAPPDATA) return join(env.LOCALAPPDATA, 'stowage', 'cache');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'stowage');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'stowage');
}
