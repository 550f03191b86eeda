"""Preflight: what a build needs, checked without a build (``muss-builder doctor``), and the
cheap part of it that every build runs before its first film (``preflight``).

``run_doctor`` returns ``Check`` records (name, ok, detail, fix): ffmpeg and its codecs, Ray
and the resources the stages ask for, every configured model found and readable (size,
device, licence), the caption server, and the output store. ``preflight`` checks ffmpeg,
x264 and that each model's files are where its stage will look, without loading any, and
raises ``PreflightError`` naming the stage that would fail.
"""

from __future__ import annotations

import shutil

from muss_builder.config import PipelineConfig
from muss_builder.core.encoders import CPU_H264
from muss_builder.doctor.checks import (
    check_caption_server,
    check_codecs,
    check_ffmpeg,
    check_output,
    check_ray,
    check_resources,
    check_torchvision,
)
from muss_builder.doctor.loading import check_model
from muss_builder.doctor.models import ModelSpec, configured_models, model_present
from muss_builder.doctor.record import Check
from muss_builder.media import gpu

__all__ = [
    "Check",
    "ModelSpec",
    "PreflightError",
    "configured_models",
    "preflight",
    "run_doctor",
]


class PreflightError(Exception):
    """A build cannot start: ``stage`` is the stage that would fail (``media`` for ffmpeg)."""

    def __init__(self, stage: str, why: str) -> None:
        super().__init__(why)
        self.stage = stage


def run_doctor(
    config: PipelineConfig, out: str | None = None, ray_address: str | None = None
) -> list[Check]:
    """Every check, in the order a build meets them."""
    checks = check_ffmpeg()
    checks += check_codecs(config)
    ray_check, resources = check_ray(config, ray_address)
    checks.append(ray_check)
    if config.runtime.executor == "ray" or ray_address is not None:
        checks += check_resources(config, resources)
    checks += [check_model(spec) for spec in configured_models(config)]
    checks += check_torchvision(config)
    checks += check_caption_server(config)
    if out is not None:
        checks.append(check_output(out))
    return checks


def preflight(config: PipelineConfig) -> None:
    """The cheap checks a build runs before its first film: ffmpeg, ffprobe and x264 present,
    and every configured model's files where its stage will look (nothing is loaded).
    ``PreflightError`` on the first problem, with what to do."""
    for name in ("ffmpeg", "ffprobe"):
        if shutil.which(name) is None:
            raise PreflightError(
                "media", f"{name} not found on PATH: install FFmpeg (e.g. `apt-get install "
                "ffmpeg`) or run `make ffmpeg`; `muss-builder doctor` checks the rest"
            )  # fmt: skip
    encoders = gpu.ffmpeg_encoders()
    if encoders and CPU_H264 not in encoders:  # an empty list: ffmpeg did not answer
        raise PreflightError(
            "media", f"this ffmpeg ({shutil.which('ffmpeg')}) has no {CPU_H264} encoder: "
            "install an FFmpeg built with x264 (a distribution's ffmpeg package is)"
        )  # fmt: skip
    for spec in configured_models(config):
        if spec.kind == "server":
            continue  # a server may start after the build does; the captioner retries
        problem = model_present(spec)
        if problem is not None:
            raise PreflightError(spec.stage, problem)
