// Property tests for manifest validation: arbitrary bytes, arbitrary JSON, and valid manifests and
// indexes with fields replaced by arbitrary values. Only typed errors; what validates is sound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isDigest } from '../../src/core/digest';
import { type Descriptor, MediaType, parseManifest } from '../../src/core/store';
import { fuzzOptions, onlyTyped, pathological } from './fuzz-support';

const D = `sha256:${'ab'.repeat(32)}`;
const desc = { mediaType: MediaType.OCI_LAYER_GZIP, digest: D, size: 10 };
const validManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OCI_MANIFEST,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D, size: 2 },
  layers: [desc, desc],
  annotations: { a: 'b' },
};
const validIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OCI_INDEX,
  manifests: [
    {
      mediaType: MediaType.OCI_MANIFEST,
      digest: D,
      size: 3,
      platform: { os: 'linux', architecture: 'amd64' },
    },
  ],
};
const mediaTypes = fc.option(
  fc.oneof(
    fc.constantFrom(
      MediaType.OCI_MANIFEST,
      MediaType.OCI_INDEX,
      MediaType.DOCKER_MANIFEST,
      MediaType.DOCKER_MANIFEST_LIST,
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
      'application/json',
    ),
    fc.string({ maxLength: 30 }),
  ),
  { nil: undefined },
);
const anyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    -1,
    1.5,
    1e300,
    2 ** 53,
    '../x',
    'sha256:../../etc',
    `${D}x`,
    `md5:${'a'.repeat(32)}`,
    null,
    [],
    {},
  ),
);
/** A valid document with one field (at any depth) replaced. */
function mutated(doc: Record<string, unknown>) {
  const paths: string[][] = [];
  const walk = (v: unknown, path: string[]) => {
    paths.push(path);
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  return fc
    .tuple(fc.constantFrom(...paths.filter((p) => p.length > 0)), anyValue, fc.boolean())
    .map(([path, value, remove]) => {
      const copy = structuredClone(doc);
      let at: Record<string, unknown> = copy;
      for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
      if (remove) delete at[path[path.length - 1]!];
      else at[path[path.length - 1]!] = value;
      return JSON.stringify(copy);
    });
}

function soundDescriptor(d: Descriptor) {
  assert.ok(isDigest(d.digest), `digest ${String(d.digest)} is valid`);
  assert.ok(Number.isSafeInteger(d.size) && d.size >= 0, `size ${d.size} is sane`);
  assert.equal(typeof d.mediaType, 'string');
}

function check(bytes: string | Uint8Array, mediaType?: string) {
  const doc = onlyTyped(() => parseManifest(bytes, mediaType, 'Fuzzed manifest'), 'parseManifest');
  if (!doc) return;
  if (doc.kind === 'index') doc.manifests.forEach(soundDescriptor);
  else [doc.config, ...doc.layers].forEach(soundDescriptor);
}

test('parseManifest: arbitrary bytes and JSON', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v) ?? ''),
        fc.uint8Array({ maxLength: 200 }),
      ),
      mediaTypes,
      (b, m) => check(b, m),
    ),
    fuzzOptions,
  );
});

test('parseManifest: valid manifests and indexes with one field replaced or removed', () => {
  fc.assert(
    fc.property(fc.oneof(mutated(validManifest), mutated(validIndex)), mediaTypes, (b, m) => check(b, m)),
    fuzzOptions,
  );
});

test('parseManifest: deep nesting and long inputs stay fast and typed', () => {
  for (const depth of [1_000, 100_000]) {
    check(`${'['.repeat(depth)}${']'.repeat(depth)}`);
    check(`{"schemaVersion":2,"layers":${'['.repeat(depth)}${']'.repeat(depth)}}`);
  }
  for (const s of pathological(['{', '[', '"', '\\', '{"a":', '0'])) check(s);
  check(
    JSON.stringify({
      ...validIndex,
      manifests: Array.from({ length: 20_000 }, () => validIndex.manifests[0]),
    }),
  );
});
