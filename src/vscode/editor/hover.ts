import * as vscode from 'vscode';
import { type ImageUse, missingBuildArgs } from '../../core/dockerfile';
import { formatBytes } from '../../core/format';
import { formatPlatform } from '../../core/platform';
import type { PlatformInspection } from '../../core/store';
import type { CacheFacts, ImageFacts } from '../cache-facts';
import type { PullImageArgs } from '../feature';
import { SET_BUILD_ARG, setBuildArgLink } from './build-args';
import { type DocumentUses, useUnder } from './documents';
import { code, escapeMarkdown } from './markdown';
import { type Newer, shortDigest } from './verdicts';

const MAX_LAYERS = 12;
const MAX_LABELS = 4;

/** A `command:` link to stowage.pullImage for one use. */
export function pullLink(use: ImageUse, always = false): string {
  const args: PullImageArgs = {
    reference: use.ref as string,
    platform: use.platform,
    ...(always ? { always } : {}),
  };
  return `command:stowage.pullImage?${encodeURIComponent(JSON.stringify([args]))}`;
}

/** The hover's Markdown for one use and what the cache holds for it (pure: no I/O). */
export function hoverMarkdown(use: ImageUse, facts: ImageFacts | undefined, newer?: Newer): string {
  const out: string[] = [];
  if (!use.reference || !use.ref) {
    out.push(
      `**${escapeMarkdown(use.raw || '(empty)')}**`,
      '',
      // Why is the diagnostic's message, which VS Code shows in this same hover: not said twice.
      '$(warning) Not pullable as written, so nothing can be cached for it.',
    );
    const missing = use.error ? missingBuildArgs(use.error) : [];
    if (missing.length) {
      out.push(
        '',
        missing
          .map((n) => `[$(symbol-variable) Set build argument ${n}…](${setBuildArgLink(n)})`)
          .join(' · '),
      );
    }
    return out.join('\n');
  }
  out.push(`**${code(use.ref)}** · ${code(use.platform)}`, '');
  const state = facts?.status.state ?? 'missing';
  if (state === 'missing') {
    out.push(`$(cloud) Not in cache · [$(cloud-download) Pull](${pullLink(use)})`);
  } else if (state === 'partial') {
    const p = facts?.platform;
    const present = p ? p.layers.filter((l) => l.present).length : 0;
    const detail = p?.layers.length ? ` (${present} of ${p.layers.length} layers)` : ` for ${use.platform}`;
    const what =
      p && !p.cached ? `Cached for other platforms, not ${code(use.platform)}` : `Partly cached${detail}`;
    out.push(`$(circle-large-outline) ${what} · [$(cloud-download) Pull](${pullLink(use)})`);
  } else {
    out.push(`$(pass-filled) Cached · ${formatBytes(facts?.status.bytes ?? 0)}`);
  }
  if (newer) {
    const pull = newer.pinned ? '' : ` · [$(cloud-download) Pull it](${pullLink(use, true)})`;
    out.push(
      '',
      `$(info) A newer image is available: the tag now points to ${code(shortDigest(newer.current))}${pull}`,
    );
  }
  if (facts?.inspection) out.push('', ...details(facts));
  return out.join('\n');
}

function details(facts: ImageFacts): string[] {
  const inspection = facts.inspection!;
  const p = facts.platform;
  const out: string[] = [];
  const isIndex = inspection.platforms.length > 1 || (p && p.manifestDigest !== inspection.digest);
  if (isIndex) {
    out.push(`Index digest: ${code(inspection.digest)}  `);
    if (p) out.push(`Manifest digest: ${code(p.manifestDigest)}  `);
  } else {
    out.push(`Manifest digest: ${code(inspection.digest)}  `);
  }
  const offered = inspection.platforms.filter((x) => x.platform);
  if (offered.length > 1) {
    const list = offered.map((x) => {
      const name = escapeMarkdown(formatPlatform(x.platform!));
      return x.complete ? `**${name}** ✓` : name;
    });
    out.push(`Platforms: ${list.join(', ')} (✓ cached)  `);
  }
  // A platform the index lists but whose manifest was never pulled: its size and config are unknown.
  if (p?.cached) out.push(...platformDetails(p));
  return out;
}

function platformDetails(p: PlatformInspection): string[] {
  const out: string[] = [];
  const c = p.config;
  out.push(
    `Size: ${formatBytes(p.compressedSize)} compressed · ${p.layers.length} ${p.layers.length === 1 ? 'layer' : 'layers'}  `,
  );
  if (c?.created)
    out.push(`Created: ${escapeMarkdown(c.created.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC'))}  `);
  if (c?.os || c?.architecture) {
    out.push(`OS/Arch: ${code([c.os, c.architecture, c.variant].filter(Boolean).join('/'))}  `);
  }
  if (c?.entrypoint?.length) out.push(`Entrypoint: ${code(JSON.stringify(c.entrypoint))}  `);
  if (c?.cmd?.length) out.push(`Cmd: ${code(JSON.stringify(c.cmd))}  `);
  if (c?.exposedPorts?.length) out.push(`Exposed ports: ${c.exposedPorts.map(code).join(', ')}  `);
  const labels = Object.entries(c?.labels ?? {});
  if (labels.length) {
    const shown = labels
      .slice(0, MAX_LABELS)
      .map(([k, v]) => `${code(k)}=${code(v.length > 60 ? `${v.slice(0, 59)}…` : v)}`);
    const more = labels.length > MAX_LABELS ? ` (+${labels.length - MAX_LABELS} more)` : '';
    out.push(`Labels: ${shown.join(', ')}${more}  `);
  }
  if (p.layers.length) {
    out.push('', '| Layer | Size | |', '|---|--:|:-:|');
    for (const [i, l] of p.layers.slice(0, MAX_LAYERS).entries()) {
      out.push(
        `| ${i + 1} ${code(shortDigest(l.digest))} | ${formatBytes(l.size)} | ${l.present ? '✓' : '—'} |`,
      );
    }
    if (p.layers.length > MAX_LAYERS) {
      const rest = p.layers.slice(MAX_LAYERS);
      out.push(`| … ${rest.length} more | ${formatBytes(rest.reduce((n, l) => n + l.size, 0))} | |`);
    }
  }
  return out;
}

/** Hovers over image references, served from the cache only (never the network). */
export class ImageHoverProvider implements vscode.HoverProvider {
  constructor(
    private readonly uses: DocumentUses,
    private readonly facts: CacheFacts,
    private readonly newer: (use: ImageUse) => Promise<Newer | undefined>,
  ) {}

  async provideHover(
    document: vscode.TextDocument,
    position: vscode.Position,
  ): Promise<vscode.Hover | undefined> {
    const use = useUnder(this.uses.get(document), position);
    if (!use) return undefined;
    const [facts, newer] = await Promise.all([
      this.facts.forUse(use)?.catch(() => undefined),
      this.newer(use).catch(() => undefined),
    ]);
    const md = new vscode.MarkdownString(hoverMarkdown(use, facts, newer), true);
    md.isTrusted = { enabledCommands: ['stowage.pullImage', SET_BUILD_ARG] };
    md.supportHtml = false;
    const r = use.range;
    return new vscode.Hover(
      md,
      new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character),
    );
  }
}
