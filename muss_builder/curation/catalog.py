"""Every curation filter module's flags and measures in one place: the index columns
(``worst_{m}``, ``mean_{m}``), the films columns (``dropped_{flag}``) and the report read them.

``schemas/tables.json`` lists the same columns by hand (users read it); a test checks that
the two agree, and that every module's flags are ones ``muss_builder.filters`` knows.
"""

from __future__ import annotations

from typing import Literal

from muss_builder.curation import duplicates, keyframe_quality, model_filters, picture_config

Better = Literal["high", "low"]

_MODULES = (picture_config, keyframe_quality, duplicates, model_filters)

# measure -> which direction is better (``worst_`` is the min of "high", the max of "low")
MEASURES: dict[str, Better] = {m: d for module in _MODULES for m, d in module.MEASURES.items()}
# every flag a module can set (dropping or informational)
FLAGS: tuple[str, ...] = tuple(
    dict.fromkeys(
        f
        for module in _MODULES
        for f in (
            *module.FLAGS,
            *getattr(module, "INFORMATIONAL", ()),
            *getattr(module, "INFO_FLAGS", ()),
        )
    )
)
