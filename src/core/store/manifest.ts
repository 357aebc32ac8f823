import { type Digest, isDigest } from '../digest';
import { StowageError } from '../errors';
import {
  isIndexMediaType,
  isJsonDocumentMediaType,
  isManifestMediaType,
  MediaType,
  SCHEMA1_MEDIA_TYPES,
} from './media-types';

/** An OCI content descriptor. Unknown fields are kept as they were. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface ImageIndex {
  kind: 'index';
  mediaType: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export type ManifestDocument = ImageIndex | ImageManifest;

/** Manifests, indexes and configs are small; anything bigger is refused before parsing. */
export const MAX_JSON_BLOB = 4 * 1024 * 1024;

function invalid(what: string, why: string): StowageError {
  return new StowageError('MANIFEST_INVALID', `${what} is invalid: ${why}.`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** Validates one descriptor: media type, a strict digest, a non-negative safe-integer size. */
export function validateDescriptor(value: unknown, what: string, where: string): Descriptor {
  if (!isObject(value)) throw invalid(what, `${where} is not an object`);
  const { mediaType, digest, size, annotations, platform } = value;
  if (typeof mediaType !== 'string' || !mediaType) throw invalid(what, `${where}.mediaType is missing`);
  if (!isDigest(digest)) {
    const shown = typeof digest === 'string' ? `"${digest.slice(0, 80)}"` : String(digest);
    throw invalid(what, `${where}.digest ${shown} is not a valid sha256/sha512 digest`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(what, `${where}.size ${String(size)} is not a non-negative integer`);
  }
  if (annotations !== undefined && !stringMap(annotations)) {
    throw invalid(what, `${where}.annotations must map strings to strings`);
  }
  if (platform !== undefined) {
    if (
      !isObject(platform) ||
      typeof platform.os !== 'string' ||
      typeof platform.architecture !== 'string' ||
      (platform.variant !== undefined && typeof platform.variant !== 'string')
    ) {
      throw invalid(what, `${where}.platform needs string os and architecture`);
    }
  }
  return value as Descriptor;
}

/**
 * Parses and validates an index or image manifest. `expectedMediaType` is what the descriptor or
 * the registry's Content-Type said; it must agree in kind (index or manifest) with the document's
 * own `mediaType` when both are present. `what` names the document in messages (e.g. "Manifest sha256:… of alpine:3.20").
 */
export function parseManifest(
  bytes: Uint8Array | string,
  expectedMediaType?: string,
  what = 'Manifest',
): ManifestDocument {
  const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.byteLength;
  if (length > MAX_JSON_BLOB) {
    throw new StowageError(
      'TOO_LARGE',
      `${what} is ${length} bytes, over the ${MAX_JSON_BLOB}-byte limit for manifests.`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw invalid(what, `not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(doc)) throw invalid(what, 'not a JSON object');
  const declared = doc.mediaType;
  if (declared !== undefined && typeof declared !== 'string')
    throw invalid(what, 'mediaType is not a string');
  if (
    (declared && SCHEMA1_MEDIA_TYPES.includes(declared)) ||
    (expectedMediaType && SCHEMA1_MEDIA_TYPES.includes(expectedMediaType)) ||
    doc.schemaVersion === 1
  ) {
    throw new StowageError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${what} uses Docker image manifest schema 1, which is deprecated and not supported.`,
      'Push the image again with a current Docker or buildah to get a schema 2 or OCI manifest.',
    );
  }
  if (doc.schemaVersion !== 2)
    throw invalid(what, `schemaVersion is ${String(doc.schemaVersion)}, expected 2`);
  // Docker and OCI spellings of one kind are the same structure, and registries mix them (an
  // index entry saying Docker v2s2 for an OCI manifest): containerd takes either. An index where
  // a manifest was expected, or the reverse, is refused: that confusion changes what is fetched.
  if (
    declared &&
    expectedMediaType &&
    isJsonDocumentMediaType(declared) &&
    isJsonDocumentMediaType(expectedMediaType) &&
    isIndexMediaType(declared) !== isIndexMediaType(expectedMediaType)
  ) {
    throw invalid(what, `its mediaType ${declared} differs from the expected ${expectedMediaType}`);
  }
  // OCI allows a manifest without mediaType; then go by the descriptor, then by its shape.
  const mediaType =
    declared ||
    (isJsonDocumentMediaType(expectedMediaType) ? expectedMediaType! : undefined) ||
    (Array.isArray(doc.manifests) ? MediaType.OCI_INDEX : isObject(doc.config) ? MediaType.OCI_MANIFEST : '');
  if (!isJsonDocumentMediaType(mediaType)) {
    throw new StowageError(
      'UNSUPPORTED_MEDIA_TYPE',
      `${what} has media type "${String(mediaType || 'unknown').slice(0, 100)}", which is not an image index or manifest.`,
    );
  }
  if (doc.annotations !== undefined && !stringMap(doc.annotations)) {
    throw invalid(what, 'annotations must map strings to strings');
  }
  const annotations = doc.annotations as Record<string, string> | undefined;
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid(what, 'manifests is not a list');
    const manifests = doc.manifests.map((m, i) => validateDescriptor(m, what, `manifests[${i}]`));
    return { kind: 'index', mediaType, manifests, ...(annotations ? { annotations } : {}) };
  }
  if (!isManifestMediaType(mediaType)) throw invalid(what, `unexpected media type ${mediaType}`);
  const config = validateDescriptor(doc.config, what, 'config');
  if (!Array.isArray(doc.layers)) throw invalid(what, 'layers is not a list');
  const layers = doc.layers.map((l, i) => validateDescriptor(l, what, `layers[${i}]`));
  return { kind: 'manifest', mediaType, config, layers, ...(annotations ? { annotations } : {}) };
}

/** Parses a document that must be an image index (OCI index or Docker manifest list). */
export function parseImageIndex(
  bytes: Uint8Array | string,
  what = 'Image index',
  mediaType?: string,
): ImageIndex {
  const doc = parseManifest(bytes, mediaType, what);
  if (doc.kind !== 'index') throw invalid(what, `expected an image index, got ${doc.mediaType}`);
  return doc;
}

/** Parses a document that must be an image manifest (OCI or Docker schema 2). */
export function parseImageManifest(
  bytes: Uint8Array | string,
  what = 'Manifest',
  mediaType?: string,
): ImageManifest {
  const doc = parseManifest(bytes, mediaType, what);
  if (doc.kind !== 'manifest') throw invalid(what, `expected an image manifest, got ${doc.mediaType}`);
  return doc;
}
