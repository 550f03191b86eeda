"""The fixed thresholds of the default ("muss") shot detector, each with why it has its value.

The values users tune per corpus (candidate floor and ratio, net confirmation, step ratio,
gradual lengths) are ``shots.muss`` in the pipeline YAML (``MussDetectorConfig``). These are
the rest: constants chosen on the synthetic and real benchmark films (docs/design-notes.md)
and kept out of the YAML because changing one changes what the others mean. They are not in
the config fingerprint, so a new value here must come with a new baseline (the output test).

Units: "diff" values are the 0..1 frame differences of ``shots.features`` (half-L1 HSV
histogram distance, mean absolute thumbnail difference); "luma" is mean grey level 0..1 of
the 48x27 thumbnail; frame counts are analysis frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class GradualShapeThresholds:
    """How ``shots.gradual`` names a gradual transition from its frames."""

    # a fade's darkest (brightest) frame is nearly one grey level: a dark shot has texture
    uniform_std: float = 0.06
    # "black" and "white" in grey levels: video black is 16/255 = 0.06, white 235/255 = 0.92
    dark_luma: float = 0.08
    bright_luma: float = 0.90
    # below this |B - A|^2 (sum over the 48x27 thumbnail) A and B are one picture: no blend
    min_blend_energy: float = 1e-3
    # residual energy of the best blend (1 - a) A + a B, relative to |B - A|^2: compression
    # noise leaves a few percent, a cut or motion leaves much more
    blend_residual: float = 0.05
    # a dissolve's blend weight rises by more than half from its first to its last frame
    dissolve_min_rise: float = 0.5
    # "keeps rising" (blend weight, wiped area): a step may fall back this much ...
    monotone_slack: float = 0.05
    # ... and this share of the steps must not fall back further
    monotone_share: float = 0.8
    # a pixel differs between A and B by more than this (noise stays under 0.03)
    wipe_pixel_differs: float = 0.08
    # a wipe needs A and B to differ over this share of the picture, or no edge is visible
    wipe_min_differing: float = 0.3
    # frames with this share of B uncovered (strictly between) show the edge of a wipe
    wipe_mid_low: float = 0.15
    wipe_mid_high: float = 0.85
    # a column (row) is "all A" below this share of B and "all B" above 1 minus it
    wipe_line_pure: float = 0.2
    # share of columns (rows) that are all-A or all-B in a wipe frame: a straight edge
    wipe_purity: float = 0.85
    # a frame's progress from A to B inside (strictly) these bounds is part of the transition
    progress_low: float = 0.03
    progress_high: float = 0.97


@dataclass(frozen=True)
class MussThresholds:
    """The fixed thresholds of ``shots.combined.MussDetector``."""

    # frames each side for the local median of frame changes: half a second at 24 fps, wide
    # enough that one cut does not raise its own baseline, short enough to follow the scene
    median_radius: int = 12
    # added to the local median before comparing: on a static shot the median is ~0 and any
    # noise would be many times it
    median_floor: float = 0.01
    # a cut is the largest change within this many frames each side (1/12 s at 24 fps) ...
    peak_radius: int = 2
    # ... and within one frame at rates below this, where two frames are most of a second
    # and real cuts can be that close
    peak_radius_min_fps: float = 8.0
    peak_radius_low_fps: int = 1
    # L: gradual candidates compare frame t - L with t + L (a dissolve of 16 frames, 2/3 s at
    # 24 fps, changes the colours fully across 2L)
    gradual_span: int = 8
    # colour change across 2L frames that makes a gradual candidate: a pan stays below it
    gradual_floor: float = 0.25
    # a gradual candidate within gradual_span plus this of a clear cut is that cut's shadow
    cut_shadow_margin: int = 2
    # a flash: the picture after it is this close to the one before, relative to the change
    flash_return: float = 0.35
    # added to the change beside a frame in the step ratio, so that a cut out of a still
    # picture (no change beside it) has a large but finite ratio
    step_floor: float = 0.005
    # a frame with no picture (a black hold, a blank card) is one grey level: its luma std is
    # under this (an H.264 black frame's thumbnail stays under 0.002) ...
    empty_std: float = 0.01
    # ... and a frame with something on it varies by more than this (one line of 18-px white
    # text on a 360-px black frame: 0.020; heavy grain on black, ffmpeg noise alls=40: 0.0125,
    # which is neither). A picture that appears on or vanishes into an empty frame in one step
    # is a cut however little of the frame it covers: the candidate floor and the changed
    # share do not apply to it
    content_std: float = 0.015
    # such an edge is a candidate when its change passes the local median's multiple by this
    # (instead of median_floor), and this is its step ratio's floor (instead of step_floor):
    # one line of 18-px text on a 360-px frame changes 0.004
    empty_edge_floor: float = 0.002
    # a grey level changes by more than this where the picture "changed" (changed_share);
    # thumbnail noise after H.264 stays under 0.03
    changed_pixel: float = 0.08
    # a cut that also jumps this much in pixels (not just colour) is a hard step that no
    # dissolve contains
    step_pixel_jump: float = 0.08
    # TransNetV2 marks the last frame of the old shot: a cut candidate at t reads the net's
    # highest probability over frames t - reach .. t + reach - 1
    net_cut_reach: int = 2
    # two shots differ when the colour or pixel change across the transition passes this
    shots_differ: float = 0.12
    # the picture just outside a gradual interval changes less than this share of the change
    # inside: a transition settles, camera motion does not
    settle_ratio: float = 0.6
    # a frame keeps "changing" while its pixel change is this share of the change at the
    # centre of the interval
    changing_share: float = 0.5
    # a fade's darkest (brightest) frame is this many frames of the cut candidate at most
    fade_search: int = 4
    # a fade through black goes under this luma; through white over ``fade_white_luma``
    fade_black_luma: float = 0.12
    fade_white_luma: float = 0.88
    # the darkest (brightest) frame of a fade is nearly uniform: luma std under this
    fade_uniform_std: float = 0.08
    # the shots on both sides are at least this much brighter (darker) than the fade's bottom
    fade_depth: float = 0.08
    # frames within this luma of the bottom belong to the black (white) plateau
    fade_plateau: float = 0.01
    # a ramp frame's luma moves by more than this towards the plateau (compression noise is
    # smaller; a slow 2 s fade moves about 0.02 a frame)
    fade_slope: float = 0.002
    # frames of black (white) a fade may hold between its two ramps; longer is a shot of its
    # own, entered or left by a cut
    max_fade_hold: int = 12
    # confidence of a transition found without the net: a clear cut is certain; a fade
    # (luma ramps are unambiguous) beats a feature-typed gradual or a step-rule cut (0.5),
    # which the net's probabilities beat when they are higher
    clear_cut_confidence: float = 1.0
    fade_confidence: float = 0.6
    feature_gradual_confidence: float = 0.5
    step_cut_confidence: float = 0.5
    gradual: GradualShapeThresholds = field(default_factory=GradualShapeThresholds)


MUSS_THRESHOLDS = MussThresholds()
