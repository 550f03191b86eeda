"""Read our WebDataset shards without trusting them: every reader of shards goes through here.

A shard is a plain tar whose members are named ``{key}.{ext}`` and grouped by key. A tar can
name any path (``/etc/x``, ``../../x``, a 5,000-character name, ESC or newline in a name),
hold links or devices, declare a member of any size, or be cut short; Python's ``tarfile``
also treats a truncated or corrupt header after the first member as a normal end of archive.
So every member header is checked (type, name, size against a cap) before any of its bytes
are read, the archive must end with the end-of-archive marker right after its last member,
and a member's bytes are read only when the caller asks for them (``load``): the others stay
on disk as a ``Member`` (shard, offset, size) that can be read, streamed or handed to ffmpeg
later. Memory therefore stays flat whatever the shard holds. The header checks are in
``member_checks.py``.

A problem with one member (a bad name, type or size; a duplicate) is raised as a
``ShardFormatError``, or, when the caller passes ``on_problem``, reported there while the
member is skipped, so a checker can list every problem of a shard in one pass. A problem
with the tar itself (unreadable, truncated) always ends the read.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from muss_builder.shards.member_checks import (
    CheckedTarInfo,
    HeaderRefused,
    name_problem,
    type_problem,
)
from muss_builder.shards.untrusted import UntrustedJSONError, load_json, parse_size, quoted

_BLOCK = 512
_END_MARKER = b"\0" * (2 * _BLOCK)
_CHUNK = 1 << 20

GiB, MiB = 2**30, 2**20


@dataclass(frozen=True)
class ReaderLimits:
    """What a reader accepts. Member caps are by last extension (``refs.jpg`` -> ``jpg``);
    ``*`` is every other extension. The defaults are far above what a build writes."""

    member_bytes: Mapping[str, int] = field(
        default_factory=lambda: {"mp4": 2 * GiB, "json": 16 * MiB, "jpg": 64 * MiB, "*": 2 * GiB}
    )
    json_depth: int = 64
    members_per_sample: int = 64

    def cap(self, ext: str) -> int:
        last = ext.rsplit(".", 1)[-1]
        return self.member_bytes.get(last, self.member_bytes["*"])

    def with_caps(self, specs: Collection[str]) -> ReaderLimits:
        """These limits with ``EXT=SIZE`` overrides (``mp4=4GiB``, ``json=64MiB``, ``*=1GiB``)."""
        caps = dict(self.member_bytes)
        for spec in specs:
            ext, sep, size = spec.partition("=")
            if not sep or not ext.strip():
                raise ValueError(f"not EXT=SIZE: {spec!r} (e.g. mp4=4GiB)")
            caps[ext.strip().lstrip(".")] = parse_size(size)
        return ReaderLimits(caps, self.json_depth, self.members_per_sample)


DEFAULT_LIMITS = ReaderLimits()


class ShardFormatError(ValueError):
    """A shard (or one of its members) is malformed or unsafe; the message says which and why."""

    def __init__(self, shard: str | Path, member: str | None, reason: str) -> None:
        self.shard = str(shard)
        self.member = member
        self.reason = reason
        super().__init__(f"{self.shard}: {self.detail}")

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str]]:
        # the default would call cls(message): keep it picklable (Ray ships exceptions)
        return (type(self), (self.shard, self.member, self.reason))

    @property
    def detail(self) -> str:
        """The message without the shard path (for callers that print paths their own way)."""
        if self.member is None:
            return f"before the first member: {self.reason}"
        return f"member {quoted(self.member)}: {self.reason}"


class ShardProblems(ShardFormatError):
    """Every problem found in one shard, one per line (the first also as shard/member/reason)."""

    def __init__(self, problems: list[ShardFormatError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.shard, first.member, first.reason)
        self.args = ("\n".join(str(p) for p in self.problems),)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[type, tuple[list[ShardFormatError]]]:  # type: ignore[override]
        return (type(self), (self.problems,))


def raise_problems(problems: list[ShardFormatError]) -> None:
    """Raise the one problem, or all of them together; nothing when the list is empty."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ShardProblems(problems)


OnProblem = Callable[[ShardFormatError], None]


@dataclass(frozen=True)
class Member:
    """One member: where its bytes are in the shard, and the bytes when they were loaded."""

    shard: str
    name: str
    offset: int  # of the data in the shard file
    size: int
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_bytes(cls, shard: str, name: str, data: bytes) -> Member:
        return cls(shard, name, -1, len(data), data)

    def chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """The bytes (the first ``limit`` of them), a megabyte at a time."""
        want = self.size if limit is None else min(limit, self.size)
        if self.data is not None:
            yield self.data[:want]
            return
        with open(self.shard, "rb") as fh:
            fh.seek(self.offset)
            while want > 0:
                chunk = fh.read(min(_CHUNK, want))
                if not chunk:  # the shard shrank since it was read
                    raise ShardFormatError(self.shard, self.name, "truncated member data")
                want -= len(chunk)
                yield chunk

    def read(self) -> bytes:
        return self.data if self.data is not None else b"".join(self.chunks())

    def head(self, n: int) -> bytes:
        return b"".join(self.chunks(n))

    def copy_to(self, out: IO[bytes]) -> None:
        for chunk in self.chunks():
            out.write(chunk)


@dataclass
class ShardSample:
    """One sample: its key, the loaded members' bytes by extension (``json``, ``mp4``,
    ``refs.jpg``) and every member (loaded or not) in ``entries``."""

    key: str
    members: dict[str, bytes]
    shard: str = field(default="", repr=False)  # for error messages
    entries: dict[str, Member] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for ext, data in self.members.items():  # a sample built by hand: entries from members
            if ext not in self.entries:
                self.entries[ext] = Member.from_bytes(self.shard, self.member_name(ext), data)

    def member_name(self, ext: str) -> str:
        return f"{self.key}.{ext}"


def split_member_name(shard: str | Path, name: str) -> tuple[str, str]:
    """``(key, ext)`` of a member name, or ShardFormatError if the name is unsafe or malformed."""
    problem = name_problem(name)
    if problem is not None:
        raise ShardFormatError(shard, name, problem)
    key, _, ext = name.partition(".")
    return key, ext


def _problem(info: tarfile.TarInfo, limits: ReaderLimits) -> str | None:
    problem = type_problem(info) or name_problem(info.name)
    if problem is None:
        cap = limits.cap(info.name.partition(".")[2])
        if info.size > cap:
            problem = f"{info.size:,} bytes, over the {cap:,}-byte limit for this kind of member"
    return problem


def iter_members(
    shard_path: str | Path,
    limits: ReaderLimits = DEFAULT_LIMITS,
    load: Callable[[str], bool] | None = None,
    on_problem: OnProblem | None = None,
) -> Iterator[Member]:
    """Every acceptable member in tar order, with its bytes when ``load(ext)`` (default: all).

    A refused member raises ShardFormatError, or goes to ``on_problem`` and is skipped.
    """
    shard = str(shard_path)
    last: str | None = None
    data_end = 0
    try:
        fh = open(shard, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise ShardFormatError(shard, None, f"cannot read the shard: {exc}") from exc
    with fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            with tarfile.open(
                fileobj=fh,
                mode="r:",
                tarinfo=CheckedTarInfo,
                encoding="utf-8",
                errors="surrogateescape",  # undecodable bytes become surrogates: refused
            ) as tar:
                while (info := tar.next()) is not None:
                    tar.members.clear()  # tarfile keeps every header: not over millions of members
                    data_end = info.offset_data + -(-info.size // _BLOCK) * _BLOCK
                    if info.isreg() and info.offset_data + info.size > size:
                        raise ShardFormatError(shard, info.name, "truncated member data")
                    problem = _problem(info, limits)
                    if problem is not None:
                        _report(on_problem, ShardFormatError(shard, info.name, problem))
                        last = info.name
                        continue
                    data = None
                    if load is None or load(info.name.partition(".")[2]):
                        fh.seek(info.offset_data)
                        data = fh.read(info.size)  # the size is capped and within the file
                    last = info.name
                    yield Member(shard, info.name, info.offset_data, info.size, data)
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ShardFormatError(shard, last, _tar_reason(exc, last)) from exc
        # tarfile stops silently at a cut or corrupt header after the first member: only the
        # end-of-archive marker right after the last member proves nothing is missing.
        fh.seek(data_end)
        if fh.read(len(_END_MARKER)) != _END_MARKER:
            raise ShardFormatError(
                shard, last, "no end-of-archive marker after this member (truncated or corrupt tar)"
            )


def _tar_reason(exc: BaseException, last: str | None) -> str:
    after = "" if last is None else " after this member"
    if isinstance(exc, HeaderRefused):
        return f"refused{after}: {exc}"
    return f"unreadable or truncated tar{after}: {exc}"


def _report(on_problem: OnProblem | None, error: ShardFormatError) -> None:
    if on_problem is None:
        raise error
    on_problem(error)


def iter_samples(
    shard_path: str | Path,
    limits: ReaderLimits = DEFAULT_LIMITS,
    load: Collection[str] | None = None,
    on_problem: OnProblem | None = None,
) -> Iterator[ShardSample]:
    """Yield the samples of a shard in order; raise ShardFormatError on anything unsafe.

    ``load``: the extensions whose bytes go into ``sample.members`` (default: all); the
    others are only in ``sample.entries``, to be read on demand. ``on_problem``: see
    ``iter_members``. Members of one sample must be contiguous (WebDataset groups consecutive
    members by key), so a key that comes back after another key is an error, not a sample.
    """
    shard = str(shard_path)
    wanted = None if load is None else (lambda ext: ext in load)
    done: set[str] = set()
    current: ShardSample | None = None
    for member in iter_members(shard, limits, wanted, on_problem):
        key, _, ext = member.name.partition(".")
        if current is not None and key != current.key:
            done.add(current.key)
            yield current
            current = None
        if current is None:
            if key in done:
                reason = (
                    f"key {quoted(key)} reappears after other keys "
                    "(members of a sample must be contiguous)"
                )
                _report(on_problem, ShardFormatError(shard, member.name, reason))
                continue
            current = ShardSample(key=key, members={}, shard=shard)
        if ext in current.entries:
            reason = "duplicate member in its sample"
            _report(on_problem, ShardFormatError(shard, member.name, reason))
            continue
        if len(current.entries) >= limits.members_per_sample:
            reason = f"more than {limits.members_per_sample} members in one sample"
            _report(on_problem, ShardFormatError(shard, member.name, reason))
            continue
        current.entries[ext] = member
        if member.data is not None:
            current.members[ext] = member.data
    if current is not None:
        yield current


def load_sample_json(sample: ShardSample, limits: ReaderLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The sample's ``.json`` metadata as a dict; ShardFormatError if missing, not JSON,
    nested too deeply or not an object."""
    name = sample.member_name("json")
    entry = sample.entries.get("json")
    if entry is None:
        raise ShardFormatError(sample.shard, name, "missing (every sample has a .json member)")
    try:
        doc = load_json(entry.read(), limits.json_depth)
    except UntrustedJSONError as exc:
        raise ShardFormatError(sample.shard, name, str(exc)) from exc
    if not isinstance(doc, dict):
        raise ShardFormatError(sample.shard, name, f"JSON is a {type(doc).__name__}, not an object")
    return doc
