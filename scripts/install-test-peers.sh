#!/usr/bin/env bash
# Installs the real MCP peers that the proxy tests drive, at pinned versions, into .test-peers/
# (ignored by git). Idempotent: a second run with everything present does nothing.
#   - npm: the official reference servers server-everything and server-filesystem, and the
#     MCP Inspector (its CLI drives the HTTP proxy)
#   - PyPI: the official Python SDK `mcp` (client and server), in a virtual environment
set -euo pipefail
cd "$(dirname "$0")/.."
peers=.test-peers
everything=@modelcontextprotocol/server-everything@2026.8.31
filesystem=@modelcontextprotocol/server-filesystem@2026.8.31
inspector=@modelcontextprotocol/inspector@2.12.0
python_sdk=mcp==2.3.0

mkdir -p "$peers"
stamp="$peers/installed-$(printf '%s %s %s %s' "$everything" "$filesystem" "$inspector" "$python_sdk" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "test peers: already installed ($peers)"
  exit 0
fi

command -v npm >/dev/null || { echo "error: npm is needed for the MCP test servers" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 is needed for the MCP test client" >&2; exit 1; }

echo "test peers: installing $everything $filesystem $inspector"
npm install --silent --no-audit --no-fund --prefix "$peers/npm" "$everything" "$filesystem" "$inspector"

echo "test peers: installing $python_sdk"
[ -x "$peers/venv/bin/python" ] || python3 -m venv "$peers/venv"
"$peers/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$python_sdk"

rm -f "$peers"/installed-*
touch "$stamp"
echo "test peers: ready in $peers"
