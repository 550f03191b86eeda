#!/usr/bin/env bash
# Make sure a headless Chromium exists for the report's browser test (tests/report): use the
# system one, else install Debian's 'chromium' package (as root, or with passwordless sudo).
# Says exactly what is missing when neither works. Prints the binary's path on stdout.
set -euo pipefail
find_chromium() {
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}
if path=$(find_chromium); then
  echo "$path"
  exit 0
fi

echo "ensure_chromium: no chromium on PATH; trying to install the 'chromium' package" >&2
run_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}
if command -v apt-get >/dev/null 2>&1; then
  run_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || true
  # --no-install-recommends: the browser alone, not its desktop integration and fonts
  run_root env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null || true
fi
if ! path=$(find_chromium); then
  echo "ensure_chromium: 'chromium' is still missing and could not be installed automatically." >&2
  echo "  Install Chromium (Debian/Ubuntu: 'sudo apt-get install chromium') and make sure" >&2
  echo "  'chromium' is on PATH, then rerun; the report's browser test needs it." >&2
  exit 1
fi
echo "ensure_chromium: $("$path" --version 2>/dev/null || echo "$path")" >&2
echo "$path"
