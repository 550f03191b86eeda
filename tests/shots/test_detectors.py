"""Every detector behind the one interface, fed by one decode; the combining detector on
synthetic films with exact ground truth (cuts, dissolves, fades, wipes, flashes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from muss_builder.config import ShotsConfig
from muss_builder.shots.registry import DETECTORS
from muss_builder.shots.segment import run_detectors
from muss_builder.testing.synthetic_films import ffmpeg_to, make_transition_film

SEGMENTS = [
    (60, "", 0),
    (60, "dissolve", 16),
    (60, "cut", 0),
    (70, "fade_black", 20),
    (60, "wipe", 16),
    (60, "cut", 0),
    (60, "fade_white", 18),
    (50, "cut", 0),
]
FLASHES = (30, 232, 400)  # two white-hot frames each, inside shots


@pytest.fixture(scope="module")
def transition_film(tmp_path_factory):
    root = tmp_path_factory.mktemp("transitions")
    return make_transition_film(root / "transitions.mp4", SEGMENTS, flashes=FLASHES)


def test_every_detector_finds_the_hard_cuts_from_one_decode(twelve_film) -> None:
    runs = run_detectors(twelve_film.path, list(DETECTORS))
    assert set(runs) == set(DETECTORS)
    for name, run in runs.items():
        found = [t.start_frame for t in run.transitions]
        assert all(t.is_cut for t in run.transitions), name
        if name in ("muss", "adaptive", "transnetv2"):
            assert found == twelve_film.cut_frames, name
        else:  # PySceneDetect's other detectors at their defaults: exact, if not complete
            assert set(found) <= set(twelve_film.cut_frames), name
            assert len(found) >= 8, name


def test_combined_detector_types_gradual_transitions(transition_film) -> None:
    found = run_detectors(transition_film.path, ["muss"])["muss"].transitions
    truth = transition_film.transitions
    assert len(found) == len(truth)
    for (kind, start, end), t in zip(truth, found, strict=True):
        assert t.kind == kind
        if kind == "cut":
            assert t.start_frame == start  # frame-exact
        else:  # intervals overlap and their edges are within 3 frames
            assert abs(t.start_frame - start) <= 3 and abs(t.end_frame - end) <= 3


def test_flashes_are_not_cuts(transition_film) -> None:
    runs = run_detectors(transition_film.path, ["muss", "adaptive"])

    def near_flash(transitions):
        return [t for t in transitions if any(f - 1 <= t.boundary <= f + 3 for f in FLASHES)]

    assert near_flash(runs["muss"].transitions) == []
    # the baseline does cut at flashes: the test film really has them
    assert near_flash(runs["adaptive"].transitions)


def test_net_confirmation_path_runs_on_shipped_weights(twelve_film) -> None:
    """With the net asked about every candidate (what a GPU does), cuts stay exact."""
    cfg = ShotsConfig()
    cfg = cfg.model_copy(update={"muss": cfg.muss.model_copy(update={"full_transnet": "always"})})
    found = run_detectors(twelve_film.path, ["muss"], cfg)["muss"].transitions
    assert [t.start_frame for t in found] == twelve_film.cut_frames


@pytest.mark.gpu
def test_transnet_runs_on_cuda(twelve_film) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cfg = ShotsConfig()
    cfg = cfg.model_copy(
        update={"transnetv2": cfg.transnetv2.model_copy(update={"device": "cuda"})}
    )
    found = run_detectors(twelve_film.path, ["transnetv2"], cfg)["transnetv2"].transitions
    assert [t.start_frame for t in found] == twelve_film.cut_frames


def test_unknown_detector_is_refused(tmp_path: Path, twelve_film) -> None:
    with pytest.raises(ValueError, match="unknown shot detector"):
        run_detectors(twelve_film.path, ["nope"])


def test_flash_only_film_has_no_transition(tmp_path) -> None:
    film = make_transition_film(tmp_path / "flashes.mp4", [(150, "", 0)], flashes=(20, 50, 80, 110))
    runs = run_detectors(film.path, ["muss", "adaptive"])
    assert runs["muss"].transitions == []
    assert len(runs["adaptive"].transitions) >= 2  # the flashes are strong enough to fool it


FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _credits_film(path: Path, parts: list[tuple[str, int]], lines: int = 3, fps: int = 24) -> Path:
    """End credits at 640x360: ("card", n) holds ``lines`` lines of white text on black; ("roll",
    n) scrolls five lines up from below the frame, so it starts and ends on black."""
    sources = []
    for kind, n in parts:
        chain = f"color=c=black:s=640x360:r={fps}:d={n / fps + 1}"
        for k in range(lines if kind == "card" else 5):
            y = f"{140 + 36 * k}" if kind == "card" else f"h-n*{(360 + 180) / n:.3f}+{36 * k}"
            chain += f",drawtext=fontfile={FONT}:text='Name Surname {k}':fontsize=18"
            chain += f":fontcolor=white:x=(w-tw)/2:y={y}"
        sources.append(f"{chain},trim=end_frame={n},setpts=N/{fps}/TB")
    graph = ";".join(f"{s}[s{i}]" for i, s in enumerate(sources))
    graph += ";" + "".join(f"[s{i}]" for i in range(len(parts)))
    graph += f"concat=n={len(parts)}:v=1:a=0,format=yuv420p[out]"
    encode = ("-map", "[out]", "-c:v", "libx264", "-preset", "veryfast")
    return ffmpeg_to(path, "-filter_complex", graph, *encode)


@pytest.mark.parametrize("lines", [1, 6])
def test_credit_cards_cut_to_and_from_black_are_cuts(tmp_path: Path, lines: int) -> None:
    # text on black changes a few percent of the picture, under the candidate floor and the
    # changed share a cut needs elsewhere; the roll's first and last frames are empty
    parts = [("card", 60), ("roll", 74), ("card", 80)]
    film = _credits_film(tmp_path / "credits.mp4", parts, lines=lines)
    muss = run_detectors(film, ["muss"])["muss"]
    assert [t.start_frame for t in muss.transitions] == [60, 134]
    assert {t.kind for t in muss.transitions} == {"cut"}


def test_a_roll_alone_is_one_shot(tmp_path: Path) -> None:
    # the text of a roll enters and leaves the frame a row at a time: no step out of black
    film = _credits_film(tmp_path / "roll.mp4", [("roll", 120)])
    assert run_detectors(film, ["muss"])["muss"].transitions == []


def test_grain_on_black_is_no_cut(tmp_path: Path) -> None:
    # heavy grain lifts a black frame's spread above "empty" but not to "a picture"
    graph = "color=c=0x101010:s=640x360:r=24:d=4,noise=alls=40:allf=t,format=yuv420p"
    film = ffmpeg_to(
        tmp_path / "grain.mp4", "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "veryfast"
    )
    assert run_detectors(film, ["muss"])["muss"].transitions == []
