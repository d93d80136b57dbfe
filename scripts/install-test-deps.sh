#!/usr/bin/env bash
# Debian packages that the full test suite uses. Safe to run twice.
# (xz-utils, bzip2, zstd, lz4: real compressed logs for `sipwarden test`'s input detection.)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(time nftables conntrack ipset iptables iproute2 fail2ban kamailio sipvicious sip-tester systemd-journal-remote xz-utils bzip2 zstd lz4)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts these services on install; the tests start their own instances.
for svc in kamailio fail2ban; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done
