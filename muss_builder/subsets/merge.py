"""``merge_builds``: two (or more) finished builds -> one build folder, without re-encoding.

The per-film shards and film records are linked (a hard link when the folders share a disk,
else a byte copy), ``index.parquet`` and ``films.parquet`` are the builds' tables one after
the other, so the result is an ordinary build folder: ``validate``, ``pack``, ``select`` and
the trainer read it as they read any build. It gets a dataset card (``README.md``), and the
builds' ``pipeline.yaml`` when they all ran the same one.

Refused, with every reason and nothing written: a build that is incomplete or invalid
(``read_build``), a film (so its sample keys) in more than one build, index or films tables
of different schema versions or columns. Builds made with different pipeline configs may be
merged (their config hashes stay in each film record and in ``stats.json``). Each film's
``curation/`` files (its shot fingerprints, its drop examples) are linked too, so a build run
into the merged folder checks new films for duplicates against the films of every build.
Footage repeated *between* the merged builds (neither build saw the other's films) is looked
for in their fingerprints and reported in ``stats.json`` (``cross_duplicates.py``), not
removed: build them into one folder when it must be.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from muss_builder.core.naming import FILMS_DIR, FINGERPRINTS_DIR, SHARDS_DIR
from muss_builder.core.storage import Storage, current_umask, json_bytes
from muss_builder.curation.examples import EXAMPLES_DIR
from muss_builder.pack.source import BuildRefused, SourceBuild, SourceFilm, read_build
from muss_builder.report.card import PIPELINE_FILE, write_card
from muss_builder.subsets.cross_duplicates import (
    CrossDuplicates,
    duplicates_config,
    find_cross_duplicates,
)


class MergeRefused(ValueError):
    """The builds cannot be merged; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        super().__init__(f"cannot merge: {len(problems)} problem(s)\n{shown}")


@dataclass
class MergeResult:
    dest: Path
    n_films: int
    n_samples: int
    n_index_rows: int
    linked: int  # shard and record files hard-linked
    copied: int  # ... and copied (another disk)
    cross: CrossDuplicates  # footage of a later build that repeats an earlier one's


def _version(table: pa.Table) -> str | None:
    meta = table.schema.metadata or {}
    raw = meta.get(b"schema_version")
    return raw.decode() if raw is not None else None


def _schema_problems(name: str, tables: list[tuple[str, pa.Table]]) -> list[str]:
    problems = []
    first_root, first = tables[0]
    for root, table in tables[1:]:
        if _version(table) != _version(first):
            problems.append(
                f"{name}: schema version {_version(first)} in {first_root}, "
                f"{_version(table)} in {root}"
            )
        elif not table.schema.equals(first.schema, check_metadata=False):
            a, b = set(first.schema.names), set(table.schema.names)
            diff = [f"{c} only in {first_root}" for c in sorted(a - b)]
            diff += [f"{c} only in {root}" for c in sorted(b - a)]
            diff += [
                f"{c} is {first.schema.field(c).type} in {first_root}, "
                f"{table.schema.field(c).type} in {root}"
                for c in sorted(a & b)
                if first.schema.field(c).type != table.schema.field(c).type
            ]
            problems.append(f"{name}: columns differ ({'; '.join(diff) or 'their order'})")
    return problems


def _films_table(root: str) -> pa.Table:
    return pq.read_table(os.path.join(root, "films.parquet"))


def _check(builds: list[SourceBuild], films_tables: list[pa.Table]) -> None:
    problems: list[str] = []
    owner: dict[str, str] = {}
    for build in builds:
        for film in build.films:
            if film.film_id in owner:
                problems.append(
                    f"film {film.film_id} ({film.source_name}) is in {owner[film.film_id]} and "
                    f"in {build.root}: its sample keys ({film.film_id}_NNNNN) would collide"
                )
            owner.setdefault(film.film_id, build.root)
    problems += _schema_problems("index.parquet", [(b.root, b.index) for b in builds])
    problems += _schema_problems(
        "films.parquet", [(b.root, t) for b, t in zip(builds, films_tables, strict=True)]
    )
    if problems:
        raise MergeRefused(problems)


def _link_or_copy(src: Path, dst: Path) -> bool:
    """True when hard-linked, False when copied."""
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copy2(src, dst)
        return False


def _concat(tables: list[pa.Table]) -> pa.Table:
    metadata = tables[0].schema.metadata
    merged = pa.concat_tables([t.replace_schema_metadata(metadata) for t in tables])
    return merged.replace_schema_metadata(metadata)


def _film_files(root: str, film: SourceFilm) -> list[str]:
    """A film's files in a build: shards, record, fingerprints and drop examples."""
    rels = [f"{SHARDS_DIR}/{s.name}" for s in film.shards]
    rels.append(f"{FILMS_DIR}/{film.film_id}.json")
    if os.path.isfile(os.path.join(root, FINGERPRINTS_DIR, f"{film.film_id}.npz")):
        rels.append(f"{FINGERPRINTS_DIR}/{film.film_id}.npz")
    examples = os.path.join(root, EXAMPLES_DIR, film.film_id)
    if os.path.isdir(examples):
        rels += [f"{EXAMPLES_DIR}/{film.film_id}/{n}" for n in sorted(os.listdir(examples))]
    return rels


def _same_pipeline(builds: list[SourceBuild]) -> bytes | None:
    """The builds' pipeline.yaml when every one has it and they are the same bytes."""
    found = set()
    for build in builds:
        path = Path(build.root) / PIPELINE_FILE
        if not path.is_file():
            return None
        found.add(path.read_bytes())
    return found.pop() if len(found) == 1 else None


def merge_builds(sources: Sequence[str], dest: str | Path) -> MergeResult:
    """Merge the finished local builds ``sources`` into the new folder ``dest`` (see the module
    docstring). Raises BuildRefused or MergeRefused (every reason), ValueError for a ``dest``
    that is not new or empty; nothing is written then."""
    if len(sources) < 2:
        raise ValueError("merge needs at least two builds")
    if any(Storage.open(str(s)).remote for s in [*sources, str(dest)]):
        raise ValueError("merge works on local folders (copy an object-store build down first)")
    builds = []
    refused: list[str] = []
    for source in sources:
        try:
            builds.append(read_build(str(source)))
        except BuildRefused as exc:
            refused += [f"{source}: {p}" for p in exc.problems]
    if refused:
        raise MergeRefused(refused)
    films_tables = [_films_table(b.root) for b in builds]
    _check(builds, films_tables)
    cross = find_cross_duplicates(
        [(b.root, [f.film_id for f in b.films if f.n_samples]) for b in builds],
        duplicates_config(builds[0].root),
    )
    root = Path(dest)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"{root} exists and is not empty: pick a new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    linked = copied = 0
    try:
        (staging / SHARDS_DIR).mkdir()
        (staging / FILMS_DIR).mkdir()
        for build in builds:
            for film in build.films:
                for rel in _film_files(build.root, film):
                    (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                    if _link_or_copy(Path(build.root) / rel, staging / rel):
                        linked += 1
                    else:
                        copied += 1
        index = _concat([b.index for b in builds])
        pq.write_table(index, staging / "index.parquet")
        pq.write_table(_concat(films_tables), staging / "films.parquet")
        stats = {
            "merged_from": [b.root for b in builds],
            "config_hashes": sorted({h for b in builds for h in b.config_hashes}),
            "films": {"ok": sum(len(b.films) for b in builds)},
            "samples_in_index": index.num_rows,
            "cross_build_duplicates": cross.as_dict(),
        }
        (staging / "stats.json").write_bytes(json_bytes(stats))
        pipeline = _same_pipeline(builds)
        if pipeline is not None:
            (staging / PIPELINE_FILE).write_bytes(pipeline)
        write_card(staging)
        if root.is_dir():
            root.rmdir()
        os.chmod(staging, 0o777 & ~current_umask())
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n_samples = sum(b.n_samples for b in builds)
    n_films = sum(len(b.films) for b in builds)
    return MergeResult(root, n_films, n_samples, index.num_rows, linked, copied, cross)
