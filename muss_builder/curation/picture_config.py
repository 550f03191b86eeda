"""The picture filters' settings, flags and measures: they live in
``muss_builder/filters/picture.py`` (``config.py`` composes them; see ``filters/__init__.py``)."""

from muss_builder.filters.picture import (  # noqa: F401 (re-exported)
    DROPPING,
    FLAGS,
    INFORMATIONAL,
    MEASURES,
    ActivePictureConfig,
    BlackConfig,
    FlashConfig,
    PictureConfig,
    ShakyConfig,
    StaticConfig,
    WatermarkConfig,
)
