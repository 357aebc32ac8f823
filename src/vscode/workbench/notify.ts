import * as vscode from 'vscode';
import type { FailureAction } from './failure';

type Show = (message: string, ...items: string[]) => Thenable<string | undefined>;

/** Shows `text` with a button per action; the one clicked runs its command. */
export function showWithActions(show: Show, text: string, actions: readonly FailureAction[]): void {
  void show(text, ...actions.map((a) => a.title)).then((picked) => {
    const action = actions.find((a) => a.title === picked);
    if (action) void vscode.commands.executeCommand(action.command, ...(action.args ?? []));
  });
}
