"""Turn the paths a user passed into a list of candidate films, and identify each by content."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from muss_builder.core.storage import (
    expand_remote_inputs,
    film_cache_dir,
    is_remote,
    local_copy,
)
from muss_builder.media.hashing import film_id_of
from muss_builder.media.probe import check_readable_file

VIDEO_EXTENSIONS = (
    ".mp4",
    ".mkv",
    ".mov",
    ".avi",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m2ts",
    ".wmv",
    ".flv",
    ".mxf",
)


@dataclass
class Candidate:
    path: str
    problem: str | None = None  # set when the path cannot be a film at all


def expand_inputs(paths: list[str]) -> list[Candidate]:
    """Files stay as given; a folder expands to the video files under it, sorted.

    A folder named like a video file (``x.mp4/``) is a mistake, not a collection, and a folder
    with no video files is reported rather than silently ignored.
    """
    out: list[Candidate] = []
    for raw in paths:
        if is_remote(raw):
            try:
                urls = expand_remote_inputs(raw, VIDEO_EXTENSIONS)
            except OSError as exc:
                out.append(Candidate(raw, str(exc)))
                continue
            if not urls:
                out.append(Candidate(raw, f"no video files under {raw}"))
            out.extend(Candidate(u) for u in urls)
            continue
        path = Path(raw)
        if path.is_dir() and path.suffix.lower() not in VIDEO_EXTENSIONS:
            films = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
            )
            if not films:
                out.append(
                    Candidate(
                        raw, f"folder has no video files ({', '.join(VIDEO_EXTENSIONS)}): {raw}"
                    )
                )
            out.extend(Candidate(str(p)) for p in films)
        else:
            out.append(Candidate(raw))
    return out


def identify(path: str) -> str:
    """The film_id (content hash) of ``path``; MediaError if it is not a readable file. A
    remote film is hashed from this node's copy, which the stages on this node reuse."""
    if is_remote(path):
        return film_id_of(local_copy(path, film_cache_dir()))
    check_readable_file(Path(path))
    return film_id_of(path)


def input_roots(paths: list[str]) -> list[str]:
    """The inputs as given, made absolute (local ones): what shown paths are relative to."""
    return [p if is_remote(p) else str(Path(p).absolute()) for p in paths]


def shown_path(path: str, roots: list[str]) -> str:
    """``path`` as the public tables and records show it: relative to the input folder it was
    found in (``sub/film.mkv``), or the file's name for a file given directly; never this
    machine's absolute path (the build log keeps those). Already relative: unchanged."""
    for root in roots:
        base = root.rstrip("/")
        if path == base:
            return base.rsplit("/", 1)[-1]
        if path.startswith(base + "/"):
            return path[len(base) + 1 :]
    if not (path.startswith("/") or is_remote(path)):
        return path
    return path.rstrip("/").rsplit("/", 1)[-1]
