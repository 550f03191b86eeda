"""Score a folder of videos against a suite: ``results.json`` and a Markdown ``results.md``.

Videos are ``{videos_dir}/{script.key}.mp4``. Each is scored by ``score_video`` against its
script, with the suite's own real clip (``real/{key}.mp4``) as the target for the copy-paste
index. A metric that cannot be computed for a video is ``None`` there, with the metric's note;
the summary gives, per metric, the mean over the videos that have it and how many do (so a mean
over 3 of 40 videos never passes for a mean over 40).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from muss_builder.bench.suite import Suite, SuiteError, load_suite

# direction of "better" per metric, for the table (None: a count or diagnostic, no direction)
HIGHER_IS_BETTER: dict[str, bool | None] = {
    "text_alignment": True,
    "consistency_semantic": True,
    "consistency_subject": True,
    "consistency_background": True,
    "transition_deviation": False,
    "shot_cut_accuracy": True,
    "missed_cuts": False,
    "extra_cuts": False,
    "reference_identity": True,
    "reference_crop": True,
    "subject_found": True,
    "acp_var": True,
    "copy_paste_index": False,
    "narrative_coherence": True,
    "narrative_scene": True,
    "narrative_subject": True,
    "narrative_action": True,
    "narrative_spatial": True,
}


@dataclass
class MetricSummary:
    mean: float | None
    std: float | None
    count: int  # videos with a value
    missing: int  # videos scored without a value (see notes)
    notes: list[str] = field(default_factory=list)  # distinct reasons, for the missing ones


@dataclass
class SuiteResults:
    suite: str
    videos: str
    n_videos: int
    metrics: dict[str, MetricSummary]
    per_video: list[dict[str, Any]]
    missing_videos: list[str]
    methods: dict[str, str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def mean(self, metric: str) -> float | None:
        return self.metrics[metric].mean


def summarise(per_video: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, MetricSummary]:
    """Mean, std and counts per metric over the videos' ``metrics`` dicts."""
    out = {}
    for key in keys:
        values = [v["metrics"].get(key) for v in per_video]
        kept = [float(x) for x in values if x is not None and math.isfinite(x)]
        notes = sorted(
            {
                v["notes"][key]
                for v in per_video
                if v["metrics"].get(key) is None and key in v["notes"]
            }
        )
        mean = sum(kept) / len(kept) if kept else None
        std = (
            math.sqrt(sum((x - mean) ** 2 for x in kept) / len(kept)) if mean is not None else None
        )
        out[key] = MetricSummary(mean, std, len(kept), len(values) - len(kept), notes)
    return out


def run_suite(
    suite_dir: str | Path,
    videos_dir: str | Path,
    models: Any,
    out_dir: str | Path,
    *,
    allow_missing: bool = False,
) -> SuiteResults:
    """Score every ``{videos_dir}/{key}.mp4`` of the suite with ``models`` (a ``MetricModels``);
    write ``out_dir/results.json`` and ``out_dir/results.md``. A missing video is an error
    naming it unless ``allow_missing`` (then it is listed in ``missing_videos``)."""
    from muss_builder.bench.metrics import METRIC_KEYS, read_video, score_video

    started = time.perf_counter()
    suite = load_suite(suite_dir)
    videos = Path(videos_dir)
    if not videos.is_dir():
        raise SuiteError(f"{videos}: no such folder of videos")
    missing = [s.key for s in suite.scripts if not (videos / f"{s.key}.mp4").is_file()]
    if missing and not allow_missing:
        shown = ", ".join(f"{k}.mp4" for k in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise SuiteError(
            f"{videos}: {len(missing)} of {len(suite.scripts)} videos missing: {shown}"
        )
    if len(missing) == len(suite.scripts):
        raise SuiteError(f"{videos}: none of the suite's {len(missing)} videos is there")
    models.setup()
    per_video = []
    for script in suite.scripts:
        if script.key in missing:
            continue
        video = videos / f"{script.key}.mp4"
        frames, fps = read_video(video)
        target = _real_clip(suite, script.key, video, frames)
        score = score_video(frames, script, suite.root, models, target_frames=target)
        row = score.to_dict()
        if abs(fps - script.fps) > 1e-3:
            row["notes"]["fps"] = f"the video plays at {fps:g} fps, the script asks {script.fps:g}"
        row["n_frames"] = int(frames.shape[0])
        for key, value in row["metrics"].items():
            # a guard only: score_video notes every None (test_metrics_video.py checks it);
            # a metric added later without a reason still shows as a gap, not a silent None
            if value is None and key not in row["notes"]:
                row["notes"][key] = "not computed (the metric gave no reason)"
        per_video.append(row)
    results = SuiteResults(
        suite=str(suite.root),
        videos=str(videos),
        n_videos=len(per_video),
        metrics=summarise(per_video, METRIC_KEYS),
        per_video=per_video,
        missing_videos=missing,
        methods=dict(getattr(models, "methods", {})),
        seconds=time.perf_counter() - started,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results.to_dict(), indent=1) + "\n")
    (out / "results.md").write_text(format_markdown(results))
    return results


def _real_clip(suite: Suite, key: str, video: Path, frames: Any) -> Any:
    """The frames of the suite's real clip for ``key`` (None without one). Scoring the real
    baseline (``--videos SUITE/real``), the scored ``video`` is that clip: its ``frames`` are
    reused rather than decoded a second time."""
    from muss_builder.bench.metrics import read_video

    real = suite.real_video(key)
    if not real.is_file():
        return None
    if real.resolve() == video.resolve():
        return frames
    return read_video(real)[0]


def format_value(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_markdown(results: SuiteResults) -> str:
    """The summary table (one row per metric) and the models that computed them."""
    arrow = {True: "↑", False: "↓", None: ""}
    lines = [
        f"Suite `{results.suite}`, videos `{results.videos}`: {results.n_videos} scored"
        + (f", {len(results.missing_videos)} missing" if results.missing_videos else "")
        + f" ({results.seconds:.0f} s).",
        "",
        "| metric | mean | std | videos | not scored | why not |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key, m in results.metrics.items():
        why = "; ".join(m.notes)
        lines.append(
            f"| {key} {arrow[HIGHER_IS_BETTER.get(key)]} | {format_value(m.mean)} | "
            f"{format_value(m.std)} | {m.count} | {m.missing} | {why} |"
        )
    if results.methods:
        lines += ["", "Computed by: " + "; ".join(f"{k}: {v}" for k, v in results.methods.items())]
    return "\n".join(lines) + "\n"


def generate_videos(
    suite_dir: str | Path,
    ckpt_dir: str | Path,
    videos_dir: str | Path,
    *,
    steps: int | None = None,
    cfg_scale: float | None = None,
    seed: int = 0,
    device: str = "auto",
) -> Path:
    """Generate ``{videos_dir}/{key}.mp4`` for every script with the trainer's sampler
    (``steps``/``cfg_scale`` default to the checkpoint's training config); script ``i`` is
    sampled with seed ``seed + i``."""
    from muss_builder.train.sample import generate

    suite = load_suite(suite_dir)
    out = Path(videos_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, script in enumerate(suite.scripts):
        generate(
            ckpt_dir, script, out / f"{script.key}.mp4", steps=steps, cfg_scale=cfg_scale,
            seed=seed + i, device=device, refs_dir=suite.root,
        )  # fmt: skip
    return out
