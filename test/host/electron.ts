// Runs the host suite under @vscode/test-electron, for machines that can download VS Code.
import { resolve } from 'node:path';
import { runTests } from '@vscode/test-electron';

async function main() {
  const root = resolve(__dirname, '..');
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: resolve(__dirname, 'suite.js'),
    launchArgs: [resolve(root, 'test/fixtures/workspace'), '--disable-extensions'],
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
