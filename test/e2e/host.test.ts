// Runs the in-extension-host mocha suite (dist-test/suite.js, the test-electron contract) inside
// a real VS Code: code-server with the smoke-test driver, this repo as extensionDevelopmentPath.
// `npm run test:electron` runs the same suite where VS Code can be downloaded.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { runHostTests } from '../support/browser';
import { type CodeServer, copyWorkspace, startCodeServer } from '../support/code-server';

describe('extension host suite in code-server', () => {
  let server: CodeServer;
  let workspace: string;

  before(async () => {
    workspace = await copyWorkspace();
    server = await startCodeServer({ testDriver: true });
  });

  after(async () => {
    await server?.stop();
    if (workspace) await rm(workspace, { recursive: true, force: true });
  });

  test('dist-test/suite.js passes inside the real extension host', async (t) => {
    const opened = Date.now();
    const result = await runHostTests(server, { workspace, name: 'host' });
    try {
      const ok = result.exitCode === 0 && result.failing === 0 && result.passing > 0;
      if (!ok) {
        // The whole in-host output (mocha's spec report and the workbench log) in the node test's report.
        await result.workbench.saveDiagnostics();
        t.diagnostic(`logs: ${result.workbench.artifacts}`);
        for (const line of result.output.split('\n')) t.diagnostic(line);
      }
      assert.equal(result.exitCode, 0, `the extension host exited ${result.exitCode}`);
      assert.equal(result.failing, 0, 'mocha reported failing tests');
      // Every passing test shows as a ✔ line of the spec reporter; the summary must agree with them.
      const ticks = result.output.split('\n').filter((l) => /^\s*✔ /.test(l)).length;
      assert.ok(
        result.passing >= 2,
        `expected the host suites to report passing tests, got ${result.passing}`,
      );
      assert.equal(ticks, result.passing, 'spec lines and the "N passing" summary disagree');
      assert.match(result.output, /✔ activates and contributes its commands/);
      assert.match(result.output, /✔ registers the Stowage view container and its three views/);
      t.diagnostic(
        `${result.passing} passing in the extension host; code-server ${server.toolchain.codeServerVersion} ` +
          `healthz after ${server.startMs} ms, suite finished ${Date.now() - opened} ms after the page opened`,
      );
    } finally {
      await result.workbench.close();
    }
  });
});
