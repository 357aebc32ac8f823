import * as vscode from 'vscode';
import { type ImageUse, resolveDockerfile } from '../core/dockerfile';
import type { StowageSettings } from './settings';

/** Dockerfile names Stowage looks for (plus any document whose language is dockerfile). */
export const DOCKERFILE_GLOB =
  '**/{Dockerfile,Dockerfile.*,*.Dockerfile,*.dockerfile,Containerfile,Containerfile.*}';
const NAME = /^(Dockerfile(\..+)?|.+\.[Dd]ockerfile|Containerfile(\..+)?)$/;

export function isDockerfileName(path: string): boolean {
  return NAME.test(path.split(/[\\/]/).pop() ?? '');
}

export interface DockerfileEntry {
  uri: vscode.Uri;
  uses: ImageUse[];
}

/**
 * The workspace's Dockerfiles and the images each one pulls, kept current on edits and file
 * changes (debounced). Scans lazily: nothing happens until someone asks.
 */
export class WorkspaceIndex implements vscode.Disposable {
  private readonly entries = new Map<string, DockerfileEntry>();
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private scanning?: Promise<void>;
  private timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly settings: () => StowageSettings) {
    const watcher = vscode.workspace.createFileSystemWatcher(DOCKERFILE_GLOB);
    this.disposables.push(
      watcher,
      watcher.onDidCreate((uri) => this.schedule(uri)),
      watcher.onDidChange((uri) => this.schedule(uri)),
      watcher.onDidDelete((uri) => {
        if (this.entries.delete(uri.toString())) this.changed.fire();
      }),
      vscode.workspace.onDidChangeTextDocument((e) => {
        if (this.isDockerfile(e.document)) this.schedule(e.document.uri, e.document);
      }),
      vscode.workspace.onDidOpenTextDocument((d) => {
        if (this.isDockerfile(d)) this.schedule(d.uri, d, 0);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('stowage.platforms') || e.affectsConfiguration('stowage.buildArgs')) {
          void this.rescan();
        }
      }),
    );
  }

  /** All Dockerfiles, scanning the workspace on first call. */
  async all(): Promise<DockerfileEntry[]> {
    this.scanning ??= this.scan();
    await this.scanning;
    return [...this.entries.values()].sort((a, b) => a.uri.path.localeCompare(b.uri.path));
  }

  /** The entry for a document, resolved now from its current text. */
  get(document: vscode.TextDocument): DockerfileEntry {
    const entry = { uri: document.uri, uses: this.resolve(document.getText()) };
    if (this.isDockerfile(document)) this.entries.set(document.uri.toString(), entry);
    return entry;
  }

  resolve(text: string): ImageUse[] {
    const s = this.settings();
    return resolveDockerfile(text, { targetPlatform: s.targetPlatform, buildArgs: s.buildArgs });
  }

  async rescan(): Promise<void> {
    this.scanning = this.scan();
    await this.scanning;
  }

  private isDockerfile(d: vscode.TextDocument): boolean {
    return d.uri.scheme !== 'output' && (d.languageId === 'dockerfile' || isDockerfileName(d.uri.path));
  }

  private async scan(): Promise<void> {
    // `undefined` excludes keep files.exclude in force; node_modules is dropped afterwards.
    const uris = (await vscode.workspace.findFiles(DOCKERFILE_GLOB, undefined, 5000)).filter(
      (u) => !u.path.includes('/node_modules/'),
    );
    this.entries.clear();
    const open = new Map(vscode.workspace.textDocuments.map((d) => [d.uri.toString(), d]));
    await Promise.all(
      uris.map(async (uri) => {
        try {
          const doc = open.get(uri.toString());
          const text = doc
            ? doc.getText()
            : new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
          this.entries.set(uri.toString(), { uri, uses: this.resolve(text) });
        } catch {
          // Unreadable (deleted meanwhile, permissions): leave it out.
        }
      }),
    );
    for (const d of vscode.workspace.textDocuments) {
      if (d.languageId === 'dockerfile' && !this.entries.has(d.uri.toString()) && d.uri.scheme !== 'output') {
        this.entries.set(d.uri.toString(), { uri: d.uri, uses: this.resolve(d.getText()) });
      }
    }
    this.changed.fire();
  }

  private schedule(uri: vscode.Uri, doc?: vscode.TextDocument, delay = 300): void {
    if (uri.path.includes('/node_modules/')) return;
    const key = uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(async () => {
        this.timers.delete(key);
        try {
          const text = doc
            ? doc.getText()
            : new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
          this.entries.set(key, { uri, uses: this.resolve(text) });
          this.changed.fire();
        } catch {
          if (this.entries.delete(key)) this.changed.fire();
        }
      }, delay),
    );
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}
