"""Text on screen: where a keyframe shows text, from PaddleOCR's PP-OCRv4 text detector.

The detector is the DB ("differentiable binarisation") network ``ch_PP-OCRv4_det_infer.onnx``
that ships inside the ``rapidocr-onnxruntime`` wheel (RapidOCR: Apache-2.0; the PP-OCR models
come from PaddleOCR: Apache-2.0). Only the detection graph runs, on onnxruntime's CPU provider:
the filters need *where* text is (how many lines, how much of the picture, which band), not
what it says, and recognition would triple the cost per keyframe. The graph is found inside the
installed package and never downloaded; it is loaded once per process (``loaded_model``).

The post-processing is the DB recipe reduced to what films need: the probability map is
thresholded, each connected region scored by its mean probability, kept above ``box_score``
and grown by the DB "unclip" distance (area * ratio / perimeter) back to the text's extent;
boxes are axis-aligned, since film text (subtitles, credits, scrolls) is horizontal.

Most keyframes of a film show no text, and DB's cost grows with the pixels it sees (about 60 ms
at 640 px on one core, 31 ms at 448 px). So each keyframe is first *screened*: DB runs at
``screen_max_side`` and only a keyframe whose small probability map has a text pixel
(``screen_threshold``) outside the channel logo's box is run again at ``max_side``, where the
boxes are measured. The screen is 448 px because DB needs text of ~12 px: a subtitle of 5 % of
a 16:9 frame is 12.6 px there, 9 px at 320 px, where busy pictures hid it from the screen
(docs/curation.md).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from muss_builder.core.models import ModelNotFoundError, loaded_model

Box = list[int]  # [x0, y0, x1, y1], end exclusive
DET_MODEL = "ch_PP-OCRv4_det_infer.onnx"
PACKAGE = "rapidocr_onnxruntime"


# the sides given to the detector are those of a 16:9 picture; a wider one gets as many pixels
# of height as a 16:9 picture, up to this many times the side along its long side
WIDEST = 2.0


def sized_side(h: int, w: int) -> int:
    """The long side the detector's ``side`` stands for: that of a 16:9 landscape picture
    whose height is this picture's short side.

    Type is sized to a picture's height: a subtitle is ~5 % of it. Scaled by its long side, a
    2.39:1 letterboxed picture's subtitle came to 9-10 px at the 448-px screen, under the
    ~12 px DB needs, and whether the screen saw it turned on a 2-px change of the crop; a 4:3
    or square picture got a third more rows than its type needs (and 1.8x the pixels). Sized
    by its height every picture keeps the 12.6 px of a 16:9 one (docs/curation.md)."""
    return math.ceil(min(h, w) * 16 / 9)


@dataclass(frozen=True)
class TextBox:
    box: Box  # in the pixels of the image given to ``detect``
    score: float  # mean text probability inside the region (0..1)


def detector_model_path() -> Path:
    """The PP-OCRv4 detection graph inside the installed ``rapidocr-onnxruntime`` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the text filter needs the package rapidocr-onnxruntime, which ships the PP-OCRv4 "
            "text detector: `pip install rapidocr-onnxruntime` (or turn the filter off: "
            "filters.keyframes.text.enabled: false); muss-builder never downloads models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DET_MODEL
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing from the rapidocr-onnxruntime package")
    return path


class TextDetector:
    """PP-OCRv4 text detection on a BGR image; returns axis-aligned text boxes."""

    def __init__(
        self,
        model_path: Path,
        max_side: int = 640,
        threads: int = 1,
        pixel_threshold: float = 0.3,
        box_score: float = 0.5,
        unclip_ratio: float = 1.6,
        screen_max_side: int | None = 448,
        screen_threshold: float = 0.3,
        screen_min_side: int = 320,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.max_side = max_side
        self.pixel_threshold = pixel_threshold
        self.box_score = box_score
        self.unclip_ratio = unclip_ratio
        # no screen when it would be as big as the measuring pass
        self.screen_max_side = screen_max_side if (screen_max_side or 0) < max_side else None
        self.screen_threshold = screen_threshold
        self.screen_min_side = screen_min_side
        self.screened_out = 0  # keyframes the screen found no text in (never run at max_side)

    def detect(self, image: np.ndarray, ignore: Sequence[int] | None = None) -> list[TextBox]:
        """Text boxes in ``image``; ``ignore`` is a box (the channel logo) whose text alone does
        not make the keyframe worth measuring at full size."""
        h, w = image.shape[:2]
        side = self.screen_side(h, w)
        if side is not None:
            prob = self._probability(image, side)
            hit = prob > self.screen_threshold
            if ignore is not None:
                ph, pw = prob.shape
                x0, y0, x1, y1 = ignore
                hit[y0 * ph // h : -(-y1 * ph // h), x0 * pw // w : -(-x1 * pw // w)] = False
            if not hit.any():
                self.screened_out += 1
                return []
        prob = self._probability(image, self.max_side)
        nh, nw = prob.shape
        return self._boxes(prob, w / nw, h / nh, w, h)

    def screen_side(self, h: int, w: int) -> int | None:
        """The side an ``h`` x ``w`` keyframe is screened at (None: no screen). A keyframe
        smaller than the screen is enlarged only up to ``screen_min_side``: a 160x90 film's
        subtitle is 12 px there, and more pixels would add no detail."""
        if self.screen_max_side is None:
            return None
        return min(self.screen_max_side, max(self.screen_min_side, sized_side(h, w)))

    def _probability(self, image: np.ndarray, side: int) -> np.ndarray:
        """DB's text probability map of ``image`` resized to ``side`` on its long side."""
        h, w = image.shape[:2]
        # DB needs sides that are multiples of 32; every picture goes in at that size, so a
        # small keyframe's subtitle (9 px at 180 lines) is enlarged to a size DB finds
        scale = min(side / sized_side(h, w), WIDEST * side / max(h, w))
        nh, nw = (max(32, round(v * scale / 32) * 32) for v in (h, w))
        shrink = nw <= w
        small = cv2.resize(
            image, (nw, nh), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        )
        # PaddleOCR's det normalisation: BGR, (x / 255 - 0.5) / 0.5
        blob = (small.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        return self.session.run(None, {self.input: blob})[0][0, 0]

    def _boxes(self, prob: np.ndarray, sx: float, sy: float, w: int, h: int) -> list[TextBox]:
        mask = (prob > self.pixel_threshold).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
        found: list[TextBox] = []
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            if min(bw, bh) < 2:
                continue
            region = labels[y : y + bh, x : x + bw] == i
            score = float(prob[y : y + bh, x : x + bw][region].mean())
            if score < self.box_score:
                continue
            grow = area * self.unclip_ratio / (2 * (bw + bh))
            x0, y0 = max(0, round((x - grow) * sx)), max(0, round((y - grow) * sy))
            x1, y1 = min(w, round((x + bw + grow) * sx)), min(h, round((y + bh + grow) * sy))
            if x1 > x0 and y1 > y0:
                found.append(TextBox([x0, y0, x1, y1], score))
        return found


def text_detector(
    max_side: int = 640,
    threads: int = 1,
    screen_max_side: int | None = 448,
    screen_threshold: float = 0.3,
    screen_min_side: int = 320,
) -> TextDetector:
    """The process's one detector for these settings; a clear error when the package is
    missing (``ModelNotFoundError``), raised by ``Stage.setup()`` before any film runs."""
    path = detector_model_path()
    key = (
        f"text-detector:{path}:{max_side}:{threads}:{screen_max_side}:{screen_threshold}"
        f":{screen_min_side}"
    )
    return loaded_model(
        key,
        lambda: TextDetector(
            path,
            max_side=max_side,
            threads=threads,
            screen_max_side=screen_max_side,
            screen_threshold=screen_threshold,
            screen_min_side=screen_min_side,
        ),
    )


# ---------------------------------------------------------------------------------------------
# Geometry of the found text


def overlap_share(box: Sequence[int], other: Sequence[int] | None) -> float:
    """Share of ``box``'s area inside ``other`` (0 when other is None)."""
    if other is None:
        return 0.0
    ix = max(0, min(box[2], other[2]) - max(box[0], other[0]))
    iy = max(0, min(box[3], other[3]) - max(box[1], other[1]))
    area = max(1, (box[2] - box[0]) * (box[3] - box[1]))
    return ix * iy / area


def outside_watermark(
    boxes: list[TextBox], watermark: Sequence[int] | None, max_inside: float = 0.3
) -> list[TextBox]:
    """Boxes that are not (mostly) part of the channel logo: a logo's letters are the logo."""
    return [b for b in boxes if overlap_share(b.box, watermark) <= max_inside]


def text_rows(boxes: list[TextBox]) -> list[Box]:
    """Merge boxes into lines of text: boxes whose vertical extents overlap by half the smaller
    height are one line (DB may split a line into words). Returns each line's box."""
    rows: list[Box] = []
    for b in sorted(boxes, key=lambda t: (t.box[1] + t.box[3]) / 2):
        x0, y0, x1, y1 = b.box
        for row in rows:
            overlap = min(y1, row[3]) - max(y0, row[1])
            if overlap >= 0.5 * min(y1 - y0, row[3] - row[1]):
                row[:] = [min(x0, row[0]), min(y0, row[1]), max(x1, row[2]), max(y1, row[3])]
                break
        else:
            rows.append([x0, y0, x1, y1])
    return rows


def aligned_lines(rows: Sequence[Sequence[int]], w: int, tolerance: float) -> int:
    """The most ``rows`` that share one column: their centres, left edges or right edges agree
    within ``tolerance`` of the width ``w``. Credits are laid out (centred on the frame's axis,
    or in a column, as in a roll or a squeeze-back); the text of a scene (book covers, shop
    signs, a newspaper) sits where its objects are."""
    best = 0
    for key in (lambda r: (r[0] + r[2]) / 2, lambda r: r[0], lambda r: r[2]):
        xs = sorted(key(r) for r in rows)
        lo = 0
        for hi, x in enumerate(xs):  # the widest window of values within the tolerance
            while x - xs[lo] > tolerance * w:
                lo += 1
            best = max(best, hi - lo + 1)
    return best


def covered_share(boxes: Sequence[Sequence[int]], w: int, h: int) -> float:
    """Share of the w x h picture covered by the union of the boxes."""
    if not boxes:
        return 0.0
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return float(mask.mean())


def flat_share(grey: np.ndarray, boxes: Sequence[Sequence[int]], block: int = 16) -> float:
    """Share of the picture's blocks outside the text that are flat (grey std < 4 levels):
    a card or a roll is text over a plain background, a subtitle is text over a scene."""
    h, w = grey.shape
    keep = np.ones((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        keep[max(0, y0 - 4) : y1 + 4, max(0, x0 - 4) : x1 + 4] = False
    hb, wb = h // block, w // block
    if hb == 0 or wb == 0:
        return 0.0
    g = grey[: hb * block, : wb * block].astype(np.float32).reshape(hb, block, wb, block)
    std = g.std(axis=(1, 3))
    used = keep[: hb * block, : wb * block].reshape(hb, block, wb, block).all(axis=(1, 3))
    return float((std[used] < 4.0).mean()) if used.any() else 1.0


def line_motion(
    grey: np.ndarray, other: np.ndarray, box: Sequence[int], search: float
) -> tuple[float, float, tuple[float, float]]:
    """Where the text line ``box`` of ``grey`` is in ``other`` (another keyframe of its shot):
    (match where it was, best match within ``search`` of the picture's sides, the best match's
    shift (dx, dy) in shares of the picture's width). Matches are normalised cross-correlations
    (-1..1); a patch with no texture gives (0, 0, (0, 0)): nothing to tell.

    A burned-in subtitle is fixed to the frame: the same cue matches where it was, or, once the
    cue has changed, nowhere. Scene text moves with the camera: it matches best elsewhere, and
    so does the picture around it (``scene_motion``)."""
    return _match(grey, other, [int(v) for v in box], search)


def scene_motion(
    grey: np.ndarray, other: np.ndarray, box: Sequence[int], search: float
) -> tuple[float, tuple[float, float]]:
    """How the picture beside the line ``box`` moved: (best match, shift) of a band twice the
    line's height just above it (below it when there is no room above). A news crawl moves and
    the picture behind it does not; scene text moves with its picture."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h = grey.shape[0]
    lh, gap = y1 - y0, max(1, (y1 - y0) // 2)
    if y0 - gap - 2 * lh >= 0:
        band = [x0, y0 - gap - 2 * lh, x1, y0 - gap]
    else:
        band = [x0, min(h, y1 + gap), x1, min(h, y1 + gap + 2 * lh)]
    _, best, shift = _match(grey, other, band, search)
    return best, shift


def _match(
    grey: np.ndarray, other: np.ndarray, box: list[int], search: float
) -> tuple[float, float, tuple[float, float]]:
    h, w = grey.shape
    x0, y0, x1, y1 = box
    patch = grey[y0:y1, x0:x1]
    flat = patch.shape[0] < 4 or patch.shape[1] < 4 or float(patch.std()) < 1.0
    if flat or other.shape != grey.shape:  # nothing to match, or not one shot's keyframes
        return 0.0, 0.0, (0.0, 0.0)
    sx, sy = round(search * w), round(search * h)
    rx0, ry0 = max(0, x0 - sx), max(0, y0 - sy)
    rx1, ry1 = min(w, x0 + patch.shape[1] + sx), min(h, y0 + patch.shape[0] + sy)
    scores = cv2.matchTemplate(other[ry0:ry1, rx0:rx1], patch, cv2.TM_CCOEFF_NORMED)
    stay = float(scores[y0 - ry0, x0 - rx0])
    _, best, _, (bx, by) = cv2.minMaxLoc(scores)
    return stay, float(best), ((bx + rx0 - x0) / w, (by + ry0 - y0) / w)
