"""score_video on real encoded videos: cuts found by our shot detector, consistency of frames.

Films come from ffmpeg (``make_film``: distinct segments joined by hard cuts at known frames)
and are decoded by ``read_video``; the models are the offline profile without faces (none in
these films) and without text alignment (test_metrics_text.py), so the real shot detector
and pixel embedder run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muss_builder.bench.metrics import (
    METRIC_KEYS,
    MetricModels,
    detect_cuts,
    load_bench_models,
    read_video,
    score_video,
)
from muss_builder.media.tools import MediaError
from muss_builder.testing.synthetic_films import make_film
from muss_builder.train.script import Script, ScriptShot


@pytest.fixture(scope="module")
def models() -> MetricModels:
    return load_bench_models(
        {"face_pack": None, "text_embedder": None, "device": "cpu", "frames_per_shot": 3}
    )


@pytest.fixture(scope="module")
def three_shots(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, float]:
    path = make_film(tmp_path_factory.mktemp("films") / "three.mp4", (30, 36, 30), fps=24)
    return read_video(path.path)


def script_of(lengths: list[int], captions: list[str] | None = None) -> Script:
    captions = captions or [f"shot {i}" for i in range(len(lengths))]
    shots = [
        ScriptShot(c, n, "start" if i == 0 else "cut")
        for i, (c, n) in enumerate(zip(captions, lengths, strict=True))
    ]
    return Script("test", "a test film", shots, fps=24.0, width=320, height=180)


def test_read_video_decodes_every_frame_as_rgb(three_shots: tuple[np.ndarray, float]) -> None:
    frames, fps = three_shots
    assert frames.shape == (96, 180, 320, 3) and frames.dtype == np.uint8 and fps == 24.0
    # the first segment is red (0xC03030): R well above G and B, as RGB, not BGR
    r, g, b = frames[5].reshape(-1, 3).mean(axis=0)
    assert r > g + 60 and r > b + 60


def test_read_video_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"nope\.mp4"):
        read_video(tmp_path / "nope.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError, match=r"junk\.mp4"):
        read_video(junk)


def test_the_shot_detector_finds_the_encoded_cuts(three_shots: tuple[np.ndarray, float]) -> None:
    frames, fps = three_shots
    assert [t.boundary for t in detect_cuts(frames, fps)] == [30, 66]


def test_exact_cuts_score_zero_deviation_and_full_accuracy(
    three_shots: tuple[np.ndarray, float], models: MetricModels, tmp_path: Path
) -> None:
    frames, _ = three_shots
    score = score_video(frames, script_of([30, 36, 30]), tmp_path, models)
    assert set(score.metrics) == set(METRIC_KEYS)
    assert score.detected_cuts == [30, 66]
    assert score.metrics["transition_deviation"] == 0.0
    assert score.metrics["shot_cut_accuracy"] == 1.0
    assert score.metrics["missed_cuts"] == 0 and score.metrics["extra_cuts"] == 0
    # distinct segments: far from consistent (the test pattern shares nothing with a colour)
    assert score.metrics["consistency_semantic"] < 0.8
    # no references, no judge, no text model: None with a reason, never a made-up number
    for key in (
        "reference_identity",
        "acp_var",
        "narrative_coherence",
        "copy_paste_index",
        "text_alignment",
    ):
        assert score.metrics[key] is None and score.notes[key]
    assert "judge" in score.notes["narrative_coherence"]


@pytest.mark.parametrize("d", [2, 5])
def test_a_cut_moved_by_d_frames_deviates_by_d(
    three_shots: tuple[np.ndarray, float], models: MetricModels, tmp_path: Path, d: int
) -> None:
    frames, _ = three_shots
    # the script asks the first cut d frames later than the video has it
    score = score_video(frames, script_of([30 + d, 36 - d, 30]), tmp_path, models)
    assert score.metrics["transition_deviation"] == pytest.approx(d / 2)  # mean of d and 0
    assert score.metrics["shot_cut_accuracy"] == pytest.approx(np.exp(-(d / 8) / 2))


def test_missed_and_extra_cuts_are_counted(
    three_shots: tuple[np.ndarray, float], models: MetricModels, tmp_path: Path
) -> None:
    frames, _ = three_shots
    # asks for four shots: the cut at 48 is not in the video
    missed = score_video(frames, script_of([30, 18, 18, 30]), tmp_path, models)
    assert (missed.metrics["missed_cuts"], missed.metrics["extra_cuts"]) == (1, 0)
    assert missed.metrics["shot_cut_accuracy"] == pytest.approx(np.exp(-1 / 3))
    # asks for two shots: the video's cut at 66 is extra
    extra = score_video(frames, script_of([30, 66]), tmp_path, models)
    assert (extra.metrics["missed_cuts"], extra.metrics["extra_cuts"]) == (0, 1)
    assert extra.metrics["transition_deviation"] == 0.0
    assert extra.metrics["shot_cut_accuracy"] == pytest.approx(np.exp(-1))


def test_identical_shots_are_consistent_through_score_video(
    three_shots: tuple[np.ndarray, float], models: MetricModels, tmp_path: Path
) -> None:
    frames, _ = three_shots
    shot = frames[:30]
    same = np.concatenate([shot, shot, shot])  # one shot three times, cut on the loop
    score = score_video(same, script_of([30, 30, 30]), tmp_path, models)
    assert score.metrics["consistency_semantic"] == pytest.approx(1.0)
    assert score.metrics["consistency_background"] == pytest.approx(1.0)
    assert score.metrics["consistency_subject"] is None  # the script names no subject


def test_bad_frames_are_refused_with_the_reason(models: MetricModels, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        score_video(np.zeros((4, 8, 8, 3), np.float32), script_of([4]), tmp_path, models)
    with pytest.raises(ValueError, match="RGB"):
        score_video(np.zeros((4, 8, 8), np.uint8), script_of([4]), tmp_path, models)


class ScopedJudge:
    """A named fake of a remote VLM judge: answers yes about scenes and mumbles otherwise,
    so one aspect is read and the other three are not."""

    def generate(self, requests: list) -> list:
        from muss_builder.captions.backends import CaptionReply

        return [
            CaptionReply("yes" if "location" in r.prompt else "hmm", "judge", 1, 1, 0.0, 1)
            for r in requests
        ]


def test_every_metric_left_none_says_why(
    three_shots: tuple[np.ndarray, float], models: MetricModels, tmp_path: Path
) -> None:
    import cv2

    from muss_builder.bench.metrics.narrative import narrative_coherence
    from muss_builder.train.script import ScriptReference

    frames, _ = three_shots
    cv2.imwrite(str(tmp_path / "ref.jpg"), np.ascontiguousarray(frames[40][..., ::-1]))
    box = (0.2, 0.2, 0.6, 0.8)
    with_refs = script_of([30, 36, 30])
    with_refs.shots[2].subjects = {"lamp": [(70, box)]}  # an object the script places
    with_refs.references = [
        ScriptReference("ref.jpg", "ada", "face", 1, box, 40),  # no face model: its box
        ScriptReference("ref.jpg", "lamp", "object", 2, box, 70),
    ]
    lost = script_of([30, 36])  # its referenced shot lies past the end of a 20-frame video
    lost.references = [ScriptReference("ref.jpg", "ada", "face", 1, box, 40)]
    objects = script_of([30, 36, 30])
    objects.shots[2].subjects = with_refs.shots[2].subjects
    objects.references = with_refs.references[1:]
    cases = {
        "plain": (frames, script_of([30, 36, 30]), None),
        "objects": (frames, objects, None),
        "one shot": (frames[:30], script_of([30]), frames[:30]),
        "references": (frames, with_refs, frames),
        "subject lost": (frames[:20], lost, frames[:20]),
    }
    scores = {name: score_video(f, s, tmp_path, models, target_frames=t)
              for name, (f, s, t) in cases.items()}  # fmt: skip
    for name, score in scores.items():
        assert set(score.metrics) == set(METRIC_KEYS)
        silent = [k for k, v in score.metrics.items() if v is None and not score.notes.get(k)]
        assert not silent, (name, silent, score.notes)
    # the reasons added here, each where it applies
    plain, refs, lost_score = scores["plain"], scores["references"], scores["subject lost"]
    assert plain.notes["copy_paste_index"] == "the script has no references"
    assert plain.notes["narrative_scene"].startswith("no VLM judge configured")
    assert scores["one shot"].notes["consistency_semantic"] == "needs at least two shots"
    assert refs.metrics["reference_crop"] is not None and refs.metrics["subject_found"] == 1.0
    assert refs.notes["reference_identity"].startswith("no face model configured")
    assert "no face found in both videos" in refs.notes["copy_paste_index"]
    assert lost_score.metrics["subject_found"] == 0.0
    assert scores["objects"].notes["reference_identity"].startswith("no found subject is a face")
    assert scores["objects"].notes["copy_paste_index"].startswith("needs the real target clip")
    for key in ("reference_identity", "reference_crop"):
        assert (
            lost_score.notes[key] == "no referenced subject was found in its target shot (0 of 1)"
        )
    assert lost_score.notes["shots"] == "shots [1] lie past the end of the video: not scored"
    # a judge that answers only one aspect readably: the other three say why they are None
    judged = narrative_coherence(ScopedJudge(), [frames[10], frames[50]], ["a", "b"])
    assert judged.metrics["narrative_scene"] == 1.0
    for aspect in ("subject", "action", "spatial"):
        assert judged.metrics[f"narrative_{aspect}"] is None
        assert judged.notes[f"narrative_{aspect}"] == (
            f"none of the 1 judge answers about {aspect} was readable (or all failed)"
        )
    assert judged.note == "3 of 4 judge answers unreadable or failed"
    single = narrative_coherence(ScopedJudge(), [frames[10]], ["a"])
    assert set(single.notes) == set(single.metrics)
    assert single.notes["narrative_action"] == "a single shot has no narrative pair"
