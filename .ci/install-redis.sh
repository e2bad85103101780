#!/usr/bin/env bash
# Installs Debian's redis-server for the queue tests (packages/jobs) when redis-server is not on PATH.
# Quiet and non-interactive; needs root (as CI runs). Without it the queue tests fail and name this script.
set -euo pipefail
if command -v redis-server > /dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
# Update the package lists only when apt has none yet (a fresh container), or when the first try fails.
if ! { { [ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ] \
  || apt-get update -qq; } && apt-get install -y -qq --no-install-recommends redis-server; } > "$log" 2>&1; then
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; } >> "$log" 2>&1; then
    cat "$log"
    echo "install-redis: apt-get could not install redis-server" >&2
    exit 1
  fi
fi
rm -f "$log"
echo "install-redis: $(redis-server --version 2>/dev/null || echo 'installed')"
