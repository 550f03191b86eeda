"""Every name a build gives its outputs, formatted and parsed in one place.

- a film id: 16 lowercase hex digits (``media.hashing.film_id_of``);
- a shard: ``{film_id}-{n:05d}.tar`` in ``shards/``, one film per shard; while written it is
  the hidden ``.{shard}.partial-{pid}``;
- a sample key: ``{film_id}_{i:05d}``, the tar key of the sample's members;
- a sample's members: ``SAMPLE_MEMBERS`` (``mp4``, ``json``, ``refs.jpg``), the same in every
  sample (docs/layout.md), as ``{key}.{member}`` in the tar;
- a film record: ``films/{film_id}.json``;
- the output folder itself (``OutputLayout``, see README "Output layout") and what counts as a
  leftover temporary in it (``is_leftover``).

Each ``parse_*`` is the exact inverse of its formatter and answers None for any other name,
so a reader never guesses at a name a build could not have written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHARDS_DIR = "shards"
FILMS_DIR = "films"
FINGERPRINTS_DIR = "curation/fingerprints"  # a film's shot fingerprints (duplicate registry)

_FILM_ID = r"[0-9a-f]{16}"
# Five digits, as the schemas' patterns (schemas/*.schema.json) have them: a film of 100,000
# shards or samples would break the contract, so the parsers refuse such names too.
_SHARD_NAME = re.compile(rf"({_FILM_ID})-(\d{{5}})\.tar")
_SAMPLE_KEY = re.compile(rf"({_FILM_ID})_(\d{{5}})")
_FILM_RECORD = re.compile(rf"(?:.*/)?({_FILM_ID})\.json")


def is_film_id(text: object) -> bool:
    return isinstance(text, str) and re.fullmatch(_FILM_ID, text) is not None


def shard_name(film_id: str, n: int) -> str:
    """The name of the ``n``-th shard (from 0) of a film."""
    return f"{film_id}-{n:05d}.tar"


def partial_shard_name(film_id: str, n: int, pid: int) -> str:
    """The hidden name a shard has while process ``pid`` writes it (the pid keeps two writers,
    say a killed run's orphan and its rerun, off one temporary file)."""
    return f".{shard_name(film_id, n)}.partial-{pid}"


def parse_shard_name(name: str) -> tuple[str, int] | None:
    """(film id, shard number) of a ``shard_name``; None for any other name."""
    match = _SHARD_NAME.fullmatch(name)
    return (match[1], int(match[2])) if match else None


def film_of_shard(name: str) -> str | None:
    """The film a shard named ``name`` (a file name, not a path) holds; None for other names."""
    parsed = parse_shard_name(name)
    return parsed[0] if parsed else None


def shard_globs(film_id: str) -> tuple[str, str]:
    """Glob patterns, inside ``shards/``, of a film's finished and partial shards."""
    return f"{film_id}-*.tar", f".{film_id}-*.tar.partial*"


def sample_key(film_id: str, ordinal: int) -> str:
    """The key of a film's ``ordinal``-th sample (from 0)."""
    return f"{film_id}_{ordinal:05d}"


def parse_sample_key(key: str) -> tuple[str, int] | None:
    """(film id, ordinal) of a ``sample_key``; None for any other key."""
    match = _SAMPLE_KEY.fullmatch(key)
    return (match[1], int(match[2])) if match else None


def film_of_key(key: str) -> str | None:
    """The film of a sample key; None for a key no build writes."""
    parsed = parse_sample_key(key)
    return parsed[0] if parsed else None


# Every sample has exactly these members (issue 17): the clip, its record, and one image
# holding all its reference crops side by side (a placeholder when it has none), so that
# readers that infer one schema from the first samples (Hugging Face, Arrow) see one.
REFS_MEMBER = "refs.jpg"
SAMPLE_MEMBERS = ("json", "mp4", REFS_MEMBER)


def film_record_path(film_id: str) -> str:
    """A film's record, relative to the output folder (as ``Storage`` paths are)."""
    return f"{FILMS_DIR}/{film_id}.json"


def parse_film_record_path(rel: str) -> str | None:
    """The film id of a ``film_record_path`` (or of its file name alone); None otherwise."""
    match = _FILM_RECORD.fullmatch(rel)
    return match[1] if match else None


@dataclass(frozen=True)
class OutputLayout:
    """The output folder contract, on a local disk (see README "Output layout")."""

    root: Path

    @property
    def shards(self) -> Path:
        return self.root / SHARDS_DIR

    @property
    def films(self) -> Path:
        return self.root / FILMS_DIR

    @property
    def index(self) -> Path:
        return self.root / "index.parquet"

    @property
    def films_table(self) -> Path:
        return self.root / "films.parquet"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    def film_json(self, film_id: str) -> Path:
        return self.root / film_record_path(film_id)

    def make(self) -> None:
        self.shards.mkdir(parents=True, exist_ok=True)
        self.films.mkdir(parents=True, exist_ok=True)


def is_leftover(name: str, in_root: bool = False) -> bool:
    """Whether a file named ``name`` in shards/ or films/ (``in_root``: in OUT itself) is a
    temporary of an interrupted writer (write_atomic, Storage's tmp + rename, the shard
    writer's hidden partial tar) or a stray ``*.tmp``/``*.part``: a finished build leaves
    none, the next build removes them and ``validate`` names them. In the root only dot-named
    temporaries count: ``.lock`` and the user's own dot-files stay."""
    if in_root:
        return name.startswith(".") and (".tmp" in name or ".part" in name)
    return name.startswith(".") or name.endswith((".tmp", ".part")) or ".tmp-" in name
