"""``doctor``'s checks of the machine and the cluster: ffmpeg and its codecs, the output
store, Ray, the resources the stages ask for and the caption server. Each is a small function
returning ``Check`` records; nothing here starts a build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from muss_builder.captions.video import model_reads_video
from muss_builder.config import PipelineConfig, StageResources
from muss_builder.core.encoders import CPU_H264, GPU_H264
from muss_builder.core.storage import Storage
from muss_builder.core.torchvision_compat import prepare_torchvision
from muss_builder.doctor.models import configured_models
from muss_builder.doctor.record import Check
from muss_builder.media import gpu

_INSTALL_FFMPEG = "install FFmpeg (e.g. `apt-get install ffmpeg`) or run `make ffmpeg`"


def check_ffmpeg() -> list[Check]:
    """ffmpeg and ffprobe on PATH (looked up now, not cached: the PATH may have changed)."""
    found = []
    for name in ("ffmpeg", "ffprobe"):
        path = shutil.which(name)
        if path is None:
            found.append(Check(name, False, "not found on PATH", _INSTALL_FFMPEG))
            continue
        try:
            first = subprocess.run(
                [path, "-version"], capture_output=True, text=True, timeout=20, check=False
            ).stdout.splitlines()
        except (OSError, subprocess.TimeoutExpired) as exc:
            found.append(Check(name, False, f"{path} does not run: {exc}", _INSTALL_FFMPEG))
            continue
        version = first[0].split(" Copyright")[0] if first else "version unknown"
        found.append(Check(name, True, f"{path} ({version})"))
    return found


def check_codecs(config: PipelineConfig) -> list[Check]:
    """x264 always (the clips' encoder, and the fallback of NVENC); NVENC and NVDEC when the
    config asks for them, tried for real (an ffmpeg lists them on machines without them)."""
    if shutil.which("ffmpeg") is None:
        return []  # check_ffmpeg has said it
    gpu.forget_media_checks()
    found = []
    if CPU_H264 in gpu.ffmpeg_encoders():
        found.append(Check(f"encoder {CPU_H264}", True, "listed by `ffmpeg -encoders`"))
    else:
        fix = "install an FFmpeg built with x264 (a distribution's ffmpeg package is)"
        found.append(Check(f"encoder {CPU_H264}", False, "this ffmpeg has no x264", fix))
    if config.clips.encoder == GPU_H264:
        problem = gpu.nvenc_problem()
        fix = (
            f"the build would encode clips with {CPU_H264} on the CPU instead: run on a node "
            f"whose GPU has NVENC (L4, L40S, A10; not H100/A100) or set clips.encoder: {CPU_H264}"
        )
        detail = problem or "a test encode on the GPU passed"
        found.append(Check(f"encoder {GPU_H264}", problem is None, detail, fix if problem else ""))
    decoder = config.media.decoder
    if decoder != "cpu":
        problem = gpu.nvdec_problem()
        # auto on a CPU node is what auto means; only an explicit nvdec is a failure
        ok = problem is None or decoder == "auto"
        detail = "NVDEC (ffmpeg -hwaccel cuda) works" if problem is None else problem
        if problem and decoder == "auto":
            detail += ": films are decoded on the CPU"
        fix = "" if ok else "run on a GPU node with the NVIDIA driver, or set media.decoder: auto"
        found.append(Check(f"decoder {decoder}", ok, detail, fix))
    return found


def _writable_folder(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (tried for real: root ignores modes)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".muss-doctor-"):
            pass
    except OSError as exc:
        return str(exc)
    return None


def check_output(out: str) -> Check:
    """The output store takes files: a local folder (or the nearest existing folder above
    it, which the build would create it in) or a remote store (a probe object written and
    removed)."""
    store = Storage.open(out)
    name = "output store"
    if store.remote:
        probe = f".muss-doctor-{uuid.uuid4().hex}"
        try:
            store.write_bytes(probe, b"doctor")
            store.remove(probe)
        except Exception as exc:  # fsspec backends raise their own errors (auth, bucket)
            fix = "check the bucket, the credentials (e.g. AWS_* / MUSS_STORAGE_OPTIONS)"
            return Check(name, False, f"{out}: cannot write: {exc}", fix)
        return Check(name, True, f"{out} (remote): a test object was written and removed")
    root = Path(store.root)
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check(name, False, f"{existing} is not a folder", "choose another --out")
    problem = _writable_folder(existing)
    if problem:
        return Check(name, False, f"{out}: {problem}", f"make {existing} writable or pick --out")
    free = shutil.disk_usage(existing).free
    made = "" if existing == root else f" (to be created in {existing})"
    return Check(name, True, f"{root}{made}; {free / 1e9:,.0f} GB free")


def _connect_ray(address: str) -> tuple[dict[str, float], list[dict[str, float]]]:
    """The cluster's total resources and each alive node's, from a short-lived connection."""
    import ray

    ray.init(address=address, ignore_reinit_error=True, logging_level="ERROR", log_to_driver=False)
    try:
        total = {k: float(v) for k, v in ray.cluster_resources().items()}
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    finally:
        ray.shutdown()
    return total, nodes


def _local_resources() -> tuple[dict[str, float], list[dict[str, float]]]:
    """What a local Ray would get, without starting one (it takes seconds)."""
    gpus = 0.0
    if gpu.gpu_visible():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = float(len(visible.split(","))) if visible else float(_count_gpus())
    node = {"CPU": float(os.cpu_count() or 1), "GPU": gpus}
    return node, [node]


def _count_gpus() -> int:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 1  # a device node and no tool: at least one
    out = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout
    return sum(line.startswith("GPU ") for line in out.splitlines())


def check_ray(config: PipelineConfig, address: str | None) -> tuple[Check, Any]:
    """Ray importable and, with an address, the cluster reachable; returns the check and the
    (total, per-node) resources for ``check_resources`` (None when unknown)."""
    if config.runtime.executor == "inline" and address is None:
        return Check("ray", True, "not used (runtime.executor: inline)"), _local_resources()
    try:
        import ray
    except ImportError as exc:
        return Check("ray", False, str(exc), "pip install 'ray[default]'"), None
    if address is None:
        total, nodes = _local_resources()
        detail = f"ray {ray.__version__}; a local cluster would get {total['CPU']:g} CPUs"
        return Check("ray", True, f"{detail}, {total['GPU']:g} GPUs"), (total, nodes)
    try:
        total, nodes = _connect_ray(address)
    except Exception as exc:  # ConnectionError, a version mismatch, a timeout
        fix = "start the cluster (`ray start --head`) or fix --ray-address; versions must match"
        return Check("ray", False, f"cannot connect to {address}: {exc}", fix), None
    detail = (
        f"ray {ray.__version__} at {address}: {len(nodes)} node(s), "
        f"{total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs"
    )
    return Check("ray", True, detail), (total, nodes)


def _stage_problem(
    name: str, ask: StageResources, total: dict[str, float], nodes: list[dict[str, float]]
) -> str | None:
    """Why Ray could never place one call (or the pool) of a stage: it would wait forever."""
    biggest_cpu = max((n.get("CPU", 0.0) for n in nodes), default=0.0)
    biggest_gpu = max((n.get("GPU", 0.0) for n in nodes), default=0.0)
    if ask.num_gpus > biggest_gpu:
        return f"asks {ask.num_gpus:g} GPU(s) per call; the largest node has {biggest_gpu:g}"
    if ask.num_cpus > biggest_cpu:
        return f"asks {ask.num_cpus:g} CPU(s) per call; the largest node has {biggest_cpu:g}"
    if ask.actors and ask.num_gpus * ask.actors > total.get("GPU", 0.0):
        return (
            f"{ask.actors} actors x {ask.num_gpus:g} GPU = {ask.actors * ask.num_gpus:g} GPUs; "
            f"the cluster has {total.get('GPU', 0.0):g}"
        )
    return None


def check_resources(config: PipelineConfig, resources: Any) -> list[Check]:
    """Every stage's ask fits a node (and an actor pool fits the cluster)."""
    if resources is None:
        return [Check("stage resources", False, "unknown: Ray did not answer", "fix Ray first")]
    total, nodes = resources
    found = []
    stages = config.runtime.stages
    for name in type(stages).model_fields:
        ask: StageResources = getattr(stages, name)
        problem = _stage_problem(name, ask, total, nodes)
        asked = f"{ask.num_cpus:g} CPU, {ask.num_gpus:g} GPU" + (
            f", {ask.actors} actors" if ask.actors else ""
        )
        fix = f"lower runtime.stages.{name}, or add nodes with what it asks"
        found.append(
            Check(f"stage {name}", problem is None, f"{asked}: {problem or 'fits'}",
                  fix if problem else "")
        )  # fmt: skip
    return found


def check_caption_server(config: PipelineConfig) -> list[Check]:
    """An OpenAI-compatible caption server answers ``GET /models`` and serves the model."""
    cap = config.captions
    if not (cap.enabled and cap.backend == "openai"):
        return []
    url = cap.base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    key = os.environ.get(cap.api_key_env)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    fix = f"start the server (e.g. `vllm serve {cap.model}`) or fix captions.base_url"
    try:
        with urllib.request.urlopen(request, timeout=min(cap.timeout_s, 10.0)) as reply:
            import json

            served = [m.get("id") for m in json.loads(reply.read()).get("data", [])]
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return [Check("caption server", False, f"{url}: {exc}", fix)]
    if cap.model not in served:
        detail = f"{url} serves {served}, not {cap.model}"
        return [Check("caption server", False, detail, "set captions.model to a served name")]
    return [Check("caption server", True, f"{url} serves {cap.model}")]


def check_torchvision(config: PipelineConfig) -> list[Check]:
    """torchvision, when a configured model goes through transformers (which imports it for
    every image and video processor once it is installed): absent is fine unless the caption
    model reads clips (the Qwen-VL video processors need it); a build for another torch is
    made importable (``core/torchvision_compat.py``) and said; one that still fails is not."""
    if not any(spec.kind == "hf" for spec in configured_models(config)):
        return []
    state = prepare_torchvision()
    cap = config.captions
    video = cap.backend == "transformers" and model_reads_video(cap)
    install = (
        "pip install the torchvision built for your torch "
        "(torchvision==0.28.0 beside torch==2.13.0)"
    )
    if state == "absent":
        if video:
            why = f"not installed; the video processor of {cap.model} needs it"
            return [Check("torchvision", False, why, install)]
        return [
            Check("torchvision", True, "not installed (only the Qwen-VL video processors need it)")
        ]
    if state.startswith("broken"):
        why = f"installed but does not import ({state.removeprefix('broken: ')})"
        return [Check("torchvision", False, why, install + ", or uninstall it")]
    import torch
    import torchvision

    versions = f"torchvision {torchvision.__version__} beside torch {torch.__version__}"
    if state == "python-only":
        versions += (
            ": built for another torch, its compiled ops (nms) do not load; the Python "
            "transforms the processors use do"
        )
    return [Check("torchvision", True, versions)]
