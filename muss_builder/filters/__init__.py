"""The ``filters:`` section of a pipeline config (issue 16, curation): which shots are fit to
train on, the active-picture crop and the watermark removal.

Each filter's own thresholds are its module's pydantic model (picture, keyframe text and
sharpness, duplicates, model filters); they live here, in the config layer, and not in
``muss_builder/curation/``, because ``config/`` composes them and the curation modules
import ``shots`` and ``media``, which import ``config``: a config model inside ``curation``
would tie the two packages in a loop (``tests/test_architecture.py``).

The flag names are fixed here too: ``films.parquet`` has one ``dropped_{flag}`` column per
dropping flag, and a fixed column set is what lets Arrow read every row with one schema
(``schemas/tables.json``); a test checks that every filter module's ``FLAGS`` is one of them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from muss_builder.filters.duplicates import DuplicatesConfig
from muss_builder.filters.keyframes import KeyframeQualityConfig
from muss_builder.filters.models import ModelFiltersConfig
from muss_builder.filters.picture import PictureConfig

# Flags that may drop a shot, in the order that names the reason when several fire on one
# shot: what a shot IS (nothing, a copy, a card of text) before how well it is filmed.
DROPPING_FLAGS: tuple[str, ...] = (
    "black",
    "duplicate",
    "credits",
    "text_overlay",
    "static",
    "flash",
    "blurry",
    "shaky",
    "inconsistent",
    "low_aesthetic",
    "misaligned",
)
# Flags that describe a shot and never drop it: the crop and the watermark removal deal with
# what they describe.
INFORMATIONAL_FLAGS: tuple[str, ...] = (
    "letterbox",
    "pillarbox",
    "windowbox",
    "watermark",
    "subtitle_cropped",  # a subtitle shot kept with its text band cut away
)

DropFlag = Literal[
    "black",
    "duplicate",
    "credits",
    "text_overlay",
    "static",
    "flash",
    "blurry",
    "shaky",
    "inconsistent",
    "low_aesthetic",
    "misaligned",
]


class FiltersConfig(BaseModel):
    """Curation: the active picture, the watermark, per-shot quality flags, duplicates and
    (standard profile) model filters. Every measurement is recorded whatever ``drop`` says;
    ``drop`` decides which flags keep a shot out of every sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True,
        description="off: no curation at all (no crop, no flag, every shot kept), the output "
        "of a build before issue 16; for measuring what curation costs",
    )
    drop: tuple[DropFlag, ...] = Field(
        DROPPING_FLAGS,
        description="flags that drop a shot; the others are recorded only",
    )
    # analysis frames: bars, the logo (and how clips lose it: picture.watermark.removal),
    # black, static, flash
    picture: PictureConfig = PictureConfig()
    keyframes: KeyframeQualityConfig = KeyframeQualityConfig()  # text, credits, blur
    duplicates: DuplicatesConfig = DuplicatesConfig()  # near-duplicate shots and films
    models: ModelFiltersConfig = ModelFiltersConfig()  # standard profile; all off by default

    @property
    def duplicates_on(self) -> bool:
        """Whether the build claims footage in the duplicate registry (curation and its
        duplicate filter both on): the registry, its order and its forgetting follow this."""
        return self.enabled and self.duplicates.enabled

    @field_validator("drop")
    @classmethod
    def _sorted_once(cls, drop: tuple[str, ...]) -> tuple[str, ...]:
        """One spelling per set of flags (the config hash must not follow the YAML's order)."""
        return tuple(f for f in DROPPING_FLAGS if f in set(drop))
