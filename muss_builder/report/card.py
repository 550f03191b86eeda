"""The dataset card: ``OUT/README.md`` in the Hugging Face format.

The YAML header makes ``datasets.load_dataset(OUT)`` work with no argument: ``configs`` name
the shards per split (the packed ones once ``pack`` ran, else the per-film build shards as one
``train`` split), and once packed per track too (``load_dataset(OUT, "subject")``: the shard
families whose samples serve the track), and ``dataset_info`` declares every column of every
config (``card_features``). The
body says what was built, from how much film, with which pipeline (its YAML and hash), which
models made the labels and under what licence (non-commercial terms first), how many shots the
filters dropped and why, how to load it, and what it does not promise.

Written at the end of every build, again after ``pack`` and by ``select``; it reads only the
output folder (tables, records, manifest, ``pipeline.yaml``), never the machine.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from muss_builder.config import PipelineConfig
from muss_builder.core.storage import Storage
from muss_builder.pack.families import TRACKS, serving
from muss_builder.report.card_features import sample_features
from muss_builder.report.card_text import card_body, split_count
from muss_builder.report.model_catalog import ModelUse, models_used
from muss_builder.shards.reader import ShardFormatError, iter_samples, load_sample_json

CARD = "README.md"
MANIFEST = "manifest.json"  # a subset's (select) manifest, at its root
PIPELINE_FILE = "pipeline.yaml"  # the build's resolved config, written next to stats.json
SAMPLES_FOR_FEATURES = 200  # sample JSONs read for keys the model leaves open


@dataclass
class CardFacts:
    """What the card says, gathered from the output folder."""

    name: str = "muss-builder dataset"
    config_hash: str = ""
    version: str = ""
    schema_version: str = ""
    films: dict[str, int] = field(default_factory=dict)  # status -> count
    film_hours: float = 0.0  # of the films that were built (status ok)
    clip_hours: float = 0.0  # of the samples' clips
    samples: int = 0
    by_track: dict[str, int] = field(default_factory=dict)
    shots_in: int = 0
    shots_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # flag -> shots
    manifest: dict | None = None  # packed/manifest.json (a subset's own manifest.json)
    packed_dir: str = "packed/"  # where the packed shards are: "" in a subset (select)
    config_yaml: str = ""
    models: list[ModelUse] = field(default_factory=list)


def _table(store: Storage, name: str) -> list[dict]:
    if not store.exists(name):
        return []
    return pq.read_table(io.BytesIO(store.read_bytes(name))).to_pylist()


def _json(store: Storage, name: str) -> dict | None:
    return json.loads(store.read_bytes(name)) if store.exists(name) else None


def _config(store: Storage) -> tuple[str, list[ModelUse]]:
    if not store.exists(PIPELINE_FILE):
        return "", []
    text = store.read_bytes(PIPELINE_FILE).decode()
    config = PipelineConfig.model_validate(yaml.safe_load(text) or {})
    return text, models_used(config)


def gather(store: Storage) -> CardFacts:
    films, index = _table(store, "films.parquet"), _table(store, "index.parquet")
    stats = _json(store, "stats.json") or {}
    facts = CardFacts(
        name=str(stats.get("pipeline") or "muss-builder dataset"),
        config_hash=str(stats.get("config_hash") or ""),
        version=str(stats.get("muss_builder_version") or ""),
        manifest=_json(store, "packed/manifest.json"),
    )
    if facts.manifest is None and store.exists(MANIFEST):  # a subset: packed at its root
        facts.manifest, facts.packed_dir = _json(store, MANIFEST), ""
    facts.config_yaml, facts.models = _config(store)
    for row in films:
        facts.films[row["status"]] = facts.films.get(row["status"], 0) + 1
        if row["status"] == "ok":
            facts.film_hours += (row.get("duration_seconds") or 0.0) / 3600
        facts.shots_in += row.get("n_shots") or 0
        facts.shots_kept += row.get("shots_kept") or 0
        for key, value in row.items():
            if key.startswith("dropped_") and value:
                flag = key.removeprefix("dropped_")
                facts.dropped[flag] = facts.dropped.get(flag, 0) + int(value)
    seen: set[str] = set()
    for row in index:
        facts.by_track[row["track"]] = facts.by_track.get(row["track"], 0) + 1
        if row["key"] not in seen:  # a sample serving two tracks has a row per track
            seen.add(row["key"])
            facts.clip_hours += (row.get("duration_seconds") or 0.0) / 3600
    facts.samples = len(seen)
    if store.exists("index.parquet"):
        meta = pq.read_schema(io.BytesIO(store.read_bytes("index.parquet"))).metadata or {}
        facts.schema_version = meta.get(b"schema_version", b"").decode()
    return facts


def sample_documents(store: Storage, limit: int = SAMPLES_FOR_FEATURES) -> list[dict]:
    """Up to ``limit`` sample JSONs from the build's shards (local outputs only: for an object
    store the card declares the model's fields alone)."""
    if store.remote:
        return []
    docs: list[dict] = []
    shards = store.list("shards", ".tar") or store.list("", ".tar")  # a subset: at its root
    for rel in shards:
        try:
            for sample in iter_samples(Path(store.root) / rel, load={"json"}):
                docs.append(load_sample_json(sample))
                if len(docs) >= limit:
                    return docs
        except ShardFormatError:
            continue  # the validator reports broken shards; the card declares the model
    return docs


def _track_files(facts: CardFacts, track: str) -> list[dict]:
    """``data_files`` of a track's config: per split, the shard families serving it that
    have shards there (a glob naming no file would fail the load)."""
    shards = (facts.manifest or {}).get("shards") or []
    files = []
    for split in (facts.manifest or {}).get("splits") or {}:
        paths = [
            f"{facts.packed_dir}{split}-{family}-*.tar"
            for family in serving(track)
            if any(s.get("split") == split and s.get("family") == family for s in shards)
        ]
        if paths:
            files.append({"split": split, "path": paths[0] if len(paths) == 1 else paths})
    return files


def configs(facts: CardFacts) -> list[dict]:
    """``configs`` of the YAML header: the packed splits (``default``: every sample), one
    config per track (the shard families whose samples serve it, so each clip is stored once
    and read by both tracks' configs when it serves both) and the per-film shards."""
    per_film = {
        "config_name": "per_film",
        "data_files": [{"split": "train", "path": "shards/*.tar"}],
    }
    splits = (facts.manifest or {}).get("splits") or {}
    packed = [
        {"split": split, "path": f"{facts.packed_dir}{split}-*.tar"}
        for split, info in splits.items()
        if split_count(info, "shards")
    ]
    if not packed:
        return [per_film | {"config_name": "default", "default": True}]
    found = [{"config_name": "default", "default": True, "data_files": packed}]
    for track in TRACKS:
        files = _track_files(facts, track)
        if files:
            found.append({"config_name": track, "data_files": files})
    return found if not facts.packed_dir else [*found, per_film]  # a subset: no shards/


def card_header(facts: CardFacts, features: list[dict]) -> dict:
    restricted = any(m.restricted for m in facts.models)
    found = configs(facts)
    header: dict = {
        "pretty_name": f"muss-builder: {facts.name}",
        "license": "other",
        "license_name": "inherits-model-terms" if restricted else "see-card",
        "task_categories": ["text-to-video"],
        "tags": ["video", "multi-shot", "webdataset", "muss-builder"],
        "configs": found,
        # every config declares the features: a config without them has its types inferred
        # from its first samples (an empty list cannot tell its items' type: docs/layout.md)
        "dataset_info": [{"config_name": c["config_name"], "features": features} for c in found],
    }
    return header


class _NoAliases(yaml.SafeDumper):
    """Every config's features written out in full: no YAML anchors and aliases, which not
    every reader of a card's header follows."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def render_card(facts: CardFacts, features: list[dict]) -> str:
    head = yaml.dump(
        card_header(facts, features), Dumper=_NoAliases, sort_keys=False, allow_unicode=True
    )
    return f"---\n{head}---\n\n{card_body(facts)}"


def write_card(out: str | Path) -> str:
    """Write ``OUT/README.md`` from what the output folder holds; returns the card's text."""
    store = Storage.open(str(out))
    facts = gather(store)
    text = render_card(facts, sample_features(sample_documents(store)))
    store.write_bytes(CARD, text.encode())
    return text


def write_pipeline(out: str | Path, config: PipelineConfig) -> None:
    """The build's resolved config (every default spelled out), for the card and for users."""
    # the inputs are this machine's paths: the card stays free of them
    doc = config.model_dump(mode="json", exclude={"runtime": {"inputs"}})
    text = yaml.safe_dump(doc, sort_keys=False)
    Storage.open(str(out)).write_bytes(PIPELINE_FILE, text.encode())
