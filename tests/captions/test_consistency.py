"""The consistency check and the facts sentences it must always accept."""

from __future__ import annotations

from muss_builder.captions.consistency import (
    global_caption_issues,
    shot_caption_issues,
    stated_scales,
    tags_in,
)
from muss_builder.captions.text import (
    facts_global_caption,
    facts_shot_caption,
    hierarchical_prompt,
    shot_prompt,
)


def facts(scale: str = "close_up", subjects: tuple[str, ...] = ("S1",), **extra) -> dict:
    return {
        "scale": scale,
        "scale_basis": "face 0.3 of frame height",
        "camera": {"kind": "pan_right", "magnitude": 0.2},
        "lighting": {
            "brightness": 0.6,
            "contrast": 0.2,
            "saturation": 0.4,
            "colour": "warm",
            "key": "normal",
            "time_of_day": "day",
        },
        "n_people": len(subjects),
        "subjects": [{"id": s, "kind": "face", "box": [0.1, 0.1, 0.4, 0.5]} for s in subjects],
        "transition_in": "cut",
    } | extra


def test_tags_and_scales_are_read_from_text() -> None:
    assert tags_in("[S1] talks to [S12] near [O3]; [x] is no tag") == ["S1", "S12", "O3"]
    assert stated_scales("An extreme close-up, then a medium close up.") == [
        "extreme_close_up",
        "medium_close_up",
    ]
    assert stated_scales("A wide shot of the bay") == ["long"]


def test_a_faithful_caption_passes() -> None:
    caption = "A close-up of [S1] smiling at someone off screen; the camera pans right."
    assert shot_caption_issues(caption, facts(), ["S1", "S2"]) == []
    # one step off the measured scale is a matter of taste, not a contradiction
    assert shot_caption_issues("A medium close-up of [S1].", facts(), ["S1"]) == []


def test_each_kind_of_inconsistency_is_named() -> None:
    issues = shot_caption_issues("A wide shot of [S2] and [S9] on a beach.", facts(), ["S1", "S2"])
    assert "names [S9], not a subject of the sample" in issues
    assert "names [S2], who is not in this shot" in issues
    assert "leaves out [S1], who is in this shot" in issues
    assert "says long on a close up shot" in issues
    # no subject measured: the scale is only a guess, so no scale contradiction is claimed
    assert shot_caption_issues("A close-up of a door.", facts("long", ()), []) == []
    assert global_caption_issues("[S1] and [S3] meet.", ["S1"]) == [
        "names [S3], not a subject of the sample"
    ]


def test_facts_sentences_always_pass_the_check() -> None:
    for scale in ("extreme_close_up", "medium", "extreme_long"):
        for subjects in ((), ("S1",), ("S1", "O2")):
            f = facts(scale, subjects, transition_in="dissolve")
            text = facts_shot_caption(f)
            assert shot_caption_issues(text, f, ["S1", "O2"]) == [], text
    text = facts_shot_caption(facts("medium", ("S1", "S2")))
    assert text.startswith("A medium shot showing [S1] and [S2]; the camera pans right")
    assert "warm" in text and "by day" in text
    shots = [facts(), facts("long", ("S2",))]
    caps = [facts_shot_caption(f) for f in shots]
    overall = facts_global_caption(shots, caps)
    assert overall.startswith("Subjects: [S1], a person seen in shot 1; [S2], a person seen")
    assert global_caption_issues(overall, ["S1", "S2"]) == []
    assumed = facts("long", (), scale_basis="no subject: assumed")
    assert facts_shot_caption(assumed).startswith("A shot showing no identified person")
    prompt = hierarchical_prompt(overall, caps)
    assert prompt.splitlines()[1].startswith("[shot 1] A close-up")
    assert "[S1]: face at [0.1, 0.1, 0.4, 0.5]" in shot_prompt(facts())
