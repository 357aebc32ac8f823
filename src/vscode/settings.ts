import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import { defaultCacheDir } from '../core/cache-dir';
import { hostPlatform, type Platform, parsePlatform } from '../core/platform';
import type { ClientOptions } from '../core/registry/client';
import {
  CA_FILES_SETTING,
  OLD_CA_FILES_SETTING,
  renamedSettingValue,
  type ScopedValues,
} from './setting-names';

/** Stowage's settings, read fresh from the configuration (cheap; never cached across changes). */
export interface StowageSettings {
  cacheDirectory: string;
  platforms: Platform[];
  /** The Dockerfile target platform: the first configured one, else the host's. */
  targetPlatform: Platform;
  insecureRegistries: string[];
  registryMirrors: Record<string, string[]>;
  /** PEM files of extra CAs: stowage.certificateAuthorityFiles, else the old stowage.caCertificates. */
  caCertificates: string[];
  maxConcurrentDownloads: number;
  checkForNewerImages: 'off' | 'daily' | 'hourly';
  codeLens: boolean;
  notifyOnSuccess: boolean;
  offline: boolean;
  registries: string[];
  repositories: string[];
  buildArgs: Record<string, string>;
}

export function readSettings(): StowageSettings {
  const c = vscode.workspace.getConfiguration('stowage');
  const platforms: Platform[] = [];
  for (const p of c.get<string[]>('platforms', [])) {
    try {
      platforms.push(parsePlatform(p));
    } catch {
      // An invalid entry is reported by the settings editor's schema; skip it here.
    }
  }
  return {
    cacheDirectory: c.get<string>('cacheDirectory', '') || defaultCacheDir(),
    platforms: platforms.length ? platforms : [hostPlatform()],
    targetPlatform: platforms[0] ?? hostPlatform(),
    insecureRegistries: c.get<string[]>('insecureRegistries', []),
    registryMirrors: c.get<Record<string, string[]>>('registryMirrors', {}),
    caCertificates: renamedSettingValue(
      restrictedValues<string[]>(CA_FILES_SETTING),
      restrictedValues<string[]>(OLD_CA_FILES_SETTING),
      [],
    ),
    maxConcurrentDownloads: Math.max(1, Math.min(16, c.get<number>('maxConcurrentDownloads', 4))),
    checkForNewerImages: c.get<'off' | 'daily' | 'hourly'>('checkForNewerImages', 'daily'),
    codeLens: c.get<boolean>('codeLens', true),
    notifyOnSuccess: c.get<boolean>('notifyOnSuccess', true),
    offline: c.get<boolean>('offline', false),
    registries: c.get<string[]>('registries', []),
    repositories: c.get<string[]>('repositories', []),
    buildArgs: c.get<Record<string, string>>('buildArgs', {}),
  };
}

/**
 * A restricted setting's values per scope: an untrusted workspace's own values are left out, as
 * `get()` leaves them out (see capabilities.untrustedWorkspaces in package.json).
 */
function restrictedValues<T>(key: string): ScopedValues<T> | undefined {
  const values = vscode.workspace.getConfiguration().inspect<T>(key);
  return values && !vscode.workspace.isTrusted ? { globalValue: values.globalValue } : values;
}

/**
 * VS Code's proxy settings for the registry client: http.proxy, http.noProxy,
 * http.proxyAuthorization (the Proxy-Authorization header) and http.proxyStrictSSL (whether an
 * https:// proxy's certificate is verified; registries keep verification unless marked insecure).
 */
export function proxySettings(): Pick<ClientOptions, 'proxy'> {
  const http = vscode.workspace.getConfiguration('http');
  const proxy = http.get<string>('proxy') || undefined;
  if (!proxy) return {};
  const noProxy = http.get<string[]>('noProxy', []).join(',') || undefined;
  const authorization = http.get<string | null>('proxyAuthorization') || undefined;
  const strictSSL = http.get<boolean>('proxyStrictSSL', true);
  return {
    proxy: {
      http: proxy,
      https: proxy,
      ...(noProxy ? { noProxy } : {}),
      ...(authorization ? { authorization } : {}),
      ...(strictSSL === false ? { strictSSL } : {}),
    },
  };
}

export async function readCaCertificates(paths: readonly string[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const p of paths) out.push(await readFile(p));
  return out;
}
