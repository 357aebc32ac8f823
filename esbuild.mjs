// Bundles the extension, the CLI and the in-editor test suite with esbuild.
// `--production` minifies; source maps are always written (they make stack traces readable).
import { build } from 'esbuild';

const production = process.argv.includes('--production');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  minify: production,
  logLevel: 'warning',
  external: ['vscode'],
};

await Promise.all([
  build({ ...common, entryPoints: ['src/extension.ts'], outfile: 'dist/extension.js' }),
  // The CLI: dist/cli.js is a small launcher that runs dist/cli-main.js with V8's code cache.
  build({ ...common, entryPoints: ['src/cli.ts'], outfile: 'dist/cli-main.js' }),
  build({
    ...common,
    entryPoints: ['src/launch.ts'],
    outfile: 'dist/cli.js',
    banner: { js: '#!/usr/bin/env node' },
  }),
  // Tests that run inside a real extension host (code-server here, test-electron where it can download).
  build({
    ...common,
    minify: false,
    entryPoints: { suite: 'test/host/index.ts', electron: 'test/host/electron.ts' },
    outdir: 'dist-test',
    external: ['vscode', 'mocha', '@vscode/test-electron'],
  }),
]);
