"""Shot-boundary scores on hand-made ground truth and predictions with exact expected counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from muss_builder.bench.sbd.matching import match
from muss_builder.bench.sbd.report import format_markdown
from muss_builder.bench.sbd.scoring import score_film
from muss_builder.bench.sbd.tally import Counts, aggregate
from muss_builder.bench.sbd.truth import (
    GroundTruthError,
    load_ground_truth,
    load_ground_truth_dir,
    load_predictions,
)
from muss_builder.shots.transitions import Transition, cut


def c(frame: int, note: str | None = None) -> dict:
    return {"kind": "cut", "start_frame": frame, "end_frame": frame, "note": note}


def g(start: int, end: int, kind: str = "dissolve") -> dict:
    return {"kind": kind, "start_frame": start, "end_frame": end}


def counts(score, k: int) -> tuple[int, int, int]:
    x = score.cuts[k]
    return x.tp, x.fp, x.fn


# --- hard cuts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected_tp"),
    [
        (0, {0: 1, 1: 1, 2: 1}),
        (1, {0: 0, 1: 1, 2: 1}),
        (-1, {0: 0, 1: 1, 2: 1}),
        (2, {0: 0, 1: 0, 2: 1}),
        (-2, {0: 0, 1: 0, 2: 1}),
        (3, {0: 0, 1: 0, 2: 0}),
    ],
)
def test_cut_tolerance_edges(offset: int, expected_tp: dict[int, int]) -> None:
    score = score_film([c(100)], [c(100 + offset)])
    for k, tp in expected_tp.items():
        assert counts(score, k) == (tp, 1 - tp, 1 - tp)


def test_two_predictions_near_one_cut_are_one_tp_and_one_fp() -> None:
    score = score_film([c(50)], [c(50), c(51)])
    assert counts(score, 0) == (1, 1, 0)
    assert counts(score, 1) == (1, 1, 0)
    assert score.cuts[1].precision == 0.5 and score.cuts[1].recall == 1.0


def test_one_prediction_between_two_cuts_matches_only_one() -> None:
    score = score_film([c(50), c(52)], [c(51)])
    assert counts(score, 1) == (1, 0, 1)


def test_matching_is_maximal_not_just_nearest_first() -> None:
    """Nearest-first would pair 10-10 and leave 12 unmatched; the maximum pairs 10-8, 12-10."""
    score = score_film([c(10), c(12)], [c(8), c(10)])
    assert counts(score, 0) == (1, 1, 1)
    assert counts(score, 2) == (2, 0, 0)


def test_match_prefers_best_score_among_candidates() -> None:
    def nearness(a, b) -> float:
        return -abs(a.start_frame - b.start_frame)

    assert match([cut(10)], [cut(8), cut(11), cut(10)], nearness) == [(0, 2)]


def test_transition_objects_are_accepted() -> None:
    score = score_film([Transition(40, 40, "cut")], [cut(41, 0.9), Transition(60, 70, "wipe")])
    assert counts(score, 1) == (1, 0, 0)
    assert score.graduals == Counts(0, 1, 0)


# --- gradual transitions ---------------------------------------------------------------------


def test_gradual_matches_on_one_frame_of_overlap() -> None:
    score = score_film([g(100, 119)], [g(119, 130)])
    assert score.graduals == Counts(1, 0, 0)
    assert score.gradual_frame_recall == pytest.approx(1 / 20)
    assert score.gradual_frame_precision == pytest.approx(1 / 12)


def test_adjacent_gradual_without_overlap_is_fp_and_fn() -> None:
    score = score_film([g(100, 119)], [g(120, 130)])
    assert score.graduals == Counts(0, 1, 1)


def test_gradual_picks_the_largest_overlap() -> None:
    score = score_film([g(100, 119)], [g(95, 101), g(105, 125)])
    assert score.graduals == Counts(1, 1, 0)
    assert score.gradual_overlap_frames == 15
    assert score.gradual_frame_recall == pytest.approx(15 / 20)
    assert score.gradual_frame_precision == pytest.approx(15 / 21)


def test_type_accuracy_counts_gradual_as_wrong() -> None:
    gt = [g(10, 20, "dissolve"), g(40, 50, "fade_black"), g(70, 80, "wipe"), g(100, 110)]
    pred = [g(10, 20, "dissolve"), g(40, 50, "gradual"), g(70, 80, "fade_white")]
    score = score_film(gt, pred)
    assert score.graduals == Counts(3, 0, 1)
    assert score.gradual_type_correct == 1
    assert score.type_accuracy == pytest.approx(1 / 3)


def test_type_accuracy_is_none_without_matches() -> None:
    assert score_film([g(10, 20)], []).type_accuracy is None


# --- type confusions -------------------------------------------------------------------------


@pytest.mark.parametrize("frame", [98, 100, 110, 119, 121])
def test_gradual_found_as_cut_inside_padded_interval(frame: int) -> None:
    score = score_film([g(100, 119)], [c(frame)])
    assert score.graduals == Counts(0, 0, 1)  # a miss for gradual F1
    assert score.graduals_found_as_cut == 1
    assert counts(score, 2) == (0, 0, 0)  # and not a false cut
    assert score.transitions == Counts(1, 0, 0)


@pytest.mark.parametrize("frame", [97, 122])
def test_cut_outside_padded_gradual_is_a_false_cut(frame: int) -> None:
    score = score_film([g(100, 119)], [c(frame)])
    assert score.graduals_found_as_cut == 0
    assert counts(score, 2) == (0, 1, 0)
    assert score.transitions == Counts(0, 1, 1)


def test_only_one_cut_per_gradual_is_found_as_cut() -> None:
    score = score_film([g(100, 119)], [c(105), c(112)])
    assert score.graduals_found_as_cut == 1
    assert counts(score, 1) == (0, 1, 0)
    assert score.transitions == Counts(1, 1, 0)


def test_found_as_cut_is_not_counted_when_the_gradual_is_matched() -> None:
    score = score_film([g(100, 119)], [g(100, 119), c(110)])
    assert score.graduals == Counts(1, 0, 0)
    assert score.graduals_found_as_cut == 0
    assert counts(score, 1) == (0, 1, 0)


def test_cut_found_as_short_gradual() -> None:
    score = score_film([c(50)], [g(49, 52, "dissolve")])
    assert counts(score, 2) == (0, 0, 1)
    assert score.graduals == Counts(0, 0, 0)
    assert score.cuts_found_as_gradual == 1
    assert score.transitions == Counts(1, 0, 0)


# --- all transitions and notes ---------------------------------------------------------------


def test_all_transitions_ignore_type_and_pad_by_two() -> None:
    gt = [c(10), g(40, 50), c(80, "same_location"), c(120, "same_location")]
    pred = [g(8, 12, "gradual"), c(52), c(83), c(120), c(200)]
    score = score_film(gt, pred)
    assert score.transitions == Counts(3, 2, 1)
    assert score.noted["same_location"] == Counts(1, 0, 1)
    assert score.noted_recall("same_location") == 0.5


# --- hard negatives --------------------------------------------------------------------------


def test_false_cuts_on_hard_negatives() -> None:
    negatives = [
        {"kind": "flash", "start_frame": 300, "end_frame": 301},
        {"kind": "flash", "start_frame": 400, "end_frame": 400},
        {"kind": "whip_pan", "start_frame": 500, "end_frame": 510},
    ]
    pred = [c(302), c(303), c(398), c(399), g(495, 499), c(511), c(513)]
    score = score_film([], pred, negatives)
    assert score.negatives == {"flash": 2, "whip_pan": 1}
    assert score.false_on_negatives == {"flash": 2, "whip_pan": 2}
    assert score.false_per_ten("flash") == pytest.approx(10.0)
    assert score.false_per_ten("whip_pan") == pytest.approx(20.0)
    assert score.false_per_ten("fast_motion") is None


def test_no_false_cuts_when_predictions_avoid_negatives() -> None:
    negatives = [{"kind": "flash", "start_frame": 300, "end_frame": 302}]
    score = score_film([c(250)], [c(250), c(297), c(304)], negatives)
    assert score.false_on_negatives == {"flash": 0}
    assert score.false_per_ten("flash") == 0.0


# --- empty inputs and zero denominators ------------------------------------------------------


def test_empty_predictions() -> None:
    score = score_film([c(10), c(20), g(40, 50)], [])
    assert counts(score, 1) == (0, 0, 2)
    x = score.cuts[1]
    assert (x.precision, x.recall, x.f1) == (1.0, 0.0, 0.0)
    assert score.graduals.f1 == 0.0 and score.transitions.f1 == 0.0


def test_nothing_to_find_and_nothing_found_is_perfect() -> None:
    score = score_film([], [])
    for x in [*score.cuts.values(), score.graduals, score.transitions]:
        assert (x.precision, x.recall, x.f1) == (1.0, 1.0, 1.0)


def test_predictions_on_a_film_without_transitions() -> None:
    x = score_film([], [c(5)]).cuts[1]
    assert (x.tp, x.fp, x.fn) == (0, 1, 0)
    assert (x.precision, x.recall, x.f1) == (0.0, 1.0, 0.0)


def test_f1_formula() -> None:
    x = Counts(tp=3, fp=1, fn=2)
    p, r = 3 / 4, 3 / 5
    assert x.f1 == pytest.approx(2 * p * r / (p + r))


def test_bad_tolerances_are_refused() -> None:
    with pytest.raises(ValueError):
        score_film([c(1)], [c(1)], tolerances=())
    with pytest.raises(ValueError):
        score_film([c(1)], [c(1)], tolerances=(-1,))


# --- aggregation and report ------------------------------------------------------------------


def test_aggregate_is_micro_averaged() -> None:
    a = score_film([c(10)], [c(10)], film="a", n_frames=100, fps=25)
    b = score_film([c(10), c(20), c(30)], [], film="b", n_frames=50, fps=25)
    total = aggregate([a, b])
    assert total.n_films == 2 and total.n_frames == 150
    assert total.duration_seconds == pytest.approx(6.0)
    assert total.cuts[1] == Counts(1, 0, 3)
    assert total.cuts[1].recall == pytest.approx(0.25)  # a macro average would say 0.5


def test_aggregate_of_nothing() -> None:
    total = aggregate([])
    assert total.n_films == 0 and total.transitions.f1 == 1.0


def test_format_markdown_has_one_row_per_detector() -> None:
    negatives = [{"kind": "flash", "start_frame": 60, "end_frame": 60}]
    gt = [c(10), g(30, 40)]
    a = aggregate([score_film(gt, [c(10), g(30, 40)], negatives, film="f", n_frames=240, fps=24)])
    b_pred = [c(12), c(35), c(60)]
    b = aggregate([score_film(gt, b_pred, negatives, film="f", n_frames=240, fps=24)])
    table = format_markdown({"muss": a, "adaptive": b}, {"muss": 2.0})
    lines = table.splitlines()
    assert lines[0].startswith("| detector | cut F1 ±0 | cut F1 ±1 | cut F1 ±2 |")
    muss = next(line for line in lines if line.startswith("| muss |"))
    adaptive = next(line for line in lines if line.startswith("| adaptive |"))
    assert muss.split(" | ")[1:4] == ["1.000", "1.000", "1.000"]
    assert "| 2.0 | 120 |" in muss  # seconds, then frames per second
    cells = adaptive.split(" | ")
    # 12 is two frames off the cut at 10; 35 is the dissolve found as a cut; 60 is the flash
    assert cells[1:4] == ["0.000", "0.000", "0.667"]
    assert cells[10] == "1/1" and cells[12] == "10.00"
    assert adaptive.endswith("| - | - | - | - |")
    assert "1 films, 240 frames" in table


def test_to_dict_is_json_serialisable() -> None:
    flash = {"kind": "flash", "start_frame": 5, "end_frame": 5}
    score = score_film([c(10), g(30, 40)], [c(10)], [flash])
    doc = json.loads(json.dumps(aggregate([score]).to_dict()))
    assert doc["cuts"]["1"]["tp"] == 1 and doc["graduals"]["found_as_cut"] == 0


# --- files -----------------------------------------------------------------------------------


def gt_doc(**changes) -> dict:
    doc = {
        "schema_version": "1.0",
        "film": "a.mp4",
        "fps": 24,
        "n_frames": 200,
        "width": 64,
        "height": 36,
        "transitions": [c(50, "same_location"), g(100, 109)],
        "hard_negatives": [{"kind": "flash", "start_frame": 150, "end_frame": 151}],
        "segments": [{"source": "x.mp4", "source_start_frame": 0, "n_frames": 50}],
    }
    doc.update(changes)
    return doc


def write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_load_ground_truth(tmp_path: Path) -> None:
    gt = load_ground_truth(write(tmp_path / "a.json", gt_doc()))
    assert gt.name == "a" and gt.film_path == tmp_path / "a.mp4"
    assert gt.n_frames == 200 and gt.duration_seconds == pytest.approx(200 / 24)
    assert [t.kind for t in gt.transitions] == ["cut", "dissolve"]
    assert gt.transitions[0].note == "same_location"
    assert gt.hard_negatives[0].kind == "flash"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_frames": None}, "n_frames"),
        ({"fps": 0}, "fps"),
        ({"transitions": [{"kind": "cut", "start_frame": 5, "end_frame": 6}]}, "start_frame =="),
        ({"transitions": [g(20, 10)]}, "end_frame is before start_frame"),
        ({"transitions": [g(10, 20, "crossfade")]}, "transitions.0.kind"),
        ({"transitions": [g(10, 20), c(15)]}, "overlap at frame 15"),
        ({"transitions": [c(200)]}, "past the last frame"),
        ({"schema_version": "2.0"}, "schema_version"),
    ],
)
def test_invalid_ground_truth_names_file_and_field(
    tmp_path: Path, changes: dict, message: str
) -> None:
    doc = gt_doc(**changes)
    if changes.get("n_frames", 0) is None:
        del doc["n_frames"]
    path = write(tmp_path / "bad.json", doc)
    with pytest.raises(GroundTruthError) as err:
        load_ground_truth(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(GroundTruthError, match=r"x\.json: not JSON"):
        load_ground_truth(tmp_path / "x.json")
    with pytest.raises(GroundTruthError, match="cannot read"):
        load_ground_truth(tmp_path / "missing.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GroundTruthError, match="no ground-truth"):
        load_ground_truth_dir(empty)
    with pytest.raises(GroundTruthError, match="not a folder"):
        load_ground_truth_dir(tmp_path / "nowhere")


def test_ground_truth_dir_skips_underscore_files(tmp_path: Path) -> None:
    write(tmp_path / "b.json", gt_doc(film="b.mp4"))
    write(tmp_path / "a.json", gt_doc())
    write(tmp_path / "_summary.json", {"films": 2})
    assert [gt.name for gt in load_ground_truth_dir(tmp_path)] == ["a", "b"]


def test_load_predictions(tmp_path: Path) -> None:
    doc = {"transitions": [c(10) | {"confidence": 0.7}, g(30, 40, "gradual")]}
    spans = load_predictions(write(tmp_path / "p.json", doc))
    assert [(s.kind, s.start_frame, s.confidence) for s in spans] == [
        ("cut", 10, 0.7),
        ("gradual", 30, 1.0),
    ]
    assert load_predictions(write(tmp_path / "list.json", [c(3)]))[0].start_frame == 3
    with pytest.raises(GroundTruthError, match=r"p2\.json: invalid predictions"):
        load_predictions(write(tmp_path / "p2.json", {"transitions": [{"kind": "cut"}]}))
