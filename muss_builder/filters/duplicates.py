"""Settings of the near-duplicate filter (``curation/duplicates.py``).

Moved here from the curation module (which imports it back): ``config/`` composes these
models, and a model inside ``muss_builder/curation`` would tie ``config`` and ``curation``
in an import loop (see ``muss_builder/filters/__init__.py``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DuplicatesConfig(BaseModel):
    """Near-duplicate detection across the whole build (and resumed runs)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # "pixels" (offline: grey thumbnails) or a local image model folder / Hugging Face id in
    # the local cache (standard profile: its embeddings replace the thumbnail blocks)
    embedder: str = "pixels"
    # evenly spaced frames per shot; 4 gives 3 difference blocks (movement), cheap to decode
    frames_per_shot: int = Field(4, ge=2, le=16)
    # thumbnail side, and how many of its lowest DCT frequencies (per axis) are kept: 8 of 32
    # keep a head's position (A-B-A-B set-ups differ) in 64 values a frame
    grid: int = Field(32, ge=8, le=128)
    dct: int = Field(8, ge=2, le=32)
    # widths of the crops (a fraction of the picture width) indexed as extra views: 0.75 is
    # the 16:9 -> 4:3 (and 2.39 -> 16:9) pan-and-scan; add 0.56 for 2.39 -> 4:3
    crop_widths: list[float] = Field(default_factory=lambda: [0.75])
    # places of each crop across the width, evenly from left to right (1 = centre only): 5
    # puts any resting window within 3 % of the width of one (similarity ~0.87 there, 2.5 %:
    # ~0.9; 3 places leave 6 % and ~0.72: docs/benchmarks.md)
    crop_positions: int = Field(5, ge=1, le=17)
    # frame-to-frame change (RMS of the kept frequencies, in units of the frame's standard
    # deviation) at which a difference block gets full weight. Re-encode noise is ~0.02; 0.1
    # lets the little movement of a short static-camera shot count: 0.25 left the same
    # set-up 20 s later at 0.88 on the tiny set's half-second shots (0.71 with 0.1)
    motion_ref: float = Field(0.1, gt=0)
    # similarity at and above which a shot is a duplicate: re-encodes and pan-and-scan crops
    # score 0.9998 on the curation set (a copy cut 2 frames off on fast motion >= 0.89), the
    # same set-up at another moment 0.60-0.79 and unrelated footage <= 0.76
    # (docs/benchmarks.md, "Near-duplicates")
    threshold: float = Field(0.88, gt=0, le=1)
    # a film is a whole-film duplicate when at least this share of its shot seconds are
    # duplicates of one earlier film (another rip: ~all of them; a film quoting a few shots
    # of another stays a film)
    film_share: float = Field(0.7, gt=0, le=1)
    # a shot whose every frame is at least this share flat background (within 4 grey levels
    # of its median: text on black, a fade, a colour card) is not fingerprinted: identical
    # title cards of unrelated films would match, and the credits and black filters judge them
    max_flat_share: float = Field(0.85, gt=0, le=1)
    # neighbours asked of the index per view (several views of one original shot can fill it)
    neighbours: int = Field(8, ge=1, le=256)
    # rows (views of shots) from which an index turns from exact into an inverted file (IVF),
    # and the lists it searches per query: exact search costs grow with the build
    ivf_rows: int = Field(50_000, ge=1_000)
    ivf_nprobe: int = Field(32, ge=1)
    device: str = "auto"  # of the image model


def config_key(config: DuplicatesConfig) -> str:
    """The settings that make fingerprints comparable (stored in each fingerprint file):
    fingerprints made with another key are never mixed into one index."""
    c = config
    return "|".join(
        str(x)
        for x in (c.embedder, c.frames_per_shot, c.grid, c.dct, c.crop_widths, c.crop_positions)
    )
