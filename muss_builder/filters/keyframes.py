"""Settings of the keyframe filters (``curation/keyframe_quality.py``): text, credits, blur.

Moved here from the curation module (which imports it back): ``config/`` composes these
models, and a model inside ``muss_builder/curation`` would tie ``config`` and ``curation``
in an import loop (see ``muss_builder/filters/__init__.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MIN_CONTRAST = 5.0  # = sharpness.MIN_CONTRAST (a test checks)


class TextFilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # the detector's input: longest side in pixels (a multiple of 32 is used); 640 keeps
    # 24-pixel subtitles of a 480-line film and 1080p subtitles readable, at ~1/4 the cost
    detect_max_side: int = Field(640, ge=64)
    # a first pass at this size; only keyframes with a text pixel there are measured at
    # detect_max_side (null: measure every keyframe; see curation/text.py)
    screen_max_side: int | None = Field(448, ge=64)
    screen_threshold: float = Field(0.3, ge=0, le=1)  # DB text probability of a screen hit
    # a keyframe smaller than screen_max_side is screened at its own size, but enlarged to at
    # least this: a 160x90 film's subtitle (~4.5 px) needs ~12 px to light DB's map
    screen_min_side: int = Field(320, ge=32)
    threads: int = Field(1, ge=1)  # onnxruntime intra-op threads (a worker runs one film)
    # run the detector on a thread of its own, beside the decode and the face models: a film's
    # keyframe pass then uses a second core when one is free (a short shelf, the last long
    # film of a build). Results are folded in film order: the output is the same either way
    own_thread: bool = True
    box_score: float = Field(0.6, ge=0, le=1)  # mean text probability a region needs
    min_line_aspect: float = Field(2.5, gt=0)  # width / height of a line: words, not a blob
    min_line_height: float = Field(0.02, ge=0, le=1)  # of the picture height
    # taller "lines" are textures, not type; a title card's big type is 10-20 % of the height
    max_line_height: float = Field(0.2, ge=0, le=1)
    subtitle_centre: float = Field(0.12, ge=0, le=0.5)  # |line centre - middle| / width
    # a subtitle line's centre is in this bottom band (a subtitle's last line sits at ~0.9 of
    # the height, under a 10 % safe margin; scene text above it, a jersey or a label, is left
    # alone: at 0.4 and 0.25 jerseys and labels of the curation sets were read as subtitles)..
    subtitle_bottom: float = Field(0.2, ge=0, le=1)
    subtitle_top: float = Field(0.2, ge=0, le=1)  # ..or in this one (of the picture height)
    subtitle_min_keyframes: int = Field(1, ge=1)  # keyframes showing it (subtitles come and go)
    # scene text moves with the camera, a burned-in subtitle is fixed to the frame: a line in a
    # subtitle band that, in another keyframe of its shot, matches best elsewhere, as the
    # picture above it does (a crawl moves alone), and in none where it was, is scene text:
    # a wall's letters in a pan (curation/text.py line_motion, scene_motion)
    moving_text_is_scene: bool = True
    track_search: float = Field(0.2, ge=0, le=1)  # how far to look, of the picture's sides
    track_match: float = Field(0.7, ge=-1, le=1)  # normalised cross-correlation of a match
    track_min_shift: float = Field(0.02, ge=0, le=1)  # of the width: less is where it was
    credits_min_lines: int = Field(4, ge=1)  # lines in one column: a text-dominated keyframe
    # lines are in one column when their centres, left or right edges agree within this share
    # of the width: credits are laid out, a scene's text (book covers, signs) is scattered
    credits_align: float = Field(0.03, ge=0, le=1)
    credits_flat: float = Field(0.9, ge=0, le=1)  # flat share of the non-text blocks of a card
    credits_min_keyframes: float = Field(0.5, ge=0, le=1)  # share of the shot's keyframes
    subtitles: Literal["drop", "crop"] = "drop"  # what a subtitle shot becomes (see module)
    crop_min_keep: float = Field(0.8, ge=0, le=1)  # least share of the height a crop keeps
    band_margin: float = Field(0.02, ge=0, le=0.2)  # around the text band, of the height
    watermark_max_inside: float = Field(0.3, ge=0, le=1)  # box share in the logo: logo, not text


class BlurFilterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # blurry below this share of the film's median shot sharpness when its edges are also at
    # least min_edge_width wide; calibrated on twelve curation sets (320x180 to 1280x720):
    # gblur sigma 6 at 480 lines reads <= 0.72, soft pictures 0.59-0.69 (docs/curation.md)
    relative_threshold: float = Field(0.8, gt=0, le=1)
    # mean width of the shot's strongest edges (its sharpest keyframe, pixels of the ~427x240
    # working picture) for a less sharp shot to be out of focus: the gblurred shots of those
    # sets >= 10.1, every other shot under 0.8 <= 7.8 (a soft webcam still); None: sharpness only
    min_edge_width: float | None = Field(8.5, ge=0)
    # ... and at least this many times the median edge width of the film's judged shots: a film
    # soft all over (gblur sigma 4-6 at 480 lines on every shot) had 6-31 % of its shots
    # flagged without it, none or one of 16 with it; blurred shots of those sets are >= 2.25x
    # their film's median (benchmarks/curation/edge_width.py --whole); None: the width alone
    min_edge_ratio: float | None = Field(1.5, ge=0)
    # the median of fewer shots is no reference: such a film is judged by the floor only
    min_reference_shots: int = Field(3, ge=1)
    # off by default: an absolute floor condemns a soft or upscaled film as a whole
    absolute_floor: float | None = Field(None, ge=0, le=1)
    min_contrast: float = Field(MIN_CONTRAST, ge=0)  # grey std: less is a plain or black frame


class KeyframeQualityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: TextFilterConfig = TextFilterConfig()
    blur: BlurFilterConfig = BlurFilterConfig()
