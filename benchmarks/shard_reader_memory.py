"""Peak memory of `inspect` and `validate` on a shard with one huge member.

A shard is untrusted input: a member may declare any size. The readers stream members, so
their memory should not follow the member's size. This builds a tar whose .mp4 member is
``--member-mib`` MiB but sparse on disk (a hole, a few KB written), next to a tiny one, and
runs each command in a fresh child per code tree, reading the peak RSS of that child (and
its own children, e.g. ffprobe) from RUSAGE_CHILDREN of a wrapper that runs nothing else.

    .venv/bin/python benchmarks/shard_reader_memory.py --sample-from OUT/shards/X.tar \
        --tree . --tree /tmp/old-tree

Each --tree is a checkout whose muss_builder is put first on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
    "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))\n"
)


def first_sample_json(shard: Path) -> tuple[str, bytes]:
    """The key and .json bytes of a real sample, so every reader takes the sample as valid."""
    with tarfile.open(shard) as tar:
        for info in tar:
            if info.name.endswith(".json"):
                data = tar.extractfile(info)
                assert data is not None
                return info.name.removesuffix(".json"), data.read()
    raise SystemExit(f"no .json member in {shard}")


def sparse_tar(path: Path, key: str, doc: bytes, mp4_bytes: int) -> Path:
    """A one-sample shard: the JSON and an .mp4 of ``mp4_bytes`` that is a hole on disk."""
    with open(path, "wb") as fh:
        for name, size, data in ((f"{key}.json", len(doc), doc), (f"{key}.mp4", mp4_bytes, None)):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = size, 0, 0o644
            fh.write(info.tobuf(format=tarfile.USTAR_FORMAT))
            if data is None:
                fh.seek(size, os.SEEK_CUR)  # the hole: nothing written
            else:
                fh.write(data)
            fh.write(b"\0" * (-size % 512))
        fh.write(b"\0" * 1024)  # end-of-archive marker
    return path


def peak_mib(tree: Path, args: list[str]) -> tuple[int, float]:
    # run in the tree: `python -m` puts the working folder first on sys.path, before PYTHONPATH
    tree = tree.resolve()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cli = [sys.executable, "-m", "muss_builder.cli.main", *args]
    wrapped = [sys.executable, "-c", WRAPPER, *cli]
    out = subprocess.run(wrapped, capture_output=True, text=True, env=env, cwd=tree, check=True)
    rc, kb = json.loads(out.stdout)
    return rc, kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=Path, required=True)
    parser.add_argument("--sample-from", type=Path, required=True, help="a shard of a build")
    parser.add_argument("--member-mib", type=int, default=512)
    args = parser.parse_args()
    key, doc = first_sample_json(args.sample_from)
    work = Path(tempfile.mkdtemp(prefix="shard-mem-"))
    small = sparse_tar(work / "small.tar", key, doc, 4096)
    (work / "out" / "shards").mkdir(parents=True)
    big = sparse_tar(
        work / "out" / "shards" / args.sample_from.name, key, doc, args.member_mib << 20
    )
    print(f"member of {args.member_mib} MiB, {big.stat().st_blocks * 512} bytes on disk")
    print("| tree | command | exit | peak RSS MiB |\n|---|---|---|---|")
    for tree in args.tree:
        for name, cmd in (
            ("inspect tiny shard", ["inspect", str(small)]),
            ("inspect huge member", ["inspect", str(big)]),
            ("validate folder with it", ["validate", str(work / "out")]),
        ):
            rc, mib = peak_mib(tree, cmd)
            print(f"| {tree} | {name} | {rc} | {mib:.1f} |")


if __name__ == "__main__":
    main()
