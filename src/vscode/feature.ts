import type * as vscode from 'vscode';
import type { CacheFacts } from './cache-facts';
import type { Freshness } from './editor/freshness';
import type { Stowage } from './stowage';
import type { WorkspaceIndex } from './workspace-index';

/** What every editor feature is registered with. */
export interface FeatureContext {
  readonly stowage: Stowage;
  readonly index: WorkspaceIndex;
  /** What the cache holds per image use, memoised until the cache changes (hover, CodeLens, trees). */
  readonly facts: CacheFacts;
  /** What the newer-image check learned of the workspace's tags (moved on, or unknown to the registry). */
  readonly freshness: Freshness;
  readonly log: vscode.LogOutputChannel;
}

/**
 * Arguments `stowage.pullImage` accepts from other features (hover links, CodeLens, trees):
 * a reference and optionally the platform; without them it pulls the reference under the cursor.
 * A list of them pulls each (a failed batch's Retry).
 */
export interface PullImageArgs {
  reference: string;
  platform?: string;
  /** Ask the registry even when the cache is complete (the tag moved to a newer image). */
  always?: boolean;
  /** Every platform of a multi-platform image, and the attestations its index lists. */
  allPlatforms?: boolean;
}
