"""Metrics of the Cinematic Narrative Benchmark: score one generated video against its Script.

Every formula is in docs/bench-metrics.md. The entry points:

- ``load_bench_models(cfg)`` -> ``MetricModels``: loads every model once (``setup()``);
- ``score_video(frames, script, script_dir, models)`` -> ``VideoScore``: all metrics of one
  video, ``None`` where a metric cannot be computed for it (``notes`` says why);
- ``read_video(path)`` -> ``(frames, fps)``: an mp4 decoded to RGB uint8 by ffmpeg.

Each metric is also a plain function over arrays or embeddings (imported below), so its formula
can be pinned on constructed inputs without any model.
"""

from __future__ import annotations

from muss_builder.bench.metrics.acp import acp_var, copy_paste_index, pose_vector
from muss_builder.bench.metrics.alignment import text_alignment
from muss_builder.bench.metrics.consistency import inter_shot_consistency, subject_consistency
from muss_builder.bench.metrics.models import (
    BenchModelsConfig,
    JudgeConfig,
    MetricModels,
    load_bench_models,
)
from muss_builder.bench.metrics.narrative import parse_yes_no
from muss_builder.bench.metrics.reference import reference_similarity
from muss_builder.bench.metrics.score import METRIC_KEYS, ShotScore, VideoScore, score_video
from muss_builder.bench.metrics.transitions import CutMatch, detect_cuts, match_cuts
from muss_builder.bench.metrics.video import read_video

__all__ = [
    "METRIC_KEYS",
    "BenchModelsConfig",
    "CutMatch",
    "JudgeConfig",
    "MetricModels",
    "ShotScore",
    "VideoScore",
    "acp_var",
    "copy_paste_index",
    "detect_cuts",
    "inter_shot_consistency",
    "load_bench_models",
    "match_cuts",
    "parse_yes_no",
    "pose_vector",
    "read_video",
    "reference_similarity",
    "score_video",
    "subject_consistency",
    "text_alignment",
]
