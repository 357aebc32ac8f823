// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
// Times resolveDockerfile over 1,000 generated Dockerfiles (target: under a second in total).
// usage: node --import tsx bench/resolve.ts [--count N]   (also run as a section of bench/pull.ts)
import { parseArgs } from 'node:util';
import { resolveDockerfile } from '../src/core/dockerfile';
import { summarise } from './measure';

const BASES = [
  'alpine:3.20',
  'debian:bookworm-slim',
  'ubuntu:24.04',
  'node:20-alpine',
  'python:3.12-slim',
  'golang:${GO_VERSION}-bookworm',
  'gcr.io/distroless/static-debian12:nonroot',
  'ghcr.io/acme/tools:${TOOLS_TAG}',
  'registry.example.com:5000/team/base@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'mcr.microsoft.com/dotnet/sdk:8.0',
];

/** A realistic multi-stage Dockerfile, different for each `i` (ARGs, stages, mounts, heredocs). */
export function makeDockerfile(i: number): string {
  const lines: string[] = [];
  if (i % 3 === 0) lines.push('# syntax=docker/dockerfile:1.7');
  lines.push(`ARG GO_VERSION=1.${20 + (i % 4)}`, `ARG TOOLS_TAG=v${i % 10}`, 'ARG REGISTRY=docker.io');
  const stages = 1 + (i % 5);
  for (let s = 0; s < stages; s++) {
    const base = s > 0 && i % 2 === 0 ? `stage${s - 1}` : BASES[(i + s) % BASES.length]!;
    const platform = s === 0 && i % 4 === 1 ? '--platform=$BUILDPLATFORM ' : '';
    lines.push(`FROM ${platform}${base} AS stage${s}`);
    lines.push('ARG TARGETOS TARGETARCH', `ENV APP_${s}=value${i} \\`, `    OTHER_${s}=x`);
    lines.push(`WORKDIR /src/${s}`, 'COPY . .');
    lines.push(
      'RUN --mount=type=cache,target=/root/.cache \\',
      `    --mount=type=bind,from=${BASES[(i + s + 3) % BASES.length]},target=/tools \\`,
      '    set -eux; apt-get update && apt-get install -y --no-install-recommends ca-certificates \\',
      '    && rm -rf /var/lib/apt/lists/*',
    );
    if (i % 7 === 0) lines.push('RUN <<EOF', 'echo building', 'make -j2 all', 'EOF');
    if (s > 0) lines.push(`COPY --from=stage${s - 1} /out /in`);
    if (i % 6 === 0) lines.push(`COPY --from=busybox:1.36 /bin/busybox /bin/`);
    lines.push(`EXPOSE ${8000 + s}`, `LABEL org.opencontainers.image.title="bench ${i}/${s}"`);
  }
  lines.push('USER 65532:65532', 'ENTRYPOINT ["/app"]');
  return `${lines.join('\n')}\n`;
}

export interface ResolveBench {
  files: number;
  uses: number;
  /** The first pass over all files (includes JIT warm-up). */
  firstMs: number;
  /** Later passes over all files. */
  passes: ReturnType<typeof summarise>;
}

export function benchResolve(count = 1000, passes = 5): ResolveBench {
  const files = Array.from({ length: count }, (_, i) => makeDockerfile(i));
  let uses = 0;
  const pass = () => {
    const began = performance.now();
    let n = 0;
    for (const text of files) n += resolveDockerfile(text).length;
    uses = n;
    return performance.now() - began;
  };
  const firstMs = pass();
  const later = Array.from({ length: passes }, pass);
  return { files: count, uses, firstMs, passes: summarise(later) };
}

export function printResolve(r: ResolveBench): void {
  const verdict = r.firstMs < 1000 ? 'target < 1000 ms met' : 'TARGET < 1000 ms MISSED';
  console.log(
    `resolveDockerfile × ${r.files} (${r.uses} image uses): first pass ${r.firstMs.toFixed(0)} ms; ` +
      `later passes median ${r.passes.median.toFixed(0)} ms (min ${r.passes.min.toFixed(0)}, max ${r.passes.max.toFixed(0)}) — ${verdict}`,
  );
}

if (require.main === module) {
  const { values } = parseArgs({ options: { count: { type: 'string' } } });
  printResolve(benchResolve(values.count ? Number(values.count) : 1000));
}
