"""A curation set shrunk as a small rip of it would be: every film scaled to WxH, its truth too.

    .venv/bin/python benchmarks/curation/downscale_set.py /tmp/cur /tmp/ds160-cur --size 160x90

``make_set.py --size`` draws each film's text at the new size with a floor of 8 px, so its small
sets carry subtitles a real small film would not: a 160x90 film made from a 480-line one has
subtitles of about 4.5 px. This scales each finished film (``scale`` with area averaging,
x264 crf 18) and its ground truth (crops, logo box) instead, so the keyframe benchmarks
(``keyframes.py``) can ask what the text filter finds in such films.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from baselines import load_set


def scaled(box: list[int] | None, sx: float, sy: float) -> list[int] | None:
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return [round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)]


def shrink(src: Path, dst: Path, width: int, height: int) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    docs = load_set(src)
    for doc in docs:
        vf = f"scale={width}:{height}:flags=area,setsar=1"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(src / doc["film"]), "-vf", vf,
             "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", str(dst / doc["film"])],
            check=True,
        )  # fmt: skip
        sx, sy = width / doc["width"], height / doc["height"]
        doc |= {"width": width, "height": height, "crop": scaled(doc["crop"], sx, sy)}
        if doc.get("watermark"):
            doc["watermark"]["box"] = scaled(doc["watermark"]["box"], sx, sy)
        for shot in doc["shots"]:
            shot["crop"] = scaled(shot["crop"], sx, sy)
        (dst / doc["film"]).with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    return len(docs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--size", default="160x90", help="WxH")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(f"{shrink(args.src, args.dst, width, height)} films -> {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
