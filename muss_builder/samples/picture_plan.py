"""Where each shot's active picture and the film's logo go: the boxes the clips are cut to,
the boxes the keyframes are cut to, and the logo box every keyframe collector is told about.

All boxes are ``[x0, y0, x1, y1]``, end exclusive. Source pixels are the film's display
size (``probe.width`` x ``probe.height``); keyframe pixels are those of the keyframe decode
(``subjects.keyframes.keyframe_size``), before and after the cut.
"""

from __future__ import annotations

from collections.abc import Sequence

from muss_builder.curation.watermark import removal_plan
from muss_builder.filters import FiltersConfig
from muss_builder.media.decode import PictureCut
from muss_builder.media.probe import FilmProbe
from muss_builder.samples.verdicts import Box, FilmCuration, ShotVerdict, whole_frame
from muss_builder.subjects.keyframes import keyframe_size


def even_box(box: Sequence[int], width: int, height: int) -> Box:
    """``box`` inside the frame with even corners and sides (4:2:0 chroma covers pixel pairs:
    a cut on an odd line would shift the colour by half a pixel), shrunk inward, never grown
    (a sliver of bar is worse than a lost line). The whole frame stays the whole frame, odd
    or not: a film without bars is never cut at all."""
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if [x0, y0, x1, y1] == whole_frame(width, height):
        return [x0, y0, x1, y1]
    x0, y0 = x0 + x0 % 2, y0 + y0 % 2
    w, h = max(2, (x1 - x0) // 2 * 2), max(2, (y1 - y0) // 2 * 2)
    x0, y0 = min(x0, width - w), min(y0, height - h)
    return [x0, y0, x0 + w, y0 + h]


def intersect(a: Sequence[int], b: Sequence[int]) -> Box | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return [x0, y0, x1, y1] if x1 > x0 and y1 > y0 else None


def _area(box: Sequence[int]) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def plan_picture(
    film_crop: Sequence[int],
    shot_crops: Sequence[Sequence[int]],
    watermark: tuple[Sequence[int], float] | None,
    probe: FilmProbe,
    cfg: FiltersConfig,
) -> FilmCuration:
    """The film's curation as far as the picture goes: each shot's crop (even, see
    ``even_box``) and the logo with how the clips lose it (``picture.watermark.removal``):
    with ``crop`` every shot loses the band of the film's picture that holds the logo (when
    that keeps ``crop_min_keep`` of it; else the logo is delogo'd, ``watermark.removal_plan``)."""
    w, h = probe.width, probe.height
    crops = [even_box(c, w, h) for c in shot_crops]
    film = even_box(film_crop, w, h)
    mark = None
    if watermark is not None and intersect(watermark[0], whole_frame(w, h)) is not None:
        box, score = [int(v) for v in watermark[0]], float(watermark[1])
        removal, band = removal_plan(box, film, cfg.picture.watermark)
        if removal == "crop":
            film = even_box(band, w, h)
            crops = [even_box(intersect(c, band) or band, w, h) for c in crops]
        mark = {"box": box, "score": round(min(1.0, max(0.0, score)), 4), "removal": removal}
    shots = {i: ShotVerdict(crop=c) for i, c in enumerate(crops)}
    return FilmCuration(crop=film, shots=shots, watermark=mark)


def shot_logo(curation: FilmCuration, shot: int) -> Box | None:
    """The logo box inside the shot's crop (source pixels), or None."""
    if curation.watermark is None:
        return None
    return intersect(curation.watermark["box"], curation.shot_crop(shot))


def picture_cut(curation: FilmCuration | None, shot: int, probe: FilmProbe) -> PictureCut | None:
    """What a clip of ``shot`` (and the shots of its window, which share its crop) shows:
    None for the whole frame with nothing to remove, which encodes the clip as before."""
    if curation is None:
        return None
    crop = curation.shot_crop(shot)
    logo = None
    mark = curation.watermark
    if mark is not None and mark["removal"] == "delogo":
        inside = shot_logo(curation, shot)
        if inside is not None:
            cw, ch = crop[2] - crop[0], crop[3] - crop[1]
            # delogo reads the ring of pixels around the box: it must lie inside the picture
            lx0, ly0 = max(1, inside[0] - crop[0]), max(1, inside[1] - crop[1])
            lx1, ly1 = min(cw - 1, inside[2] - crop[0]), min(ch - 1, inside[3] - crop[1])
            logo = (lx0, ly0, lx1, ly1) if lx1 > lx0 and ly1 > ly0 else None
    if crop == whole_frame(probe.width, probe.height) and logo is None:
        return None
    num, den = (int(v) for v in probe.sample_aspect_ratio.split(":"))
    anamorphic = num > 0 and den > 0 and num != den
    return PictureCut((probe.width, probe.height), tuple(crop), logo, anamorphic)  # type: ignore[arg-type]


def _to_keyframe(box: Sequence[int], probe: FilmProbe, size: tuple[int, int]) -> Box:
    kw, kh = size
    sx, sy = kw / probe.width, kh / probe.height
    x0, y0 = round(box[0] * sx), round(box[1] * sy)
    x1, y1 = max(x0 + 1, min(kw, round(box[2] * sx))), max(y0 + 1, min(kh, round(box[3] * sy)))
    return [x0, y0, x1, y1]


def keyframe_boxes(
    curation: FilmCuration, probe: FilmProbe, max_side: int
) -> tuple[dict[int, Box], dict[int, Box | None]]:
    """Per shot: its crop in keyframe pixels (shots shown whole are left out: nothing to cut),
    and the logo box in the pixels of its cut keyframe (None: no logo in that shot)."""
    size = keyframe_size(probe, max_side)
    whole = whole_frame(probe.width, probe.height)
    crops: dict[int, Box] = {}
    logos: dict[int, Box | None] = {}
    for shot in curation.shots:
        crop = curation.shot_crop(shot)
        k = _to_keyframe(crop, probe, size)
        if crop != whole:
            crops[shot] = k
        inside = shot_logo(curation, shot)
        if inside is None:
            logos[shot] = None
            continue
        lk = _to_keyframe(inside, probe, size)
        cw, ch = k[2] - k[0], k[3] - k[1]
        box = [lk[0] - k[0], lk[1] - k[1], lk[2] - k[0], lk[3] - k[1]]
        logos[shot] = intersect(box, [0, 0, cw, ch])
    return crops, logos
