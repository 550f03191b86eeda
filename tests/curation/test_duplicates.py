"""Near-duplicate shots and films on synthetic films cut from shipped footage with ffmpeg.

Four films claimed in order through one registry (as a build would):
- ``orig``: five shots of real footage (bikes, Megamind, the static camera of vtest.avi,
  Big Buck Bunny, bikes again);
- ``mixed``: a new shot, a pan-and-scan copy of orig's Megamind shot (centre 3/4 of the width,
  stretched back), the vtest camera 20 s later (the same set-up at another moment: NOT a
  duplicate), orig's bunny shot re-encoded at half size and brighter, and its own first shot
  repeated (a flashback: a duplicate inside one film);
- ``rip``: all of orig re-encoded at 192x108, crf 32, darker: a whole-film duplicate;
- ``other``: unrelated shots of the same footage files (other moments): no match.

``third`` (more of the same footage at other moments: alike under the threshold, no match) is
claimed with ``orig`` and ``other`` in two orders to show the recorded similarities do not
depend on which film claimed first.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.curation.duplicate_index import FingerprintIndex, own_matches
from muss_builder.curation.duplicates import (
    FLAGS,
    MEASURES,
    DuplicatesConfig,
    ShotFingerprintCollector,
    ShotFingerprints,
    film_duplicate_of,
    make_embedder,
    shot_fields,
    view_boxes,
)
from muss_builder.media.demo_footage import demo_films
from muss_builder.runtime.duplicate_registry import DuplicateRegistry
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe

W, H, N = 320, 180, 30  # every shot: 30 frames at 24 fps

# (footage, first source frame, extra filters) per shot
ORIG = [("bikes.mp4", 30, ""), ("Megamind.avi", 200, ""), ("vtest.avi", 0, ""),
        ("bigbuckbunny.mp4", 0, ""), ("bikes.mp4", 140, "")]  # fmt: skip
PAN = f",crop={W * 3 // 4}:{H}:{W // 8}:0,scale={W}:{H}"
MIXED = [("bikes.mp4", 190, ""), ("Megamind.avi", 200, PAN), ("vtest.avi", 200, ""),
         ("bigbuckbunny.mp4", 0, f",scale={W // 2}:{H // 2},scale={W}:{H},eq=brightness=0.06"),
         ("bikes.mp4", 190, "")]  # fmt: skip
OTHER = [("Megamind.avi", 1, ""), ("bikes.mp4", 80, ""), ("bigbuckbunny.mp4", 90, "")]
# the vtest camera later still (0.65 to orig's shot), the bunny between orig's and other's
THIRD = [("vtest.avi", 400, ""), ("bigbuckbunny.mp4", 45, ""), ("Megamind.avi", 100, "")]


def _footage() -> dict[str, Path]:
    found = {p.name: p for p in demo_films()}
    needed = {"bikes.mp4", "Megamind.avi", "vtest.avi", "bigbuckbunny.mp4"}
    if not needed <= set(found):
        pytest.skip(f"shipped footage missing: {sorted(needed - set(found))}")
    return found


def render(path: Path, shots: list[tuple[str, int, str]], footage: dict[str, Path]) -> Path:
    """One H.264 film of ``N``-frame shots cut from the footage (frame-exact trims)."""
    args = ["ffmpeg", "-v", "error", "-y"]
    chains = []
    for i, (name, start, extra) in enumerate(shots):
        args += ["-i", str(footage[name])]
        chains.append(
            f"[{i}:v]trim=start_frame={start}:end_frame={start + N},settb=1/24,setpts=N,"
            f"scale={W}:{H}{extra},setsar=1,format=yuv420p[v{i}]"
        )
    joined = "".join(f"[v{i}]" for i in range(len(shots)))
    graph = ";".join(chains) + f";{joined}concat=n={len(shots)}:v=1:a=0[out]"
    # passthrough: every frame kept as timed above (no frame dropped or repeated at the joins)
    args += ["-filter_complex", graph, "-map", "[out]", "-fps_mode", "passthrough"]
    args += ["-c:v", "libx264", "-r", "24"]
    subprocess.run([*args, "-preset", "ultrafast", "-crf", "20", str(path)], check=True)
    return path


def fingerprints(
    path: Path,
    n_shots: int,
    config: DuplicatesConfig,
    watermark: list[int] | None = None,
    shift: int = 0,
    embedder: object = None,
) -> tuple[ShotFingerprints, list[float]]:
    """Decode a film and feed the collector the frames it asks for, as the keyframe pass;
    ``shift`` moves every cut that many frames later (a shot detector one frame off)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split(",")  # fmt: skip
    w, h = int(out[0]), int(out[1])
    cuts = [min(i * N + shift, n_shots * N - 1) if i else 0 for i in range(n_shots + 1)]
    cuts[-1] = n_shots * N
    shots = [
        Shot(i, a, b, a / 24, b / 24, "cut") for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    boxes = dict.fromkeys(range(n_shots), watermark)
    collector = ShotFingerprintCollector(shots, config, boxes, embedder)
    wanted = {f: s for s, frames in collector.wanted().items() for f in frames}
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
    for f in sorted(wanted):
        collector.add(Keyframe(wanted[f], f, frames[f]), True)
    return collector.finish(), [s.duration_seconds for s in shots]


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    footage = _footage()
    folder = tmp_path_factory.mktemp("dups")
    orig = render(folder / "orig.mp4", ORIG, footage)
    rip = folder / "rip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(orig), "-vf",
         "scale=192:108,eq=brightness=-0.05", "-c:v", "libx264", "-crf", "32", str(rip)],
        check=True,
    )  # fmt: skip
    return {
        "orig": orig,
        "mixed": render(folder / "mixed.mp4", MIXED, footage),
        "rip": rip,
        "other": render(folder / "other.mp4", OTHER, footage),
        "third": render(folder / "third.mp4", THIRD, footage),
    }


@pytest.fixture(scope="module")
def claimed(films: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    config = DuplicatesConfig()
    out = tmp_path_factory.mktemp("out")
    registry = DuplicateRegistry(str(out), config)
    results, prints = {}, {}
    for name, n in (("orig", 5), ("mixed", 5), ("rip", 5), ("other", 3)):
        prints[name], seconds = fingerprints(films[name], n, config)
        results[name] = registry.claim(name, prints[name], seconds)
    return {"results": results, "fingerprints": prints, "registry": registry, "out": out}


def best_matches(
    reference: ShotFingerprints, query: ShotFingerprints
) -> list[tuple[str, int, float] | None]:
    """Each query shot's most similar shot of ``reference`` (film "reference", shot,
    similarity), whether or not a claim would record it."""
    index = FingerprintIndex(DuplicatesConfig())
    index.add("reference", np.asarray(reference.shots), reference.vectors)
    return index.best(query.vectors)


def test_module_contract() -> None:
    assert FLAGS == ("duplicate",) and MEASURES == {"duplicate_similarity": "low"}
    with pytest.raises(ValueError):
        DuplicatesConfig(threshold=0.9, no_such_field=1)
    # views: the whole picture, then 3/4-width crops at 5 places from left to right
    boxes = view_boxes(320, DuplicatesConfig())
    assert boxes == [(0, 320), (0, 240), (20, 260), (40, 280), (60, 300), (80, 320)]


def test_original_film_has_no_duplicates(claimed: dict) -> None:
    orig = claimed["results"]["orig"]
    assert orig.shot_matches == {} and orig.film_duplicate_of is None
    # the film's own shots are compared with each other, and none is alike
    assert max(orig.shot_similarity) < DuplicatesConfig().threshold


def test_copies_found_and_set_up_at_another_moment_is_not(claimed: dict) -> None:
    mixed = claimed["results"]["mixed"]
    threshold = DuplicatesConfig().threshold
    assert set(mixed.shot_matches) == {1, 3, 4}
    assert mixed.shot_matches[1][:2] == ("orig", 1)  # pan-and-scan copy
    assert mixed.shot_matches[3][:2] == ("orig", 3)  # half size, brighter
    assert mixed.shot_matches[4][:2] == ("mixed", 0)  # repeated inside the film
    assert mixed.film_duplicate_of is None  # 3 of 5 shots are copies, not the film
    fields = shot_fields(mixed, claimed["fingerprints"]["mixed"])
    assert fields[1]["flags"] == ["duplicate"]
    assert fields[1]["duplicate_of"] == {"film_id": "orig", "shot": 1}
    assert fields[0] == {
        "flags": [],
        "duplicate_of": None,
        "quality": {"duplicate_similarity": mixed.shot_similarity[0]},
    }
    assert film_duplicate_of(mixed) is None
    assert film_duplicate_of(claimed["results"]["rip"]) == {"film_id": "orig"}
    # same static camera 20 s later: the background agrees, the movement does not (0.73;
    # 0.96 on the frames alone)
    prints = claimed["fingerprints"]["mixed"]
    to_orig = best_matches(claimed["fingerprints"]["orig"], prints)
    assert to_orig[2][1] == 2 and to_orig[2][2] < threshold - 0.1
    # another film's shot under the threshold is not recorded: only mixed's own earlier shots
    own = own_matches(prints.vectors, prints.valid)
    assert mixed.shot_similarity[2] == round(own[2][1], 4) < to_orig[2][2] - 0.1
    assert mixed.shot_similarity[0] < threshold
    # a match is: the copies record their similarity to what they copy
    assert [mixed.shot_similarity[s] for s in (1, 3, 4)] == [
        mixed.shot_matches[s][2] for s in (1, 3, 4)
    ]
    assert min(mixed.shot_similarity[s] for s in (1, 3, 4)) >= threshold


def test_whole_film_rip_is_a_duplicate_and_unrelated_film_is_not(claimed: dict) -> None:
    rip = claimed["results"]["rip"]
    assert rip.film_duplicate_of == "orig"
    assert {s: m[:2] for s, m in rip.shot_matches.items()} == {i: ("orig", i) for i in range(5)}
    other = claimed["results"]["other"]
    assert other.shot_matches == {} and other.film_duplicate_of is None
    assert max(other.shot_similarity) < DuplicatesConfig().threshold
    # the rip is not registered: a later film can only be a copy of the original
    assert claimed["registry"].films() == ["orig", "mixed", "other"]


def test_recorded_similarity_does_not_depend_on_claim_order(films: dict[str, Path]) -> None:
    """Three films without a copy among them, claimed in two orders into two fresh
    registries, record the same similarity for every shot, though some of their shots are
    alike under the threshold (the same camera at another moment): a shot of another film
    counts only as a match. A film claimed after them still records its copies' matches."""
    config = DuplicatesConfig()
    prints = {
        name: fingerprints(films[name], n, config)
        for name, n in (("orig", 5), ("other", 3), ("third", 3), ("mixed", 5))
    }
    recorded, matches = [], []
    for order in (("orig", "other", "third"), ("third", "other", "orig")):
        registry = DuplicateRegistry(None, config)
        results = {name: registry.claim(name, *prints[name]) for name in (*order, "mixed")}
        assert all(results[name].shot_matches == {} for name in order)
        assert all(r.film_duplicate_of is None for r in results.values())
        recorded.append({name: r.shot_similarity for name, r in results.items()})
        matches.append(results["mixed"].shot_matches)
    assert recorded[0] == recorded[1]
    assert matches[0] == matches[1] and set(matches[0]) == {1, 3, 4}
    # the orders do differ in what each film meets: third's vtest shot is 0.65 alike orig's
    # (met only when orig claimed first) and records 0 (its film's first shot) either way
    to_orig = best_matches(prints["orig"][0], prints["third"][0])
    assert to_orig[0][1] == 2 and 0.3 < to_orig[0][2] < config.threshold
    assert recorded[0]["third"][0] == 0.0
    # the copies in mixed (of orig's shots 1 and 3, of its own shot 0) record their match
    mixed = recorded[0]["mixed"]
    assert all(mixed[s] == matches[0][s][2] >= config.threshold for s in (1, 3, 4))


def test_resumed_registry_still_sees_earlier_films(claimed: dict, films: dict[str, Path]) -> None:
    config = DuplicatesConfig()
    resumed = DuplicateRegistry(str(claimed["out"]), config)
    assert resumed.films() == ["orig", "mixed", "other"]
    # mixed: 5 shots, 3 are copies, so 2 registered; orig 5, other 3
    assert resumed.n_shots() == 10
    fp, seconds = fingerprints(films["rip"], 5, config)
    assert resumed.claim("rip-again", fp, seconds).film_duplicate_of == "orig"


def test_watermark_box_is_ignored(films: dict[str, Path]) -> None:
    """A logo painted over one copy only: with its box given, the copy still matches."""
    config = DuplicatesConfig()
    marked = films["orig"].with_name("marked.mp4")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(films["orig"]), "-vf",
         "drawbox=x=250:y=10:w=60:h=40:color=white@1:t=fill", "-c:v", "libx264", "-crf", "24",
         str(marked)],
        check=True,
    )  # fmt: skip
    registry = DuplicateRegistry(None, config)
    fp, seconds = fingerprints(films["orig"], 5, config)
    registry.claim("orig", fp, seconds)
    with_box, _ = fingerprints(marked, 5, config, watermark=[250, 10, 310, 50])
    assert registry.claim("marked", with_box, seconds).film_duplicate_of == "orig"


def test_copy_cut_one_frame_off_still_matches(films: dict[str, Path]) -> None:
    """A shot detector that puts every cut of the rip one frame late (fast camera motion in
    the bikes shots: the sampled frames are other instants) still finds every shot."""
    config = DuplicatesConfig()
    registry = DuplicateRegistry(None, config)
    fp, seconds = fingerprints(films["orig"], 5, config)
    registry.claim("orig", fp, seconds)
    late, seconds = fingerprints(films["rip"], 5, config, shift=1)
    result = registry.claim("rip", late, seconds)
    assert {s: m[:2] for s, m in result.shot_matches.items()} == {i: ("orig", i) for i in range(5)}


@pytest.fixture(scope="module")
def dinov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised DINOv2 saved to a local folder (nothing downloaded)."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("dinov2")
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
    )
    Dinov2Model(config).save_pretrained(folder)
    size = {"shortest_edge": 56}
    BitImageProcessor(size=size, crop_size={"height": 56, "width": 56}).save_pretrained(folder)
    return folder


def test_image_model_embedder(films: dict[str, Path], dinov2_dir: Path) -> None:
    """Standard profile: a (tiny, random) DINOv2 on disk gives the frame blocks; the pixel
    movement blocks stay. The rip still matches, closer than unrelated footage."""
    config = DuplicatesConfig(embedder=str(dinov2_dir), device="cpu")
    embedder = make_embedder(config)
    registry = DuplicateRegistry(None, config)
    fp, seconds = fingerprints(films["orig"], 5, config, embedder=embedder)
    assert fp.dim == 4 * 32 + 3 * 64  # 4 model embeddings (32-d), 3 movement blocks
    registry.claim("orig", fp, seconds)
    # (a random model maps all pictures alike, so only the order of similarities is tested:
    # a real model's threshold is calibrated on its own embeddings)
    other, _ = fingerprints(films["other"], 3, config, embedder=embedder)
    unrelated = [best[2] for best in registry.index.best(other.vectors) if best is not None]
    assert len(unrelated) == 3
    rip, _ = fingerprints(films["rip"], 5, config, embedder=embedder)
    result = registry.claim("rip", rip, seconds)
    assert result.film_duplicate_of == "orig"
    assert min(result.shot_similarity) > max(unrelated) + 0.05


def test_black_and_text_on_black_shots_are_not_fingerprinted() -> None:
    """A title card (text on black) repeats across unrelated films and a black hold has no
    picture: neither is compared. A shot fading in from black still is."""
    config = DuplicatesConfig()
    shots = [Shot(i, i * 10, (i + 1) * 10, i, i + 1.0, "cut") for i in range(3)]
    collector = ShotFingerprintCollector(shots, config, dict.fromkeys(range(3)))
    card = np.zeros((180, 320, 3), np.uint8)
    cv2.putText(card, "THE END", (90, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (255, 255, 255), 2)
    rng = np.random.default_rng(0)
    for shot, frames in collector.wanted().items():
        for k, f in enumerate(frames):
            if shot == 0:
                image = card
            elif shot == 1:
                image = rng.integers(0, 3, (180, 320, 3), dtype=np.uint8)  # black, noisy
            else:  # a fade from black into a textured picture
                image = np.zeros((180, 320, 3), np.uint8) if k == 0 else _texture(rng, k)
            collector.add(Keyframe(shot, f, image), True)
    fp = collector.finish()
    assert fp.valid.tolist() == [False, False, True]
    assert not fp.vectors[:2].any()
    assert np.allclose(np.linalg.norm(fp.vectors[2], axis=1), 1.0, atol=1e-5)


def _texture(rng: np.random.Generator, k: int) -> np.ndarray:
    small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    return cv2.resize(small, (320, 180), interpolation=cv2.INTER_CUBIC)
