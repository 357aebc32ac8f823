import type * as vscode from 'vscode';
import type { Credential, CredentialSource } from '../core/registry/credentials';

const KEY = (registry: string) => `stowage.credential:${registry}`;
const INDEX = 'stowage.credentialRegistries';

/** Credentials the user entered in VS Code, kept in SecretStorage (never in settings or logs). */
export class SecretCredentials implements CredentialSource {
  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly state: vscode.Memento,
  ) {}

  async get(registry: string): Promise<Credential | undefined> {
    const raw = await this.secrets.get(KEY(registry));
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as Credential;
    } catch {
      return undefined;
    }
  }

  async set(registry: string, credential: Credential): Promise<void> {
    await this.secrets.store(KEY(registry), JSON.stringify(credential));
    const list = new Set(this.registries());
    list.add(registry);
    await this.state.update(INDEX, [...list]);
  }

  async delete(registry: string): Promise<void> {
    await this.secrets.delete(KEY(registry));
    await this.state.update(
      INDEX,
      this.registries().filter((r) => r !== registry),
    );
  }

  /** Registries the user signed in to from VS Code. */
  registries(): string[] {
    return this.state.get<string[]>(INDEX, []);
  }
}
