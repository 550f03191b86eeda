"""Does the edge width tell a blurred shot from a soft picture? The blur rules on the curation
sets' keyframes, and on clean shots blurred by a known amount.

    .venv/bin/python benchmarks/curation/edge_width.py /tmp/cur /tmp/cur-s5 ... [--sweep /tmp/cur]

Each shot's keyframes (``keyframes.film_keyframes``: the subject stage's three, cropped to the
shot's TRUE active picture; a logo is not masked here) are measured by ``sharpness.focus``: the
shot's sharpness is its best keyframe's, made relative to the median of its film's judged shots
(contrast >= 5, not a card; films with >= 3 of them), its edge width that keyframe's, as the
keyframe collector and ``judge_blur`` do; the film's edge reference is the median edge width
of those shots. Prints the blurred shots' lowest edge width (and lowest ratio to their film's
median), the widest edges among the other shots under the relative threshold, and what four
rules flag: sharpness under 0.7 (the rule before the edge width), under 0.8, under 0.8 with
edges >= 8.5 wide (the rule before the film's edge reference), and the default (under 0.8,
edges >= 8.5 and >= 1.5x the film's median).

``--sweep SET``: every clean judged shot of SET (in a film with >= 3 of them) blurred again
after decoding with a Gaussian of sigma 1.5..6 at 480 lines (scaled with the film's height):
the share of those shots each rule flags at each sigma (what the edge-width rule gives up on a
mild blur, what it keeps on a strong one). ``--grain G ...``: the sweep again with Gaussian
noise of G grey levels over every keyframe (film grain is sharp: it hides a defocus).
``--whole``: the sweep with *every* shot of each film blurred alike, the references measured
on the blurred film (a film soft all over: an upscale, an old lens, a worn print), where no
shot is out of focus against its film and every flag is a false one.

``--denoise S``: every working picture smoothed by a Gaussian of sigma S first (a study of what
denoising would give back under grain; the filter does not denoise).

``--cost SET``: the median milliseconds per keyframe of ``sharpness.focus`` (sharpness and
contrast, every keyframe) and of ``sharpness.edge_width`` on its working picture (once a shot,
on the sharpest keyframe) over SET's keyframes, the two alternated keyframe by keyframe, 3
rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

from muss_builder.curation import sharpness as measure
from muss_builder.filters.keyframes import BlurFilterConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from keyframes import film_keyframes

BLUR = BlurFilterConfig()


# each rule: (sharpness relative to the film, the shot's edge width, the film's median width)
Rule = Callable[[float, float | None, float | None], bool]
RULES: dict[str, Rule] = {
    "rel < 0.7": lambda rel, width, wref: rel < 0.7,
    f"rel < {BLUR.relative_threshold}": lambda rel, width, wref: rel < BLUR.relative_threshold,
    f"rel < {BLUR.relative_threshold}, edges >= {BLUR.min_edge_width}": lambda rel, width, wref: (
        rel < BLUR.relative_threshold
        and measure.edges_spread(width, BLUR.min_edge_width, None, wref)
    ),
    f"and >= {BLUR.min_edge_ratio}x film (default)": lambda rel, width, wref: (
        rel < BLUR.relative_threshold
        and measure.edges_spread(width, BLUR.min_edge_width, BLUR.min_edge_ratio, wref)
    ),
}
SIGMAS = (0.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0)  # at 480 lines


DENOISE = 0.0  # --denoise: a Gaussian over every working picture before it is measured


def shot_focus(images: list[np.ndarray]) -> tuple[float, float | None, float]:
    """(best sharpness, the edge width of that keyframe, median contrast) of one shot's
    keyframes, as the keyframe collector measures them."""
    measured = [measure.focus(image, denoise=DENOISE) for image in images]
    sharpest = max(measured, key=lambda m: m.sharpness)
    return (
        sharpest.sharpness,
        measure.edge_width(sharpest.grey),
        statistics.median(m.contrast for m in measured),
    )


def film_shots(folder: Path, doc: dict) -> dict[int, list[np.ndarray]]:
    _, _, frames = film_keyframes(folder, doc, 3, 1280)
    shots: dict[int, list[np.ndarray]] = {}
    for kf in frames:
        shots.setdefault(kf.shot, []).append(kf.image)
    return shots


def set_rows(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith("_")):
        doc = json.loads(path.read_text())
        images = film_shots(folder, doc)
        film = []
        for s in doc["shots"]:
            if s["index"] not in images:
                continue
            sharp, width, contrast = shot_focus(images[s["index"]])
            film.append(
                {
                    "name": f"{folder.name}/{doc['film']}#{s['index']} ({s.get('source')})",
                    "blurred": "blurry" in s["flags"],
                    "judged": contrast >= measure.MIN_CONTRAST and "credits" not in s["flags"],
                    "sharpness": sharp,
                    "width": width,
                }
            )
        judged = [r for r in film if r["judged"]]
        if len(judged) < BLUR.min_reference_shots:
            continue
        reference = statistics.median(r["sharpness"] for r in judged)
        wref = film_width(r["width"] for r in judged)
        for r in judged:
            rows.append({**r, "rel": r["sharpness"] / reference, "wref": wref})
    return rows


def film_width(widths: Iterable[float | None]) -> float | None:
    """The film's edge reference: the median of its judged shots' edge widths."""
    measured = [w for w in widths if w is not None]
    return statistics.median(measured) if len(measured) >= BLUR.min_reference_shots else None


def separation(rows: list[dict]) -> None:
    blurred = [r for r in rows if r["blurred"]]
    others = [r for r in rows if not r["blurred"]]
    print(f"{len(blurred)} blurred and {len(others)} other judged shots")
    low = min(blurred, key=lambda r: r["width"] or 0.0)
    ratio = min((r["width"] or 0.0) / (r["wref"] or 1.0) for r in blurred)
    print(f"blurred: edge width >= {low['width']:.2f} ({low['name']}), >= {ratio:.2f}x their "
          f"film's median, rel <= {max(r['rel'] for r in blurred):.2f}")  # fmt: skip
    under = [r for r in others if r["rel"] < BLUR.relative_threshold]
    under.sort(key=lambda r: -(r["width"] or 0.0))
    print(f"other shots under rel {BLUR.relative_threshold}: {len(under)}; widest edges:")
    for r in under[:4]:
        print(f"  {r['width']:.2f} (rel {r['rel']:.2f}) {r['name']}")
    print("\n| rule | blurred flagged | other shots flagged | precision | recall |")
    print("|---|---:|---:|---:|---:|")
    for name, rule in RULES.items():
        tp = sum(rule(r["rel"], r["width"], r["wref"]) for r in blurred)
        fp = sum(rule(r["rel"], r["width"], r["wref"]) for r in others)
        precision = tp / (tp + fp) if tp + fp else 1.0
        print(f"| {name} | {tp} / {len(blurred)} | {fp} / {len(others)} | {precision:.2f} | "
              f"{tp / len(blurred):.2f} |")  # fmt: skip


def sweep(folder: Path, grain: float = 0.0, whole: bool = False) -> None:
    """The share of ``folder``'s clean shots each rule flags when blurred with each of
    ``SIGMAS``; ``grain``: Gaussian noise of that many grey levels added to every keyframe
    after the blur (film grain: sharp itself, over a defocused picture), the film's references
    measured on its clean shots with the same grain. ``whole``: every clean shot of the film
    blurred alike and the references measured on them (a film soft all over)."""
    rng = np.random.default_rng(0)

    def grainy(image: np.ndarray) -> np.ndarray:
        if not grain:
            return image
        noise = rng.normal(0.0, grain, image.shape[:2])[..., None]
        return np.clip(image + noise, 0, 255).astype(np.uint8)

    def blurred_shot(images: list[np.ndarray], sigma: float) -> tuple[float, float | None, float]:
        return shot_focus(
            [grainy(cv2.GaussianBlur(im, (0, 0), sigma) if sigma else im) for im in images]
        )

    flagged: dict[float, dict[str, list[bool]]] = {s: {n: [] for n in RULES} for s in SIGMAS}
    measured: dict[float, list[tuple[float, float]]] = {s: [] for s in SIGMAS}
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith("_")):
        doc = json.loads(path.read_text())
        images = film_shots(folder, doc)
        scale = doc["height"] / 480
        clean = {}
        for s in doc["shots"]:
            if s["index"] in images and not s["flags"]:
                found = blurred_shot(images[s["index"]], 0.0)
                if found[2] >= measure.MIN_CONTRAST:
                    clean[s["index"]] = found
        if len(clean) < BLUR.min_reference_shots:
            continue
        for sigma in SIGMAS if whole else [None]:
            if sigma is not None:  # the whole film blurred: its references move with it
                shots = {i: blurred_shot(images[i], sigma * scale) for i in clean}
                base = {i: v for i, v in shots.items() if v[2] >= measure.MIN_CONTRAST}
                if len(base) < BLUR.min_reference_shots:
                    continue
            else:
                base = clean
            reference = statistics.median(v[0] for v in base.values())
            wref = film_width(v[1] for v in base.values())
            for index in base:
                for s in [sigma] if sigma is not None else SIGMAS:
                    sharp, width, _ = (
                        base[index] if sigma is not None else blurred_shot(images[index], s * scale)
                    )
                    measured[s].append((sharp / reference, width or 0.0))
                    for name, rule in RULES.items():
                        flagged[s][name].append(rule(sharp / reference, width, wref))
    n = len(flagged[SIGMAS[0]][next(iter(RULES))])
    with_grain = f", grain {grain:g} grey levels" if grain else ""
    what = "films blurred whole" if whole else "blurred after decoding"
    print(f"\n{n} clean shots of {folder.name}, {what}{with_grain}: share flagged")
    print("| sigma at 480 lines | " + " | ".join(RULES) + " | median rel / edge width |")
    print("|---:|" + "---:|" * (len(RULES) + 1))
    for sigma in SIGMAS:
        if not flagged[sigma][next(iter(RULES))]:
            continue
        cells = " | ".join(f"{np.mean(flagged[sigma][name]):.2f}" for name in RULES)
        rel, width = np.median(np.array(measured[sigma]), axis=0)
        print(f"| {sigma:g} | {cells} | {rel:.2f} / {width:.1f} |")


def cost(folder: Path) -> None:
    images = []
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith("_")):
        for shot in film_shots(folder, json.loads(path.read_text())).values():
            images += shot
    ms: dict[str, list[float]] = {"focus": [], "edge_width": []}
    for _ in range(3):
        for image in images:
            t0 = time.perf_counter()
            grey = measure.focus(image).grey
            t1 = time.perf_counter()
            measure.edge_width(grey)
            ms["focus"].append(1000 * (t1 - t0))
            ms["edge_width"].append(1000 * (time.perf_counter() - t1))
    cells = ", ".join(f"{name} {statistics.median(v):.2f} ms" for name, v in ms.items())
    print(f"\n{len(images)} keyframes of {folder.name}, median per keyframe: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--sweep", type=Path, action="append", default=[])
    parser.add_argument("--grain", type=float, nargs="*", default=[0.0])
    parser.add_argument("--whole", action="store_true", help="sweep whole films blurred alike")
    parser.add_argument(
        "--denoise",
        type=float,
        default=0.0,
        help="a Gaussian of this sigma (working pixels) over every working picture before it "
        "is measured: does denoising give a grainy defocus back? (the filter uses none)",
    )
    parser.add_argument("--cost", type=Path, action="append", default=[])
    args = parser.parse_args()
    global DENOISE
    DENOISE = args.denoise
    if args.denoise:
        print(f"every working picture denoised first: Gaussian sigma {args.denoise:g}")
    if args.sets:
        separation([r for folder in args.sets for r in set_rows(folder)])
    for folder in args.sweep:
        for grain in args.grain:
            sweep(folder, grain, args.whole)
    for folder in args.cost:
        cost(folder)


if __name__ == "__main__":
    main()
