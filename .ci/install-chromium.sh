#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (apps/web) when /usr/bin/chromium is missing.
# Quiet and non-interactive; needs root (as CI runs). The tests skip when Chromium is absent.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { apt-get update -qq && apt-get install -y -qq chromium; } > "$log" 2>&1; then
  cat "$log"
  echo "install-chromium: apt-get could not install chromium" >&2
  exit 1
fi
rm -f "$log"
echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'installed')"
