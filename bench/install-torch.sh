#!/usr/bin/env bash
# Installs Debian's PyTorch (python3-torch) for `pnpm bench:peer`, the side-by-side speed comparison, when
# /usr/bin/python3 cannot import torch. Quiet and non-interactive; needs root. PyTorch is never a dependency of
# decompose: without it bench:peer says so and times our engine alone.
set -euo pipefail
python=/usr/bin/python3
if "$python" -c 'import torch' > /dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-torch; } > "$log" 2>&1; then
  cat "$log"
  echo "install-torch: apt-get could not install python3-torch" >&2
  exit 1
fi
rm -f "$log"
echo "install-torch: torch $("$python" -c 'import torch; print(torch.__version__)')"
