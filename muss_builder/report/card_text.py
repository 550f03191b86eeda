"""The dataset card's readable body (``card.py`` gathers the facts and writes the header)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from muss_builder.report.card import CardFacts

LOADING = """\
```python
# Hugging Face datasets: the configs and features of this card (no guessing)
from datasets import load_dataset, Video
ds = load_dataset("OUT", split="train")          # "OUT": this folder; every sample
ds = ds.cast_column("mp4", Video(decode=False))  # bytes; decode with the reader you like
# once packed, a config per track (a sample serving both tracks is in both, stored once);
# before: ds.filter(lambda s: "subject" in s["json"]["tracks"])
subject = load_dataset("OUT", "subject", split="train")
montage = load_dataset("OUT", "montage", split="train")

# webdataset, shards shuffled, 4 loader workers
import webdataset as wds
from muss_builder.pack.shardlist import expand_shard_list
urls = expand_shard_list("OUT/packed", split="train")   # or "OUT/shards"
# one track: expand_shard_list("OUT/packed", split="train", track="subject")
loader = wds.WebLoader(wds.WebDataset(urls, shardshuffle=len(urls)).shuffle(100),
                       batch_size=None, num_workers=4)

# Ray Data (a list of shards: the packed folder also holds its index and manifest)
import ray
ds = ray.data.read_webdataset("OUT/packed", decoder=None, file_extensions=["tar"])

# the tables: pyarrow (or DuckDB, Polars) on index.parquet, one row per sample and track
import pyarrow.parquet as pq
index = pq.read_table("OUT/index.parquet").to_pandas()
```

Clips are H.264 (yuv420p, constant frame rate): any CPU decoder reads them (PyAV,
torchvision's `read_video`, OpenCV, decord, torchcodec, ffmpeg).
"""

LIMITATIONS = """\
- Captions of the `facts` captioner are sentences written from measured facts (shot scale,
  camera motion, lighting, subjects), not a language model's description.
- Subject ids are per film: `S1` of one film is not `S1` of another.
- Curation thresholds are calibrated on synthetic footage (docs/curation.md); a re-filter by
  the index's `worst_*`/`mean_*` columns needs no rebuild.
- Shot boundaries come from TransNetV2 and frame statistics; very slow dissolves and flashes
  can be missed or split.
"""


def _at_a_glance(facts: CardFacts) -> list[str]:
    films = facts.films
    given = sum(films.values())
    tracks = ", ".join(f"{n} {t}" for t, n in sorted(facts.by_track.items())) or "none"
    rows = [
        ("films given", f"{given}"),
        ("films built", f"{films.get('ok', 0)} ({facts.film_hours:.2f} h of film)"),
        (
            "films without samples",
            f"{films.get('skipped', 0)} skipped, {films.get('duplicate', 0)} duplicate, "
            f"{films.get('failed', 0)} failed",
        ),
        ("samples", f"{facts.samples} ({facts.clip_hours:.2f} h of clips)"),
        ("rows per track", tracks),
        ("sample schema", facts.schema_version or "unknown"),
        ("pipeline", f"{facts.name}, config hash `{facts.config_hash}`"),
        ("muss-builder", facts.version or "unknown"),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _models(facts: CardFacts) -> list[str]:
    lines = []
    restricted = [m for m in facts.models if m.restricted]
    for m in restricted:
        lines.append(f"> **Licence restriction: {m.role} ({m.model}).** {m.licence}.")
    if restricted:
        lines.append("")
    lines += [
        "The clips are excerpts of the input films: their rights belong to the films' owners, "
        "and nothing in this card says you may share them.",
        "",
        "| role | model | weights from | licence |",
        "|---|---|---|---|",
    ]
    for m in facts.models:
        licence = f"**{m.licence}**" if m.restricted else m.licence
        lines.append(f"| {m.role} | {m.model} | {m.source} | {licence} |")
    if not facts.models:
        lines.append("| (none recorded: pipeline.yaml is missing) | | | |")
    return lines


def _funnel(facts: CardFacts) -> list[str]:
    if not facts.shots_in:
        return ["No shots were measured."]
    dropped = facts.shots_in - facts.shots_kept
    lines = [
        f"{facts.shots_in} shots in, {facts.shots_kept} kept, {dropped} dropped:",
        "",
        "| reason | shots |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v} |" for k, v in sorted(facts.dropped.items(), key=lambda kv: -kv[1])]
    return lines


def split_count(info: dict | None, what: str) -> int:
    """A manifest split's ``n_shards``/``n_samples`` (``shards``/``samples`` accepted too)."""
    info = info or {}
    return int(info.get(f"n_{what}", info.get(what)) or 0)


def _packed_rows(facts: CardFacts, split: str, info: dict) -> list[str]:
    families = info.get("families")
    if not isinstance(families, dict):  # packed before shards were cut by track
        return [
            f"| {split} | all | {split_count(info, 'shards')} | {split_count(info, 'samples')} "
            f"| `{facts.packed_dir}{info.get('pattern') or ''}` |"
        ]
    tracks = (facts.manifest or {}).get("families") or {}
    rows = []
    for family, counts in families.items():
        if split_count(counts, "shards"):
            served = ", ".join(tracks.get(family) or [])
            rows.append(
                f"| {split} | {family} ({served}) | {split_count(counts, 'shards')} | "
                f"{split_count(counts, 'samples')} | `{facts.packed_dir}{counts.get('pattern')}` |"
            )
    return rows


def _packed(facts: CardFacts) -> list[str]:
    manifest = facts.manifest
    if not manifest:
        return [
            "Not packed: the per-film build shards (`shards/`) are the `default` config. Run "
            "`muss-builder pack OUT` for uniform, film-mixed training shards per split."
        ]
    lines = [
        "Packed shards are cut by split and by the tracks their samples serve (the shard "
        "family): each sample is stored once. The `default` config reads every sample; the "
        "`montage` and `subject` configs read the families serving that track "
        '(`load_dataset("OUT", "subject")`), so a sample serving both tracks is in both.',
        "",
        "| split | family (tracks) | shards | samples | pattern |",
        "|---|---|---:|---:|---|",
    ]
    for split, info in (manifest.get("splits") or {}).items():
        lines += _packed_rows(facts, split, info or {})
    selection = manifest.get("selection")
    if selection:  # a subset (select): say of what and how
        lines.append("")
        lines.append(
            f"A subset: the samples whose index rows match `{selection.get('where')}` "
            f"({selection.get('n_index_rows')} rows)."
        )
    return lines


def card_body(facts: CardFacts) -> str:
    parts = [
        f"# muss-builder: {facts.name}",
        "",
        "Multi-shot video clips cut from films, with frame-exact shot lists, shot and global "
        "captions, subjects matched across shots and reference crops taken from other shots "
        "than the ones they describe. Built with muss-builder from the films listed in "
        "`films.parquet` (paths relative to the inputs the build was given).",
        "",
        "## At a glance",
        "",
        *_at_a_glance(facts),
        "",
        "## Models and licences",
        "",
        *_models(facts),
        "",
        "## Curation",
        "",
        *_funnel(facts),
        "",
        "## Files",
        "",
        "Every sample has the same members: `mp4` (the clip), `json` (shots, captions, "
        "subjects, references; `schemas/sample.schema.json`) and `refs.jpg` (the reference "
        "crops side by side; their boxes are in the JSON). A sample is a window of "
        'consecutive shots: a story unit inside one scene (`json.window.kind` "scene"; '
        '"cross_scene" when the config lets windows cross scenes), serving the montage track '
        "and the subject track when it has references, or a window chosen around one subject "
        '("subject"), serving the subject track only; `json.window.reason` says why. '
        "`index.parquet` has one row per sample and track (`window_kind` on each), "
        "`films.parquet` one per input film, `films/` a record per film.",
        "",
        *_packed(facts),
        "",
        "## How to load",
        "",
        LOADING,
        "## Pipeline",
        "",
        f"Config hash `{facts.config_hash}`; the resolved config (`pipeline.yaml`):",
        "",
        "<details><summary>pipeline.yaml</summary>",
        "",
        "```yaml",
        facts.config_yaml.rstrip() or "# not recorded",
        "```",
        "",
        "</details>",
        "",
        "## Known limitations",
        "",
        LIMITATIONS,
    ]
    return "\n".join(parts)
