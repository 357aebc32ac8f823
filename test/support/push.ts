// Puts fixtures into a running test registry: skopeo pushes of OCI layouts, and plain-HTTP manifest
// GET/PUT helpers (with the registry's auth) for extra tags.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { MEDIA } from './fixtures';
import { run } from './proc';
import type { RunningRegistry } from './registry';

/** Every manifest type we know; Distribution needs Accept or it converts v2s2 to schema1 / 404s OCI. */
export const MANIFEST_ACCEPT = [
  MEDIA.ociIndex,
  MEDIA.ociManifest,
  MEDIA.dockerManifestList,
  MEDIA.dockerManifest,
].join(', ');

export interface PushOptions {
  /** Manifest format in the registry: 'oci' keeps the layout's digests; 'v2s2' converts (new digests). */
  format?: 'oci' | 'v2s2';
}

export interface SkopeoArgs {
  args: string[];
  /** Removes the temporary auth file. */
  cleanup(): Promise<void>;
}

/**
 * skopeo flags to reach `registry` as the source or destination: TLS (cert dir or verify off for
 * plain HTTP) and credentials through a temporary auth file (not on the command line).
 */
export async function skopeoArgs(registry: RunningRegistry, side: 'src' | 'dest'): Promise<SkopeoArgs> {
  const args: string[] = [];
  if (registry.tls) args.push(`--${side}-cert-dir`, registry.certDir!);
  else args.push(`--${side}-tls-verify=false`);
  let dir: string | undefined;
  if (registry.credentials) {
    dir = await mkdtemp(join(tmpdir(), 'stowage-skopeo-auth-'));
    const { username, password } = registry.credentials;
    const auth = Buffer.from(`${username}:${password}`).toString('base64');
    const file = join(dir, 'auth.json');
    await writeFile(file, JSON.stringify({ auths: { [registry.host]: { auth } } }), { mode: 0o600 });
    args.push(`--${side}-authfile`, file);
  }
  return {
    args,
    cleanup: async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `skopeo copy --all oci:DIR:TAG docker://HOST/REPO:TAG`, then returns the digest the registry now
 * serves for that tag (read back with a manifest GET). `repoAndTag` is `repo[:tag]` (default tag: `tag`).
 */
export async function pushLayout(
  layoutDir: string,
  tag: string,
  registry: RunningRegistry,
  repoAndTag: string,
  options: PushOptions = {},
): Promise<string> {
  const { repo, tag: destTag } = splitRepoTag(repoAndTag, tag);
  const format = options.format ?? 'oci';
  const dest = await skopeoArgs(registry, 'dest');
  try {
    const args = ['copy', '--all', '--quiet', '--retry-times', '0', ...dest.args];
    if (format === 'oci') args.push('--preserve-digests', '--format', 'oci');
    else args.push('--format', 'v2s2');
    args.push(`oci:${layoutDir}:${tag}`, `docker://${registry.host}/${repo}:${destTag}`);
    await run('skopeo', args);
  } finally {
    await dest.cleanup();
  }
  const got = await getManifest(registry, repo, destTag);
  if (got.status !== 200 || !got.digest) {
    throw new Error(
      `after push, GET ${repo}:${destTag} answered ${got.status}: ${got.body.toString('utf8')}`,
    );
  }
  return got.digest;
}

/** `skopeo inspect --raw` (or the config with `config: true`) of `repo:tag` / `repo@digest`. */
export async function skopeoInspectRaw(
  registry: RunningRegistry,
  repoRef: string,
  options: { config?: boolean } = {},
): Promise<string> {
  const src = await skopeoArgs(registry, 'src');
  // inspect spells the flags without the src- prefix.
  const args = src.args.map((a) => a.replace(/^--src-/, '--'));
  try {
    const extra = options.config ? ['--config'] : [];
    return (
      await run('skopeo', ['inspect', '--raw', ...extra, ...args, `docker://${registry.host}/${repoRef}`])
    ).stdout;
  } finally {
    await src.cleanup();
  }
}

function splitRepoTag(repoAndTag: string, defaultTag: string): { repo: string; tag: string } {
  const slash = repoAndTag.lastIndexOf('/');
  const colon = repoAndTag.lastIndexOf(':');
  if (colon > slash) return { repo: repoAndTag.slice(0, colon), tag: repoAndTag.slice(colon + 1) };
  return { repo: repoAndTag, tag: defaultTag };
}

/**
 * The Authorization header value a test client needs for `scopes` on this registry (none for
 * auth 'none'). For token auth the token is minted directly, so token-server request counts stay clean.
 */
export function authorizationFor(registry: RunningRegistry, scopes: string[]): string | undefined {
  if (registry.auth === 'none' || !registry.credentials) return undefined;
  const { username, password } = registry.credentials;
  if (registry.auth === 'basic') return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  return `Bearer ${registry.tokenServer!.issueToken(username, scopes)}`;
}

export interface ManifestResponse {
  status: number;
  /** `Docker-Content-Digest` */
  digest?: string;
  mediaType?: string;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

/** GET (or HEAD) a manifest with full Accept and the registry's auth. */
export async function getManifest(
  registry: RunningRegistry,
  repo: string,
  ref: string,
  options: { method?: 'GET' | 'HEAD'; accept?: string } = {},
): Promise<ManifestResponse> {
  const headers: Record<string, string> = { accept: options.accept ?? MANIFEST_ACCEPT };
  const auth = authorizationFor(registry, [`repository:${repo}:pull`]);
  if (auth) headers.authorization = auth;
  const res = await request(`${registry.url}/v2/${repo}/manifests/${ref}`, {
    method: options.method ?? 'GET',
    headers,
    dispatcher: registry.dispatcher,
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const h = res.headers;
  return {
    status: res.statusCode,
    digest: h['docker-content-digest'] as string | undefined,
    mediaType: h['content-type'] as string | undefined,
    body,
    headers: h,
  };
}

/** PUTs a manifest body under `tag` (or digest); returns the digest the registry reports. */
export async function putManifest(
  registry: RunningRegistry,
  repo: string,
  tag: string,
  body: string | Buffer,
  mediaType: string,
  authorization = authorizationFor(registry, [`repository:${repo}:pull,push`]),
): Promise<string> {
  const headers: Record<string, string> = { 'content-type': mediaType };
  if (authorization) headers.authorization = authorization;
  const res = await request(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers,
    body,
    dispatcher: registry.dispatcher,
  });
  const text = await res.body.text();
  if (res.statusCode !== 201) throw new Error(`PUT ${repo}:${tag} answered ${res.statusCode}: ${text}`);
  return res.headers['docker-content-digest'] as string;
}

/** Gives `repo:sourceTag`'s manifest many more tags (the same body PUT under each), a few at a time. */
export async function tagMany(
  registry: RunningRegistry,
  repo: string,
  sourceTag: string,
  tags: string[],
  concurrency = 16,
): Promise<void> {
  const src = await getManifest(registry, repo, sourceTag);
  if (src.status !== 200 || !src.mediaType)
    throw new Error(`GET ${repo}:${sourceTag} answered ${src.status}`);
  const auth = authorizationFor(registry, [`repository:${repo}:pull,push`]);
  let next = 0;
  const worker = async () => {
    while (next < tags.length) {
      const tag = tags[next++]!;
      await putManifest(registry, repo, tag, src.body, src.mediaType!, auth);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tags.length) }, worker));
}
