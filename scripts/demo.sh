#!/usr/bin/env bash
# `npm run demo`: installs what is missing, builds the extension, then hands over to scripts/demo.ts,
# which starts a local registry with sample images, a sample workspace and VS Code in the browser.
# usage: npm run demo [-- --no-editor] [-- --port N] [-- --dir DIR]
# Re-runs are fast: every step below is skipped when its result is already there and up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s%3N)

editor=1
for a in "$@"; do
  case "$a" in
    --no-editor) editor=0 ;;
    -h | --help) exec node --import tsx scripts/demo.ts --help ;;
  esac
done

step() { printf 'demo: %s\n' "$*"; }

# Debian packages: the registry and skopeo always; Chromium/libkrb5 only for the editor toolchain.
if [ "$editor" = 1 ]; then
  bash scripts/install-deps.sh
else
  bash scripts/install-deps.sh docker-registry skopeo openssl curl
fi

if [ ! -d node_modules ]; then
  step "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ "$editor" = 1 ]; then
  bash scripts/setup-e2e.sh >/dev/null
fi

# Rebuild only when a source is newer than the build.
newer() { [ ! -e "$1" ] || [ -n "$(find src package.json esbuild.mjs -newer "$1" -print -quit 2>/dev/null)" ]; }
if newer dist/cli.js || newer dist/extension.js; then
  step "building the extension and CLI (npm run build)"
  npm run --silent build >/dev/null
fi

if [ "$editor" = 1 ]; then
  vsix=.stowage-demo/stowage.vsix
  if newer "$vsix" || [ dist/extension.js -nt "$vsix" ] || [ -n "$(find media README.md LICENSE -newer "$vsix" -print -quit 2>/dev/null)" ]; then
    step "packaging the extension ($vsix)"
    mkdir -p .stowage-demo
    npx --no-install @vscode/vsce package --no-dependencies -o "$vsix" >/dev/null
  fi
fi

# exec: Ctrl+C reaches demo.ts directly, which stops the registry and code-server.
STOWAGE_DEMO_T0="$t0" exec node --import tsx scripts/demo.ts "$@"
