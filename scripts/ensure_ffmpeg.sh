#!/usr/bin/env bash
# Make sure ffmpeg and ffprobe are on PATH: use the system ones, else install Debian's package
# (as root, or with passwordless sudo). Says exactly what is missing when neither works.
set -euo pipefail
missing=()
for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ensure_ffmpeg: missing ${missing[*]}; trying to install the 'ffmpeg' package" >&2
run_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}
if command -v apt-get >/dev/null 2>&1; then
  run_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null || true
  run_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq ffmpeg >/dev/null || true
elif command -v brew >/dev/null 2>&1; then
  brew install ffmpeg || true
fi
for tool in ffmpeg ffprobe; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ensure_ffmpeg: '$tool' is still missing and could not be installed automatically." >&2
    echo "  Install FFmpeg (Debian/Ubuntu: 'sudo apt-get install ffmpeg'; macOS: 'brew install ffmpeg')" >&2
    echo "  and make sure both ffmpeg and ffprobe are on PATH, then rerun." >&2
    exit 1
  fi
done
echo "ensure_ffmpeg: $(ffmpeg -hide_banner -version | head -n1)" >&2
