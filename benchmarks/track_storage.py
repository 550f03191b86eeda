"""Storage saved by one clip serving two tracks (issue 17, docs/layout.md), on any build.

Since layout 2.0 a window that serves both the montage and the subject track is one sample
(``mp4``, ``json``, ``refs.jpg``); under 1.0 it was two samples, the subject one a twin that
stored the same clip again with its own json and the reference crops. This script reads a
build's (or a pack's) shards and counts, per track set, the samples and the bytes of each
member in the tar, then the bytes a twin layout would add: for every sample serving both
tracks, its clip and its json once more, each with its 512-byte tar header and padding. The
references are not counted again (1.0 stored them once too, in the twin).

    .venv/bin/python benchmarks/track_storage.py OUT [OUT ...]

It measures what the shards hold; what the twins would add is worked out from those bytes,
not by building with the old code (that comparison, on one film, is in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import tarfile
from collections import Counter
from pathlib import Path

from muss_builder.pack.shardlist import expand_shard_list, local_shard

TAR_BLOCK = 512


def tar_bytes(size: int) -> int:
    """What a member of ``size`` bytes takes in a tar: a header block and whole blocks."""
    return TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK


def sample_members(shard: str) -> dict[str, dict[str, int | list]]:
    """key -> {extension: member bytes, "tracks": [...]} of one shard (local or s3://)."""
    samples: dict[str, dict] = {}
    with local_shard(shard) as path, tarfile.open(path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            entry = samples.setdefault(key, {})
            entry[ext] = member.size
            if ext == "json":
                data = tar.extractfile(member)
                assert data is not None
                entry["tracks"] = sorted(json.loads(data.read())["tracks"])
    return samples


def measure(folder: str) -> dict:
    shards = expand_shard_list(folder)
    by_tracks: Counter[str] = Counter()
    member_bytes: Counter[str] = Counter()
    shard_bytes, twin_bytes = 0, 0
    for shard in shards:
        with local_shard(shard) as path:
            shard_bytes += Path(path).stat().st_size
        for entry in sample_members(shard).values():
            tracks = entry.pop("tracks")
            by_tracks["+".join(tracks)] += 1
            member_bytes.update({ext: int(size) for ext, size in entry.items()})
            if tracks == ["montage", "subject"]:
                twin_bytes += tar_bytes(int(entry["mp4"])) + tar_bytes(int(entry["json"]))
    return {
        "build": folder,
        "shards": len(shards),
        "samples_by_tracks": dict(sorted(by_tracks.items())),
        "member_bytes": dict(sorted(member_bytes.items())),
        "shard_bytes": shard_bytes,
        "twin_layout_bytes": shard_bytes + twin_bytes,
        "saved_share": twin_bytes / (shard_bytes + twin_bytes) if shard_bytes else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("builds", nargs="+", help="build or packed folders")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = [measure(b) for b in args.builds]
    print(
        "| build | shards | samples (by tracks) | clip bytes | shard bytes | with twins | saved |"
    )
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        tracks = ", ".join(f"{k}: {v}" for k, v in r["samples_by_tracks"].items())
        print(
            f"| {r['build']} | {r['shards']} | {tracks} | {r['member_bytes'].get('mp4', 0):,} "
            f"| {r['shard_bytes']:,} | {r['twin_layout_bytes']:,} | {r['saved_share']:.1%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
