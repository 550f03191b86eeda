"""Which reproducibility a build can promise, recorded in every film record.

``bitexact-cpu``: every stage ran on the CPU without a language model. The same films and
config then give the same bytes whatever the executor, the CPU count or the load (tested at a
real size in tests/runtime/test_real_size.py), because each source of run-to-run change is
pinned: x264's thread count and lookahead (media/commands.py ``clip_options``), the scaler's
rounding (``EXACT_SCALE_FLAGS``), no wall-clock or absolute path in the shards or the index.
ONNX Runtime (faces) and FAISS (identities) gave the same bits with 1, 2, 4 and 8 threads
(docs/benchmarks.md "Determinism"), so their thread counts are left to them.

``gpu-nondeterministic``: a model stage may run on a GPU (``device: cuda``, or ``auto`` on a
machine with an NVIDIA device), where convolution and reduction kernels are picked by
autotuning and summed in varying order: face boxes, embeddings and TransNetV2 probabilities
can differ in their last bits between runs and GPU models, and a borderline cut or identity
can flip. Shards are then reproducible per run, not across runs. NVENC clips
(``clips.encoder: h264_nvenc`` on a GPU node) are in this mode too: their bytes follow the GPU
model and the driver.

``model-nondeterministic``: captions come from a language model (a local VLM or an
endpoint), whose sampling, batching and server we do not pin.
"""

from __future__ import annotations

from typing import Literal

from muss_builder.config import PipelineConfig
from muss_builder.core.encoders import GPU_H264

Determinism = Literal["bitexact-cpu", "gpu-nondeterministic", "model-nondeterministic"]


def gpu_visible() -> bool:
    """An NVIDIA device node on this machine (cheap: no torch or CUDA import)."""
    from muss_builder.core.models import no_nvidia_device

    return not no_nvidia_device()


def _model_devices(config: PipelineConfig) -> list[str]:
    """The device setting of every model stage this config runs."""
    devices = []
    shots = config.shots
    uses_net = shots.detector == "transnetv2" or (
        shots.detector == "muss"
        and (shots.muss.full_transnet != "never" or shots.muss.net_windows_per_minute > 0)
    )
    if uses_net:
        devices.append(shots.transnetv2.device)
    if config.subjects.enabled:
        if config.subjects.faces.enabled:
            devices.append(config.subjects.faces.device)
        if config.subjects.objects.enabled:
            devices.append(config.subjects.objects.device)
    if config.captions.enabled and config.captions.backend == "transformers":
        devices.append(config.captions.device)
    return devices


def determinism_mode(config: PipelineConfig, gpu: bool | None = None) -> Determinism:
    """The mode of a film built with ``config`` on this machine (``gpu``: whether a GPU is
    visible; looked up when None)."""
    if config.captions.enabled and config.captions.backend != "facts":
        return "model-nondeterministic"
    devices = _model_devices(config)
    if config.clips.encoder == GPU_H264:
        devices.append("auto")  # NVENC where a GPU is visible (else the x264 fallback)
    if "cuda" in devices:
        return "gpu-nondeterministic"
    if "auto" in devices and (gpu_visible() if gpu is None else gpu):
        return "gpu-nondeterministic"
    return "bitexact-cpu"
