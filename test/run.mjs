// Runs the test suites with node's test runner (TypeScript through tsx).
// usage: node test/run.mjs [unit|integration|reliability|e2e|all]   (default: all)
// The reliability suites run reduced counts; STOWAGE_SOAK=1 (npm run test:soak) runs the full ones.
// Ends with the plain line "N passed, N failed" from test/support/summary-reporter.mjs.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const which = process.argv[2] ?? 'all';
const groups = which === 'all' ? ['unit', 'integration', 'reliability', 'e2e'] : which.split(',');

function find(dir) {
  let out = [];
  let entries = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (e.endsWith('.test.ts')) out.push(relative(root, p));
  }
  return out;
}

const files = groups.flatMap((g) => find(join(root, 'test', g)));
if (files.length === 0) {
  console.error(`no test files for ${groups.join(', ')}`);
  process.exit(1);
}
const args = [
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${process.env.STOWAGE_TEST_CONCURRENCY ?? 2}`,
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=./test/support/summary-reporter.mjs',
  '--test-reporter-destination=stdout',
  ...files,
];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
