"""The command builder: the argument lists of a few representative commands, exactly."""

from __future__ import annotations

import ast
import itertools
from fractions import Fraction
from pathlib import Path

from muss_builder.config import ClipsConfig
from muss_builder.media.clips import EXACT_SCALE_FLAGS
from muss_builder.media.commands import (
    H264Options,
    clip_options,
    interlace_detect,
    probe_packets,
    raw_to_h264,
    x264_threads,
)
from muss_builder.media.decode import FrameReader
from muss_builder.media.tools import binary

PACKAGE = Path(__file__).resolve().parents[2] / "muss_builder"


def _pairs(args: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(args))


def test_the_clip_encode_reads_raw_frames_and_writes_a_reproducible_file() -> None:
    cfg = ClipsConfig(encoder_threads=2, encoder_threading="frame")
    args = raw_to_h264("/o/clip.mp4", (640, 360), Fraction(24000, 1001), clip_options(cfg))
    assert args[:7] == [
        binary("ffmpeg"),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
    ]
    before_input, after_input = args[: args.index("-i")], args[args.index("-i") + 2 :]
    assert args[args.index("-i") + 1] == "pipe:0"
    raw = _pairs(before_input)
    assert {("-f", "rawvideo"), ("-s", "640x360"), ("-framerate", "24000/1001")} <= raw
    assert ("-pix_fmt", "rgb24") in raw
    out = _pairs(after_input)
    assert {("-c:v", "libx264"), ("-preset", cfg.preset), ("-crf", str(cfg.crf))} <= out
    assert ("-x264-params", "threads=2:sliced-threads=0:sync-lookahead=0") in out
    assert {("-fflags", "+bitexact"), ("-flags:v", "+bitexact"), ("-map_metadata", "-1")} <= out
    assert ("-movflags", "+faststart") in out and ("-pix_fmt", "yuv420p") in out
    assert "-filter_complex" not in args and args[-1] == "/o/clip.mp4"


def test_a_scaled_encode_compiles_its_filter_graph() -> None:
    args = raw_to_h264("o.mp4", (64, 48), Fraction(24), H264Options(), scale_to=(32, 24))
    at = args.index("-filter_complex")
    assert args[at : at + 4] == ["-filter_complex", "[0]scale=32:24[s0]", "-map", "[s0]"]
    plain = raw_to_h264("o.mp4", (64, 48), Fraction(24), H264Options(), scale_to=(64, 48))
    assert "-filter_complex" not in plain  # the same size: nothing to scale


def test_codec_args_keep_their_order() -> None:
    options = H264Options(preset="ultrafast", crf=18, x264_params="threads=1", keyframe_interval=24)
    assert options.codec_args() == [
        *("-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"),
        *("-x264-params", "threads=1", "-g", "24"),
    ]
    assert x264_threads(4, "slice") == "threads=4:sliced-threads=1"
    assert x264_threads(1, "slice") == "threads=1:sliced-threads=0:sync-lookahead=0"


def test_the_keyframe_decode_scales_exactly_through_a_simple_filtergraph() -> None:
    reader = FrameReader(
        "/f/film.mkv",
        (320, 180),
        seek_seconds=12.5,
        only_times=[13.0],
        max_frames=1,
        deinterlace=True,
        scale_flags=EXACT_SCALE_FLAGS,
    )
    select = "select='between(t,12.9999995,13.0000005)'"
    assert reader._args() == [
        *(binary("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "info", "-copyts"),
        *("-ss", "12.500000", "-i", "/f/film.mkv", "-map", "0:v:0", "-an", "-sn", "-dn"),
        "-vf",
        f"bwdif=mode=send_frame:parity=auto:deint=all,{select},"
        "scale=320:180:flags=area+accurate_rnd+bitexact,setsar=1,showinfo",
        *("-fps_mode", "passthrough", "-frames:v", "1"),
        *("-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"),
    ]


def test_probes_and_the_interlace_check() -> None:
    assert probe_packets("a.ts", "packet=pts", read_from=9.5) == [
        *(binary("ffprobe"), "-v", "error", "-select_streams", "v:0"),
        *("-read_intervals", "9.500%", "-show_entries", "packet=pts", "-of", "json", "a.ts"),
    ]
    assert interlace_detect("a.mp4", -1.0, 200) == [
        *(binary("ffmpeg"), "-hide_banner", "-nostdin", "-ss", "0.000", "-i", "a.mp4"),
        *("-filter_complex", "[0:v:0]idet[s0]", "-map", "[s0]"),
        *("-f", "null", "-an", "-frames:v", "200", "-"),
    ]


def test_one_module_names_the_h264_encoder() -> None:
    """Every H.264 file gets its codec options from media/commands.py; the encoders' names
    are spelled once, in core/encoders.py (config/ needs them too, and may not import
    media), and only commands.py puts them on a command line (``-c:v``)."""
    naming = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
        if any(isinstance(s, str) and "libx264" in s for s in strings):
            naming.append(path.relative_to(PACKAGE).as_posix())
    assert naming == ["core/encoders.py"]
    codec_flag = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if '"-c:v"' in path.read_text()
    ]
    assert codec_flag == ["media/commands.py"]
