import { type Digest, parseDigest } from '../digest';
import { StowageError } from '../errors';
import { redactUserinfo } from '../redact';

/** A normalised image reference: `registry/repository[:tag][@digest]`. */
export interface Reference {
  /** Registry name as users write it (`docker.io`, `127.0.0.1:5000`, `ghcr.io`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/alpine`, `team/app`). */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
/** Where docker.io is actually served. */
export const DOCKER_HUB_HOST = 'registry-1.docker.io';
/** The key docker's config.json stores Docker Hub credentials under. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
export const DEFAULT_TAG = 'latest';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`,
);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const MAX_NAME = 255;

/** Quotes the input with any credentials in it hidden (`https://***@host/x`). */
function invalid(input: string, why: string, hint?: string): StowageError {
  return new StowageError(
    'INVALID_REFERENCE',
    `Invalid image reference "${redactUserinfo(input)}": ${why}.`,
    hint,
  );
}

/**
 * Parses and normalises an image reference the way docker does:
 * `alpine` → docker.io/library/alpine:latest; a first component containing `.` or `:`, equal to
 * `localhost`, or with uppercase letters is a registry. Tag and digest may both be given.
 */
export function parseReference(input: string): Reference {
  const text = input.trim();
  if (!text) throw invalid(input, 'the name is empty');
  if (/\s/.test(text)) throw invalid(input, 'it contains white space');
  const hidden = redactUserinfo(text);
  if (hidden !== text) {
    // What follows the '@' would be read as a digest, and its error would quote the password.
    const host = hidden.slice(hidden.lastIndexOf('@') + 1).split('/')[0];
    throw invalid(
      input,
      'a user name or password cannot be part of an image reference',
      `Sign in to the registry instead: stowage login ${host || 'REGISTRY'} (or docker login).`,
    );
  }

  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    try {
      parseDigest(d, 'digest');
    } catch (e) {
      throw invalid(input, (e as StowageError).message.replace(/\.$/, ''));
    }
    digest = d as Digest;
    rest = rest.slice(0, at);
  }

  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) {
      throw invalid(
        input,
        `the tag "${tag}" is not valid`,
        'A tag is up to 128 letters, digits, underscores, periods and dashes, not starting with a period or dash.',
      );
    }
  }
  if (!rest) throw invalid(input, 'the name is empty');

  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (
      first.includes('.') ||
      first.includes(':') ||
      first === 'localhost' ||
      first !== first.toLowerCase()
    ) {
      registry = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN.test(registry)) throw invalid(input, `"${registry}" is not a valid registry host`);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_HOST) registry = DOCKER_HUB;
  if (!path) throw invalid(input, 'the repository name is empty');
  const components = path.split('/');
  for (const c of components) {
    if (!PATH_COMPONENT.test(c)) {
      if (c.toLowerCase() !== c && components.every((x) => PATH_COMPONENT.test(x.toLowerCase()))) {
        // Suggest the whole reference with its repository lowercased (tags may keep their case).
        const fixed = `${rest.slice(0, rest.length - path.length)}${path.toLowerCase()}${text.slice(rest.length)}`;
        throw invalid(input, 'repository names must be lowercase', `Try "${fixed}".`);
      }
      throw invalid(
        input,
        c ? `"${c}" is not a valid repository name component` : 'the repository path has an empty component',
        'Use lowercase letters, digits and separators (., _, __, -) between them.',
      );
    }
  }
  if (registry === DOCKER_HUB && components.length === 1) path = `library/${path}`;
  const name = `${registry}/${path}`;
  if (name.length > MAX_NAME) throw invalid(input, `the name is longer than ${MAX_NAME} characters`);
  if (!tag && !digest) tag = DEFAULT_TAG;
  return { registry, repository: path, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Whether a registry's string is a tag a reference can hold (a tags list may hold anything). */
export function isTag(text: unknown): text is string {
  return typeof text === 'string' && TAG.test(text);
}

/** Whether a registry's string is a repository path a reference can hold (a catalog may hold anything). */
export function isRepositoryPath(text: unknown): text is string {
  return (
    typeof text === 'string' &&
    text.length <= MAX_NAME &&
    text.split('/').every((c) => PATH_COMPONENT.test(c))
  );
}

/** `registry/repository` */
export function repositoryName(ref: Pick<Reference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The fully normalised string: `docker.io/library/alpine:3.20@sha256:…`. */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The short form docker prints: `alpine:3.20`, `user/app:v1`, `ghcr.io/o/r:t`. */
export function familiarReference(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.registry === DOCKER_HUB) {
    name = ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
  }
  return `${name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** What to ask the registry for: the digest when known (pull by digest), else the tag. */
export function manifestIdentifier(ref: Reference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** The host:port serving a registry name (docker.io is served by registry-1.docker.io). */
export function registryHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_HOST : registry;
}

/** The key credentials for a registry are stored under in docker's config.json. */
export function credentialKey(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry;
}

/** `scratch` is the empty base image: reserved, never pulled. */
export function isScratch(input: string): boolean {
  return input.trim().toLowerCase() === 'scratch';
}

/** Like parseReference but refuses `scratch`, which can never be pulled. */
export function parsePullableReference(input: string): Reference {
  if (isScratch(input)) {
    throw new StowageError(
      'RESERVED_NAME',
      '"scratch" is a reserved name for an empty image and cannot be pulled.',
      'A FROM scratch stage needs no download.',
    );
  }
  return parseReference(input);
}

/**
 * A registry as typed by a user (`ghcr.io`, `https://127.0.0.1:5000/`, `index.docker.io`) as a
 * registry name (`host[:port]`, docker.io for Docker Hub's aliases), or undefined when it is not one.
 */
export function registryName(input: string): string | undefined {
  const text = input
    .trim()
    .replace(/^https?:\/\//, '')
    .replace(/\/+$/, '');
  if (!text || text.includes('/')) return undefined;
  try {
    const ref = parseReference(`${text}/x`);
    return ref.registry === text || ref.registry === DOCKER_HUB ? ref.registry : undefined;
  } catch {
    return undefined;
  }
}
