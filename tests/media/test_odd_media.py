"""Odd media: containers whose times start late or restart, packets without timestamps,
anamorphic pixels and interlaced fields. Every film is made here with ffmpeg."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from muss_builder.config import ClipsConfig, ShotsConfig
from muss_builder.media.clips import encode_clip, plan_clip
from muss_builder.media.decode import FrameReader
from muss_builder.media.probe import decode_options, probe_film
from muss_builder.shots.detector import analysis_size
from muss_builder.shots.ranges import packet_timestamps
from muss_builder.shots.segment import (
    detect_shots,
    detect_shots_single_pass,
    settled_probe,
)
from muss_builder.subjects.keyframes import keyframe_size, read_keyframes
from muss_builder.testing.synthetic_films import (
    SyntheticFilm,
    cut_frames_in,
    ffmpeg_to,
    make_concatenated_ts,
    make_film,
    make_interlaced,
)
from muss_builder.testing.synthetic_mkv import make_laced_mkv


@pytest.fixture(scope="module")
def odd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("odd")


@pytest.fixture(scope="module")
def base(odd_root: Path) -> SyntheticFilm:
    """3 s at 24 fps (72 frames), cuts at 24 and 54, with an audio track."""
    return make_film(odd_root / "base.mp4", (24, 30, 18), fps=24, audio=True)


def _remux(root: Path, base: SyntheticFilm, kind: str) -> tuple[Path, float]:
    """(film, start of its video stream in seconds) for each container case."""
    src = str(base.path)
    if kind == "mkv starting at 3600 s":
        return ffmpeg_to(
            root / "late.mkv", "-i", src, "-c", "copy", "-output_ts_offset", "3600"
        ), 3600.0
    if kind == "mpeg-ts (starts at 1.4 s)":
        return ffmpeg_to(root / "plain.ts", "-i", src, "-c", "copy", "-f", "mpegts"), 1.4
    # the video half a second after the audio: an mp4 edit list, an mkv block offset
    suffix = ".mp4" if "mp4" in kind else ".mkv"
    path = root / f"audio_first{suffix}"
    ffmpeg_to(
        path, "-itsoffset", "0.5", "-i", src, "-i", src, "-map", "0:v", "-map", "1:a", "-c", "copy"
    )
    return path, 0.5


@pytest.mark.parametrize(
    "kind",
    [
        "mkv starting at 3600 s",
        "mpeg-ts (starts at 1.4 s)",
        "mp4, audio before video",
        "mkv, audio before video",
    ],
)
def test_duration_and_frames_come_from_the_video_stream(
    odd_root: Path, base: SyntheticFilm, tiny_config, kind: str
) -> None:
    path, start = _remux(odd_root, base, kind)
    probe = probe_film(path)
    assert probe.start_time_seconds == pytest.approx(start, abs=0.1)
    # 72 frames at 24 fps: 3 s, whatever the container counts from
    assert probe.duration_seconds == pytest.approx(3.0, abs=0.5 / 24)
    assert probe.frame_count_estimate == 72
    detection = detect_shots(path, probe, tiny_config.shots, tiny_config.analysis)
    assert detection.n_frames == 72 and detection.timestamps == "stream"
    assert [s.start_frame for s in detection.shots[1:]] == base.cut_frames
    assert detection.shots[-1].end_seconds == pytest.approx(3.0, abs=1e-3)


@pytest.fixture(scope="module")
def restarting_ts(odd_root: Path, base: SyntheticFilm) -> Path:
    """Two TS files joined byte for byte: timestamps restart at frame 72."""
    other = make_film(odd_root / "other.mp4", (30, 18), fps=24, width=320, height=180)
    flipped = ffmpeg_to(odd_root / "flipped.mp4", "-i", str(other.path), "-vf", "hflip,negate")
    return make_concatenated_ts(odd_root / "joined.ts", [base.path, flipped])


def test_restarting_timestamps_are_rebuilt_and_every_decode_agrees(
    tmp_path: Path, restarting_ts: Path, base: SyntheticFilm, tiny_config
) -> None:
    probe = probe_film(restarting_ts)
    detection = detect_shots(restarting_ts, probe, tiny_config.shots, tiny_config.analysis)
    assert detection.timestamps == "rebuilt" and detection.n_frames == 72 + 48
    assert [s.start_frame for s in detection.shots[1:]] == [*base.cut_frames, 72, 102]
    assert detection.frame_pts[72] == pytest.approx(3.0)  # frame / fps, no restart
    probe = settled_probe(probe, detection)
    assert probe.timestamps == "rebuilt" and probe.duration_seconds == pytest.approx(5.0)
    # keyframes on both sides of the restart are found (they were not: "keyframe decode
    # ended before frame N")
    chosen = {0: [10], 3: [80], 4: [110]}
    frames = [
        k.frame for k in read_keyframes(str(restarting_ts), probe, detection.frame_pts, chosen)
    ]
    assert frames == [10, 80, 110]
    # a clip across the restart is frame-exact: its cuts sit where the plan puts them
    shots = detection.shots[1:5]
    plan = plan_clip(
        detection.frame_pts,
        detection.end_pts,
        shots[0].start_frame,
        shots[-1].end_frame,
        Fraction(24),
    )
    expected = [plan.first_output_frame(s.start_frame) for s in shots[1:]]
    clip = tmp_path / "clip.mp4"
    size = encode_clip(
        restarting_ts,
        probe,
        detection.frame_pts,
        plan,
        ClipsConfig(short_side=90, preset="ultrafast"),
        clip,
    )
    assert cut_frames_in(clip, size) == expected == [30, 48, 78]


def test_split_detection_falls_back_to_one_pass_when_timestamps_cannot_seek(
    odd_root: Path, restarting_ts: Path, base: SyntheticFilm, tiny_config
) -> None:
    """A long film is detected in ranges that seek by packet timestamps; a film whose
    timestamps restart, or whose packets have none (AVI with B-frames), is detected in one
    pass instead of failing ("no video packets with timestamps")."""
    avi = ffmpeg_to(
        odd_root / "bframes.avi",
        "-i",
        str(base.path),
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
    )
    assert packet_timestamps(avi) is None and packet_timestamps(restarting_ts) is None
    ranged = ShotsConfig(range_seconds=0.5, range_overlap_seconds=0.5)
    for path, cuts in ((avi, base.cut_frames), (restarting_ts, [*base.cut_frames, 72, 102])):
        probe = probe_film(path)
        split = detect_shots(path, probe, ranged, tiny_config.analysis)
        single = detect_shots_single_pass(path, probe, tiny_config.shots, tiny_config.analysis)
        assert [s.start_frame for s in split.shots[1:]] == cuts
        assert split.frame_pts.tolist() == single.frame_pts.tolist()


def test_anamorphic_film_is_scaled_by_its_display_aspect(odd_root: Path, tiny_config) -> None:
    """360x240 stored, pixels 32:27 wide: shown as 426x240; every decode unsqueezes it."""
    film = make_film(
        odd_root / "anamorphic.mp4", (24, 24), fps=24, width=360, height=240, sar="32:27"
    )
    probe = probe_film(film.path)
    assert (probe.coded_width, probe.coded_height) == (360, 240)
    assert probe.sample_aspect_ratio == "32:27" and (probe.width, probe.height) == (426, 240)
    assert analysis_size(probe, tiny_config.analysis) == (128, 72)
    assert keyframe_size(probe, 640) == (426, 240)
    detection = detect_shots(film.path, probe, tiny_config.shots, tiny_config.analysis)
    [keyframe] = read_keyframes(str(film.path), probe, detection.frame_pts, {0: [5]})
    assert keyframe.image.shape == (240, 426, 3)


def _comb(image: np.ndarray) -> float:
    """Mean difference of each row from the average of its neighbours: woven fields of a
    moving edge make every other row jump."""
    gray = image.astype(np.float32).mean(axis=2)
    return float(np.abs(gray[1:-1] - (gray[:-2] + gray[2:]) / 2).mean())


def test_interlaced_film_is_detected_and_deinterlaced_frame_for_frame(
    odd_root: Path, base: SyntheticFilm
) -> None:
    path = make_interlaced(odd_root / "interlaced.mp4")
    probe = probe_film(path)
    assert probe.field_order == "tt" and probe.interlaced and probe.deinterlace
    assert not probe_film(path, deinterlace="off").deinterlace
    assert not probe_film(base.path).deinterlace
    assert probe_film(odd_root / "base.mp4", deinterlace="on").deinterlace
    woven = list(FrameReader(path, (320, 240)))
    clean = list(FrameReader(path, (320, 240), **decode_options(probe)))
    # one frame out per frame in, at the same times
    assert [f.pts for f in clean] == [f.pts for f in woven] and len(clean) == 50
    assert np.mean([_comb(f.image) for f in clean]) < 0.2 * np.mean([_comb(f.image) for f in woven])


def test_interlace_unknown_to_the_stream_is_found_by_idet(odd_root: Path, base) -> None:
    """An MPEG-4 AVI does not say how its fields are ordered: idet looks at its frames."""
    woven = make_interlaced(odd_root / "woven.mp4")
    args = ("-c:v", "mpeg4", "-q:v", "3", "-f", "avi")
    interlaced = ffmpeg_to(odd_root / "woven.avi", "-i", str(woven), *args, "-flags", "+ilme+ildct")
    progressive = ffmpeg_to(odd_root / "progressive.avi", "-i", str(base.path), "-an", *args)
    probe = probe_film(interlaced)
    assert probe.field_order == "unknown" and probe.idet_interlaced is True and probe.deinterlace
    probe = probe_film(progressive)
    assert probe.field_order == "unknown" and probe.idet_interlaced is False
    assert not probe.deinterlace
    # the stream's word is enough when it says; off means off
    assert probe_film(woven).idet_interlaced is None
    assert not probe_film(interlaced, deinterlace="off").deinterlace


def test_mkv_with_untimed_packets_is_timed_by_frame(odd_root: Path, base, tiny_config) -> None:
    """Laced MKV frames have no timestamp; the build failed ("decoded 145 of 148 frames",
    "keyframe decode ended before frame N"). Now the probe says so from the packets, the
    rate comes from the timed ones, and every decode numbers frames from the start."""
    timed = ffmpeg_to(odd_root / "timed.mkv", "-i", str(base.path), "-an", "-c", "copy")
    laced = make_laced_mkv(timed, odd_root / "laced.mkv")
    probe = probe_film(laced)
    assert probe.timestamps == "rebuilt" and probe.fps_fraction == "24/1"
    assert probe.frame_count_estimate == 72 and packet_timestamps(laced) is None
    detection = detect_shots(laced, probe, tiny_config.shots, tiny_config.analysis)
    assert detection.timestamps == "rebuilt" and detection.n_frames == 72
    assert [s.start_frame for s in detection.shots[1:]] == base.cut_frames
    chosen = {0: [3], 1: [40], 2: [70]}
    found = [k.frame for k in read_keyframes(str(laced), probe, detection.frame_pts, chosen)]
    assert found == [3, 40, 70]


def test_laced_mkv_maker_skips_checksums_whatever_their_bytes(odd_root: Path, base) -> None:
    """ffmpeg starts Tracks with a CRC-32 over content that holds a random track UID; the
    maker read those four bytes as element headers and failed about one time in eight (a sum
    whose first byte claims a long id). The sum is set here to one that did."""
    timed = ffmpeg_to(odd_root / "crc.mkv", "-i", str(base.path), "-an", "-c", "copy")
    data = timed.read_bytes()
    # the Tracks element (its id also stands in the SeekHead) and the CRC-32 it starts with
    tracks = [m.start() for m in re.finditer(bytes.fromhex("1654AE6B"), data)]
    crcs = [c for t in tracks if 0 <= (c := data.find(b"\xbf\x84", t)) - t < 16]
    assert len(crcs) == 1, "ffmpeg wrote no CRC-32 at the start of Tracks"
    crc = crcs[0]
    timed.write_bytes(data[: crc + 2] + b"\n\xdbT8" + data[crc + 6 :])
    laced = make_laced_mkv(timed, odd_root / "crc-laced.mkv")
    assert probe_film(laced).frame_count_estimate == 72
