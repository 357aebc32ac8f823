import * as vscode from 'vscode';
import { missingBuildArgs } from '../../core/dockerfile';
import { UNRESOLVABLE } from './diagnostics';
import { type DocumentUses, toRange, useOnLine, useUnder } from './documents';

export const SET_BUILD_ARG = 'stowage.setBuildArg';

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A hover link that runs the command for one ARG. */
export function setBuildArgLink(name: string): string {
  return `command:${SET_BUILD_ARG}?${encodeURIComponent(JSON.stringify([name]))}`;
}

/**
 * "Set build argument NAME…" on a reference left unresolvable by an ARG without a value: the
 * editor's `--build-arg`. (An ARG never declared before the first FROM gets none: a build
 * argument would not reach it either.)
 */
export class BuildArgCodeActions implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.QuickFix];

  constructor(private readonly uses: DocumentUses) {}

  provideCodeActions(
    document: vscode.TextDocument,
    range: vscode.Range | vscode.Selection,
    context: vscode.CodeActionContext,
  ): vscode.CodeAction[] {
    const uses = this.uses.get(document);
    const use = useUnder(uses, range.start) ?? useOnLine(uses, range.start.line);
    if (!use || use.ref || !use.error) return [];
    const diagnostics = context.diagnostics.filter(
      (d) => d.code === UNRESOLVABLE && d.range.intersection(toRange(use.range)),
    );
    return missingBuildArgs(use.error).map((name) => {
      const action = new vscode.CodeAction(`Set build argument ${name}…`, vscode.CodeActionKind.QuickFix);
      action.command = { command: SET_BUILD_ARG, title: action.title, arguments: [name] };
      action.diagnostics = diagnostics;
      action.isPreferred = diagnostics.length > 0;
      return action;
    });
  }
}

/**
 * Saves a build argument in `stowage.buildArgs` (the workspace's settings when a folder is open,
 * else the user's), asking for the name and value that were not given. Returns whether it saved.
 */
export async function setBuildArg(name?: unknown, value?: unknown): Promise<boolean> {
  let arg = typeof name === 'string' && ARG_NAME.test(name) ? name : undefined;
  arg ??= await vscode.window.showInputBox({
    title: 'Set Build Argument',
    prompt: 'The name of an ARG declared before the first FROM',
    validateInput: (v) => (ARG_NAME.test(v) ? undefined : 'An ARG name: letters, digits and _'),
  });
  if (!arg) return false;
  const config = vscode.workspace.getConfiguration('stowage');
  const inWorkspace = !!vscode.workspace.workspaceFolders?.length;
  const inspected = config.inspect<Record<string, string>>('buildArgs');
  const current = (inWorkspace ? inspected?.workspaceValue : inspected?.globalValue) ?? {};
  let text = typeof value === 'string' ? value : undefined;
  text ??= await vscode.window.showInputBox({
    title: `Build Argument ${arg}`,
    prompt: `The value Stowage uses for ARG ${arg} when it resolves FROM lines, as docker build --build-arg ${arg}=… would`,
    value: current[arg] ?? config.get<Record<string, string>>('buildArgs', {})[arg] ?? '',
  });
  if (text === undefined) return false;
  await config.update(
    'buildArgs',
    { ...current, [arg]: text },
    inWorkspace ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global,
  );
  return true;
}
