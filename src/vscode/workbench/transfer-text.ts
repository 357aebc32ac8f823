/**
 * The Import dialog's file types: OCI and docker archives, gzip-compressed ones too (the engine
 * decompresses them as docker load does). The first is the one a desktop dialog starts with.
 * `gz`, not `tar.gz`: macOS's dialog matches a name's last extension only (microsoft/vscode#94277).
 */
export const ARCHIVE_FILTERS: Record<string, string[]> = {
  'Image archives (.tar, .tar.gz, .tgz)': ['tar', 'gz', 'tgz'],
  'All files': ['*'],
};
