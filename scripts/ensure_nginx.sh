#!/usr/bin/env bash
# Install Debian's nginx for the reverse-proxy test (tests/test_proxy_lockout.py) when it is missing
# (needs root or sudo). The test runs its own nginx as the current user, on a loopback port.
set -euo pipefail
if [ -x /usr/sbin/nginx ]; then
  exit 0
fi
echo "Installing Debian's nginx for the reverse-proxy test…"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "nginx is missing and there is no root to install it" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
# On a machine with systemd the package starts a system nginx on port 80; the test needs none.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
/usr/sbin/nginx -v
