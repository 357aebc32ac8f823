import { readFile } from 'node:fs/promises';
import { StowageError } from '../errors';
import { redactUserinfo } from '../redact';
import { DOCKER_HUB } from '../reference';

/** Mirrors per registry name, in the order they are tried, and hosts allowed plain HTTP. */
export interface MirrorSettings {
  mirrors: Record<string, string[]>;
  insecureRegistries: string[];
}

/**
 * The base URL of a mirror as users write it: `https://mirror.example`, `mirror.example:5000`
 * (HTTPS is assumed: a mirror is never tried in plaintext unless its URL says http://), with a
 * path prefix (`https://art.example/api/docker/hub`), with or without a trailing `/` or `/v2`.
 */
export function mirrorBaseUrl(input: string, registry: string): URL {
  const text = input.trim();
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new StowageError('USAGE', `Invalid mirror URL "${redactUserinfo(input)}" for ${registry}.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new StowageError(
      'USAGE',
      `Mirror "${redactUserinfo(input)}" for ${registry} must be an http(s) URL.`,
    );
  }
  if (url.username || url.password) {
    throw new StowageError(
      'USAGE',
      `Mirror "${url.host}" for ${registry} has credentials in its URL; they are not used from there.`,
      `Remove them from the URL and sign in to ${url.host} (docker login ${url.host}) instead.`,
    );
  }
  if (url.search || url.hash) {
    throw new StowageError('USAGE', `Mirror "${input}" for ${registry} must not have a query or fragment.`);
  }
  url.pathname = url.pathname.replace(/\/+$/, '').replace(/\/v2$/, '') || '/';
  return url;
}

/**
 * Docker's daemon.json mirror settings as client options: `registry-mirrors` applies to Docker Hub
 * only (as in dockerd), `insecure-registries` to any host. Entries are validated like dockerd does
 * (mirrors need an http(s) scheme); anything else in the file is ignored.
 */
export function mirrorsFromDaemonConfig(json: unknown, source = 'daemon.json'): MirrorSettings {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new StowageError('USAGE', `${source} is not a JSON object.`);
  }
  const o = json as Record<string, unknown>;
  const list = (key: string): string[] => {
    const v = o[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      throw new StowageError('USAGE', `"${key}" in ${source} must be a list of strings.`);
    }
    return v.map((x) => x.trim()).filter(Boolean);
  };
  const mirrors = list('registry-mirrors');
  for (const m of mirrors) {
    if (!/^https?:\/\//i.test(m)) {
      throw new StowageError(
        'USAGE',
        `Invalid mirror "${redactUserinfo(m)}" in ${source}: it must start with https:// or http:// (as dockerd requires).`,
      );
    }
    mirrorBaseUrl(m, DOCKER_HUB);
  }
  return {
    mirrors: mirrors.length ? { [DOCKER_HUB]: mirrors } : {},
    insecureRegistries: list('insecure-registries').map((h) =>
      h.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, ''),
    ),
  };
}

/** Reads a daemon.json (`/etc/docker/daemon.json`, or one the user points at). */
export async function readDaemonConfig(path: string): Promise<MirrorSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new StowageError('USAGE', `Cannot read the docker daemon config ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new StowageError('USAGE', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return mirrorsFromDaemonConfig(json, path);
}

/** Combines settings: mirrors for the same registry keep their order, earlier sources first. */
export function mergeMirrorSettings(...all: Partial<MirrorSettings>[]): MirrorSettings {
  const mirrors: Record<string, string[]> = {};
  const insecure: string[] = [];
  for (const s of all) {
    for (const [registry, urls] of Object.entries(s.mirrors ?? {})) {
      const key = registry.toLowerCase();
      mirrors[key] = [...new Set([...(mirrors[key] ?? []), ...urls])];
    }
    for (const h of s.insecureRegistries ?? []) if (!insecure.includes(h)) insecure.push(h);
  }
  return { mirrors, insecureRegistries: insecure };
}
