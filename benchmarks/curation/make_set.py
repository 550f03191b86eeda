"""Build the curation benchmark set: short films whose every flag is placed at a known shot.

    python benchmarks/curation/make_set.py --out DIR [--seed 0] [--size 854x480] [--fps 24]
    python benchmarks/curation/make_set.py --out DIR --tiny     # small and short, for tests

Each film ``DIR/{name}.mp4`` comes with ``DIR/{name}.json``: per shot (frame range, end
exclusive) the active-picture crop box, the bars kind, the flags it must get (``text_overlay``,
``credits``, ``black``, ``blurry``, ``static``, ``shaky``, ``duplicate`` with
``duplicate_of``) and notes on hard negatives (subtitles inside the bars, a dark real scene,
dark picture edges, the same set-up at another moment, a steady pan, a slow handheld sway); per
film the watermark box. See README.md next to this file.

The ground truth is exact by construction: each shot is rendered alone, frame-exactly, to a
lossless intermediate from a picture (real footage from ``demo_films()`` or a panned photo from
opencv-doc), with every element (bars, text, blur, freeze, darkness, a shaking window) placed
by this script at pixel and frame positions it chooses; the film concatenates the shots,
overlays the watermark at a fixed box and is encoded once with libx264.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from muss_builder.media.demo_footage import demo_films
from muss_builder.media.tools import binary, run

SCHEMA_VERSION = "1.0"
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LOGO = OPENCV_DATA / "LinuxLogo.jpg"
DROP_FLAGS = ("text_overlay", "credits", "black", "blurry", "static", "shaky", "duplicate")
BAR_FLAGS = ("letterbox", "pillarbox", "windowbox")

# Single-shot frame ranges of the shipped footage (the same ranges benchmarks/sbd uses).
CLIPS: dict[str, tuple[str, int, int]] = {
    "bikes-traffic": ("bikes.mp4", 30, 76),
    "bikes-taxi": ("bikes.mp4", 76, 137),
    "bikes-railing": ("bikes.mp4", 137, 187),
    "bikes-parked": ("bikes.mp4", 187, 242),
    "bunny": ("bigbuckbunny.mp4", 0, 132),
    "megamind-her": ("Megamind.avi", 1, 98),
    "megamind-him": ("Megamind.avi", 98, 154),
    "megamind-him2": ("Megamind.avi", 200, 270),
    "vtest": ("vtest.avi", 0, 795),
}
PHOTOS = (
    "aero1.jpg",
    "apple.jpg",
    "baboon.jpg",
    "board.jpg",
    "building.jpg",
    "butterfly.jpg",
    "fruits.jpg",
    "home.jpg",
    "chicky_512.png",
    "messi5.jpg",
    "orange.jpg",
    "smarties.png",
    "starry_night.jpg",
    "stuff.jpg",
    "graf1.png",
    "leuvenA.jpg",
    "aloeL.jpg",
    "ela_original.jpg",
    "pca_test1.jpg",
    "rubberwhale1.png",
    "squirrel_cls.jpg",
    "left.jpg",
)
# the handheld film's photos: named, not drawn from PHOTOS, so that adding the film changed
# no earlier film of a seed's set
HANDHELD_PHOTOS = ("aero3.jpg", "leuvenB.jpg", "basketball1.png", "aloeR.jpg")
# a tremor of three sines (3-8 Hz across, 2-7 Hz down) in pixels per unit amplitude, at frame
# n of a 24-fps shot; its peak is about 2x the amplitude
TREMOR_X = "(sin(2*PI*3.1*n/{fps})+0.6*sin(2*PI*5.3*n/{fps}+{p})+0.4*sin(2*PI*7.7*n/{fps}+2))"
TREMOR_Y = "(sin(2*PI*2.3*n/{fps}+{p})+0.6*sin(2*PI*4.1*n/{fps})+0.4*sin(2*PI*6.9*n/{fps}+1))"
SHAKE_SHARE = 0.03  # tremor amplitude, share of the picture's width (peaks near 6 %)
SWAY_SHARE = 0.01  # a slow handheld sway (0.8 Hz): a steady camera, not shaky
SHAKE_ROOM = 1.16  # the picture is enlarged by this before the shaking window is cut
SUBTITLES = (
    "I told you we would be late again",
    "Nobody leaves this room until morning",
    "Where were you last night",
    "It is not what it looks like",
    "Keep driving and do not look back",
    "We have three hours at most",
)
CREDITS = (
    "Directed by Ana Lindqvist",
    "Produced by Omar Haddad",
    "Director of Photography Mei Tanaka",
    "Edited by Jonas Weber",
    "Music by Clara Duarte",
    "Sound Design Piotr Nowak",
    "Production Design Lea Morel",
    "Costumes Ines Ribeiro",
)
BLUR_SIGMA = 6.0  # gblur sigma at 480 lines (scaled with the height)
DARK_LEVEL = 0.4  # a night scene: colorlevels output maximum (the picture keeps its detail)
VIGNETTE_ANGLE = 1.0  # radians (ffmpeg allows up to pi/2): frame edges darkened, still picture
DUP_PANSCAN = 0.75  # a pan-and-scan copy keeps the centre 3/4 of the width


@dataclass(frozen=True)
class Shot:
    """One shot: a picture (what is filmed) plus the elements placed over it."""

    content: str  # clip | photo | still | black | near_black | credits | scroll
    source: str = ""  # clip key or photo file name
    offset: int = 0  # first source frame (clips) or pan direction seed (photos)
    # blur, freeze, dark, vignette, subtitle, subtitle_in_bars, shake, sway
    effects: tuple[str, ...] = ()
    bars: str = ""  # letterbox | pillarbox | windowbox | "" (full frame)
    dup_of: tuple[str, int] | None = None  # (film name, shot index)
    dup_kind: str = ""  # rescale | pan_and_scan
    note: str = ""
    text: str = ""


@dataclass
class Film:
    name: str
    shots: list[Shot]
    watermark: bool = False
    crf: int = 18
    frames: list[int] = field(default_factory=list)  # frames per shot, set by the plan
    order: int = 0  # build order: a duplicate's original comes from an earlier film
    grain: float = 0.0  # --grain: ffmpeg `noise` strength over the whole picture, every frame


def _films(rng: random.Random) -> list[Film]:
    """The set: each film stresses one kind of bars or overlay; flags are spread over them."""
    photos = list(PHOTOS)
    rng.shuffle(photos)
    subs = list(SUBTITLES)
    rng.shuffle(subs)

    def photo() -> str:  # every photo is used once: two shots never share footage
        return photos.pop(0)

    def sub() -> str:
        subs.append(subs.pop(0))
        return subs[-1]

    lb, pb, wb = "letterbox", "pillarbox", "windowbox"
    return [
        Film(
            "cur_letterbox",
            [
                Shot("photo", photo(), bars=lb),
                Shot("photo", photo(), effects=("subtitle",), bars=lb, text=sub()),
                Shot("clip", "megamind-her", effects=("subtitle_in_bars",), bars=lb, text=sub()),
                Shot("black", bars=lb),
                Shot("clip", "bikes-taxi", effects=("blur",), bars=lb),
                Shot("photo", photo(), effects=("freeze",), bars=lb),
                Shot("clip", "bunny", bars=lb),
            ],
        ),
        Film(
            "cur_pillarbox",
            [
                Shot("credits", bars=pb),
                Shot("photo", photo(), bars=pb),
                Shot("clip", "megamind-him", effects=("dark",), bars=pb, note="dark_scene"),
                Shot("photo", photo(), effects=("subtitle",), bars=pb, text=sub()),
                Shot("clip", "bikes-railing", effects=("blur",), bars=pb),
                Shot("scroll", bars=pb),
            ],
        ),
        Film(
            "cur_windowbox",
            [
                Shot("photo", photo(), bars=wb),
                Shot("clip", "bikes-parked", bars=wb),
                Shot("still", photo(), bars=wb),
                Shot("near_black", bars=wb),
                Shot("clip", "vtest", offset=160, effects=("subtitle",), bars=wb, text=sub()),
                Shot("photo", photo(), effects=("blur",), bars=wb),
            ],
        ),
        Film(
            "cur_watermark",
            [
                Shot("clip", "bunny"),
                Shot("photo", photo()),
                Shot("clip", "megamind-her", effects=("subtitle",), text=sub()),
                Shot("credits"),
                Shot("photo", photo()),
                Shot("clip", "bunny", effects=("dark",), note="dark_scene"),
            ],
            watermark=True,
        ),
        Film(
            "cur_dark_edges",
            [
                Shot("photo", photo(), effects=("vignette",), note="dark_edges"),
                Shot("photo", photo(), effects=("vignette",), note="dark_edges"),
                Shot("clip", "vtest", offset=640, effects=("vignette", "dark"), note="dark_scene"),
                Shot("photo", photo(), effects=("vignette",), note="dark_edges"),
                Shot("photo", photo(), effects=("vignette", "freeze"), note="dark_edges"),
            ],
        ),
        Film(
            "cur_mixed_bars",
            [
                Shot("photo", photo(), bars=lb),
                Shot("clip", "vtest", offset=320, bars=lb),
                Shot("photo", photo(), bars=pb, note="insert_4x3"),
                Shot("photo", photo(), bars=pb, note="insert_4x3"),
                Shot("photo", photo(), effects=("subtitle",), bars=lb, text=sub()),
            ],
        ),
        Film(
            "cur_plain",
            [
                Shot("clip", "bikes-traffic"),
                Shot("clip", "megamind-him2"),
                Shot("photo", photo()),
                Shot("photo", photo()),
                Shot("clip", "vtest", offset=0),
            ],
        ),
        Film(
            "cur_copies",
            [
                Shot("photo", photo()),
                Shot("clip", "bikes-traffic", dup_of=("cur_plain", 0), dup_kind="rescale"),
                Shot("clip", "megamind-him2", dup_of=("cur_plain", 1), dup_kind="pan_and_scan"),
                Shot("photo", photo()),
                Shot("photo", "", dup_of=("cur_plain", 2), dup_kind="rescale"),
                Shot("photo", "", dup_of=("cur_plain", 3), dup_kind="pan_and_scan"),
                Shot("clip", "vtest", offset=480, note="same_setup_other_moment"),
            ],
            crf=28,
        ),
        Film(
            "cur_handheld",
            [
                Shot("photo", HANDHELD_PHOTOS[0], offset=1, effects=("shake",)),
                Shot("clip", "vtest", offset=560, effects=("shake",)),
                Shot("photo", HANDHELD_PHOTOS[1], offset=2, note="steady_pan"),
                Shot("photo", HANDHELD_PHOTOS[2], offset=3, effects=("sway",), note="sway"),
                Shot("photo", HANDHELD_PHOTOS[3], offset=4, effects=("shake", "dark")),
            ],
        ),
    ]


def plan_set(seed: int, tiny: bool, library: dict[str, Path]) -> list[Film]:
    """Every film with its shot lengths; duplicates copy their original's picture."""
    rng = random.Random(seed)
    films = _films(rng)
    by_name = {f.name: f for f in films}
    for order, film in enumerate(films):
        film.order = order
    # Clip frames are shared out so that no two shots show the same source frame (except the
    # planned duplicates); vtest.avi (795 frames of one camera) uses explicit, distant offsets.
    uses = Counter(s.source for f in films for s in f.shots if s.content == "clip" and not s.dup_of)
    next_free: Counter[str] = Counter()
    for film in films:
        for i, shot in enumerate(film.shots):
            if shot.dup_of:
                src_film = by_name[shot.dup_of[0]]
                original = src_film.shots[shot.dup_of[1]]
                film.shots[i] = replace(shot, source=original.source, offset=original.offset)
                film.frames.append(src_film.frames[shot.dup_of[1]])
                continue
            n = 12 if tiny else rng.randint(56, 80)
            if shot.content == "clip" and shot.source == "vtest":
                pass
            elif shot.content == "clip":
                _, start, end = CLIPS[shot.source]
                n = min(n, (end - start) // uses[shot.source])
                film.shots[i] = shot = replace(shot, offset=next_free[shot.source])
                next_free[shot.source] += n
            elif shot.content == "photo" and not shot.offset:
                film.shots[i] = replace(shot, offset=rng.randint(1, 4))
            film.frames.append(n)
    missing = {CLIPS[s.source][0] for f in films for s in f.shots if s.content == "clip"}
    missing |= {s.source for f in films for s in f.shots if s.content in ("photo", "still")}
    missing -= set(library)
    if missing or not FONT.is_file() or not LOGO.is_file():
        raise SystemExit(f"missing footage, font or logo: {sorted(missing)} (see README.md)")
    return films


def find_library() -> dict[str, Path]:
    found = {p.name: p for p in demo_films()}
    names = (*PHOTOS, *HANDHELD_PHOTOS)
    found |= {n: OPENCV_DATA / n for n in names if (OPENCV_DATA / n).is_file()}
    return found


# ---------------------------------------------------------------------------------------------
# Geometry: every box in source pixels, [x0, y0, x1, y1], end exclusive, even numbers.


def _even(v: float) -> int:
    return round(v / 2.0) * 2


def crop_box(bars: str, width: int, height: int) -> list[int]:
    if bars == "letterbox":  # 2.39:1 scope picture in a 16:9 frame
        h = _even(width / 2.39)
        y0 = _even((height - h) / 2)
        return [0, y0, width, y0 + h]
    if bars == "pillarbox":  # 4:3 picture in a 16:9 frame
        w = _even(height * 4 / 3)
        x0 = _even((width - w) / 2)
        return [x0, 0, x0 + w, height]
    if bars == "windowbox":  # a 4:3 picture boxed on all four sides
        h = _even(height * 0.8)
        w = _even(h * 4 / 3)
        x0, y0 = _even((width - w) / 2), _even((height - h) / 2)
        return [x0, y0, x0 + w, y0 + h]
    return [0, 0, width, height]


def watermark_box(width: int, height: int) -> list[int]:
    """The corner logo: LinuxLogo.jpg scaled to an even size, top right."""
    lw = _even(width / 9)
    lh = _even(lw * 0.75)
    margin = _even(width / 40)
    return [width - margin - lw, margin, width - margin, margin + lh]


# ---------------------------------------------------------------------------------------------
# Rendering.


def _text(text: str, size: int, y: str, x: str = "(w-text_w)/2") -> str:
    return (
        f"drawtext=fontfile={FONT}:text='{text}':fontsize={size}:fontcolor=white"
        f":borderw={max(1, size // 12)}:bordercolor=black:x={x}:y={y}"
    )


def picture_graph(shot: Shot, pw: int, ph: int, n: int, fps: int, height: int) -> tuple[str, str]:
    """(input kind, filter chain) giving the picture of a shot at pw x ph, n frames."""
    if shot.content in ("black", "near_black", "credits", "scroll"):
        level = "0x080808" if shot.content == "near_black" else "black"
        chain = f"color=c={level}:s={pw}x{ph}:r={fps}:d={n / fps + 1}"
        if shot.content == "near_black":
            chain += ",noise=alls=6:allf=t"
        lines = CREDITS[:6] if shot.content == "credits" else CREDITS
        size = max(8, height // 20)
        step = size * 2
        for k, line in enumerate(lines):
            if shot.content == "credits":
                top = (ph - step * len(lines)) // 2
                chain += "," + _text(line, size, str(top + k * step))
            elif shot.content == "scroll":
                speed = (ph + step * len(lines)) / max(1, n)
                chain += "," + _text(line, size, f"h-n*{speed:.3f}+{k * step}")
        return "lavfi", chain
    if shot.content == "clip":
        _, start, _ = CLIPS[shot.source]
        first = start + shot.offset
        chain = f"trim=start_frame={first}:end_frame={first + n},setpts=N/{fps}/TB"
        chain += f",scale={pw}:{ph}:force_original_aspect_ratio=increase:flags=bicubic"
        chain += f",crop={pw}:{ph},setsar=1"
        return "file", chain
    # photo (panned) or still: cover a 25 % larger box, then pan across it
    chain = f"scale={_even(pw * 1.25)}:{_even(ph * 1.25)}:force_original_aspect_ratio=increase"
    chain += ",setsar=1"
    if shot.content == "still":
        chain += f",crop={pw}:{ph}"
    else:
        direction = shot.offset % 2 * 2 - 1
        x = f"(iw-ow)*n/{n}" if direction > 0 else f"(iw-ow)*(1-n/{n})"
        chain += f",crop={pw}:{ph}:{x}:(ih-oh)*n/{2 * n}"
    return "photo", chain


def shot_graph(shot: Shot, film: Film, k: int, width: int, height: int, fps: int) -> tuple:
    n = film.frames[k]
    x0, y0, x1, y1 = crop_box(shot.bars, width, height)
    pw, ph = x1 - x0, y1 - y0
    kind, chain = picture_graph(shot, pw, ph, n, fps, height)
    scale = height / 480
    if shot.dup_kind == "rescale":  # another encode: half resolution, a little brighter
        chain += f",scale={_even(pw / 2)}:{_even(ph / 2)},scale={pw}:{ph},eq=brightness=0.03"
    elif shot.dup_kind == "pan_and_scan":
        cw = _even(pw * DUP_PANSCAN)
        chain += f",crop={cw}:{ph}:{(pw - cw) // 2}:0,scale={pw}:{ph}"
    if "shake" in shot.effects or "sway" in shot.effects:
        chain += "," + _handheld(shot, pw, ph, fps)
    if "freeze" in shot.effects:  # frames from frozen_from on repeat the frame before
        held = freeze_start(n)
        chain += f",trim=end_frame={held},tpad=stop_mode=clone:stop={n - held}"
    if "dark" in shot.effects:
        chain += f",colorlevels=romax={DARK_LEVEL}:gomax={DARK_LEVEL}:bomax={DARK_LEVEL}"
    if "vignette" in shot.effects:
        chain += f",vignette=angle={VIGNETTE_ANGLE}"
    if "blur" in shot.effects:
        chain += f",gblur=sigma={BLUR_SIGMA * scale:.2f}"
    size = max(8, height // 20)
    if "subtitle" in shot.effects:  # over the picture, near its bottom
        chain += "," + _text(shot.text, size, f"h-{_even(ph * 0.08) + size}")
    chain += f",pad={width}:{height}:{x0}:{y0}:black"
    if "subtitle_in_bars" in shot.effects:  # inside the bottom bar, clear of the picture
        chain += "," + _text(shot.text, size, str(y1 + (height - y1 - size) // 2))
    chain += f",setsar=1,format=yuv420p,trim=end_frame={n}"
    return kind, chain


def _handheld(shot: Shot, pw: int, ph: int, fps: int) -> str:
    """Enlarge the picture, then cut a pw x ph window that shakes (a 3-8 Hz tremor of
    ``SHAKE_SHARE`` of the width) or sways (0.8 Hz, ``SWAY_SHARE``) around the centre."""
    bw, bh = _even(pw * SHAKE_ROOM), _even(ph * SHAKE_ROOM)
    if "shake" in shot.effects:
        amp = SHAKE_SHARE * pw
        x = f"{amp:.1f}*" + TREMOR_X.format(fps=fps, p=shot.offset)
        y = f"{amp * 0.6:.1f}*" + TREMOR_Y.format(fps=fps, p=shot.offset)
    else:
        amp = SWAY_SHARE * pw
        x = f"{amp:.1f}*sin(2*PI*0.8*n/{fps}+{shot.offset})"
        y = f"{amp * 0.5:.1f}*sin(2*PI*0.6*n/{fps})"
    return f"scale={bw}:{bh},crop={pw}:{ph}:'(iw-ow)/2+{x}':'(ih-oh)/2+{y}'"


def freeze_start(n: int) -> int:
    """First frame of a frozen segment that equals the frame before it."""
    return max(2, n // 4)


def render_shot(
    shot: Shot, film: Film, k: int, out: Path, size: tuple[int, int], fps: int, lib: dict
) -> None:
    width, height = size
    kind, chain = shot_graph(shot, film, k, width, height, fps)
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-y"]
    if kind == "file":
        args += ["-i", str(lib[CLIPS[shot.source][0]])]
    elif kind == "photo":
        args += ["-loop", "1", "-framerate", str(fps), "-i", str(lib[shot.source])]
    graph = f"{chain}[out]" if kind == "lavfi" else f"[0:v]{chain}[out]"
    args += ["-filter_complex", graph, "-map", "[out]", "-frames:v", str(film.frames[k])]
    args += ["-c:v", "ffv1", "-threads", "1", "-fps_mode", "passthrough", "-f", "nut", str(out)]
    run(args, what=f"render {film.name} shot {k}", timeout=600)


def render_film(film: Film, segs: list[Path], out: Path, size: tuple[int, int], fps: int) -> None:
    width, height = size
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-y"]
    for seg in segs:
        args += ["-i", str(seg)]
    ins = "".join(f"[{i}:v]" for i in range(len(segs)))
    graph = f"{ins}concat=n={len(segs)}:v=1:a=0,settb=1/{fps},setpts=N"
    if film.watermark:
        x0, y0, x1, y1 = watermark_box(width, height)
        args += ["-loop", "1", "-i", str(LOGO)]
        graph += f"[v];[{len(segs)}:v]scale={x1 - x0}:{y1 - y0},format=rgba"
        graph += f",colorchannelmixer=aa=0.8[logo];[v][logo]overlay={x0}:{y0}:shortest=1"
    if film.grain:  # film grain: sharp, new every frame, over picture and bars alike
        graph += f",noise=alls={film.grain:g}:allf=t"
    graph += ",format=yuv420p[out]"
    args += ["-filter_complex", graph, "-map", "[out]", "-frames:v", str(sum(film.frames))]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(film.crf), "-threads", "2"]
    args += ["-r", str(fps), "-movflags", "+faststart", str(out)]
    run(args, what=f"encode {film.name}", timeout=600)


def ground_truth(film: Film, size: tuple[int, int], fps: int) -> dict:
    width, height = size
    shots, at = [], 0
    for k, (shot, n) in enumerate(zip(film.shots, film.frames, strict=True)):
        flags = [shot.bars] if shot.bars else []
        if "subtitle" in shot.effects:
            flags.append("text_overlay")
        if shot.content in ("credits", "scroll"):
            flags.append("credits")
        if shot.content in ("black", "near_black"):
            flags.append("black")
        if "blur" in shot.effects:
            flags.append("blurry")
        if "freeze" in shot.effects or shot.content in ("still", "credits"):
            flags.append("static")  # a credits card is a frozen frame too
        if "shake" in shot.effects:
            flags.append("shaky")
        if shot.dup_of:
            flags.append("duplicate")
        entry: dict = {
            "index": k,
            "start_frame": at,
            "end_frame": at + n,
            "crop": crop_box(shot.bars, width, height),
            "bars": shot.bars or None,
            "flags": flags,
            "content": shot.content,
            "source": CLIPS[shot.source][0] if shot.content == "clip" else shot.source or None,
            "source_start_frame": (
                CLIPS[shot.source][1] + shot.offset if shot.content == "clip" else None
            ),
            "notes": [v for v in (shot.note,) if v]
            + (["subtitle_in_bars"] if "subtitle_in_bars" in shot.effects else []),
            "duplicate_of": (
                {"film": f"{shot.dup_of[0]}.mp4", "shot": shot.dup_of[1]} if shot.dup_of else None
            ),
            "duplicate_kind": shot.dup_kind or None,
        }
        if "freeze" in shot.effects:
            entry["frozen"] = [at + freeze_start(n) - 1, at + n]
        elif shot.content in ("still", "credits"):
            entry["frozen"] = [at, at + n]
        shots.append(entry)
        at += n
    crops = {tuple(s["crop"]) for s in shots}
    return {
        "schema_version": SCHEMA_VERSION,
        "film": f"{film.name}.mp4",
        "fps": fps,
        "width": width,
        "height": height,
        "n_frames": at,
        "build_order": film.order,
        "crf": film.crf,
        "crop": shots[0]["crop"] if len(crops) == 1 else None,
        "watermark": {"box": watermark_box(width, height)} if film.watermark else None,
        "shots": shots,
    }


def build_film(film: Film, out: Path, size: tuple[int, int], fps: int, lib: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix=f".{film.name}-", dir=out) as tmp:
        segs = [Path(tmp) / f"shot{k:03d}.nut" for k in range(len(film.shots))]
        for k, (shot, seg) in enumerate(zip(film.shots, segs, strict=True)):
            render_shot(shot, film, k, seg, size, fps, lib)
        mp4 = Path(tmp) / f"{film.name}.mp4"
        render_film(film, segs, mp4, size, fps)
        shutil.move(str(mp4), out / mp4.name)
    doc = ground_truth(film, size, fps)
    (out / f"{film.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def build_edge_films(docs: list[dict], args: argparse.Namespace, size: tuple, lib: dict) -> list:
    """The whole-film edge cases, after the set (their own random draws: the set is unchanged)."""
    spec = importlib.util.spec_from_file_location(
        "edge_films", Path(__file__).with_name("edge_films.py")
    )
    assert spec and spec.loader
    edge_films = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(edge_films)
    rng = random.Random(args.seed + 1)
    specs = edge_films.edge_specs(sys.modules[__name__])
    lib = lib | {"HappyFish.jpg": OPENCV_DATA / "HappyFish.jpg"}
    out = []
    for order, (film, status, reason) in enumerate(specs, start=len(docs)):
        film.order, film.grain = order, args.grain
        still = film.shots[0].content == "still"
        for _ in film.shots:
            film.frames.append((24 if args.tiny else 240) if still else rng.randint(56, 80))
            if args.tiny and not still:
                film.frames[-1] = 12
        doc = edge_films.mark_expected(
            build_film(film, args.out, size, args.fps, lib), status, reason
        )
        (args.out / f"{film.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        out.append(doc)
    plain = next(d for d in docs if d["film"] == "cur_plain.mp4")
    out.append(edge_films.rip(args.out / "cur_plain.mp4", plain, args.out, len(docs) + len(out)))
    return out


def summarize(docs: list[dict], seconds: float) -> dict:
    flags: Counter[str] = Counter()
    clean = shots = frames = 0
    for doc in docs:
        frames += doc["n_frames"]
        for s in doc["shots"]:
            shots += 1
            flags.update(s["flags"])
            clean += not set(s["flags"]) & set(DROP_FLAGS)
    return {
        "films": len(docs),
        "shots": shots,
        "clean_shots": clean,
        "frames": frames,
        "flags": dict(sorted(flags.items())),
        "watermarked_films": sum(d["watermark"] is not None for d in docs),
        "generation_seconds": round(seconds, 1),
    }


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 854x480, got {text!r}") from exc
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be positive and even, got {text!r}")
    return w, h


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=parse_size, default=None, help="WxH (default 854x480)")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--tiny", action="store_true", help="12-frame shots at 320x180")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument(
        "--edge", action="store_true", help="add the whole-film edge cases (edge_films.py)"
    )
    parser.add_argument(
        "--grain",
        type=float,
        default=0.0,
        help="film grain over every film: ffmpeg noise of this strength (alls), new each frame, "
        "added after the shots are joined (the ground truth is the same: a grainy frozen "
        "shot is still static, a grainy defocus still blurry)",
    )
    args = parser.parse_args(argv)
    size = args.size or ((320, 180) if args.tiny else (854, 480))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    lib = find_library()
    films = plan_set(args.seed, args.tiny, lib)
    for film in films:
        film.grain = args.grain
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        docs = list(pool.map(lambda f: build_film(f, args.out, size, args.fps, lib), films))
    if args.edge:
        docs += build_edge_films(docs, args, size, lib)
    summary = summarize(docs, time.perf_counter() - started)
    summary |= {"seed": args.seed, "size": f"{size[0]}x{size[1]}", "fps": args.fps}
    if args.grain:
        summary["grain"] = args.grain
    (args.out / "_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
