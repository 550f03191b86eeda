"""GPU media: NVDEC/NVENC command lines, the choice of each per node, and the fallback to the
CPU (a correct clip and a warning) on a machine that cannot serve what the config asks."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import pytest

from muss_builder.config import ClipsConfig, PipelineConfig
from muss_builder.core.encoders import CPU_H264, GPU_H264
from muss_builder.media import clips as clips_module
from muss_builder.media import gpu
from muss_builder.media.clips import encode_clip, encode_clip_or_fall_back, plan_clip
from muss_builder.media.commands import clip_options, frame_decode, raw_to_h264
from muss_builder.media.decode import FrameReader, read_frames
from muss_builder.media.probe import decode_options, probe_film
from muss_builder.shots.segment import detect_shots
from muss_builder.testing.synthetic_films import cut_frames_in


def _pairs(args: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(args))


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as a CPU node, whatever it has."""
    monkeypatch.setattr(gpu, "gpu_visible", lambda: False)


@pytest.fixture
def nvdec_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node that has NVDEC (for the choice only: nothing is decoded)."""
    monkeypatch.setattr(gpu, "nvdec_problem", lambda: None)


def test_nvenc_options_keep_clips_frame_exact_and_constant_quality() -> None:
    cfg = ClipsConfig(encoder=GPU_H264, nvenc_preset="p5", nvenc_cq=21)
    args = raw_to_h264("/o/clip.mp4", (640, 360), Fraction(24), clip_options(cfg))
    out = _pairs(args[args.index("-i") + 2 :])
    assert {("-c:v", GPU_H264), ("-preset", "p5"), ("-tune", "hq"), ("-rc", "vbr")} <= out
    assert {("-cq", "21"), ("-b:v", "0"), ("-bf", "0"), ("-pix_fmt", "yuv420p")} <= out
    assert {("-fflags", "+bitexact"), ("-map_metadata", "-1")} <= out  # as x264's clips
    assert "-x264-params" not in args and CPU_H264 not in args and "-crf" not in args


def test_the_clip_encoder_follows_the_config_or_the_caller() -> None:
    assert clip_options(ClipsConfig()).encoder == CPU_H264
    assert clip_options(ClipsConfig(encoder=GPU_H264)).encoder == GPU_H264
    x264 = clip_options(ClipsConfig(encoder=GPU_H264), CPU_H264)
    assert x264 == clip_options(ClipsConfig())  # the fallback is the CPU clip, exactly


def test_nvdec_is_an_input_option_and_the_filters_stay_on_the_cpu() -> None:
    args = frame_decode("f.mp4", ["scale=64:36"], pix_fmt="rgb24", seek_seconds=2.0, hwaccel="cuda")
    at = args.index("-hwaccel")
    assert args[at + 1] == "cuda" and at < args.index("-ss") < args.index("-i")
    assert "-hwaccel_output_format" not in args  # frames come back for the CPU filters
    assert args[args.index("-vf") + 1] == "scale=64:36"
    assert "-hwaccel" not in frame_decode("f.mp4", ["null"], pix_fmt="rgb24")
    reader = FrameReader("f.mp4", (64, 36), hwaccel="cuda")
    assert reader._args()[reader._args().index("-hwaccel") + 1] == "cuda"


def test_the_decoder_choice(no_gpu, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gpu.choose_decoder("cpu", "h264") == gpu.MediaChoice(None)
    # auto on a CPU node: the CPU, silently; nvdec asked for: the CPU, with a warning
    assert gpu.choose_decoder("auto", "h264") == gpu.MediaChoice(None)
    asked = gpu.choose_decoder("nvdec", "h264")
    assert asked.value is None and "no GPU is visible" in (asked.warning or "")
    assert "decoded on the CPU" in (asked.warning or "")
    monkeypatch.setattr(gpu, "nvdec_problem", lambda: None)
    assert gpu.choose_decoder("auto", "h264") == gpu.MediaChoice("cuda")
    assert gpu.choose_decoder("nvdec", "hevc").value == "cuda"
    prores = gpu.choose_decoder("nvdec", "prores")
    assert prores.value is None and "NVDEC does not decode prores" in (prores.warning or "")


def test_the_encoder_choice(no_gpu) -> None:
    assert gpu.choose_encoder(CPU_H264) == gpu.MediaChoice(CPU_H264)
    fell = gpu.choose_encoder(GPU_H264)
    assert fell.value == CPU_H264
    assert f"encoded with {CPU_H264}" in (fell.warning or "")


def test_ffmpeg_capabilities_are_read_from_its_lists() -> None:
    gpu.forget_media_checks()
    assert CPU_H264 in gpu.ffmpeg_encoders()
    assert all(" " not in name for name in gpu.ffmpeg_hwaccels())


def test_decode_options_carry_the_nodes_choice(twelve_film, no_gpu, monkeypatch) -> None:
    probe = probe_film(twelve_film.path, decoder="nvdec")
    assert "decoder" not in probe.model_dump()  # not a fact of the film: not in the record
    assert decode_options(probe)["hwaccel"] is None  # no NVDEC here: the CPU decodes
    monkeypatch.setattr(gpu, "nvdec_problem", lambda: None)
    assert decode_options(probe)["hwaccel"] == "cuda"
    assert decode_options(probe_film(twelve_film.path))["hwaccel"] is None  # cpu: never


def test_the_decoder_is_not_in_the_fingerprint_and_the_default_encoder_changes_nothing() -> None:
    base = PipelineConfig()
    nvdec = PipelineConfig.model_validate({"media": {"decoder": "nvdec"}})
    assert nvdec.fingerprint() == base.fingerprint()
    x264 = PipelineConfig.model_validate({"clips": {"encoder": CPU_H264, "nvenc_cq": 30}})
    assert x264.fingerprint() == base.fingerprint()
    nvenc = PipelineConfig.model_validate({"clips": {"encoder": GPU_H264}})
    assert nvenc.fingerprint() != base.fingerprint()


def _plan(film30, tiny_config):
    probe = probe_film(film30.path)
    detection = detect_shots(film30.path, probe, tiny_config.shots, tiny_config.analysis)
    shots = detection.shots[2:5]
    plan = plan_clip(
        detection.frame_pts, detection.end_pts, shots[0].start_frame, shots[-1].end_frame,
        Fraction(24),
    )  # fmt: skip
    expected = [plan.first_output_frame(s.start_frame) for s in shots[1:]]
    return probe, detection, plan, expected


def test_nvenc_on_a_machine_without_it_writes_the_cpu_clip_and_says_so(
    tmp_path: Path, film30, tiny_config, no_gpu
) -> None:
    probe, detection, plan, expected = _plan(film30, tiny_config)
    cfg = ClipsConfig(short_side=90, preset="ultrafast", encoder=GPU_H264)
    size, note = encode_clip_or_fall_back(
        film30.path, probe, detection.frame_pts, plan, cfg, tmp_path / "gpu.mp4"
    )
    assert note is not None and f"clips.encoder {GPU_H264}" in note and CPU_H264 in note
    assert cut_frames_in(tmp_path / "gpu.mp4", size) == expected
    assert len(read_frames(tmp_path / "gpu.mp4", (32, 18))) == plan.n_frames
    cpu = ClipsConfig(short_side=90, preset="ultrafast")
    encode_clip(film30.path, probe, detection.frame_pts, plan, cpu, tmp_path / "cpu.mp4")
    # the fallback is the CPU clip byte for byte: resumed or mixed builds stay consistent
    assert (tmp_path / "gpu.mp4").read_bytes() == (tmp_path / "cpu.mp4").read_bytes()


def test_an_nvenc_encode_that_fails_on_a_clip_is_redone_on_the_cpu(
    tmp_path: Path, film30, tiny_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NVENC chosen (the test encode passed) but the clip's encode fails: the clip is redone
    with x264. Here ffmpeg either lacks the encoder or has no GPU: both fail like that."""
    if gpu.nvenc_problem() is None:
        pytest.skip("NVENC works here: the encode would not fail")
    monkeypatch.setattr(clips_module, "choose_encoder", lambda _s: gpu.MediaChoice(GPU_H264))
    probe, detection, plan, expected = _plan(film30, tiny_config)
    cfg = ClipsConfig(short_side=90, preset="ultrafast", encoder=GPU_H264)
    size, note = encode_clip_or_fall_back(
        film30.path, probe, detection.frame_pts, plan, cfg, tmp_path / "clip.mp4"
    )
    assert note is not None and "failed on a clip" in note
    assert cut_frames_in(tmp_path / "clip.mp4", size) == expected


def test_nvdec_asked_on_a_machine_without_it_decodes_on_the_cpu(twelve_film, no_gpu) -> None:
    probe = probe_film(twelve_film.path, decoder="nvdec")
    frames = read_frames(twelve_film.path, (32, 18))
    reader = FrameReader(twelve_film.path, (32, 18), pix_fmt="rgb24", **decode_options(probe))
    assert len(list(reader)) == len(frames)


@pytest.mark.gpu
def test_nvdec_on_a_gpu_gives_the_cpu_decodes_frames_and_clips(
    tmp_path: Path, film30, tiny_config
) -> None:
    """NVDEC (the H100/H200 have it): the same frame count and timestamps as the CPU
    decode, and a clip whose cuts land on the planned frames."""
    gpu.forget_media_checks()
    if gpu.nvdec_problem():
        pytest.skip(f"no NVDEC here: {gpu.nvdec_problem()}")
    probe, detection, plan, expected = _plan(film30, tiny_config)
    cpu_frames = list(FrameReader(film30.path, (32, 18), pix_fmt="rgb24"))
    gpu_frames = list(FrameReader(film30.path, (32, 18), pix_fmt="rgb24", hwaccel="cuda"))
    assert [f.pts for f in gpu_frames] == [f.pts for f in cpu_frames]
    nvdec = probe.model_copy(update={"decoder": "nvdec"})
    assert decode_options(nvdec)["hwaccel"] == "cuda"
    cfg = ClipsConfig(short_side=90, preset="ultrafast")
    size = encode_clip(film30.path, nvdec, detection.frame_pts, plan, cfg, tmp_path / "c.mp4")
    assert cut_frames_in(tmp_path / "c.mp4", size) == expected


@pytest.mark.gpu
def test_nvenc_on_a_gpu_keeps_clips_frame_exact(tmp_path: Path, film30, tiny_config) -> None:
    """NVENC (L4, L40S, A10...; not H100/H200/A100): the planned frames, cuts in place."""
    gpu.forget_media_checks()
    if gpu.nvenc_problem():
        pytest.skip(f"no NVENC here: {gpu.nvenc_problem()}")
    probe, detection, plan, expected = _plan(film30, tiny_config)
    cfg = ClipsConfig(short_side=90, encoder=GPU_H264)
    size, note = encode_clip_or_fall_back(
        film30.path, probe, detection.frame_pts, plan, cfg, tmp_path / "clip.mp4"
    )
    assert note is None
    assert cut_frames_in(tmp_path / "clip.mp4", size) == expected
    assert len(read_frames(tmp_path / "clip.mp4", (32, 18))) == plan.n_frames
