#!/usr/bin/env bash
# Installs sipwarden from this checkout and starts it on its embedded defaults.
#   sudo ./scripts/install.sh
# - installs the firewall tools it drives (nftables, conntrack) when apt-get is available;
# - builds sipwarden (npm ci, npm run build) and links /usr/local/bin/sipwarden;
# - puts the commented example config in /etc/sipwarden/sipwarden.yaml (never overwrites yours);
# - with systemd: installs, enables and starts sipwarden.service;
#   without systemd (a container): runs the daemon in the foreground.
# Not root: builds and runs in the foreground in dry-run mode, with state under ~/.local/state.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

need_node() {
  if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    echo "sipwarden needs Node.js 20 or later (node --version: $(node --version 2>/dev/null || echo none))." >&2
    echo "On Debian 12: apt-get install nodejs (from NodeSource or Debian backports), then run this again." >&2
    exit 69
  fi
}
need_node

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in nftables conntrack; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

[ -d node_modules ] && [ node_modules -nt package-lock.json ] || npm ci --no-audit --no-fund
npm run build --silent
# A release line past its end of life gets no security fixes (the daemon logs this too).
node --input-type=module -e 'const { runtimeWarning } = await import(process.argv[1]); const w = runtimeWarning(); if (w) console.error(`WARNING: ${w}.`);' "$repo/dist/core/runtime.js"

if [ "$(id -u)" -ne 0 ]; then
  state="${XDG_STATE_HOME:-$HOME/.local/state}/sipwarden"
  mkdir -p "$state"
  echo "Not root: starting sipwarden in the foreground in DRY-RUN mode (nothing is blocked)."
  exec "$repo/bin/sipwarden" run --backend dry-run --state-dir "$state" --socket "$state/sipwarden.sock" "$@"
fi

install -d -m 0755 /etc/sipwarden /etc/sipwarden/sipwarden.d
[ -e /etc/sipwarden/sipwarden.yaml ] || install -m 0644 config/sipwarden.yaml /etc/sipwarden/sipwarden.yaml
install -d -m 0700 /var/lib/sipwarden
ln -sf "$repo/bin/sipwarden" /usr/local/bin/sipwarden

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  install -m 0644 packaging/sipwarden.service /etc/systemd/system/sipwarden.service
  systemctl daemon-reload
  systemctl enable --now sipwarden.service
  sleep 2
  systemctl --no-pager status sipwarden.service || true
  echo
  echo "sipwarden is running. Try: sipwarden status; sipwarden bans; journalctl -u sipwarden -f"
else
  echo "No systemd here: running sipwarden in the foreground (Ctrl-C stops it)."
  exec /usr/local/bin/sipwarden run "$@"
fi
