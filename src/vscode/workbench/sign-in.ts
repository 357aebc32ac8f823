import * as vscode from 'vscode';
import { isStowageError } from '../../core/errors';
import { DOCKER_HUB, registryName } from '../../core/reference';
import { RegistryClient } from '../../core/registry/client';
import { type Credential, StaticCredentials } from '../../core/registry/credentials';
import type { FeatureContext } from '../feature';
import { proxySettings, readCaCertificates } from '../settings';
import { errorText } from './failure';

/**
 * Checks a credential against the registry before it is saved: `GET /v2/` answered with it (a
 * basic-auth registry checks the password there; a token registry when issuing the token).
 * Uses a throw-away client so nothing the workspace client cached is involved.
 */
export async function verifyCredential(
  f: FeatureContext,
  registry: string,
  credential: Credential,
): Promise<void> {
  const s = f.stowage.settings();
  const credentials = new StaticCredentials();
  credentials.set(registry, credential);
  const client = new RegistryClient({
    credentials,
    insecureRegistries: s.insecureRegistries,
    caCertificates: s.caCertificates.length ? await readCaCertificates(s.caCertificates) : [],
    userAgent: 'stowage-vscode',
    ...proxySettings(),
  });
  try {
    await client.ping(registry, AbortSignal.timeout(30_000));
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Sign In to Registry…: registry, user name and password in input boxes → SecretStorage. */
export async function signIn(f: FeatureContext, preset?: string): Promise<boolean> {
  const registryInput = await vscode.window.showInputBox({
    title: 'Sign In to Registry (1/3)',
    prompt: 'Registry host, e.g. docker.io, ghcr.io or registry.example.com:5000',
    value: preset ?? DOCKER_HUB,
    ignoreFocusOut: true,
    validateInput: (v) => (registryName(v) ? undefined : 'Enter a registry host name, optionally with :port'),
  });
  if (registryInput === undefined) return false;
  const registry = registryName(registryInput)!;
  const username = await vscode.window.showInputBox({
    title: `Sign In to ${registry} (2/3)`,
    prompt: 'User name',
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() ? undefined : 'Enter a user name'),
  });
  if (username === undefined) return false;
  const password = await vscode.window.showInputBox({
    title: `Sign In to ${registry} (3/3)`,
    prompt: `Password or access token for ${username.trim()}`,
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (v ? undefined : 'Enter the password or an access token'),
  });
  if (password === undefined) return false;
  const credential: Credential = { username: username.trim(), password };

  if (f.stowage.mayUseNetwork) {
    try {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Checking the sign-in to ${registry}…` },
        () => verifyCredential(f, registry, credential),
      );
    } catch (e) {
      // Never log the credential: only the registry and why.
      f.log.warn(`Sign-in check for ${registry} failed: ${errorText(e)}`);
      if (isStowageError(e, 'UNAUTHORIZED') || isStowageError(e, 'DENIED')) {
        const again = await vscode.window.showErrorMessage(
          `${registry} did not accept the user name and password. Nothing was saved.`,
          'Try Again',
        );
        if (again) return signIn(f, registry);
        return false;
      }
      const save = await vscode.window.showWarningMessage(
        `Could not check the sign-in to ${registry}: ${errorText(e)} Save the credentials anyway?`,
        'Save',
        'Cancel',
      );
      if (save !== 'Save') return false;
    }
  }
  await f.stowage.credentials.set(registry, credential);
  // Tokens fetched before (anonymous, or for another account) must not outlive the sign-in.
  f.stowage.resetClient();
  f.log.info(`Signed in to ${registry} as ${credential.username} (kept in VS Code's secret storage)`);
  void vscode.window.showInformationMessage(
    f.stowage.mayUseNetwork
      ? `Signed in to ${registry} as ${credential.username}.`
      : `Saved the sign-in to ${registry} as ${credential.username}; it is checked on first use (no network in this workspace now).`,
  );
  return true;
}

/** Sign Out of Registry: forgets what VS Code stored (docker's config.json is left alone). */
export async function signOut(f: FeatureContext, preset?: string): Promise<boolean> {
  let registry = preset;
  if (!registry) {
    const known = f.stowage.credentials.registries();
    if (known.length === 0) {
      void vscode.window.showInformationMessage('You have not signed in to any registry from VS Code.');
      return false;
    }
    registry = await vscode.window.showQuickPick(known, { title: 'Sign Out of Registry' });
    if (!registry) return false;
  }
  await f.stowage.credentials.delete(registry);
  f.stowage.resetClient();
  f.log.info(`Signed out of ${registry}`);
  void vscode.window.showInformationMessage(`Signed out of ${registry}.`);
  return true;
}
