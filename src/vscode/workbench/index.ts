import * as vscode from 'vscode';
import type { FeatureContext } from '../feature';
import { CacheTree } from './cache-tree';
import { registerCommands } from './commands';
import { PullRunner } from './pulls';
import { RegistriesTree } from './registries-tree';
import { WorkspaceImagesTree } from './workspace-tree';

export type { PullOutcome, PullTarget } from './pulls';

/**
 * Commands, the three tree views, pull progress and the status bar. Cheap to register: trees
 * load when their view is first shown, the cache opens on first use, the network only on demand.
 */
export function registerWorkbench(features: FeatureContext): vscode.Disposable[] {
  const runner = new PullRunner(features);
  const workspaceTree = new WorkspaceImagesTree(features);
  const cacheTree = new CacheTree(features);
  const registriesTree = new RegistriesTree(features);
  const cacheView = vscode.window.createTreeView('stowage.cache', {
    treeDataProvider: cacheTree,
    showCollapseAll: true,
  });
  cacheTree.view = cacheView;
  return [
    runner,
    workspaceTree,
    cacheTree,
    registriesTree,
    cacheView,
    vscode.window.createTreeView('stowage.workspaceImages', {
      treeDataProvider: workspaceTree,
      showCollapseAll: true,
    }),
    vscode.window.createTreeView('stowage.registries', {
      treeDataProvider: registriesTree,
      showCollapseAll: true,
    }),
    ...registerCommands(features, { runner, workspaceTree, cacheTree, registriesTree }),
  ];
}
