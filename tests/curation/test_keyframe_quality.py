"""muss_builder.curation.keyframe_quality: text_overlay, credits and blurry on synthetic films
made with ffmpeg (drawtext subtitles, a credits card, a scrolling roll, a channel logo, gblur,
an upscaled film), with exact ground truth: each flag on its shot, clean shots left alone.

Films are rendered with lavfi sources through libx264 and decoded back; keyframes are the
frames the subject stage picks (``keyframe_frames``), fed in film order like its pass does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.core.models import ModelNotFoundError
from muss_builder.curation import text as text_module
from muss_builder.curation.keyframe_quality import (
    FLAGS,
    MEASURES,
    KeyframeQualityCollector,
    KeyframeQualityConfig,
    load_text_detector,
)
from muss_builder.curation.sharpness import edge_width, judge_blur
from muss_builder.media.tools import binary
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe, keyframe_frames

W, H, FPS, N = 480, 270, 24, 24  # 480x270 film, 24-frame shots
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LOGO_BOX = [364, 12, 468, 40]  # the channel logo's box (drawbox + drawtext), every frame
CREDITS = ("Directed by Ana Lindqvist", "Produced by Omar Haddad", "Edited by Jonas Weber",
           "Music by Clara Duarte", "Sound Design Piotr Nowak")  # fmt: skip


def text(line: str, size: int, y: str, x: str = "(w-text_w)/2") -> str:
    return (
        f"drawtext=fontfile={FONT}:text='{line}':fontsize={size}:fontcolor=white"
        f":borderw=2:bordercolor=black:x={x}:y={y}"
    )


# (text, font size, x, y): shop signs and labels of a street, no two on one column
SIGNS = (("BASIC ELECTRONICS", 22, 20, 24), ("OPEN 24 HOURS", 18, 300, 54),
         ("Hotel Miramar", 26, 110, 100), ("DEVICES AND CIRCUITS", 16, 236, 146),
         ("PHARMACY", 20, 384, 186))  # fmt: skip
PAN = 8  # px per frame: 64 px (13 % of the width) between a shot's keyframes (4, 12, 20)


def subtitle(size: int) -> str:
    """The subtitle every subtitle shot of these films shows, at the picture's foot."""
    return text("Nobody leaves this room until morning", size, f"h-{size * 2}")


def pan(kind: str, k: int, size: int) -> str:
    """Text that moves between a shot's keyframes, centred at the foot of the frame in the
    middle one (frame 12) only. ``pan_text``: letters painted on a picture twice the frame's
    width (a sign, a wall) that the camera pans across; ``pan_subtitle``: a subtitle over the
    same pan; ``crawl``: a news crawl moving over a still picture."""
    if kind == "crawl":
        x = f"{W // 2}-text_w/2+(12-n)*{PAN}"
        return (
            scene(k, still=True)
            + ","
            + text("LIVE  Storm closes the harbour", size, f"h-{size * 2}", x)
        )
    chain = scene(k, 2 * W, still=True)
    if kind == "pan_text":  # in the wide picture: centred when the crop is at 12 * PAN
        x = f"{12 * PAN + W // 2}-text_w/2"
        chain += "," + text("HOTEL MIRAMAR RESTAURANT", size, f"h-{size * 2}", x)
    chain += f",crop={W}:{H}:x=n*{PAN}:y=0"
    if kind == "pan_subtitle":
        chain += "," + subtitle(size)
    return chain


def scene(k: int, width: int = W, still: bool = False) -> str:
    """A detailed picture with no text in it: a zoom into the Mandelbrot set, or (``still``)
    the set at one scale."""
    start = (-0.743643887037151 + 0.01 * k, 0.13182590420533 + 0.01 * k)
    scales = (0.03, 0.03) if still else (0.02 + 0.01 * k, 0.01)
    return (
        f"mandelbrot=s={width}x{H}:r={FPS}:start_x={start[0]}:start_y={start[1]}"
        f":start_scale={scales[0]}:end_scale={scales[1]}:outer=normalized_iteration_count"
    )


def soft_picture(k: int) -> str:
    """A small, soft picture enlarged to the frame (a webcam still in an edit): four objects
    over smooth shading at half the frame's size, doubled (bicubic) and softened (gblur 2):
    less sharp than the film's Mandelbrot shots, but its edges span ~7 working pixels, not
    the ~14 of the defocused shot (gblur 5)."""
    w, h = W // 2, H // 2
    chain = f"gradients=s={w}x{h}:r={FPS}:c0=0x3050a0:c1=0xe0c080:speed=0.02:seed={k}"
    objects = ((0.2, 0.3, "red"), (0.55, 0.2, "green"), (0.7, 0.6, "blue"), (0.3, 0.65, "orange"))
    for x, y, colour in objects:
        chain += (
            f",drawbox=x={int(x * w)}:y={int(y * h)}:w={w // 8}:h={w // 8}:color={colour}:t=fill"
        )
    return chain + f",scale={W}:{H}:flags=bicubic,setsar=1,gblur=sigma=2"


def shot_graph(kind: str, k: int) -> str:
    size = H // 13  # about 20 px: a subtitle of a 270-line picture
    if kind in ("credits", "scroll", "dark", "title"):
        chain = f"color=c=black:s={W}x{H}:r={FPS}"
        if kind == "dark":
            return chain + ",noise=alls=3:allf=t"
        if kind == "title":  # an intertitle: one line in the middle of a plain card
            return chain + "," + text("Three years later", size * 2, "(h-text_h)/2")
        for i, line in enumerate(CREDITS):
            y = (H - 2 * size * len(CREDITS)) // 2 + 2 * size * i
            if kind == "scroll":
                speed = (H + 2 * size * len(CREDITS)) / N
                y = f"h-n*{speed:.2f}+{2 * size * i}"
            chain += "," + text(line, size, str(y))
        return chain
    if kind.startswith("signs"):  # a scene full of text: labels where its objects are
        chain = scene(k, still=True)
        for line, fs, x, y in SIGNS:
            chain += "," + text(line, fs, str(y), str(x))
        if kind == "signs_subtitle":
            chain += "," + subtitle(size)
        return chain
    if kind.startswith("pan_") or kind == "crawl":
        return pan(kind, k, size)
    if kind == "plain_subtitle":  # a subtitle over a plain, bright picture (a white wall)
        chain = f"color=c=0xd8d8d8:s={W}x{H}:r={FPS},noise=alls=2:allf=t"
        return chain + "," + subtitle(size)
    if kind == "soft_picture":
        return soft_picture(k)
    chain = scene(k)
    if kind == "blur":
        chain += ",gblur=sigma=5"  # out of focus: ~sigma 9 at 480 lines
    if kind == "subtitle":
        chain += "," + subtitle(size)
    return chain


def make_film(path: Path, kinds: list[str], logo: bool = False, upscale_from: int = 0) -> Path:
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-y"]
    for i, kind in enumerate(kinds):
        args += ["-f", "lavfi", "-i", shot_graph(kind, i)]
    parts = "".join(
        f"[{i}:v]trim=end_frame={N},setpts=N/{FPS}/TB[s{i}];" for i in range(len(kinds))
    )
    graph = parts + "".join(f"[s{i}]" for i in range(len(kinds))) + f"concat=n={len(kinds)}"
    if upscale_from:
        graph += f",scale=-2:{upscale_from},scale={W}:{H}:flags=bicubic"
    if logo:
        x0, y0, x1, y1 = LOGO_BOX
        graph += f",drawbox=x={x0}:y={y0}:w={x1 - x0}:h={y1 - y0}:color=0x303060:t=fill"
        graph += f",drawtext=fontfile={FONT}:text='NEWS 24':fontsize=20:fontcolor=white"
        graph += f":x={x0 + 6}:y={y0 + 4}"
    args += [
        "-filter_complex",
        graph,
        "-c:v",
        "libx264",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        str(path),
    ]
    subprocess.run(args, check=True, timeout=120)
    return path


def shots_for(n: int) -> list[Shot]:
    return [Shot(i, i * N, (i + 1) * N, i * N / FPS, (i + 1) * N / FPS, "cut") for i in range(n)]


def keyframes_of(path: Path, shots: list[Shot]) -> list[Keyframe]:
    chosen = keyframe_frames(shots, 3)
    shot_of = {f: s for s, frames in chosen.items() for f in frames}
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path)]
    raw = subprocess.run([*args, "-f", "rawvideo", "-pix_fmt", "bgr24", "-"], check=True,
                         capture_output=True, timeout=120).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)
    return [Keyframe(shot_of[f], f, frames[f]) for f in sorted(shot_of)]


KINDS = ["clean", "subtitle", "clean", "credits", "scroll", "blur", "clean", "dark", "title"]
TRUTH = {1: ["text_overlay"], 3: ["credits"], 4: ["credits"], 5: ["blurry"], 8: ["credits"]}


def collect(keyframes, n, config=None, marks=None):
    collector = KeyframeQualityCollector(
        shots_for(n), config or KeyframeQualityConfig(), marks or {}
    )
    assert collector.wanted() == {}  # the keyframes the pass decodes anyway are enough
    for kf in keyframes:
        collector.add(kf, True)
    return collector.finish()


@pytest.fixture(scope="module")
def logo_film(tmp_path_factory) -> list[Keyframe]:
    path = make_film(tmp_path_factory.mktemp("kq") / "logo.mp4", KINDS, logo=True)
    return keyframes_of(path, shots_for(len(KINDS)))


def test_each_flag_on_its_shot_and_the_logo_is_not_text(logo_film) -> None:
    report = collect(logo_film, len(KINDS), marks={i: LOGO_BOX for i in range(len(KINDS))})
    assert {i: s.flags for i, s in report.shots.items() if s.flags} == TRUTH
    for shot in report.shots.values():  # every measure, whether or not a flag fired
        assert set(shot.quality) == set(MEASURES)
    assert report.shots[0].quality["text_lines"] == 0  # the logo's words are the logo
    band = report.shots[1].text_band
    assert band["action"] == "drop" and band["band_frac"][1] > 0.75  # at the picture's foot
    assert report.keyframes == 3 * len(KINDS) and len(report.text_ms) == report.keyframes
    assert set(FLAGS) == {"text_overlay", "credits", "blurry"}


def test_the_text_thread_gives_the_same_report_as_the_pass_thread(logo_film) -> None:
    """The detector on its own thread (the default) folds its answers in film order: every
    flag, measure and band equals the one-thread run, whatever order the thread finishes in."""
    marks = {i: LOGO_BOX for i in range(len(KINDS))}
    inline = KeyframeQualityConfig.model_validate({"text": {"own_thread": False}})
    one = collect(logo_film, len(KINDS), inline, marks)
    two = collect(logo_film, len(KINDS), KeyframeQualityConfig(), marks)
    assert KeyframeQualityConfig().text.own_thread
    assert one.shots == two.shots and one.reference_sharpness == two.reference_sharpness
    assert two.text_thread_seconds > 0 and one.text_thread_seconds == 0
    assert two.text_thread_seconds == pytest.approx(sum(two.text_ms) / 1000)


def test_without_the_watermark_box_the_logo_reads_as_text(logo_film) -> None:
    """Why the box matters: the logo is a line of text, over a dark plain shot a "card"."""
    report = collect(logo_film, len(KINDS))
    assert report.shots[0].quality["text_lines"] == 1
    assert report.shots[7].flags == ["credits"]


def test_crop_mode_keeps_the_picture_above_the_subtitle(logo_film) -> None:
    marks = {i: LOGO_BOX for i in range(len(KINDS))}
    crop = KeyframeQualityConfig.model_validate({"text": {"subtitles": "crop"}})
    shot = collect(logo_film, len(KINDS), crop, marks).shots[1]
    band = shot.text_band
    assert shot.flags == ["subtitle_cropped"] and band["action"] == "crop"
    assert band["keep_px"] == [0, 0, W, band["band_px"][1]] and band["keep_share"] >= 0.8
    assert band["keep_px"][3] <= H - 2 * (H // 13)  # what is kept ends above the drawn text
    strict = KeyframeQualityConfig.model_validate(
        {"text": {"subtitles": "crop", "crop_min_keep": 0.95}}
    )  # too much of the picture would go: the shot is dropped instead
    assert collect(logo_film, len(KINDS), strict, marks).shots[1].flags == ["text_overlay"]


def test_a_subtitle_over_a_plain_picture_is_a_subtitle_not_a_card(tmp_path) -> None:
    """The flat-background rule of credits (one line over a plain card) counts lines off the
    subtitle bands only: a subtitle over a white wall stays text_overlay, an intertitle in
    the middle of a plain card stays credits."""
    kinds = ["clean", "plain_subtitle", "clean", "title"]
    film = make_film(tmp_path / "plain.mp4", kinds)
    report = collect(keyframes_of(film, shots_for(len(kinds))), len(kinds))
    assert {i: s.flags for i, s in report.shots.items() if s.flags} == {
        1: ["text_overlay"],
        3: ["credits"],
    }


def test_an_upscaled_film_is_soft_but_not_blurry(tmp_path) -> None:
    kinds = ["clean", "clean", "clean", "clean", "dark"]
    soft = make_film(tmp_path / "up.mp4", kinds, upscale_from=68)  # 4x upscale
    report = collect(keyframes_of(soft, shots_for(len(kinds))), len(kinds))
    assert not any(s.flags for s in report.shots.values())
    # it is soft: its shots read far below a sharp film's (~0.8 on the Mandelbrot zoom)
    assert report.reference_sharpness < 0.6


def test_a_soft_picture_is_less_sharp_but_only_a_defocused_shot_is_blurry(tmp_path) -> None:
    kinds = ["clean", "soft_picture", "clean", "blur", "clean", "clean"]
    film = make_film(tmp_path / "soft.mp4", kinds)
    keyframes = keyframes_of(film, shots_for(len(kinds)))
    report = collect(keyframes, len(kinds))
    assert {i: s.flags for i, s in report.shots.items() if s.flags} == {3: ["blurry"]}
    soft, blurred = report.shots[1].quality, report.shots[3].quality
    width = KeyframeQualityConfig().blur.min_edge_width
    assert soft["edge_width"] < width < blurred["edge_width"]
    assert all(report.shots[i].quality["edge_width"] < 3 for i in (0, 2, 4, 5))  # crisp
    # the film's edge reference: the median of its judged shots' widths (all six here)
    widths = [report.shots[i].quality["edge_width"] for i in range(len(kinds))]
    assert report.reference_edge_width == pytest.approx(float(np.median(widths)))
    assert blurred["edge_width"] >= 1.5 * report.reference_edge_width
    # by sharpness alone (the rule before the edge width) the soft picture is "blurry" too
    assert soft["sharpness_rel"] < KeyframeQualityConfig().blur.relative_threshold
    alone = KeyframeQualityConfig.model_validate(
        {"blur": {"min_edge_width": None, "min_edge_ratio": None}}
    )
    assert collect(keyframes, len(kinds), alone).shots[1].flags == ["blurry"]


def test_edge_width_spreads_with_the_blur() -> None:
    """A step edge blurred by a Gaussian of sigma s reads ~4.3 s wide (its slope down to a tenth
    of the peak on both sides); a gentle ramp under the step does not widen it."""
    ramp = np.tile(np.linspace(0, 40, 200, dtype=np.float32), (120, 1))
    step = ramp + np.where(np.arange(200) >= 100, 120.0, 0.0).astype(np.float32)
    for sigma in (1.5, 3.0, 5.0):
        blurred = cv2.GaussianBlur(step, (0, 0), sigma)[:, 20:-20]
        width = edge_width(blurred)
        assert width == pytest.approx(4.3 * sigma, rel=0.15), sigma
        barred = blurred.copy()
        barred[:2] = 0  # two lines of a letterbox bar the crop kept: a crisp step at the side
        assert edge_width(barred) == pytest.approx(width, rel=0.02)
    assert edge_width(step) <= 2  # a sharp step: one difference, maybe its neighbour
    assert edge_width(np.full((120, 200), 80, np.float32)) is None  # no edges at all


def test_blur_needs_a_reference_or_a_floor() -> None:
    sharp, wide = [0.8, 0.3], [2.0, 12.0]  # two shots: which one is the soft one?
    assert judge_blur(sharp, wide, [True, True], 0.65, 8.5, 3, None)[1] == [False, False]
    assert judge_blur(sharp, wide, [True, True], 0.65, 8.5, 3, 0.4)[1] == [False, True]
    four, widths = [0.8, 0.82, 0.3, 0.0], [2.0, 2.5, 12.0, None]
    judged = [True, True, True, False]
    verdict = judge_blur(four, widths, judged, 0.65, 8.5, 3, None, min_edge_ratio=1.5)
    assert verdict.reference == 0.8 and verdict.edge_reference == 2.5  # the judged shots'
    assert verdict.blurry == [False, False, True, False]  # a black hold is not judged
    # less sharp than the film, but its edges no wider than a soft picture's: not blurry
    narrow = [2.0, 2.5, 7.0, None]  # the black hold: no edges
    assert judge_blur(four, narrow, judged, 0.65, 8.5, 3, None).blurry == [False] * 4
    assert judge_blur(four, narrow, judged, 0.65, None, 3, None).blurry == [
        False, False, True, False
    ]  # fmt: skip


def test_a_film_soft_all_over_is_held_to_its_own_edges() -> None:
    """Every shot's edges are wide (an old lens, a worn print): the least sharp shot is not out
    of focus against its film unless its edges spread well past the film's own."""
    sharp, judged = [0.5, 0.52, 0.37, 0.5, 0.49], [True] * 5
    soft_film = [9.0, 10.0, 12.0, 9.5, 9.8]  # median 9.8: 12 is under 1.5x
    verdict = judge_blur(sharp, soft_film, judged, 0.8, 8.5, 3, None, min_edge_ratio=1.5)
    assert verdict.edge_reference == 9.8 and verdict.blurry == [False] * 5
    # the absolute width alone (the rule before the film's reference) condemned it
    assert judge_blur(sharp, soft_film, judged, 0.8, 8.5, 3, None).blurry[2]
    # a defocus in that film spreads its edges past 1.5x the film's: still blurry
    defocused = [9.0, 10.0, 15.0, 9.5, 9.8]
    assert judge_blur(sharp, defocused, judged, 0.8, 8.5, 3, None, min_edge_ratio=1.5).blurry[2]
    # too few measured widths for a reference: the absolute width alone
    few = [None, None, 12.0, None, 9.8]
    verdict = judge_blur(sharp, few, judged, 0.8, 8.5, 3, None, min_edge_ratio=1.5)
    assert verdict.edge_reference is None and verdict.blurry[2]


def test_config_and_missing_package(monkeypatch) -> None:
    with pytest.raises(ValueError):
        KeyframeQualityConfig.model_validate({"text": {"treshold": 1}})
    off = KeyframeQualityConfig.model_validate({"text": {"enabled": False}})
    assert load_text_detector(off) is None
    monkeypatch.setattr(text_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install rapidocr-onnxruntime"):
        text_module.detector_model_path()


def test_scene_text_moving_with_a_pan_is_not_a_subtitle(tmp_path) -> None:
    """Letters painted on a panned picture sit centred at the foot of the frame in the shot's
    middle keyframe only: they move with the camera and with the picture around them, so they
    are scene text. A subtitle over the same pan stays where it is, and a news crawl moves
    while the picture behind it does not: both stay text_overlay. Without the check the
    letters would make their shot a subtitle shot."""
    kinds = ["clean", "pan_text", "pan_subtitle", "crawl"]
    keyframes = keyframes_of(make_film(tmp_path / "pan.mp4", kinds), shots_for(len(kinds)))
    report = collect(keyframes, len(kinds))
    found = {i: s.flags for i, s in report.shots.items() if s.flags}
    assert found == {2: ["text_overlay"], 3: ["text_overlay"]}
    assert report.shots[1].quality["text_lines"] >= 1  # the letters were read as a line
    off = KeyframeQualityConfig.model_validate({"text": {"moving_text_is_scene": False}})
    flagged = {i: s.flags for i, s in collect(keyframes, len(kinds), off).shots.items() if s.flags}
    assert flagged == {1: ["text_overlay"], 2: ["text_overlay"], 3: ["text_overlay"]}


def test_a_scene_full_of_text_is_not_credits(tmp_path) -> None:
    """Five labels scattered over a picture (a street of signs, a shelf of book covers) are
    text, but not laid out as credits are (no column of four lines): not ``credits``; with a
    subtitle over them the shot is a subtitle shot. A card and a roll stay credits."""
    kinds = ["signs", "signs_subtitle", "credits", "scroll"]
    keyframes = keyframes_of(make_film(tmp_path / "signs.mp4", kinds), shots_for(len(kinds)))
    report = collect(keyframes, len(kinds))
    found = {i: s.flags for i, s in report.shots.items() if s.flags}
    assert found == {1: ["text_overlay"], 2: ["credits"], 3: ["credits"]}
    assert report.shots[0].quality["text_lines"] >= 4  # the labels were read as lines
    loose = KeyframeQualityConfig.model_validate({"text": {"credits_align": 1.0}})
    found = {i: s.flags for i, s in collect(keyframes, len(kinds), loose).shots.items() if s.flags}
    assert found == {0: ["credits"], 1: ["credits"], 2: ["credits"], 3: ["credits"]}
