"""What curation costs: `muss-builder build` wall time with the filters on and off, side by side.

    .venv/bin/python benchmarks/curation/filter_cost.py --runs 3 --work /tmp/muss-bench

Cases: the demo footage (5 films) and the 10-minute 1080p synthetic film of
``benchmarks/build_wall_time.py`` (made once and reused from ``--work``). Each case is built
three ways, alternating run by run (each run starting from the next way) so that machine noise
hits all alike: the default pipeline
("filters on"), the same with ``filters.drop: []`` ("measure only": every filter runs, no shot
is dropped, so the same clips are encoded as with the filters off) and the same with
``filters.enabled: false``. The filters' cost is "measure only" against "filters off"; "filters
on" also saves the clip work of the shots it drops (the synthetic film's shots are stills:
ffmpeg's drawbox evaluates its position once, so the "moving" box stands still and the
default build drops them as ``static``). Prints the median wall time of
each, their ratio, each run's own ratio (its configs built back to back) and the median of
those, the stage split and each filter's own seconds summed over the films'
records (``timings`` keys that start with ``filter_``). ``--without keyframes.text`` adds a
"measure only" build with that filter off: what the filter adds to the wall time (a filter on
its own thread costs the wall less than its own seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from muss_builder.core.overrides import dotted_overrides
from muss_builder.media.demo_footage import demo_films
from muss_builder.resources import resource_dir
from muss_builder.runtime.film_job import TIMING_BUCKETS
from muss_builder.train.config import merge

_spec = importlib.util.spec_from_file_location(
    "build_wall_time", Path(__file__).resolve().parents[1] / "build_wall_time.py"
)
assert _spec and _spec.loader
build_wall_time = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_wall_time)


def variant(config: str, work: Path, suffix: str, filters: dict) -> str:
    """A copy of pipeline ``config`` (a name or a path) with ``filters`` set over its own."""
    path = Path(config)
    if not path.is_file():
        path = resource_dir("pipelines") / f"{config}.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    doc["name"] = f"{doc.get('name', config)}-{suffix}"
    doc["filters"] = merge(doc.get("filters") or {}, filters)
    out = work / f"{path.stem}-{suffix}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(out)


def filter_seconds(out: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    for record in (out / "films").glob("*.json"):
        for key, value in (json.loads(record.read_text()).get("timings") or {}).items():
            if key.startswith("filter_"):
                found[key] = found.get(key, 0.0) + float(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-bench"))
    parser.add_argument("--config", default="default")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--cases", default="demo,long", help="which cases, comma-separated: demo, long"
    )
    parser.add_argument(
        "--without",
        default="",
        help="filters (comma-separated, as under filters: in the config, e.g. keyframes.text) "
        "each also built as 'measure only' with that one filter off: its share of the wall "
        "time, which its own seconds overstate when it runs on its own thread",
    )
    args = parser.parse_args()
    wanted = set(args.cases.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    # "measure only" runs every filter but drops nothing: the same clips are encoded as with
    # the filters off, so the difference is what the filters cost, not what they save
    configs = {
        "filters on": args.config,
        "measure only": variant(args.config, args.work, "measure-only", {"drop": []}),
        "filters off": variant(args.config, args.work, "no-filters", {"enabled": False}),
    }
    for name in filter(None, args.without.split(",")):
        configs[f"measure only, no {name}"] = variant(
            args.config,
            args.work,
            f"measure-only-no-{name}",
            {"drop": []} | dotted_overrides([f"{name}.enabled=false"]),
        )
    cases: dict[str, list[Path]] = {}
    if "demo" in wanted:
        cases["demo footage"] = demo_films()
    if "long" in wanted:
        cases[f"synthetic {args.minutes:g} min 1080p"] = [
            build_wall_time.long_film(args.work, args.minutes)
        ]
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        labels = list(configs)
        for run in range(args.runs):
            # each run starts from the next config: over as many runs as configs, each
            # config builds first, second, ... once (a build's position in the run is noise
            # it would otherwise always get the same share of)
            order = labels[run % len(labels) :] + labels[: run % len(labels)]
            for case, films in cases.items():
                for label, config in ((name, configs[name]) for name in order):
                    out = Path(tmp) / f"out-{run}"
                    row = build_wall_time.run_case(films, out, config)
                    row |= filter_seconds(out)
                    results.setdefault((case, label), []).append(row)
                    print(f"run {run + 1} {case}, {label}: {row['wall']:.1f}s", file=sys.stderr)
    report(results, args.runs)


def report(results: dict[tuple[str, str], list[dict]], runs: int) -> None:
    print(
        f"| case | filters | shots | samples | wall s (median of {runs}) | min..max | "
        + " | ".join(f"{s} s" for s in TIMING_BUCKETS)
        + " |"
    )
    print("|" + "---|" * (6 + len(TIMING_BUCKETS)))
    walls: dict[tuple[str, str], float] = {}
    filters: dict[str, dict[str, float]] = {}
    for (case, label), rows in results.items():
        med = {k: statistics.median(r.get(k, 0.0) for r in rows) for k in rows[0]}
        walls[(case, label)] = med["wall"]
        span = [r["wall"] for r in rows]
        print(
            f"| {case} | {label} | {med['n_shots']:.0f} | {med['samples']:.0f} | "
            f"{med['wall']:.1f} | {min(span):.1f}..{max(span):.1f} | "
            + " | ".join(f"{med.get(s, 0.0):.1f}" for s in TIMING_BUCKETS)
            + " |"
        )
        if label == "measure only":
            filters[case] = {k: v for k, v in med.items() if k.startswith("filter_")}
    print()
    for case in {c for c, _ in results}:
        off = walls[(case, "filters off")]
        for label in [lb for c, lb in walls if c == case and lb != "filters off"]:
            on = walls[(case, label)]
            print(f"- {case}: {label} / filters off = {on / off:.3f} ({on - off:+.1f} s)")
            # each run builds every config back to back: the ratio inside one run sees the
            # same machine, so its median is steadier than the ratio of medians when the
            # machine's speed drifts between runs
            paired = [
                a["wall"] / b["wall"]
                for a, b in zip(results[(case, label)], results[(case, "filters off")], strict=True)
            ]
            print(
                f"  - per-run ratios: median {statistics.median(paired):.3f} "
                f"({', '.join(f'{r:.3f}' for r in paired)})"
            )
        for key, seconds in sorted(filters.get(case, {}).items()):
            print(f"  - {key}: {seconds:.2f} s (median over runs, summed over films)")


if __name__ == "__main__":
    main()
