// Setting names other modules refer to (in messages, Open Settings buttons), and how a renamed
// setting is read. No vscode import: the pure parts are unit-tested.

/** PEM files of extra CAs to trust. VS Code titled the old name, caCertificates, "Ca Certificates". */
export const CA_FILES_SETTING = 'stowage.certificateAuthorityFiles';
/** The old name of CA_FILES_SETTING, still read where the new one is not set. */
export const OLD_CA_FILES_SETTING = 'stowage.caCertificates';

/** A setting's values per scope, as `WorkspaceConfiguration.inspect()` returns them. */
export interface ScopedValues<T> {
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
}

/**
 * The value of a renamed setting whose old key is still read: in each scope, most specific first
 * (folder, workspace, user), the new key's value if set there, else the old key's; else `fallback`.
 * So a workspace that still has the old key is not overridden by the new key in the user settings.
 */
export function renamedSettingValue<T>(
  current: ScopedValues<T> | undefined,
  old: ScopedValues<T> | undefined,
  fallback: T,
): T {
  for (const scope of ['workspaceFolderValue', 'workspaceValue', 'globalValue'] as const) {
    const value = current?.[scope] ?? old?.[scope];
    if (value !== undefined) return value;
  }
  return fallback;
}
