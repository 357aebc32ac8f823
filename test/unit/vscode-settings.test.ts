// A renamed setting read under both names (src/vscode/setting-names.ts has no vscode import),
// and the manifest that declares them: stowage.caCertificates showed as "Ca Certificates".
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CA_FILES_SETTING, OLD_CA_FILES_SETTING, renamedSettingValue } from '../../src/vscode/setting-names';

test('the new name wins in the same scope; a more specific scope wins whichever name it uses', () => {
  assert.deepEqual(renamedSettingValue(undefined, undefined, []), []);
  assert.deepEqual(renamedSettingValue({}, { globalValue: ['old.pem'] }, []), ['old.pem']);
  assert.deepEqual(renamedSettingValue({ globalValue: ['new.pem'] }, { globalValue: ['old.pem'] }, []), [
    'new.pem',
  ]);
  // A workspace that still sets the old name is not overridden by the new one in the user settings.
  assert.deepEqual(
    renamedSettingValue({ globalValue: ['new.pem'] }, { workspaceValue: ['ws-old.pem'] }, []),
    ['ws-old.pem'],
  );
  assert.deepEqual(
    renamedSettingValue(
      { workspaceValue: ['ws-new.pem'] },
      { workspaceValue: ['ws-old.pem'], workspaceFolderValue: ['folder-old.pem'] },
      [],
    ),
    ['folder-old.pem'],
  );
  // Set to [] on purpose under the new name: that is the value, the old name is not consulted.
  assert.deepEqual(renamedSettingValue({ globalValue: [] }, { globalValue: ['old.pem'] }, []), []);
});

test('package.json: the CA setting under a name VS Code titles "Certificate Authority Files"; the old one deprecated', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
  const props = pkg.contributes.configuration.properties as Record<string, Record<string, unknown>>;
  const current = props[CA_FILES_SETTING];
  const old = props[OLD_CA_FILES_SETTING];
  assert.ok(current && old);
  assert.equal(current.deprecationMessage, undefined);
  assert.match(String(old.markdownDeprecationMessage), /`#stowage\.certificateAuthorityFiles#`/);
  assert.match(String(old.deprecationMessage), /stowage\.certificateAuthorityFiles/);
  assert.deepEqual(old.type, current.type);
  // Both are restricted: an untrusted workspace's value is not used.
  const restricted = pkg.capabilities.untrustedWorkspaces.restrictedConfigurations as string[];
  assert.ok(restricted.includes(CA_FILES_SETTING) && restricted.includes(OLD_CA_FILES_SETTING));
  // The Settings editor's title is the last segment split at capitals; no segment may be an acronym
  // it would write as a word ("Ca", "Tls").
  const title = CA_FILES_SETTING.split('.')
    .pop()!
    .replace(/([a-z])([A-Z])/g, '$1 $2');
  assert.equal(title[0]!.toUpperCase() + title.slice(1), 'Certificate Authority Files');
});
