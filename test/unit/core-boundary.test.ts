import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const CORE = join(__dirname, '..', '..', 'src', 'core');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('src/core never imports vscode', () => {
  const files = sources(CORE);
  assert.ok(files.length > 3, 'expected core sources to scan');
  const offenders = files.filter((f) =>
    /(?:from\s+['"]vscode['"]|require\(\s*['"]vscode['"]\s*\)|import\(\s*['"]vscode['"]\s*\))/.test(
      readFileSync(f, 'utf8'),
    ),
  );
  assert.deepEqual(offenders, []);
});
