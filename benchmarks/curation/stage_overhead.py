"""Where the filters' cost sits in one film: its analyse and subjects stages, run inline.

    .venv/bin/python benchmarks/curation/stage_overhead.py FILM --runs 2

Runs the analyse stage (probe, shot decode, the picture filters) and the subjects stage (the
keyframe pass: faces, keyframe collectors, the text detector's thread) of one film in this
process, once with the default pipeline's filters measuring but dropping nothing ("measure
only", ``filters.drop: []``) and once with ``filters.enabled: false``, alternating, and
prints each stage's median seconds, its CPU seconds (this process's threads and the ffmpeg
processes it ran: on a build that keeps every core busy, CPU seconds are what the filters take
from the other films) and the filters' own seconds. Models load before the
timing (``Stage.setup``), as a Ray actor holds them. No Ray, no clips: this is the film's own
critical path, apart from the cluster's start and the other films
(``filter_cost.py`` measures whole builds).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.runtime.film_job import FilmResult, FilmWork
from muss_builder.runtime.stages import AnalyseStage, SubjectsStage
from muss_builder.train.config import merge

VARIANTS = {"measure only": {"drop": []}, "filters off": {"enabled": False}}


def variant_config(base: str, filters: dict) -> PipelineConfig:
    doc = load_pipeline(base).model_dump()
    doc["filters"] = merge(doc["filters"], filters)
    return PipelineConfig.model_validate(doc)


def cpu_seconds() -> float:
    """User + system seconds of this process's threads and its waited-for children (ffmpeg)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("film", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--config", default="default")
    args = parser.parse_args()

    configs = {name: variant_config(args.config, f) for name, f in VARIANTS.items()}
    stages = {name: (AnalyseStage(), SubjectsStage()) for name in configs}
    for name, (analyse, subjects) in stages.items():
        analyse.setup(configs[name])
        subjects.setup(configs[name])
    seconds: dict[str, dict[str, list[float]]] = {n: {} for n in configs}
    out = tempfile.mkdtemp(prefix="stage-overhead-")
    for run in range(args.runs):
        for name, config in configs.items():
            analyse, subjects = stages[name]
            result = FilmResult(path=str(args.film), film_id="0" * 16, status="running")
            work = FilmWork(str(args.film), "0" * 16, config, out, result)
            c0, t0 = cpu_seconds(), time.perf_counter()
            work = analyse.process(work, None)
            c1, t1 = cpu_seconds(), time.perf_counter()
            work = subjects.process(work, None)
            c2, t2 = cpu_seconds(), time.perf_counter()
            got = {"analyse": t1 - t0, "subjects": t2 - t1}
            got |= {"analyse_cpu": c1 - c0, "subjects_cpu": c2 - c1}
            got |= {f"filter_{k}": v for k, v in work.filter_seconds.items()}
            for key, value in got.items():
                seconds[name].setdefault(key, []).append(value)
            print(
                f"run {run + 1} {name}: analyse {t1 - t0:.2f} s ({c1 - c0:.2f} CPU s), "
                f"subjects {t2 - t1:.2f} s ({c2 - c1:.2f} CPU s)"
            )
    print(f"\n{args.film.name}, median of {args.runs}")
    print("| stage or filter | " + " | ".join(configs) + " |")
    print("|---|" + "---:|" * len(configs))
    keys = sorted({k for v in seconds.values() for k in v}, key=lambda k: (k.startswith("f"), k))
    for key in keys:
        cells = [
            f"{statistics.median(seconds[n][key]):.2f}" if key in seconds[n] else "-"
            for n in configs
        ]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
