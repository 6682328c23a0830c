#!/usr/bin/env bash
# Installs the real MCP peers that the proxy tests drive, at pinned versions, into .test-peers/
# (ignored by git). Idempotent: a second run with everything present does nothing.
#   - npm: the official reference servers server-everything and server-filesystem, and the
#     MCP Inspector (its CLI drives the HTTP proxy)
#   - PyPI: the official Python SDK `mcp` (client and server), in a virtual environment; and
#     the two seed loggers whose databases `mcp-audit import` reads, each in a virtual
#     environment of its own (their dependencies pin versions the SDK's do not share):
#     `mockloop-mcp` and `mcp-contextforge-gateway`
#   - Debian: chromium and chromium-driver, for the console's real-browser tests, prometheus
#     for its `promtool check metrics`, and rsyslog with its GnuTLS driver (rsyslog-gnutls) as
#     the syslog sink's receiver (when missing, and only as root or with sudo; otherwise those
#     tests say they are skipped, or fail in CI)
# With --demo, only what `scripts/demo` drives: the npm servers and the Python SDK (no Debian
# packages, no seed loggers), so that a newcomer's first command installs no browser.
set -euo pipefail
cd "$(dirname "$0")/.."
peers=.test-peers
everything=@modelcontextprotocol/server-everything@2026.8.31
filesystem=@modelcontextprotocol/server-filesystem@2026.8.31
inspector=@modelcontextprotocol/inspector@2.12.0
python_sdk=mcp==2.3.0
mockloop=mockloop-mcp==2.2.9
contextforge=mcp-contextforge-gateway==1.0.7.post20260921

# The pinned Inspector declares Node.js 22.19 or later; its CLI, which the tests drive, runs on
# Node.js 20.20 too. Said on every run, not only when npm installs it (npm's own warning is easy
# to miss among its output, and is not repeated once the peers are installed).
if command -v node >/dev/null; then
  node_version=$(node --version | sed 's/^v//')
  if [ "$(printf '%s\n' 22.19.0 "$node_version" | sort -V | head -n1)" != 22.19.0 ]; then
    echo "test peers: note: Node.js $node_version; the MCP Inspector ($inspector) asks for 22.19 or later and npm warns about it; the demo and the tests also pass on Node.js 20.20." >&2
  fi
fi

demo_only=false
case "${1:-}" in
  --demo) demo_only=true ;;
  "") ;;
  *) echo "usage: $0 [--demo]" >&2; exit 2 ;;
esac

# Debian's packages, outside .test-peers/: checked on every run, installed only when missing.
debian_packages=()
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  debian_packages+=(chromium chromium-driver)
fi
if ! command -v promtool >/dev/null; then
  debian_packages+=(prometheus)
fi
# rsyslogd lives in /usr/sbin, which a user's PATH may lack.
if ! command -v rsyslogd >/dev/null && [ ! -x /usr/sbin/rsyslogd ]; then
  debian_packages+=(rsyslog)
fi
if ! compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' >/dev/null; then
  debian_packages+=(rsyslog-gnutls)
fi
if ! $demo_only && [ "${#debian_packages[@]}" -gt 0 ]; then
  apt_get=()
  if [ "$(id -u)" = 0 ]; then
    apt_get=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt_get=(sudo -n apt-get)
  fi
  if [ "${#apt_get[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
    echo "test peers: installing ${debian_packages[*]} (Debian)"
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends "${debian_packages[@]}"
  else
    echo "test peers: note: ${debian_packages[*]} missing and cannot be installed here (needs root or sudo and apt-get); the console's browser tests (chromium), the metrics tests (promtool, from prometheus) and the syslog sink's tests (rsyslog, rsyslog-gnutls) are skipped" >&2
  fi
fi

mkdir -p "$peers"

# The seed loggers, with a stamp of their own: adding them does not reinstall the rest.
seeds_stamp="$peers/seeds-$(printf '%s %s' "$mockloop" "$contextforge" | sha256sum | cut -c1-16)"
if ! $demo_only && [ ! -f "$seeds_stamp" ]; then
  command -v python3 >/dev/null || { echo "error: python3 is needed for the seed loggers" >&2; exit 1; }
  echo "test peers: installing $mockloop $contextforge"
  [ -x "$peers/mockloop-venv/bin/python" ] || python3 -m venv "$peers/mockloop-venv"
  "$peers/mockloop-venv/bin/python" -m pip install --quiet --disable-pip-version-check "$mockloop"
  [ -x "$peers/contextforge-venv/bin/python" ] || python3 -m venv "$peers/contextforge-venv"
  "$peers/contextforge-venv/bin/python" -m pip install --quiet --disable-pip-version-check "$contextforge"
  rm -f "$peers"/seeds-*
  touch "$seeds_stamp"
fi

stamp="$peers/installed-$(printf '%s %s %s %s' "$everything" "$filesystem" "$inspector" "$python_sdk" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  echo "test peers: already installed ($peers)"
  exit 0
fi

command -v npm >/dev/null || { echo "error: npm is needed for the MCP test servers" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 is needed for the MCP test client" >&2; exit 1; }

echo "test peers: installing $everything $filesystem $inspector"
npm install --loglevel=warn --no-audit --no-fund --prefix "$peers/npm" "$everything" "$filesystem" "$inspector"

echo "test peers: installing $python_sdk"
[ -x "$peers/venv/bin/python" ] || python3 -m venv "$peers/venv"
"$peers/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$python_sdk"

rm -f "$peers"/installed-*
touch "$stamp"
echo "test peers: ready in $peers"
