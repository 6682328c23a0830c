#!/usr/bin/env bash
# Makes sure the PostgreSQL named by MCP_AUDIT_TEST_PG answers; starts the local cluster when it
# does not and this machine has one (Debian's pg_ctlcluster). Fails loudly when it stays down.
set -euo pipefail
url=${MCP_AUDIT_TEST_PG:?MCP_AUDIT_TEST_PG is not set}
host=$(printf '%s' "$url" | sed -E 's#^[a-z]+://([^@/]*@)?([^:/?]+).*#\2#')
port=$(printf '%s' "$url" | sed -nE 's#^[a-z]+://([^@/]*@)?[^:/?]+:([0-9]+).*#\2#p')
port=${port:-5432}

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

if ready; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for version in /etc/postgresql/*; do
    version=$(basename "$version")
    echo "starting PostgreSQL $version (main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
fi
echo "error: PostgreSQL at $host:$port is not reachable (MCP_AUDIT_TEST_PG=$url)" >&2
exit 1
