#!/usr/bin/env bash
# Installs the Debian packages Stowage's tests and demo need, when missing (used by .ci/run and the demo):
# a real registry (docker-registry), peer clients (skopeo, umoci), htpasswd, a forwarding proxy
# (tinyproxy), Chromium for the editor tests, libkrb5-dev (code-server's kerberos module compiles
# against it), openssl and curl.
# usage: scripts/install-deps.sh [PACKAGE...]   (default: all of the above)
set -euo pipefail
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(docker-registry skopeo umoci apache2-utils tinyproxy chromium libkrb5-dev openssl curl)

need=()
for pkg in "${pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: missing ${need[*]}; run as root or install them with apt-get" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${need[*]}"
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
