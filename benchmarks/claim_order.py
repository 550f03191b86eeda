"""What claiming in input order costs a Ray build: wall time with
``runtime.claims_in_input_order`` on (the default) and off, side by side, and whether the two
write the same shards.

    .venv/bin/python benchmarks/claim_order.py --runs 3 --work /tmp/muss-bench

With the claims in input order a film waits before the curate stage until every film given
before it has claimed (``runtime/streaming.py``); off, a film claims as soon as its keyframe
pass ends. Cases: the demo footage (5 films, as given), and the worst case for the wait: a
long synthetic 1080p film (``--minutes``, made once and reused from ``--work``) given *first*,
then the demo films, which all finish their keyframe pass long before it and park. The two
configs alternate run by run (each run starts with the other), and each run's own ratio is
printed beside the medians. The shards of every build are hashed: builds of one case should
match byte for byte whatever the setting, as none of these films copies another.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import yaml

from muss_builder.media.demo_footage import demo_films
from muss_builder.resources import resource_dir


def _load(name: str) -> ModuleType:
    """A sibling script of this folder, as a module."""
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parent / f"{name}.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_wall_time = _load("build_wall_time")  # run_case, long_film
long_film = _load("long_film")  # shard_digest


def with_order(config: str, work: Path, in_order: bool) -> str:
    """A copy of pipeline ``config`` (a name or a path) with the claim order set."""
    path = Path(config)
    if not path.is_file():
        path = resource_dir("pipelines") / f"{config}.yaml"
    doc = yaml.safe_load(path.read_text()) or {}
    doc.setdefault("runtime", {})["claims_in_input_order"] = in_order
    out = work / f"{path.stem}-claims-{'in-order' if in_order else 'first-come'}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/muss-bench"))
    parser.add_argument("--config", default="default")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--cases", default="demo,long-first", help="demo, long-first")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    configs = {
        "in input order": with_order(args.config, args.work, True),
        "first come": with_order(args.config, args.work, False),
    }
    cases: dict[str, list[Path]] = {}
    wanted = set(args.cases.split(","))
    if "demo" in wanted:
        cases["demo footage"] = demo_films()
    if "long-first" in wanted:
        long = build_wall_time.long_film(args.work, args.minutes)
        cases[f"{args.minutes:g} min 1080p first, then the demo"] = [long, *demo_films()]
    walls: dict[tuple[str, str], list[float]] = {}
    digests: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        labels = list(configs)
        for run in range(args.runs):
            order = labels[run % 2 :] + labels[: run % 2]
            for case, films in cases.items():
                for label in order:
                    out = Path(tmp) / "out"
                    row = build_wall_time.run_case(films, out, configs[label])
                    walls.setdefault((case, label), []).append(row["wall"])
                    digests.setdefault(case, set()).add(long_film.shard_digest(out))
                    print(f"run {run + 1} {case}, {label}: {row['wall']:.1f}s", file=sys.stderr)
    print(
        f"| case | claims | wall s (median of {args.runs}) | min..max "
        "| per-run ratio to first come |"
    )
    print("|---|---|---:|---|---|")
    for case in cases:
        for label in configs:
            span = walls[(case, label)]
            ratios = [a / b for a, b in zip(span, walls[(case, "first come")], strict=True)]
            shown = (
                f"{statistics.median(ratios):.3f} ({', '.join(f'{r:.3f}' for r in ratios)})"
                if label != "first come"
                else ""
            )
            print(
                f"| {case} | {label} | {statistics.median(span):.1f} | "
                f"{min(span):.1f}..{max(span):.1f} | {shown} |"
            )
    print()
    for case, found in digests.items():
        print(f"- {case}: {len(found)} distinct shard set(s) over every build ({', '.join(found)})")


if __name__ == "__main__":
    main()
