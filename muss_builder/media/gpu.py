"""GPU media: whether this node can decode with NVDEC and encode with NVENC, and the fallback
to the CPU (with a warning for the film's notes) where it cannot.

Each answer is found once per process and per ``CUDA_VISIBLE_DEVICES`` (a Ray worker that
holds no GPU sees none): ffmpeg must list the cuda hwaccel / the NVENC encoder, a GPU must be
visible, and a tiny real run must succeed. The last step matters: an ffmpeg built with
NVENC lists it on any machine, and the H100 and A100 have NVDEC but no NVENC at all.
The decision is made where the decode or encode runs, since the nodes of one cluster differ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from muss_builder.core.encoders import CPU_H264, GPU_H264, H264Encoder
from muss_builder.core.models import no_nvidia_device
from muss_builder.media.commands import H264Options, cuda_device_test, encoder_test
from muss_builder.media.tools import MediaError, binary

# What NVDEC decodes (NVIDIA's Video Codec SDK support matrix, as ffmpeg's cuda hwaccel
# names them); anything else is decoded on the CPU without asking the GPU.
NVDEC_CODECS = frozenset(
    {"h264", "hevc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "vc1", "mjpeg"}
)
_PROBE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class MediaChoice:
    """What a decode or an encode runs on, and why it is not what the config asked for."""

    value: str | None  # the hwaccel ("cuda" or None) or the encoder name
    warning: str | None = None


def _ffmpeg_lines(*args: str) -> list[str]:
    try:
        proc = subprocess.run(
            [binary("ffmpeg"), "-hide_banner", *args],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (MediaError, OSError, subprocess.TimeoutExpired):
        return []
    return proc.stdout.splitlines()


@cache
def ffmpeg_hwaccels() -> frozenset[str]:
    """``ffmpeg -hwaccels``: the hardware decoders this ffmpeg was built with."""
    lines = _ffmpeg_lines("-hwaccels")
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.endswith(":"))


@cache
def ffmpeg_encoders() -> frozenset[str]:
    """``ffmpeg -encoders``: the names of the encoders this ffmpeg was built with."""
    names = set()
    for line in _ffmpeg_lines("-encoders"):
        parts = line.split()
        # rows look like " V....D name  description" after a legend that ends in "------"
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def gpu_visible() -> bool:
    """An NVIDIA GPU this process may use: a device node, CUDA_VISIBLE_DEVICES not empty (Ray
    empties it for a task that holds no GPU) and, where nvidia-smi exists, a GPU it lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        return False
    if no_nvidia_device():
        return False
    return _nvidia_smi_lists_a_gpu()


@cache
def _nvidia_smi_lists_a_gpu() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return True  # a container without the tool: the device node has to do
    try:
        proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "GPU" in proc.stdout


def _runs(command: Callable[[], list[str]]) -> bool:
    """A tiny ffmpeg run on the GPU (a lavfi source to the null muxer) succeeds."""
    try:
        args = command()
        proc = subprocess.run(args, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (MediaError, OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


# keyed by CUDA_VISIBLE_DEVICES: a worker process may be handed other GPUs later
@cache
def _cuda_device_works(_visible: str | None) -> bool:
    return _runs(cuda_device_test)


@cache
def _nvenc_works(_visible: str | None) -> bool:
    return _runs(lambda: encoder_test(H264Options(preset="p1", encoder=GPU_H264)))


def nvdec_problem() -> str | None:
    """Why this process cannot decode with NVDEC, or None when it can."""
    if "cuda" not in ffmpeg_hwaccels():
        return "this ffmpeg has no cuda hwaccel (`ffmpeg -hwaccels`)"
    if not gpu_visible():
        return "no GPU is visible to this process"
    if not _cuda_device_works(os.environ.get("CUDA_VISIBLE_DEVICES")):
        return "ffmpeg could not open the CUDA device"
    return None


def nvenc_problem() -> str | None:
    """Why this process cannot encode with NVENC, or None when it can."""
    if GPU_H264 not in ffmpeg_encoders():
        return f"this ffmpeg has no {GPU_H264} encoder (`ffmpeg -encoders`)"
    if not gpu_visible():
        return "no GPU is visible to this process"
    if not _nvenc_works(os.environ.get("CUDA_VISIBLE_DEVICES")):
        return f"a test encode with {GPU_H264} failed (a GPU without NVENC, e.g. H100/A100?)"
    return None


def choose_decoder(setting: str, codec: str) -> MediaChoice:
    """The hwaccel for a film of ``codec`` under ``media.decoder`` = ``setting``.

    ``auto`` says nothing when the node has no NVDEC (a CPU node is no surprise); an explicit
    ``nvdec`` that cannot be served, or a codec NVDEC does not take, is a warning."""
    if setting == "cpu":
        return MediaChoice(None)
    problem = nvdec_problem()
    if problem is not None:
        why = f"media.decoder {setting}: {problem}; decoded on the CPU"
        return MediaChoice(None, why if setting == "nvdec" else None)
    if codec not in NVDEC_CODECS:
        return MediaChoice(None, f"media.decoder {setting}: NVDEC does not decode {codec}; "
                                 "decoded on the CPU")  # fmt: skip
    return MediaChoice("cuda")


def choose_encoder(setting: H264Encoder) -> MediaChoice:
    """The clip encoder for ``clips.encoder`` = ``setting`` on this node."""
    if setting == CPU_H264:
        return MediaChoice(CPU_H264)
    problem = nvenc_problem()
    if problem is not None:
        return MediaChoice(CPU_H264, f"clips.encoder {setting}: {problem}; clips encoded with "
                                     f"{CPU_H264} on the CPU")  # fmt: skip
    return MediaChoice(GPU_H264)


def forget_media_checks() -> None:
    """Drop the cached answers (tests that change the PATH or the visible GPUs)."""
    for cached in (ffmpeg_hwaccels, ffmpeg_encoders, _nvidia_smi_lists_a_gpu,
                   _cuda_device_works, _nvenc_works):  # fmt: skip
        cached.cache_clear()
