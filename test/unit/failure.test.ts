// The buttons an error message offers, by cause (src/vscode/workbench/failure.ts has no vscode import).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StowageError } from '../../src/core/errors';
import { failureActions } from '../../src/vscode/workbench/failure';

const titles = (code: ConstructorParameters<typeof StowageError>[0]) =>
  failureActions(new StowageError(code, 'x'), 'registry.lan', true).map((a) => [a.title, ...(a.args ?? [])]);

test('a proxy failure opens the proxy settings (http.proxy, with noProxy and proxyAuthorization beside it)', () => {
  assert.deepEqual(titles('PROXY'), [['Open Settings', 'http.proxy'], ['Show Log']]);
});

test('the other causes keep their own actions', () => {
  assert.deepEqual(titles('UNAUTHORIZED'), [['Sign In', 'registry.lan'], ['Show Log']]);
  assert.deepEqual(titles('TLS'), [['Open Settings', 'stowage.caCertificates'], ['Show Log']]);
  assert.deepEqual(titles('NETWORK'), [['Show Log']]);
});
