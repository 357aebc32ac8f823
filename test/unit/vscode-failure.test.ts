// The buttons an error message offers, by cause (src/vscode/workbench/failure.ts has no vscode import).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ErrorCode, StowageError } from '../../src/core/errors';
import { networkError } from '../../src/core/registry/errors';
import { failureActions, mayPass } from '../../src/vscode/workbench/failure';

const retry = { command: 'stowage.pullImage', args: [[{ reference: 'registry.lan/app:1' }]] };
const actions = (error: unknown, trusted = true) =>
  failureActions(error, { registry: 'registry.lan', trusted, reference: 'registry.lan/app:1', retry }).map(
    (a) => [a.title, a.command, ...(a.args ?? [])],
  );
const forCode = (code: ErrorCode, trusted = true) => actions(new StowageError(code, 'x'), trusted);
const LOG = ['Show Log', 'stowage.showLog'];
const RETRY = ['Retry', 'stowage.pullImage', [{ reference: 'registry.lan/app:1' }]];
const settings = (key: string) => ['Open Settings', 'workbench.action.openSettings', key];

test('credentials missing, refused or unreadable, or a rate limit: Sign In… (it asks more) for that registry', () => {
  for (const code of ['UNAUTHORIZED', 'DENIED', 'CREDENTIALS'] as const) {
    assert.deepEqual(forCode(code), [['Sign In…', 'stowage.signIn', 'registry.lan'], LOG], code);
  }
  // Signed-in pulls have a higher quota on Docker Hub; or wait and try again.
  assert.deepEqual(forCode('TOO_MANY_REQUESTS'), [
    ['Sign In…', 'stowage.signIn', 'registry.lan'],
    RETRY,
    LOG,
  ]);
  const noRegistry = failureActions(new StowageError('UNAUTHORIZED', 'x'), { trusted: true });
  assert.deepEqual(noRegistry[0]?.args, [], 'the sign-in asks for the registry');
});

test('TLS: the CA files setting under its new name; a server answering in plain HTTP: insecure registries', () => {
  assert.deepEqual(forCode('TLS'), [settings('stowage.certificateAuthorityFiles'), LOG]);
  const tls = (code: string, message: string) =>
    networkError(new URL('https://registry.lan/v2/'), Object.assign(new Error(message), { code }), {
      registry: 'registry.lan',
      what: 'API check',
    });
  const selfSigned = tls('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate');
  assert.equal(selfSigned.code, 'TLS');
  assert.deepEqual(actions(selfSigned), [settings('stowage.certificateAuthorityFiles'), LOG]);
  const plain = tls('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number');
  assert.equal(plain.code, 'TLS');
  assert.deepEqual(actions(plain), [settings('stowage.insecureRegistries'), LOG]);
});

test('a proxy failure opens the proxy settings (http.proxy, with noProxy and proxyAuthorization beside it)', () => {
  assert.deepEqual(forCode('PROXY'), [settings('http.proxy'), LOG]);
});

test('network, stalled transfers, a busy cache and 5xx: Retry, which runs what the caller gave', () => {
  for (const code of ['NETWORK', 'STALLED', 'LOCK_TIMEOUT'] as const) {
    assert.deepEqual(forCode(code), [RETRY, LOG], code);
  }
  const serverError = Object.assign(new StowageError('REGISTRY_ERROR', 'HTTP 503'), { status: 503 });
  assert.deepEqual(actions(serverError), [RETRY, LOG]);
  const badRequest = Object.assign(new StowageError('REGISTRY_ERROR', 'HTTP 400'), { status: 400 });
  assert.deepEqual(actions(badRequest), [LOG], 'a 4xx fails the same way again');
  // Without a way to do it again (a command that asked for its input), no Retry.
  assert.deepEqual(
    failureActions(new StowageError('NETWORK', 'x'), { trusted: true }).map((a) => a.title),
    ['Show Log'],
  );
  assert.equal(mayPass(new Error('boom')), false);
});

test('the other causes keep their own actions', () => {
  assert.deepEqual(forCode('INSECURE_REFUSED'), [settings('stowage.insecureRegistries'), LOG]);
  assert.deepEqual(forCode('OFFLINE'), [settings('stowage.offline'), LOG]);
  assert.deepEqual(forCode('OFFLINE', false), [['Manage Workspace Trust', 'workbench.trust.manage'], LOG]);
  assert.deepEqual(forCode('NOT_FOUND'), [['Browse Tags…', 'stowage.browseTags', 'registry.lan/app:1'], LOG]);
  assert.deepEqual(forCode('NO_MATCHING_PLATFORM'), [settings('stowage.platforms'), LOG]);
  assert.deepEqual(forCode('DIGEST_MISMATCH'), [LOG]);
  assert.deepEqual(actions(new Error('boom')), [LOG]);
});
