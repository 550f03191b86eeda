"""Pack throughput (GB/s from local disk) and the shard size distribution before and after.

Needs a finished build (``make build-dataset`` / ``muss-builder demo --out DIR``). From it the
script makes synthetic larger builds by repeating its films under new film ids (every key,
shard name and record rewritten; clip bytes unchanged, so each copy is a valid build film),
then packs each build ``--runs`` times into fresh folders and reports the median wall time,
GB/s of source shards read, peak RSS of the packing process, and shard sizes before/after.

    .venv/bin/python benchmarks/pack_throughput.py --build /tmp/pack-bench/demo \\
        --work /tmp/pack-bench --runs 3

The files were just written, so reads come from the page cache (warm): this measures the
packer (tar parsing, sha256 check, copy, hashing of the output), not a cold disk.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import multiprocessing
import resource
import shutil
import statistics
import time
from pathlib import Path

import pyarrow.parquet as pq

from muss_builder.pack.packer import PackOptions, pack_build
from muss_builder.runtime.tables import table_bytes
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.writer import FilmShardWriter


def _copy_film(src: Path, dst: Path, record: dict, copy: int) -> dict:
    """Film ``record`` of build ``src`` as a new film (id derived from ``copy``) in ``dst``."""
    old = record["film_id"]
    new = hashlib.sha256(f"{old}:{copy}".encode()).hexdigest()[:16]
    writer = FilmShardWriter(dst / "shards", new, 10**12)
    for entry in record["shards"]:
        for sample in iter_samples(src / "shards" / entry["name"]):
            members = {
                ext: data.replace(old.encode(), new.encode()) if ext == "json" else data
                for ext, data in sample.members.items()
            }
            writer.write(sample.key.replace(old, new), members)
    shards = [s.to_dict() for s in writer.close()]
    moved = json.loads(json.dumps(record).replace(old, new))
    moved["shards"] = shards
    path = Path(moved["probe"]["path"] or f"{new}.mp4")
    moved["probe"]["path"] = str(path.with_name(f"{path.stem}-copy{copy}{path.suffix}"))
    for sample in moved["samples"]:
        sample["shard"] = shards[0]["name"]  # one shard per copied film
    (dst / "films" / f"{new}.json").write_text(json.dumps(moved, indent=2) + "\n")
    return moved


def replicate(src: Path, dst: Path, n_films: int) -> Path:
    """A build of ``n_films`` films, copies of the films of ``src`` that have samples taken in
    turn (made once, reused)."""
    if (dst / "index.parquet").is_file():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "shards").mkdir(parents=True)
    (dst / "films").mkdir()
    records = [json.loads(p.read_text()) for p in sorted((src / "films").glob("*.json"))]
    records = [r for r in records if r["samples"]]
    old_rows = {r["film_id"]: r for r in pq.read_table(src / "films.parquet").to_pylist()}
    samples, films = [], []
    for n in range(n_films):
        record = records[n % len(records)]
        moved = _copy_film(src, dst, record, n // len(records))
        samples += moved["samples"]
        row = dict(old_rows[record["film_id"]])
        row.update(film_id=moved["film_id"], path=moved["probe"]["path"])
        films.append(row)
    (dst / "index.parquet").write_bytes(
        table_bytes(sorted(samples, key=lambda r: r["key"]), "index")
    )
    (dst / "films.parquet").write_bytes(table_bytes(films, "films"))
    return dst


def _pack_once(build: str, dest: str, options: PackOptions, queue: multiprocessing.Queue) -> None:
    start = time.perf_counter()
    result = pack_build(build, dest, options)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put((seconds, rss, [s["size_bytes"] for s in result.manifest["shards"]]))


def measure(build: Path, work: Path, options: PackOptions, runs: int) -> dict:
    """Median of ``runs`` packs, each in a fresh process and folder (spawned, not forked: a
    forked child's peak RSS would count the pages of this process, which made the copies)."""
    ctx = multiprocessing.get_context("spawn")
    times, rss, after = [], [], []
    for run in range(runs):
        dest = work / f"packed-{build.name}-{run}"
        shutil.rmtree(dest, ignore_errors=True)
        queue = ctx.Queue()
        proc = ctx.Process(target=_pack_once, args=(str(build), str(dest), options, queue))
        proc.start()
        seconds, peak, after = queue.get()
        proc.join()
        times.append(seconds)
        rss.append(peak)
        mixing = _mixing(dest / "index.parquet")
        shutil.rmtree(dest, ignore_errors=True)
    before = [p.stat().st_size for p in sorted((build / "shards").glob("*.tar"))]
    seconds = statistics.median(times)
    return {
        "build": build.name,
        "films": len(list((build / "films").glob("*.json"))),
        "source_bytes": sum(before),
        "seconds": seconds,
        "runs": [round(t, 3) for t in times],
        "gb_per_s": sum(before) / seconds / 1e9,
        "peak_rss_mb": max(rss) / 2**20,
        "before": before,
        "after": after,
        "mixing": mixing,
    }


def _mixing(index: Path) -> str:
    """Films per packed shard (median) and the share of neighbouring samples of one film."""
    rows = pq.read_table(index, columns=["film_id", "shard"]).to_pylist()
    per_shard: dict[str, set[str]] = {}
    for row in rows:
        per_shard.setdefault(row["shard"], set()).add(row["film_id"])
    same = sum(
        a["film_id"] == b["film_id"] and a["shard"] == b["shard"]
        for a, b in itertools.pairwise(rows)
    )
    films = statistics.median(len(f) for f in per_shard.values())
    return f"{films:g} films/shard, {same / max(1, len(rows) - 1):.0%} same-film neighbours"


def _dist(sizes: list[int]) -> str:
    if not sizes:
        return "-"
    mb = sorted(s / 1e6 for s in sizes)
    return (
        f"{len(mb)} shards, min {mb[0]:.2f} / median {statistics.median(mb):.2f} / "
        f"max {mb[-1]:.2f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, required=True, help="a finished build (demo)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/pack-bench"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--films", type=int, default=100, help="films of the 'small films' build")
    parser.add_argument("--big-films", type=int, default=900, help="films for throughput")
    args = parser.parse_args()
    small = replicate(args.build, args.work / f"films{args.films}", args.films)
    big = replicate(args.build, args.work / f"films{args.big_films}", args.big_films)
    cases = [
        (args.build, PackOptions(1_000_000, splits={"train": 1.0})),
        (small, PackOptions(16_000_000, splits={"train": 1.0})),
        (big, PackOptions(splits={"train": 1.0})),  # the default 1 GB target
        (big, PackOptions(splits={"train": 1.0}, verify=False)),
    ]
    print("| build | films | source GB | target | verify | median s (runs) | GB/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for build, options in cases:
        r = measure(build, args.work, options, args.runs)
        results.append((r, options))
        print(
            f"| {r['build']} | {r['films']} | {r['source_bytes'] / 1e9:.3f} | "
            f"{options.target_bytes / 1e6:g} MB | {options.verify} | {r['seconds']:.2f} "
            f"({', '.join(map(str, r['runs']))}) | {r['gb_per_s']:.3f} | {r['peak_rss_mb']:.0f} |"
        )
    print("\n| build | target | before (per-film shards) | after (packed) | mixing |")
    print("|---|---|---|---|---|")
    for r, options in results[:3]:
        print(
            f"| {r['build']} | {options.target_bytes / 1e6:g} MB | {_dist(r['before'])} | "
            f"{_dist(r['after'])} | {r['mixing']} |"
        )


if __name__ == "__main__":
    main()
