import { type FSWatcher, watch } from 'node:fs';
import * as vscode from 'vscode';
import { PullService } from '../core/pull/service';
import { RegistryClient, type RequestLog } from '../core/registry/client';
import { chainCredentials, DockerConfigCredentials } from '../core/registry/credentials';
import { describeReason } from '../core/registry/errors';
import { Store } from '../core/store';
import { SecretCredentials } from './credentials';
import { CA_FILES_SETTING } from './setting-names';
import { proxySettings, readCaCertificates, readSettings, type StowageSettings } from './settings';

/**
 * The workspace's Stowage: settings, the cache, the registry client and the one pull service.
 * Everything is created lazily on first use (activation stays cheap) and rebuilt when the
 * settings that shape it change.
 */
export class Stowage implements vscode.Disposable {
  readonly credentials: SecretCredentials;
  readonly service: PullService;
  private readonly cacheChanged = new vscode.EventEmitter<void>();
  /** Fires when the cache's content may have changed (pull, remove, gc, import, settings). */
  readonly onDidChangeCache = this.cacheChanged.event;
  private readonly trustGranted = new vscode.EventEmitter<void>();
  /**
   * Fires when the user trusts the workspace, once the registry client built for Restricted Mode
   * (offline) is gone: what waited for the network (views, the newer-image check) may start now.
   */
  readonly onDidGrantTrust = this.trustGranted.event;
  private readonly disposables: vscode.Disposable[] = [];
  private store?: Promise<Store>;
  private storeDir?: string;
  private watcher?: FSWatcher;
  private watchTimer?: NodeJS.Timeout;
  private client?: RegistryClient;
  private caCertificates: Buffer[] = [];
  /** The CA file paths (stowage.certificateAuthorityFiles) `caCertificates` was read from. */
  private caLoadedFor?: string;

  constructor(
    readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {
    this.credentials = new SecretCredentials(context.secrets, context.globalState);
    this.service = new PullService({
      store: () => this.getStore(),
      client: () => this.getClient(),
      concurrency: 2,
      blobConcurrency: () => this.settings().maxConcurrentDownloads,
    });
    const sub = this.service.onEvent((e) => {
      if (e.type === 'cacheChanged') this.cacheChanged.fire();
    });
    this.disposables.push(
      { dispose: () => sub.dispose() },
      this.cacheChanged,
      this.trustGranted,
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.grantTrust()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('stowage') || e.affectsConfiguration('http')) {
          this.caLoadedFor = undefined;
          this.resetClient();
        }
        if (e.affectsConfiguration('stowage.cacheDirectory')) this.cacheChanged.fire();
      }),
    );
  }

  settings(): StowageSettings {
    return readSettings();
  }

  /** Network activity only in trusted workspaces and when not offline. */
  get mayUseNetwork(): boolean {
    return vscode.workspace.isTrusted && !this.settings().offline;
  }

  getStore(): Promise<Store> {
    const dir = this.settings().cacheDirectory;
    if (!this.store || this.storeDir !== dir) {
      this.storeDir = dir;
      this.store = Store.open(dir);
      this.store.then(
        () => this.watchCache(dir),
        () => {
          this.store = undefined;
        },
      );
    }
    return this.store;
  }

  getClient(): RegistryClient {
    if (!this.client) {
      const s = this.settings();
      this.client = new RegistryClient({
        credentials: chainCredentials(this.credentials, new DockerConfigCredentials()),
        insecureRegistries: s.insecureRegistries,
        mirrors: s.registryMirrors,
        caCertificates: this.caCertificates,
        offline: s.offline || !vscode.workspace.isTrusted,
        userAgent: `stowage-vscode/${this.context.extension.packageJSON.version}`,
        onRequest: (r) => this.logRequest(r),
        onRetry: (r) =>
          this.log.warn(
            `${r.url}: ${describeReason(r.reason)}; trying again (attempt ${r.attempt} of ${r.attempts}).`,
          ),
        ...proxySettings(),
      });
    }
    return this.client;
  }

  /** Loads configured CA files; call before network work (errors are logged, not thrown). */
  async prepareNetwork(): Promise<void> {
    const paths = this.settings().caCertificates;
    const key = JSON.stringify(paths);
    if (key === this.caLoadedFor) return;
    try {
      const loaded = paths.length ? await readCaCertificates(paths) : [];
      const same =
        loaded.length === this.caCertificates.length &&
        loaded.every((b, i) => b.equals(this.caCertificates[i]!));
      this.caLoadedFor = key;
      if (same) return;
      this.caCertificates = loaded;
      // Only a client built with other CAs is dropped: one in use by a pull keeps running otherwise.
      this.resetClient();
    } catch (e) {
      this.log.error(`Cannot read a CA certificate from ${CA_FILES_SETTING}: ${(e as Error).message}`);
    }
  }

  fireCacheChanged(): void {
    this.cacheChanged.fire();
  }

  /**
   * A client made in Restricted Mode is offline for good, and the workspace's own values of the
   * restricted settings (CA files, mirrors, insecure registries, cache folder) apply only now.
   * VS Code reports a settings change on trust only when one of those is set somewhere.
   */
  private grantTrust(): void {
    this.caLoadedFor = undefined;
    this.resetClient();
    if (this.storeDir !== undefined && this.storeDir !== this.settings().cacheDirectory) {
      this.cacheChanged.fire();
    }
    this.trustGranted.fire();
  }

  /** Drops the registry client and its cached tokens (settings changed, signed in or out). */
  resetClient(): void {
    const old = this.client;
    this.client = undefined;
    void old?.close().catch(() => {});
  }

  /**
   * The CLI, another window or a `stowage import` may change the shared cache: index.json is
   * replaced by rename on every change, so watching the folder for it is enough.
   */
  private watchCache(dir: string): void {
    this.watcher?.close();
    try {
      this.watcher = watch(dir, (_event, file) => {
        if (file !== 'index.json') return;
        clearTimeout(this.watchTimer);
        this.watchTimer = setTimeout(() => this.cacheChanged.fire(), 250);
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch (e) {
      this.log.debug(`Not watching ${dir} for changes: ${(e as Error).message}`);
    }
  }

  private logRequest(r: RequestLog): void {
    // Method, host, path, status, bytes and time: never headers, never credentials.
    const what = r.error ? `failed: ${r.error}` : `${r.status} ${r.bytes ?? 0} B`;
    this.log.debug(`${r.method} ${r.url} → ${what} in ${r.ms} ms${r.reused ? ' (pooled connection)' : ''}`);
  }

  dispose(): void {
    this.watcher?.close();
    clearTimeout(this.watchTimer);
    this.service.dispose();
    void this.client?.close().catch(() => {});
    for (const d of this.disposables) d.dispose();
  }
}
