"""Whole-film edge cases of the curation set (``make_set.py --edge``): films that must give no
sample at all, each with the film-level outcome it must get.

- ``cur_all_credits``: static cards and a scrolling roll only -> ``skipped`` (credits);
- ``cur_all_black``: black and near-black holds only -> ``skipped`` (black);
- ``cur_frozen``: one picture held for the whole film -> ``skipped`` (static);
- ``cur_plain_rip``: another rip of ``cur_plain`` as a whole (smaller, softer, brighter, another
  encoder setting) -> ``duplicate`` of ``cur_plain``; every shot is a duplicate of the shot it
  repeats.

The ground truth adds ``expected_status`` (``skipped`` or ``duplicate``), ``expected_reason``
(a flag the reason must name) and, for the rip, ``duplicate_of`` (the original's file name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from muss_builder.media.tools import binary, run

RIP_SCALE = 0.75  # the rip's frame: 640x360 for the 854x480 original, never the same bytes
RIP_CRF = 30
RIP_BRIGHTNESS = 0.04


def edge_specs(make_set: Any) -> list[tuple[Any, str, str]]:
    """(film, expected status, reason flag) of the three films rendered like any other."""
    shot, film = make_set.Shot, make_set.Film
    credits = [shot("credits"), shot("scroll"), shot("credits")]
    black = [shot("black"), shot("near_black"), shot("black")]
    return [
        (film("cur_all_credits", credits), "skipped", "credits"),
        (film("cur_all_black", black), "skipped", "black"),
        (film("cur_frozen", [shot("still", "HappyFish.jpg")]), "skipped", "static"),
    ]


def mark_expected(doc: dict, status: str, reason: str) -> dict:
    return doc | {"expected_status": status, "expected_reason": reason}


def rip(original_mp4: Path, original_doc: dict, out: Path, order: int) -> dict:
    """Re-encode ``original_mp4`` whole as another rip of the same film; its ground truth."""
    width = round(original_doc["width"] * RIP_SCALE / 2) * 2
    height = round(original_doc["height"] * RIP_SCALE / 2) * 2
    name = "cur_plain_rip"
    # square pixels: where the even size is not exactly RIP_SCALE of both sides (320x180 ->
    # 240x136) scale would keep the aspect with a pixel aspect of 136:135, and a reader that
    # applies it sees 242 columns where this truth says 240
    graph = f"scale={width}:{height}:flags=bicubic,setsar=1,eq=brightness={RIP_BRIGHTNESS}"
    graph += ",format=yuv420p"
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-y", "-i", str(original_mp4)]
    args += ["-vf", graph, "-c:v", "libx264", "-preset", "medium", "-crf", str(RIP_CRF)]
    args += ["-threads", "2", str(out / f"{name}.mp4")]
    run(args, what=f"encode {name}", timeout=600)
    sx, sy = width / original_doc["width"], height / original_doc["height"]

    def scaled(box: list[int]) -> list[int]:
        return [round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)]

    shots = []
    for s in original_doc["shots"]:
        shots.append(
            s
            | {
                "crop": scaled(s["crop"]),
                "flags": sorted(set(s["flags"]) | {"duplicate"}),
                "duplicate_of": {"film": original_doc["film"], "shot": s["index"]},
                "duplicate_kind": "rip",
            }
        )
    doc = original_doc | {
        "film": f"{name}.mp4",
        "width": width,
        "height": height,
        "build_order": order,
        "crf": RIP_CRF,
        "crop": scaled(original_doc["crop"]) if original_doc["crop"] else None,
        "shots": shots,
        "duplicate_of": original_doc["film"],
    }
    doc = mark_expected(doc, "duplicate", "duplicate")
    (out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc
