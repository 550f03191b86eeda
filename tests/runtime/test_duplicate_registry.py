"""The build-wide duplicate registry: claim order, retries, forget, persistence and resume (local
and on an S3-compatible store), and the shared Ray actor. Fingerprints here are random unit
vectors of the real layout (the pixels are tested in tests/curation/test_duplicates.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from muss_builder.curation.duplicates import DuplicatesConfig, ShotFingerprints
from muss_builder.runtime.duplicate_registry import (
    FOLDER,
    DuplicateRegistry,
    actor_name,
    open_registry,
)

VIEWS, DIM = 6, 448  # the default config's layout


def film(seed: int, n: int = 6, copy_of: ShotFingerprints | None = None) -> ShotFingerprints:
    """Random shots; ``copy_of`` gives its shots plus a little noise (another encode)."""
    rng = np.random.default_rng(seed)
    if copy_of is not None:
        v = copy_of.vectors + 0.01 * rng.standard_normal(copy_of.vectors.shape)
    else:
        v = rng.standard_normal((n, VIEWS, DIM))
    v = (v / np.linalg.norm(v, axis=2, keepdims=True)).astype(np.float32)
    return ShotFingerprints(list(range(len(v))), v, np.ones(len(v), bool))


def seconds(fp: ShotFingerprints) -> list[float]:
    return [2.0] * len(fp.shots)


def test_claim_order_copy_and_partial_copy(tmp_path: Path) -> None:
    reg = DuplicateRegistry(str(tmp_path))
    a = film(1)
    assert reg.claim("a", a, seconds(a)).shot_matches == {}
    rip = film(2, copy_of=a)
    result = reg.claim("rip", rip, seconds(rip))
    assert result.film_duplicate_of == "a"
    assert {s: m[:2] for s, m in result.shot_matches.items()} == {i: ("a", i) for i in range(6)}
    assert min(result.shot_similarity) > 0.95  # noise of 0.01 per value: ~0.98
    # two of six shots copied (one third of the seconds): shots flagged, the film kept
    part = film(3)
    part.vectors[[1, 4]] = film(4, copy_of=a).vectors[[2, 5]]
    result = reg.claim("part", part, seconds(part))
    assert result.film_duplicate_of is None
    assert {s: m[:2] for s, m in result.shot_matches.items()} == {1: ("a", 2), 4: ("a", 5)}
    # the rip is not registered; of "part" only its four original shots are
    assert reg.films() == ["a", "part"] and reg.n_shots() == 10
    assert sorted(p.name for p in (tmp_path / FOLDER).iterdir()) == ["a.npz", "part.npz"]


def test_invalid_shots_never_match(tmp_path: Path) -> None:
    reg = DuplicateRegistry(None)
    a = film(1)
    reg.claim("a", a, seconds(a))
    copy = film(2, copy_of=a)
    copy.valid[:] = False  # black or flat shots: nothing to compare
    result = reg.claim("copy", copy, seconds(copy))
    assert result.shot_matches == {} and result.film_duplicate_of is None
    assert result.shot_similarity == [0.0] * 6


def test_retry_replaces_and_forget_drops(tmp_path: Path) -> None:
    reg = DuplicateRegistry(str(tmp_path))
    a = film(1)
    reg.claim("a", a, seconds(a))
    # a retried attempt of the same film claims again: it must not match itself
    again = reg.claim("a", film(2, copy_of=a), seconds(a))
    assert again.shot_matches == {} and reg.films() == ["a"]
    # a film that failed after claiming is forgotten: a later copy is then the original
    assert reg.forget("a") is True and reg.forget("a") is False
    assert not (tmp_path / FOLDER / "a.npz").exists()
    b = film(3, copy_of=a)
    assert reg.claim("b", b, seconds(b)).shot_matches == {}
    assert DuplicateRegistry(str(tmp_path)).films() == ["b"]


def test_resume_reloads_in_claim_order(tmp_path: Path) -> None:
    reg = DuplicateRegistry(str(tmp_path))
    films = {name: film(i) for i, name in enumerate(["z", "m", "a"])}
    for name, fp in films.items():
        reg.claim(name, fp, seconds(fp))
    resumed = DuplicateRegistry(str(tmp_path))
    assert resumed.films() == ["z", "m", "a"] and resumed.n_shots() == 18
    copy = film(9, copy_of=films["m"])
    assert resumed.claim("copy", copy, seconds(copy)).film_duplicate_of == "m"
    # fingerprints made with other settings are not comparable: not loaded
    assert DuplicateRegistry(str(tmp_path), DuplicatesConfig(grid=16)).films() == []


def test_concurrent_claims_are_atomic() -> None:
    """Eight threads claim copies of one film at once: exactly one is the original."""
    reg = DuplicateRegistry(None)
    base = film(1)
    results: dict[str, object] = {}

    def claim(i: int) -> None:
        fp = film(10 + i, copy_of=base)
        results[f"f{i}"] = reg.claim(f"f{i}", fp, seconds(fp))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    originals = [k for k, r in results.items() if r.film_duplicate_of is None]
    assert len(originals) == 1 and reg.films() == originals
    assert all(
        r.film_duplicate_of == originals[0] for k, r in results.items() if k not in originals
    )


def test_persists_on_an_object_store(s3_prefix: str) -> None:
    reg = DuplicateRegistry(s3_prefix)
    a = film(1)
    reg.claim("a", a, seconds(a))
    resumed = DuplicateRegistry(s3_prefix)
    assert resumed.films() == ["a"]
    copy = film(2, copy_of=a)
    assert resumed.claim("copy", copy, seconds(copy)).film_duplicate_of == "a"
    resumed.forget("a")
    assert DuplicateRegistry(s3_prefix).films() == []


@pytest.mark.ray
def test_ray_actor_is_shared_by_workers(tmp_path: Path) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = str(tmp_path)
        driver = open_registry(out, use_ray=True)
        a = film(1)
        assert driver.claim("a", a, seconds(a)).shot_matches == {}

        @ray.remote(num_cpus=1)
        def worker(name: str, fp: ShotFingerprints) -> str | None:
            # a worker process finds the build's actor by name and claims through it
            return open_registry(out, use_ray=True).claim(name, fp, [2.0] * 6).film_duplicate_of

        copy = film(2, copy_of=a)
        assert ray.get(worker.remote("copy", copy)) == "a"
        assert ray.get(worker.remote("b", film(3))) is None
        assert driver.films() == ["a", "b"]
        assert ray.get_actor(actor_name(out)) is not None
        assert actor_name(out) != actor_name(out + "-other")

        @ray.remote(num_cpus=1, max_retries=0)
        def worker_then_crash(name: str, fp: ShotFingerprints) -> None:
            import os

            open_registry(out, use_ray=True).claim(name, fp, [2.0] * 6)
            os._exit(1)  # the worker process dies, as on a lost node

        with pytest.raises(ray.exceptions.RayError):
            ray.get(worker_then_crash.remote("c", film(4)))
        # the driver opened the actor, so the driver owns it: a dead worker does not take it
        assert driver.films() == ["a", "b", "c"]
    finally:
        ray.shutdown()
    # the files outlive the actor: a resumed run reloads them
    assert DuplicateRegistry(str(tmp_path)).films() == ["a", "b", "c"]


def test_large_registry_turns_into_an_inverted_file() -> None:
    """Past ``ivf_rows`` rows the index is approximate (IVF), retrained as it grows: copies
    are still found, the right shot named, and a forgotten film is gone from it."""
    config = DuplicatesConfig(ivf_rows=1_000, ivf_nprobe=8)
    reg = DuplicateRegistry(None, config)
    films = [film(i, n=300) for i in range(4)]
    for i, fp in enumerate(films):
        reg.claim(f"f{i}", fp, seconds(fp))
    assert reg.index._whole.ivf and reg.index._crops.ivf  # 1,200 and 6,000 rows
    # the crop index was trained at 1,500 rows (the first film), then again at 4x that
    assert reg.index._crops.trained == 6_000 and reg.index._crops.index.ntotal == 6_000
    copy = film(50, copy_of=films[2])
    result = reg.claim("copy", copy, seconds(copy))
    assert result.film_duplicate_of == "f2"
    assert {s: m[:2] for s, m in result.shot_matches.items()} == {i: ("f2", i) for i in range(300)}
    reg.forget("f2")
    again = film(51, copy_of=films[2])
    assert reg.claim("again", again, seconds(again)).shot_matches == {}
