#!/usr/bin/env bash
# Make sure the PostgreSQL named by DATABASE_URL answers; start the local Debian cluster if it does not.
set -euo pipefail
url="${DATABASE_URL:?DATABASE_URL must name the PostgreSQL server}"
ready() { "$(dirname "$0")/../.venv/bin/python" -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$url" 2>/dev/null; }
ready && exit 0
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  echo "Starting the local PostgreSQL $version cluster…"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi
echo "PostgreSQL at $url is not reachable (install and start it, or set DATABASE_URL)." >&2
exit 1
