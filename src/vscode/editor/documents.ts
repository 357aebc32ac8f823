import * as vscode from 'vscode';
import type { ImageUse } from '../../core/dockerfile';
import type { WorkspaceIndex } from '../workspace-index';
import { isDockerfileName } from '../workspace-index';

export const DOCKERFILE_SELECTOR: vscode.DocumentSelector = [
  { language: 'dockerfile' },
  { pattern: '**/{Dockerfile,Dockerfile.*,*.Dockerfile,*.dockerfile,Containerfile,Containerfile.*}' },
];

export function isDockerfileDocument(d: vscode.TextDocument): boolean {
  if (d.uri.scheme === 'output' || d.uri.scheme === 'git') return false;
  return d.languageId === 'dockerfile' || isDockerfileName(d.uri.path);
}

/**
 * The image uses of a document, resolved once per document version (hover, lenses and code actions
 * all ask for the same version in quick succession).
 */
export class DocumentUses {
  private readonly cache = new Map<string, { version: number; uses: ImageUse[] }>();

  constructor(private readonly index: WorkspaceIndex) {}

  get(document: vscode.TextDocument): ImageUse[] {
    const key = document.uri.toString();
    const hit = this.cache.get(key);
    if (hit && hit.version === document.version) return hit.uses;
    const { uses } = this.index.get(document);
    this.cache.set(key, { version: document.version, uses });
    return uses;
  }

  forget(document: vscode.TextDocument): void {
    this.cache.delete(document.uri.toString());
  }

  /** Settings that change resolution (platforms, build args) invalidate everything. */
  clear(): void {
    this.cache.clear();
  }
}

export function toRange(r: ImageUse['range']): vscode.Range {
  return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

/** The use whose reference text contains the position (not just the line). */
export function useUnder(uses: readonly ImageUse[], position: vscode.Position): ImageUse | undefined {
  return uses.find((u) => toRange(u.range).contains(position));
}

/** The use on the position's line (the reference, else anywhere on its instruction's first line). */
export function useOnLine(uses: readonly ImageUse[], line: number): ImageUse | undefined {
  return uses.find((u) => (u.range.start.line <= line && line <= u.range.end.line) || u.line - 1 === line);
}
