"""Settings, flags and measures of the picture filters (issue 16: active picture, persistent
overlays, pixel quality), read from the analysis frames of the shot decode.

Kept apart from ``picture.py`` so that ``muss_builder.config`` can import it: nothing here
imports the pipeline. Every default was calibrated on footage built here (the curation set of
``benchmarks/curation/make_set.py`` and the synthetic films of ``tests/curation``); the numbers
behind each one are in the comments and in docs/fragments/16-picture-benchmarks.md.
Grey levels are full-range 0-255 luma of the decoded BGR frame at analysis size.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# dropping flags (a shot with one is excluded when the flag is in the dropping set)
DROPPING = ("black", "static", "flash", "shaky")
# informational flags (never drop a shot): bars the crop removed, a persistent logo
INFORMATIONAL = ("letterbox", "pillarbox", "windowbox", "watermark")
FLAGS = DROPPING + INFORMATIONAL
# every measure in a shot's ``quality``, and which direction is better (for ``worst_``)
MEASURES: dict[str, Literal["high", "low"]] = {
    "luma": "high",  # mean grey level inside the crop
    "contrast": "high",  # spread of grey levels inside the crop (std of 16-px cell means)
    "dark_share": "low",  # share of near-black pixels inside the crop
    "black_share": "low",  # share of the shot's frames that are black
    "motion": "high",  # mean absolute change between frames, grey levels per frame
    "frozen_share": "low",  # share of frames in a hold (no cell mean moved for 0.35 s)
    "flash_share": "low",  # share of frames that are a brightness spike
    "shake": "low",  # camera wobble between frames, fraction of the width (curation/shake.py)
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BlackConfig(_Strict):
    """``black``: a black or near-black hold. A frame is black when nearly all of its picture
    is near-black; a dark real scene keeps lit parts, so the share, not the mean, decides. On
    the curation set: the seven dark scenes / vignetted shots have a dark share of 0.31-0.87
    and not one black frame; both holds (pure and noisy 0x080808) are black in every frame."""

    enabled: bool = True
    # x264 black is 0-2, the noisy near-black hold of the set (level 8, noise 6) reaches 20;
    # blackdetect's pix_th 0.10 is 25.5: a pixel at or under 32 is near-black
    level: int = Field(
        32, ge=0, le=255, description="grey level at or under which a pixel is near-black"
    )
    # 0.98: a white timecode or logo over the black stays under 2 % of the picture
    frame_share: float = Field(
        0.98, gt=0, le=1, description="near-black share that makes a frame black"
    )
    # most of the shot: a shot that only fades through black keeps its picture (the
    # scrolling credits roll, black between its lines, has 0.28 of black frames)
    min_share: float = Field(
        0.8, gt=0, le=1, description="share of black frames that flags the shot"
    )


class StaticConfig(_Strict):
    """``static``: frozen frames (a ``tpad``/``loop`` freeze, a still) and shots that do not
    move. A frame is frozen when it belongs to a *hold*: at least ``min_frozen_seconds`` of
    consecutive frames whose every 16-px cell keeps its mean level within ``frozen_levels`` of
    the hold's first frame. The shot is static when at least ``min_frozen_share`` of its
    frames are frozen (a freeze over half the shot, or a still; a short pause stays).

    Why cell means held over a span, not the change from one frame to the next: film grain
    (and an encoder's noise) changes every pixel of every frame, so a grainy freeze never had
    a frame whose cells' mean absolute change was under the old 0.5-level bound, while a cell's
    mean averages most of its pixels' grain away. And one frame's change misses slow motion a span
    adds up: a slow pan moves a cell's mean by under a level a frame but several over 0.35 s.
    The span also keeps out a picture repeated for two or three frames (animation drawn on
    twos or threes, a stuttering pan). A black shot is reported as ``black`` only."""

    enabled: bool = True
    # cell means are kept in whole grey levels, and the analysis decode's fast-bilinear
    # scaling leaves grain in them: a freeze's cells step by 1 level a frame at grain alls 8
    # and by 2 at alls 16 (a change under 2 levels reads <= 2, one of 3 or more >= 3). On
    # fourteen curation sets (benchmarks/curation/static_holds.py: clean, grain 4 / 8 / 16,
    # 180-720 lines) 1 level missed 3-4 of the 8 static shots of alls 16; 2 finds all 109
    frozen_levels: float = Field(
        2.0, ge=0, description="largest change of a cell's mean level (grey levels) in a hold"
    )
    # 0.35 s (8 frames at 24 fps): on those sets no moving shot has a frame in a hold of 8
    # frames (one has 0.16 of its frames in holds of 7); frozen shots 0.75-1.0. A pan across
    # a photo at 0.5 px a frame (854 px) is never held, at 0.25 px up to 0.44 of its frames
    # (the old one-frame rule: 0.49), at 0.1 px (2.4 px a second) it is static either way
    min_frozen_seconds: float = Field(
        0.35, gt=0, description="shortest hold (seconds) whose frames count as frozen"
    )
    # a freeze over half the shot, or a still; frozen shots of the sets 0.75-1.0
    min_frozen_share: float = Field(0.5, gt=0, le=1, description="frozen share that flags the shot")

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "frozen_diff" in data:
            raise ValueError(
                "filters.picture.static.frozen_diff is replaced by frozen_levels (a cell's mean "
                "level held within this many grey levels) and min_frozen_seconds (for this "
                "long): see docs/curation.md, 'Quality'"
            )
        return data

    def min_hold_frames(self, fps: float) -> int:
        """``min_frozen_seconds`` in frames of a film at ``fps`` (at least 2)."""
        return max(2, round(self.min_frozen_seconds * fps))


class FlashConfig(_Strict):
    """``flash``: a shot dominated by brightness spikes (strobes, flash photography). A frame
    is a flash when its mean level exceeds the median of the 9 frames around it (inside the
    shot) by ``delta``; fades and cuts change the level for good and are no spike."""

    enabled: bool = True
    delta: float = Field(
        40.0, gt=0, description="rise over the local median (grey levels) of a flash frame"
    )
    # the synthetic strobe (a flash every third frame) gives 0.33, one flash in a 2 s shot
    # 0.02; no shot of the curation set rises more than 3 levels over its local median
    min_share: float = Field(0.2, gt=0, le=1, description="flash share that flags the shot")


class ShakyConfig(_Strict):
    """``shaky``: a camera that shakes from frame to frame (``curation/shake.py``): the median,
    over the shot's measured frames, of how far a frame's camera motion (the median over 2 x 2
    tiles of the picture) lies from the median motion of the frames within ``window_seconds``
    around it, in frame widths. On the curation set (``make_set.py``) the three shots shaking
    by a 3-8 Hz tremor of 3 % of the width measure 0.014-0.021, every other shot (steady pans,
    a slow sway, dark scenes, static cameras, moving subjects) at most 0.0027; the demo
    footage's 140 shots (a music video's close-ups of moving heads, street and surveillance
    cameras) at most 0.0065 (docs/curation.md, "Camera shake")."""

    enabled: bool = True
    # about the geometric mean of the most restless steady shot (0.0065) and the least shaky
    # tremor (0.014): 1.5x from each
    max_shake: float = Field(
        0.0095, gt=0, description="shake (frame widths per frame) that flags the shot"
    )
    window_seconds: float = Field(
        0.5, gt=0, description="span of the neighbours a frame's motion is compared with"
    )
    # under this a tile's phase-correlation peak is not one motion (flat, noisy, flashing)
    min_response: float = Field(0.3, ge=0, le=1, description="least trusted tile response")
    # 2 x 2: a 3 x 3 grid separated the classes no better (least shaky / most restless steady
    # shot 2.0x, against 2.2x) for 2.3x the cost (benchmarks/curation/shake.py)
    tiles: int = Field(2, ge=1, le=8, description="tiles across and down the picture")
    min_tiles: int = Field(3, ge=1, description="fewest trusted tiles for a frame's motion")
    min_frames: int = Field(6, ge=2, description="fewest measured frames to judge a shot")
    # a shot most of whose frames match nothing (noise, flashes) has no camera path to judge
    min_trusted_share: float = Field(
        0.5, ge=0, le=1, description="least share of measured frames with a camera motion"
    )
    # bars, a corner logo and subtitles sit at the edges; a static edge pulls motion to zero
    margin: float = Field(0.1, ge=0, lt=0.5, description="share cut from each side first")
    tile_side: int = Field(
        48, ge=8, le=256, description="tiles wider than twice this shrink by a whole factor"
    )
    # every other frame: a 12-Hz view of a 24-fps film still shows a 3-8 Hz tremor; halves
    # the cost (every third frame made short shots' measures noisy: the window holds too few)
    frame_step: int = Field(2, ge=1, description="every n-th frame is measured (cost)")


class WatermarkConfig(_Strict):
    """A logo or watermark that stays on screen across shots: pixels whose gradient is strong
    in most picture frames and points the same way every time (coherent), while the rest of
    the picture changes. Statistics are per pixel of the analysis frame, summed over the film
    (memory flat in film length)."""

    enabled: bool = True
    # the Sobel magnitude (3x3, up to ~1000) that counts as an edge in a frame: a hard step of
    # 8 grey levels; a vignette's smooth ramp stays under it (on the vignetted film of the set
    # no pixel is both persistent and coherent)
    edge: float = Field(60.0, gt=0, description="Sobel magnitude of an edge pixel in a frame")
    # the logo is on every frame: persistence 1.0; static text of one shot in a 6-shot film
    # ~0.2; a film whose one static shot is most of it cannot be told from a logo
    min_persistence: float = Field(
        0.6, gt=0, le=1, description="share of picture frames with an edge there"
    )
    # mean gradient vector length over mean length: 1.0 for a fixed edge, low for the edges
    # of changing content; on the set the logo's pixels are >= 0.98 (10th percentile), other
    # strong persistent pixels of films without bars at most 0.80 (0.6 let 4 films through)
    min_coherence: float = Field(0.9, gt=0, le=1, description="gradient coherence of a logo pixel")
    # a logo is small; a static background that fills the frame is a static film, not a logo
    max_area_share: float = Field(
        0.1, gt=0, le=1, description="largest logo box, share of the crop"
    )
    min_pixels: int = Field(8, ge=1, description="fewest logo pixels (analysis size)")
    # "over changing content": the median pixel's temporal spread over the film must reach
    # this (the set's films 43-64; a film of one frozen shot ~0)
    min_scene_std: float = Field(10.0, ge=0, description="median temporal std of the picture")
    # bar edges are fixed and strong too: pixels this close to a crop edge are no logo
    edge_margin: int = Field(3, ge=0, description="analysis px kept clear of every crop edge")
    # a logo on a plate (a dark box behind its letters) shows the plate's border only over
    # content brighter or darker than the plate: over a mostly dark film the edges give the
    # letters alone. The plate is what stays *quiet*: its pixels' temporal spread is the
    # content's that shows through it (20 % at 80 % opacity), far under the picture's. The
    # box grows over the quiet pixels joined to it (docs/curation.md). On the curation sets'
    # 80 %-opaque plate (seeds 0-7) the plate reads 0.22-0.30 of the median, the band around it
    # >= 1.08 (benchmarks/curation/plate_quiet.py); 0.35 keeps a scene's calmer parts out
    plate_quiet: float = Field(
        0.35, ge=0, le=1, description="plate pixel: temporal std under this share of the median"
    )
    # a quiet region much larger than the letters' box is a quiet part of the scene (a corner
    # that is always sky or shadow), not a plate: the box is then left as the edges gave it
    plate_max_growth: float = Field(
        4.0, ge=1, description="largest grown box, times the area of the edges' box"
    )
    # 0: the box is the logo's own (IoU 0.8+ with the truth at 256 px); removal may widen it
    pad: int = Field(0, ge=0, description="analysis px added around the logo box")
    min_frames: int = Field(24, ge=1, description="fewest picture frames to look for a logo")
    # every other frame: neighbouring frames add little new evidence; halves the cost
    frame_step: int = Field(2, ge=1, description="every n-th frame feeds the statistics (cost)")
    # how the logo leaves what is trained on: "delogo" (ffmpeg's delogo interpolates the box
    # from its border: the frame keeps its size), "crop" (cut the band of the picture that
    # holds the logo, when that keeps at least ``crop_min_keep`` of it; else delogo), "none"
    removal: Literal["delogo", "crop", "none"] = "delogo"
    # a corner logo of the set (1.6 % of the frame) costs a 15 % top band or a 10 % side band
    crop_min_keep: float = Field(
        0.8, gt=0, le=1, description="least picture share a logo crop keeps"
    )


class ActivePictureConfig(_Strict):
    """Bars (letterbox, pillarbox, windowbox); thresholds documented on
    ``active_picture.ActivePictureDetector``, calibrated in docs/benchmarks.md "Active picture"."""

    enabled: bool = True
    black_level: int = Field(16, ge=0, le=255)
    line_black_share: float = Field(0.7, gt=0, le=1)
    time_share: float = Field(0.9, gt=0, le=1)
    evidence_share: float = Field(0.02, ge=0, lt=1)
    min_step: float = Field(24.0, ge=0)
    min_bar_share: float = Field(0.01, ge=0, lt=0.5)
    block_frames: int = Field(12, ge=1)
    max_inner_black_share: float = Field(0.1, ge=0, le=1)


class PictureConfig(_Strict):
    """Picture filters read from the analysis frames of the shot decode (no extra decode)."""

    enabled: bool = True
    # the quality grid: cells of about 16 analysis px; measures use the cells fully inside a
    # shot's crop and clear of the watermark box
    cells_x: int = Field(16, ge=1, le=64, description="quality cells across the frame")
    cells_y: int = Field(9, ge=1, le=64, description="quality cells down the frame")
    black: BlackConfig = BlackConfig()
    static: StaticConfig = StaticConfig()
    flash: FlashConfig = FlashConfig()
    shaky: ShakyConfig = ShakyConfig()
    watermark: WatermarkConfig = WatermarkConfig()
    active_picture: ActivePictureConfig = ActivePictureConfig()
