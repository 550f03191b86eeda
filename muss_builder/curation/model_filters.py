"""Model filters of the standard profile: aesthetics, consistency inside a shot, and
caption-frame alignment.

- ``aesthetic`` (flag ``low_aesthetic``): a LAION-style head (``aesthetic.py``) on each
  keyframe's CLIP / SigLIP image embedding; the shot's score is the mean over its keyframes,
  so one odd frame does not decide it.
- ``consistency`` (flag ``inconsistent``): the smallest cosine between two keyframes of the
  shot (CLIP, SigLIP or DINOv2 embeddings). Keyframes sit in the clean part of a shot, so
  frames that disagree mean a cut the detector missed or a flash. A shot with one keyframe
  has nothing to disagree with: 1.0.
- ``alignment`` (flag ``misaligned``, per sample, after captioning): the mean cosine between
  a shot's caption embedding and its keyframes' embeddings (raw cosine, as CLIPScore before
  its rescaling); a sample is misaligned when its worst shot is below the threshold.

Models: a folder or a hub id already in the local Hugging Face cache (``core/models.py``;
never a download), loaded once per process (``loaded_model``). Filters that name the same
checkpoint on the same device share one loaded copy, and the collector embeds each keyframe
once per checkpoint. The filters are off by default: no CLIP or SigLIP weights ship inside an
installed package, so the offline profile cannot run them (``model_filter_plan`` says so).

Keyframes reach the collector already cropped to the shot's active picture (the integration
decodes them once, in the subject stage's keyframe pass), BGR.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from muss_builder.core.models import ModelNotFoundError, loaded_model, pick_device, resolve_model
from muss_builder.curation.aesthetic import AestheticHead, AestheticHeadError, load_head
from muss_builder.curation.model_embed import ImageTextModel, unit_rows
from muss_builder.filters.models import (  # noqa: F401 (re-exported: the config lives in filters/)
    CONFIG_PATH,
    DEFAULT_MODEL,
    AestheticConfig,
    AlignmentConfig,
    ConsistencyConfig,
    Device,
    ModelFiltersConfig,
    Section,
)

if TYPE_CHECKING:
    from muss_builder.shots.segment import Shot
    from muss_builder.subjects.keyframes import Keyframe

FLAGS = ("low_aesthetic", "inconsistent", "misaligned")
MEASURES: dict[str, Literal["high", "low"]] = {
    "aesthetic": "high",
    "consistency": "high",
    "alignment": "high",
}


@dataclass
class ShotModelQuality:
    quality: dict[str, float] = field(default_factory=dict)  # measure -> value
    flags: list[str] = field(default_factory=list)  # sorted


# ---------------------------------------------------------------------------------------------
# Loading (once per process)


def filter_model(section: Section) -> ImageTextModel:
    """The loaded checkpoint of one filter, shared with any filter naming the same one on
    the same device (the first to load it sets its batch size)."""
    device = pick_device(section.device, f"model filter ({section.model})")
    key = f"curation-model:{section.model}:{device}"
    return loaded_model(key, lambda: ImageTextModel(section.model, device, section.batch_size))


def aesthetic_parts(config: AestheticConfig) -> tuple[ImageTextModel, AestheticHead]:
    """The embedding model and the head, checked to fit each other."""
    model = filter_model(config)
    if not config.head:
        raise ModelNotFoundError("aesthetic filter: no head file set (aesthetic.head)")
    key = f"aesthetic-head:{config.head}:{config.head_activation}"
    head = loaded_model(key, lambda: load_head(config.head or "", config.head_activation))
    if head.input_dim != model.dim:
        raise AestheticHeadError(
            f"aesthetic head {head.source} takes {head.input_dim}-d embeddings but "
            f"{config.model} gives {model.dim}-d ones: use the model the head was trained on"
        )
    return model, head


def load_model_filters(config: ModelFiltersConfig) -> None:
    """Load every enabled filter's model (and head) now: ``Stage.setup`` calls this so a
    missing model fails before the first film, not in the middle of one."""
    if config.aesthetic.enabled:
        aesthetic_parts(config.aesthetic)
    if config.consistency.enabled:
        filter_model(config.consistency)
    if config.alignment.enabled:
        model = filter_model(config.alignment)
        if not model.joint:
            raise ValueError(
                f"alignment model {config.alignment.model} has no text tower: caption "
                "alignment needs a CLIP or SigLIP checkpoint"
            )


# ---------------------------------------------------------------------------------------------
# Which filters run


def model_filter_plan(
    config: ModelFiltersConfig, captions: bool = True
) -> tuple[list[str], dict[str, str]]:
    """(filters that will run, {filter: the plain reason it will not}), without loading any
    model: the reasons go into the film record's ``curation.not_run``. ``captions=False``
    when the build writes no captions (then there is nothing to align)."""
    sections: dict[str, Section] = {
        "aesthetic": config.aesthetic,
        "consistency": config.consistency,
        "alignment": config.alignment,
    }
    run: list[str] = []
    not_run: dict[str, str] = {}
    for name, section in sections.items():
        if not section.enabled:
            not_run[name] = (
                f"off ({CONFIG_PATH}.{name}.enabled: false): it needs CLIP/SigLIP weights "
                "on disk, and no installed package ships them, so the offline profile "
                "cannot run it"
            )
        elif name == "alignment" and not captions:
            not_run[name] = "no captions are written, so there is nothing to align"
        elif reason := _missing(name, section):
            not_run[name] = reason
        else:
            run.append(name)
    return run, not_run


def _missing(name: str, section: Section) -> str | None:
    """Why an enabled filter cannot run on this machine (None: it can)."""
    try:
        source, _ = resolve_model(section.model)
        pick_device(section.device, f"{name} filter")
    except (ModelNotFoundError, ValueError) as err:  # DeviceUnavailableError is a ValueError
        return str(err)
    if not Path(source).is_dir() and not _in_hf_cache(source):
        return (
            f"model {source!r} is neither a folder nor in the local Hugging Face cache "
            "(muss-builder never downloads models)"
        )
    if isinstance(section, AestheticConfig) and section.head:
        head = Path(section.head).expanduser()
        if not head.is_file():
            return f"aesthetic head file {head} not found (muss-builder ships no head)"
    return None


def _in_hf_cache(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "config.json"), str)


# ---------------------------------------------------------------------------------------------
# Per shot, during the keyframe pass


class ModelFilterCollector:
    """The collector protocol of ``captions/collector.py``: fed keyframes in film order,
    batches them across shots, keeps only embeddings (a few KB per shot), never images
    beyond one batch."""

    def __init__(self, shots: Sequence[Shot], config: ModelFiltersConfig) -> None:
        self.config = config
        self.shots = [s.index for s in shots]
        self._aesthetic = aesthetic_parts(config.aesthetic) if config.aesthetic.enabled else None
        self._consistency = filter_model(config.consistency) if config.consistency.enabled else None
        models = [p[0] for p in (self._aesthetic,) if p] + [self._consistency]
        self._models = list({id(m): m for m in models if m is not None}.values())
        self._batch = min((m.batch_size for m in self._models), default=1)
        self._pending: list[tuple[int, np.ndarray]] = []
        # per model (by id), per shot: raw embeddings of its keyframes, in order
        self._embeddings: dict[int, dict[int, list[np.ndarray]]] = {id(m): {} for m in self._models}

    def wanted(self) -> dict[int, list[int]]:
        """No frames beyond the keyframes."""
        return {}

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None:
        if not is_keyframe or not self._models:
            return
        self._pending.append((keyframe.shot, keyframe.image))
        if len(self._pending) >= self._batch:
            self._flush()

    def finish(self) -> dict[int, ShotModelQuality]:
        """Every shot's measures and flags (a shot without keyframes gets none)."""
        self._flush()
        out = {index: ShotModelQuality() for index in self.shots}
        if self._aesthetic is not None:
            model, head = self._aesthetic
            section = self.config.aesthetic
            for index, rows in self._embeddings[id(model)].items():
                x = np.stack(rows)
                score = float(np.mean(head.score(unit_rows(x) if section.normalize else x)))
                verdict = out.setdefault(index, ShotModelQuality())
                verdict.quality["aesthetic"] = score
                if score < section.threshold:
                    verdict.flags.append("low_aesthetic")
        if self._consistency is not None:
            for index, rows in self._embeddings[id(self._consistency)].items():
                value = min_pairwise_cosine(np.stack(rows))
                verdict = out.setdefault(index, ShotModelQuality())
                verdict.quality["consistency"] = value
                if value < self.config.consistency.min_similarity:
                    verdict.flags.append("inconsistent")
        for verdict in out.values():
            verdict.flags.sort()
        return out

    def _flush(self) -> None:
        if not self._pending:
            return
        images = [image for _, image in self._pending]
        for model in self._models:
            rows = model.embed_images(images, normalize=False)
            per_shot = self._embeddings[id(model)]
            for (shot, _), row in zip(self._pending, rows, strict=True):
                per_shot.setdefault(shot, []).append(row)
        self._pending = []


def min_pairwise_cosine(embeddings: np.ndarray) -> float:
    """The smallest cosine between two rows (1.0 for a single row: nothing disagrees)."""
    rows = unit_rows(embeddings)
    pairs = itertools.combinations(range(len(rows)), 2)
    return min((float(rows[i] @ rows[j]) for i, j in pairs), default=1.0)


# ---------------------------------------------------------------------------------------------
# Per sample, after captioning


def caption_alignment(
    config: ModelFiltersConfig,
    images_per_shot: Sequence[Sequence[np.ndarray | bytes]],
    captions: Sequence[str],
) -> list[float]:
    """Per shot: the mean cosine of its caption's text embedding with its images' (BGR
    arrays of cropped keyframes, or the JPEG bytes the captioner's ``ShotPixels.images``
    already holds) embeddings. One forward pass per batch over all the sample's images."""
    if len(images_per_shot) != len(captions):
        raise ValueError(f"{len(images_per_shot)} shots of images but {len(captions)} captions")
    if any(not images for images in images_per_shot):
        raise ValueError("caption alignment needs at least one image of every shot")
    model = filter_model(config.alignment)
    texts = model.embed_texts(list(captions))
    images = model.embed_images([_pixels(im) for shot in images_per_shot for im in shot])
    scores, start = [], 0
    for text, shot in zip(texts, images_per_shot, strict=True):
        scores.append(float(np.mean(images[start : start + len(shot)] @ text)))
        start += len(shot)
    return scores


def _pixels(image: np.ndarray | bytes) -> np.ndarray:
    if not isinstance(image, bytes):
        return image
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError(f"caption alignment: {len(image)} bytes that are not an image")
    return decoded


def misaligned(config: ModelFiltersConfig, scores: Sequence[float]) -> bool:
    """A sample whose worst shot's alignment is below the threshold."""
    return bool(scores) and min(scores) < config.alignment.min_similarity
